"""Start-up checks of the SFU settings (sfu/app_settings.py), registered by sfu.apps.SfuConfig.
Values the nodes or the placement would misbehave with are reported by every management
command (migrate in `make run`, runsfu itself) instead of by the first call that meets them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning
from django.db.models import CharField

from sfu.app_settings import app_settings
from sfu.ice_servers import parse_ice_server_urls
from sfu.models import SfuNode


def check_heartbeat(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    heartbeat = app_settings.HEARTBEAT_SECONDS
    timeout = app_settings.NODE_TIMEOUT_SECONDS
    if heartbeat <= 0:
        return [
            Error(
                f"SFU_HEARTBEAT_SECONDS must be greater than 0 (it is {heartbeat}).",
                hint="Seconds between a node's heartbeats into the database.",
                id="sfu.E001",
            )
        ]
    if heartbeat >= timeout:
        # Every live node would be out of placement (and /healthz unhealthy) between two
        # of its heartbeats.
        return [
            Error(
                f"SFU_HEARTBEAT_SECONDS ({heartbeat}) must be shorter than "
                f"SFU_NODE_TIMEOUT_SECONDS ({timeout}).",
                hint="A node silent for SFU_NODE_TIMEOUT_SECONDS is taken for dead; give it "
                "several heartbeats in that time.",
                id="sfu.E002",
            )
        ]
    if timeout < 2 * heartbeat:
        return [
            Warning(
                f"SFU_NODE_TIMEOUT_SECONDS ({timeout}) is less than two heartbeats "
                f"(SFU_HEARTBEAT_SECONDS is {heartbeat}): one late heartbeat takes a live node "
                "out of placement.",
                hint="Make the node timeout several heartbeats long.",
                id="sfu.W001",
            )
        ]
    return []


def check_requests_and_capacity(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    timeout = app_settings.REQUEST_TIMEOUT_SECONDS
    if timeout <= 0:
        # Every request to a node would time out before it is answered.
        messages.append(
            Error(
                f"SFU_REQUEST_TIMEOUT_SECONDS must be greater than 0 (it is {timeout}).",
                hint="Seconds a request to an SFU node waits for its answer.",
                id="sfu.E003",
            )
        )
    if app_settings.EVENT_LOOP not in ("uvloop", "asyncio"):
        messages.append(
            Error(
                f"SFU_EVENT_LOOP must be uvloop or asyncio (it is {app_settings.EVENT_LOOP!r}).",
                hint="The SFU node's event loop.",
                id="sfu.E010",
            )
        )
    capacity = app_settings.NODE_CAPACITY
    if capacity < 1:
        # Placement skips a node whose load is not below its capacity: no room would ever
        # be placed (and the database refuses a negative one when the node registers).
        messages.append(
            Error(
                f"SFU_NODE_CAPACITY must be at least 1 (it is {capacity}).",
                hint="Forwarded streams a node accepts before placement skips it.",
                id="sfu.E004",
            )
        )
    return messages


def check_ice(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    urls = app_settings.ICE_SERVERS
    if urls:
        messages += _ice_server_problems(urls)
    for ip in app_settings.LISTEN_IPS:
        if not _is_ip_address(ip):
            # aioice would bind to it and gather candidates browsers cannot use.
            messages.append(
                Error(
                    f"SFU_LISTEN_IPS holds {ip!r}, which is not an IP address.",
                    hint="Comma-separated IP addresses of this machine, without spaces, e.g. "
                    "10.0.0.5,2001:db8::5.",
                    id="sfu.E007",
                )
            )
    announced = app_settings.ANNOUNCED_IP
    if announced and not _is_ip_address(announced):
        messages.append(
            Warning(
                f"SFU_ANNOUNCED_IP {announced!r} is not an IP address: browsers may ignore "
                "candidates that name a host.",
                hint="The public IP address browsers reach this machine at (behind NAT).",
                id="sfu.W002",
            )
        )
    return messages


# A node listens on the channel "sfu.<name>": Channels allows only these characters in a
# channel name. The length limit is SfuNode.name's.
NODE_NAME_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")


def check_nodes(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    name = app_settings.NODE_NAME
    field = SfuNode._meta.get_field("name")
    assert isinstance(field, CharField)  # it is; this tells the type checker
    longest = field.max_length
    too_long = longest is not None and len(name) > longest
    if name and (too_long or not NODE_NAME_CHARACTERS.fullmatch(name)):
        messages.append(
            Error(
                f"SFU_NODE_NAME {name!r} is not a usable node name.",
                hint=f"At most {longest} letters, digits, '.', '_' or '-'.",
                id="sfu.E008",
            )
        )
    workers = app_settings.WORKERS
    if workers < 0:
        messages.append(
            Error(
                f"SFU_WORKERS must not be negative (it is {workers}).",
                hint="SFU node processes `make run` starts on this machine; 0 where the nodes "
                "run on other machines.",
                id="sfu.E009",
            )
        )
    return messages


def _ice_server_problems(urls: list[str]) -> list[CheckMessage]:
    # Imported only when servers are configured: aiortc takes half a second to import, and
    # every management command runs these checks. Its own parser is the one that counts:
    # a URL it refuses makes every peer connection of the SFU fail.
    from aiortc.rtcicetransport import parse_stun_turn_uri

    messages: list[CheckMessage] = []
    for server in parse_ice_server_urls(urls):
        # The URL without its user name and password, which must not end up in a log.
        url = str(server.urls)
        try:
            parsed = parse_stun_turn_uri(url)
        except ValueError as exc:
            messages.append(
                Error(
                    f"SFU_ICE_SERVERS holds {url!r}, which is not a STUN or TURN URL ({exc}).",
                    hint="e.g. stun:stun.example.org:3478 or "
                    "turn:user:password@turn.example.org:3478 (comma-separated).",
                    id="sfu.E005",
                )
            )
            continue
        if parsed["scheme"] in ("turn", "turns") and not (server.username and server.credential):
            # Browsers refuse a TURN server without credentials: no call could start.
            messages.append(
                Error(
                    f"SFU_ICE_SERVERS holds the TURN server {url!r} without a user name and "
                    "password.",
                    hint="Write them into the URL: turn:user:password@turn.example.org:3478 "
                    "(percent-encode ':' and '@' in them).",
                    id="sfu.E006",
                )
            )
    return messages


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
