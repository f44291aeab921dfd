"""ICE settings for the SFU's peer connections: listen IPs, announced IP, ICE servers.

aiortc contacts a public STUN server unless it is given an explicit server list, and aioice
gathers host candidates on every non-loopback address of the machine. The SFU must gather only
on SFU_LISTEN_IPS (127.0.0.1 in tests) and must never reach anything it was not told about.
"""

from __future__ import annotations

import re

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

from sfu import hooks
from sfu.app_settings import app_settings
from sfu.ice_servers import parse_ice_server_urls


def ice_servers_from_urls(urls: list[str]) -> list[RTCIceServer]:
    """The configured servers (sfu/ice_servers.py) as aiortc's RTCIceServer."""
    return [
        RTCIceServer(urls=server.urls, username=server.username, credential=server.credential)
        for server in parse_ice_server_urls(urls)
    ]


def rtc_configuration(*, max_bundle: bool = False) -> RTCConfiguration:
    """Always an explicit list (empty unless configured), so no default STUN is contacted.

    max_bundle: the connections the SFU offers on put every m-line on one transport from the
    start (one ICE gathering, one socket per listen IP) instead of one per media kind.
    """
    return RTCConfiguration(
        iceServers=ice_servers_from_urls(app_settings.ICE_SERVERS),
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE if max_bundle else RTCBundlePolicy.BALANCED,
    )


def install_listen_ips(listen_ips: list[str] | None = None) -> None:
    """Make aioice gather host candidates only on the configured addresses.

    aioice has no per-connection address list; its module-level get_host_addresses is the one
    place gathering asks. An SFU node is a process of its own, so replacing it process-wide is
    what we want; an empty list restores aioice's own gathering.
    """
    ips = list(app_settings.LISTEN_IPS if listen_ips is None else listen_ips)
    hooks.gather_host_candidates_on(ips or None)


_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( .*)$")


def announce(sdp: str, announced_ip: str | None = None) -> str:
    """Rewrite the address of the SFU's candidates to SFU_ANNOUNCED_IP (a server behind NAT)."""
    ip = app_settings.ANNOUNCED_IP if announced_ip is None else announced_ip
    if not ip:
        return sdp
    lines = []
    for line in sdp.split("\r\n"):
        match = _CANDIDATE.match(line)
        if match:
            line = f"{match.group(1)}{ip}{match.group(3)}"
        elif line.startswith("c=IN IP4 ") or line.startswith("c=IN IP6 "):
            line = f"c=IN {'IP6' if ':' in ip else 'IP4'} {ip}"
        lines.append(line)
    return "\r\n".join(lines)
