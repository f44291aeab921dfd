"""STUN/TURN server URLs as configured (SFU_ICE_SERVERS), parsed without aiortc.

The web process shows them to browsers and the checks read them, and neither should pay for
importing aiortc (half a second, and the PyAV libraries) to split a URL; sfu/ice.py turns them
into aiortc's RTCIceServer for the SFU's own connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class IceServer:
    urls: str  # scheme:host[:port][?transport=...], without the credentials
    username: str | None = None
    credential: str | None = None


def parse_ice_server_urls(urls: list[str]) -> list[IceServer]:
    """Turn "turn:user:pass@host:3478" style URLs into servers (blank entries skipped)."""
    servers = []
    for url in urls:
        url = url.strip()
        if not url:
            continue
        scheme, _, rest = url.partition(":")
        username = credential = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            username, _, credential = userinfo.partition(":")
            username, credential = unquote(username), unquote(credential)
        servers.append(IceServer(urls=f"{scheme}:{rest}", username=username, credential=credential))
    return servers
