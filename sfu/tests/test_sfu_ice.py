"""ICE settings: explicit server lists, listen IPs, announced IP."""

from __future__ import annotations

from typing import Any

import aioice.ice

from sfu import ice

SDP = (
    "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 127.0.0.1\r\n"
    "a=candidate:abc 1 udp 2130706431 127.0.0.1 50000 typ host\r\n"
)


def test_the_rtc_configuration_always_has_an_explicit_server_list(settings: Any) -> None:
    settings.SFU_ICE_SERVERS = []
    assert ice.rtc_configuration().iceServers == []
    settings.SFU_ICE_SERVERS = ["stun:stun.example.org:3478", "turn:u%40x:p@turn.example.org:3478"]
    stun, turn = ice.rtc_configuration().iceServers
    assert stun.urls == "stun:stun.example.org:3478"
    assert stun.username is None
    assert turn.urls == "turn:turn.example.org:3478"
    assert (turn.username, turn.credential) == ("u@x", "p")


def test_gathering_is_limited_to_the_listen_ips() -> None:
    try:
        ice.install_listen_ips(["127.0.0.1", "::1"])
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
        ice.install_listen_ips([])
        assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    finally:
        ice.install_listen_ips(["127.0.0.1"])


def test_the_announced_ip_replaces_candidate_addresses() -> None:
    assert ice.announce(SDP, "") == SDP
    announced = ice.announce(SDP, "203.0.113.7")
    assert "a=candidate:abc 1 udp 2130706431 203.0.113.7 50000 typ host" in announced
    assert "c=IN IP4 203.0.113.7" in announced
    assert "127.0.0.1" not in announced
