"""SFU settings, read through one object: `from sfu.app_settings import app_settings`.

The rule, the same in every app's app_settings module: a setting's default is written here
and nowhere else. meet/settings.py sets a setting only when its environment variable is set,
so an unset variable means the default below. Each property reads django.conf.settings when
asked (never cached), so override_settings and pytest-django's `settings` fixture apply.
"""

from __future__ import annotations

from django.conf import settings


class SfuSettings:
    @property
    def REQUEST_TIMEOUT_SECONDS(self) -> float:
        """Seconds a request to an SFU node waits for its answer (the gateway retries once)."""
        return float(getattr(settings, "SFU_REQUEST_TIMEOUT_SECONDS", 5.0))

    @property
    def HEARTBEAT_SECONDS(self) -> float:
        """Seconds between a node's heartbeats (its liveness and load, in the database)."""
        return float(getattr(settings, "SFU_HEARTBEAT_SECONDS", 2.0))

    @property
    def NODE_TIMEOUT_SECONDS(self) -> float:
        """Seconds without a heartbeat after which a node is out of placement and unhealthy,
        and its rooms move to a live node (three missed heartbeats by default)."""
        return float(getattr(settings, "SFU_NODE_TIMEOUT_SECONDS", 6.0))

    @property
    def NODE_CAPACITY(self) -> int:
        """Forwarded streams (a count) a node accepts before placement skips it."""
        return int(getattr(settings, "SFU_NODE_CAPACITY", 500))

    @property
    def ICE_SERVERS(self) -> list[str]:
        """STUN/TURN URLs (`turn:user:pass@host:port`) for the SFU and the browsers; empty:
        nothing outside the machine is contacted."""
        return list(getattr(settings, "SFU_ICE_SERVERS", []))

    @property
    def LISTEN_IPS(self) -> list[str]:
        """IP addresses the SFU gathers ICE host candidates on; empty: every non-loopback
        address of the machine."""
        return list(getattr(settings, "SFU_LISTEN_IPS", []))

    @property
    def ANNOUNCED_IP(self) -> str:
        """IP address announced to browsers instead of the listen address (a server behind
        NAT); empty: none."""
        return str(getattr(settings, "SFU_ANNOUNCED_IP", ""))

    @property
    def NODE_NAME(self) -> str:
        """This node's name, unique across the deployment; empty: `<hostname>-sfuN`, N the
        honcho instance number (runsfu's --node overrides both)."""
        return str(getattr(settings, "SFU_NODE_NAME", ""))

    @property
    def EVENT_LOOP(self) -> str:
        """The node's event loop: "uvloop" (libuv; its datagram transport and selector are C)
        or "asyncio" (the standard library's)."""
        return str(getattr(settings, "SFU_EVENT_LOOP", "asyncio"))

    @property
    def SIMULCAST(self) -> bool:
        """Whether call clients publish their camera as three layers (about 180p, 360p and
        720p) from which the SFU forwards each viewer the one its view needs; off: one."""
        return bool(getattr(settings, "SFU_SIMULCAST", True))

    @property
    def DOWNLINK_ESTIMATE(self) -> bool:
        """Whether the SFU offers subscribers transport-wide congestion control and shares
        each one's estimated downlink among its videos (sfu/downlink.py); off: only the tile
        sizes and the loss cap choose layers."""
        return bool(getattr(settings, "SFU_DOWNLINK_ESTIMATE", True))

    @property
    def AUDIBLE_SPEAKERS(self) -> int:
        """How many microphones each viewer is sent at most: the loudest, with a hangover
        (sfu/audible.py); 0 sends every open microphone."""
        return max(int(getattr(settings, "SFU_AUDIBLE_SPEAKERS", 3)), 0)

    @property
    def WORKERS(self) -> int:
        """SFU node processes (a count) `make run` starts on this machine; one per core."""
        return int(getattr(settings, "SFU_WORKERS", 1))


app_settings = SfuSettings()
