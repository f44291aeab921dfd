"""Settings are read one way (each app's app_settings object, defaults there only) and checked
at start-up (each app's checks.py, and meet/checks.py for the project's own)."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any
from typing import Any as SettingsWrapper

import pytest
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from chat import checks as chat_checks
from meet import checks as meet_checks
from rooms import checks as rooms_checks
from sfu import checks as sfu_checks
from sfu import ice, registry
from sfu.app_settings import app_settings as sfu_settings
from sfu.management.commands import runsfu
from tests.settings_support import load_settings_module

Check = Callable[..., Sequence[CheckMessage]]
STRONG_KEY = "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP"


def ids(check: Check, **overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [message.id or "" for message in check(app_configs=None)]


# --- reading settings ---------------------------------------------------------------------------
def test_an_app_setting_is_defined_in_settings_only_when_its_environment_variable_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unset = load_settings_module(monkeypatch, PRESENCE_HEARTBEAT_SECONDS=None)
    assert not hasattr(unset, "PRESENCE_HEARTBEAT_SECONDS")
    configured = load_settings_module(monkeypatch, PRESENCE_HEARTBEAT_SECONDS="7")
    assert configured.PRESENCE_HEARTBEAT_SECONDS == 7.0


def test_an_app_setting_reads_the_settings_when_asked_and_its_default_when_absent(
    settings: SettingsWrapper,
) -> None:
    settings.SFU_NODE_TIMEOUT_SECONDS = 3.5
    assert sfu_settings.NODE_TIMEOUT_SECONDS == 3.5
    del settings.SFU_NODE_TIMEOUT_SECONDS
    assert sfu_settings.NODE_TIMEOUT_SECONDS > 0


def test_the_sfu_reads_its_settings_through_its_settings_object(
    settings: SettingsWrapper,
) -> None:
    settings.SFU_ANNOUNCED_IP = "203.0.113.7"
    settings.SFU_NODE_TIMEOUT_SECONDS = 30.0
    settings.SFU_NODE_NAME = "edge-1"
    sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\na=candidate:1 1 udp 2130706431 127.0.0.1 4000 typ host"
    assert ice.announce(sdp) == (
        "v=0\r\nc=IN IP4 203.0.113.7\r\na=candidate:1 1 udp 2130706431 203.0.113.7 4000 typ host"
    )
    now = timezone.now()
    assert (now - registry.liveness_cutoff(now)).total_seconds() == 30.0
    assert runsfu.default_node_name() == "edge-1"


# --- manage.py check ------------------------------------------------------------------------
def test_manage_py_check_passes_on_the_default_settings() -> None:
    # DEBUG as meet/settings.py defaults it (pytest-django turns it off for the tests).
    output = io.StringIO()
    with override_settings(DEBUG=True):
        call_command("check", fail_level="WARNING", stdout=output, stderr=output)
    assert "no issues" in output.getvalue()


def test_every_check_is_registered() -> None:
    from django.core.checks.registry import registry as check_registry

    registered = set(check_registry.get_checks())
    expected: list[Check] = [
        meet_checks.check_site_url,
        meet_checks.check_secret_key,
        rooms_checks.check_presence,
        rooms_checks.check_signaling_rate,
        rooms_checks.check_join_guess_rate,
        sfu_checks.check_heartbeat,
        sfu_checks.check_requests_and_capacity,
        sfu_checks.check_ice,
        sfu_checks.check_nodes,
        chat_checks.check_chat,
    ]
    assert set(expected) <= registered


# --- meet ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["meet.example.org", "ftp://meet.example.org", "https://", "https://meet.example.org:x"]
)
def test_a_site_url_that_is_not_an_absolute_http_url_is_reported(url: str) -> None:
    assert ids(meet_checks.check_site_url, SITE_URL=url) == ["meet.E001"]


def test_a_site_url_on_this_machine_is_reported_with_debug_off_only() -> None:
    for url in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"):
        assert ids(meet_checks.check_site_url, SITE_URL=url, DEBUG=False) == ["meet.W001"]
        assert ids(meet_checks.check_site_url, SITE_URL=url, DEBUG=True) == []


def test_a_site_url_whose_host_is_not_allowed_is_reported() -> None:
    reported = ids(
        meet_checks.check_site_url,
        SITE_URL="https://meet.example.org",
        ALLOWED_HOSTS=["other.example.org"],
    )
    assert reported == ["meet.W002"]
    allowed = ids(
        meet_checks.check_site_url,
        SITE_URL="https://meet.example.org",
        ALLOWED_HOSTS=[".example.org"],
        DEBUG=False,
    )
    assert allowed == []


@pytest.mark.parametrize("key", ["short", "a" * 60, "django-insecure-" + STRONG_KEY])
def test_a_weak_secret_key_is_reported_with_debug_off_only(key: str) -> None:
    assert ids(meet_checks.check_secret_key, SECRET_KEY=key, DEBUG=False) == ["meet.W003"]
    assert ids(meet_checks.check_secret_key, SECRET_KEY=key, DEBUG=True) == []


def test_a_strong_secret_key_passes() -> None:
    assert ids(meet_checks.check_secret_key, SECRET_KEY=STRONG_KEY, DEBUG=False) == []


# --- rooms --------------------------------------------------------------------------------------
@pytest.mark.parametrize("heartbeat", [0, -5.0])
def test_a_presence_heartbeat_that_is_not_positive_is_reported(heartbeat: float) -> None:
    assert ids(rooms_checks.check_presence, PRESENCE_HEARTBEAT_SECONDS=heartbeat) == ["rooms.E001"]


def test_a_negative_reconnect_grace_is_reported_and_none_at_all_is_allowed() -> None:
    check = rooms_checks.check_presence
    assert ids(check, SIGNALING_RECONNECT_GRACE_SECONDS=-1.0) == ["rooms.E002"]
    assert ids(check, SIGNALING_RECONNECT_GRACE_SECONDS=0) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SIGNALING_RATE_PER_SECOND": 0}, ["rooms.E003"]),
        ({"SIGNALING_RATE_BURST": 0}, ["rooms.E004"]),
        ({"SIGNALING_RATE_CLOSE_AFTER": -1}, ["rooms.E005"]),
        ({"SIGNALING_RATE_CLOSE_AFTER": 0}, []),
    ],
)
def test_a_signaling_rate_limit_that_would_refuse_every_frame_is_reported(
    overrides: dict[str, float], expected: list[str]
) -> None:
    assert ids(rooms_checks.check_signaling_rate, **overrides) == expected


@pytest.mark.parametrize("rate", ["thirty a minute", "0/10m", ""])
def test_a_join_guess_rate_django_ratelimit_cannot_use_is_reported(rate: str) -> None:
    assert ids(rooms_checks.check_join_guess_rate, ROOMS_JOIN_GUESS_RATE=rate) == ["rooms.E006"]


def test_a_join_guess_rate_read_only_in_part_is_reported() -> None:
    # Upper case M is not a period: django-ratelimit reads 30/10 (per ten seconds).
    check = rooms_checks.check_join_guess_rate
    assert ids(check, ROOMS_JOIN_GUESS_RATE="30/10M") == ["rooms.W001"]
    assert ids(check, ROOMS_JOIN_GUESS_RATE="5/h") == []


def test_the_default_meetings_settings_pass() -> None:
    for check in (
        rooms_checks.check_presence,
        rooms_checks.check_signaling_rate,
        rooms_checks.check_join_guess_rate,
    ):
        assert ids(check) == []


# --- sfu ----------------------------------------------------------------------------------------
def test_a_heartbeat_longer_than_the_node_timeout_is_reported() -> None:
    check = sfu_checks.check_heartbeat
    assert ids(check, SFU_HEARTBEAT_SECONDS=12.0, SFU_NODE_TIMEOUT_SECONDS=10.0) == ["sfu.E002"]
    assert ids(check, SFU_HEARTBEAT_SECONDS=10.0, SFU_NODE_TIMEOUT_SECONDS=10.0) == ["sfu.E002"]


def test_a_heartbeat_that_is_not_positive_is_reported() -> None:
    assert ids(sfu_checks.check_heartbeat, SFU_HEARTBEAT_SECONDS=0) == ["sfu.E001"]


def test_a_node_timeout_shorter_than_two_heartbeats_is_warned_about() -> None:
    check = sfu_checks.check_heartbeat
    assert ids(check, SFU_HEARTBEAT_SECONDS=6.0, SFU_NODE_TIMEOUT_SECONDS=10.0) == ["sfu.W001"]
    assert ids(check, SFU_HEARTBEAT_SECONDS=5.0, SFU_NODE_TIMEOUT_SECONDS=10.0) == []


def test_a_request_timeout_or_node_capacity_that_is_not_positive_is_reported() -> None:
    check = sfu_checks.check_requests_and_capacity
    assert ids(check, SFU_REQUEST_TIMEOUT_SECONDS=0) == ["sfu.E003"]
    assert ids(check, SFU_NODE_CAPACITY=0) == ["sfu.E004"]


def test_an_event_loop_the_node_cannot_run_is_reported() -> None:
    check = sfu_checks.check_requests_and_capacity
    assert ids(check, SFU_EVENT_LOOP="trio") == ["sfu.E010"]
    assert ids(check, SFU_EVENT_LOOP="uvloop") == []
    assert ids(check, SFU_EVENT_LOOP="asyncio") == []


@pytest.mark.parametrize(
    "url", ["stun.example.org", "http://stun.example.org", "stun:stun.example.org:port"]
)
def test_an_ice_server_url_the_sfu_cannot_parse_is_reported(url: str) -> None:
    assert ids(sfu_checks.check_ice, SFU_ICE_SERVERS=[url]) == ["sfu.E005"]


def test_a_turn_server_without_credentials_is_reported() -> None:
    servers = ["turn:turn.example.org:3478", "turns:user:pw@turn.example.org:5349"]
    assert ids(sfu_checks.check_ice, SFU_ICE_SERVERS=servers) == ["sfu.E006"]


def test_ice_server_passwords_stay_out_of_the_check_messages() -> None:
    with override_settings(SFU_ICE_SERVERS=["turn:user:s3cret@turn.example.org:port"]):
        (message,) = sfu_checks.check_ice(app_configs=None)
    assert message.id == "sfu.E005"
    assert "s3cret" not in message.msg


def test_well_formed_ice_servers_pass() -> None:
    servers = [
        " stun:stun.example.org:3478",
        "turn:u%40x:p@turn.example.org:3478?transport=tcp",
        "",
    ]
    assert ids(sfu_checks.check_ice, SFU_ICE_SERVERS=servers) == []


def test_listen_and_announced_addresses_that_are_not_ip_addresses_are_reported() -> None:
    check = sfu_checks.check_ice
    assert ids(check, SFU_LISTEN_IPS=["127.0.0.1", " 10.0.0.1", "sfu.local"]) == [
        "sfu.E007",
        "sfu.E007",
    ]
    assert ids(check, SFU_LISTEN_IPS=["127.0.0.1", "::1"], SFU_ANNOUNCED_IP="2001:db8::1") == []
    assert ids(check, SFU_ANNOUNCED_IP="sfu.example.org") == ["sfu.W002"]


def test_an_unusable_node_name_or_worker_count_is_reported() -> None:
    check = sfu_checks.check_nodes
    assert ids(check, SFU_NODE_NAME="eu west 1") == ["sfu.E008"]
    assert ids(check, SFU_NODE_NAME="n" * 81) == ["sfu.E008"]
    assert ids(check, SFU_NODE_NAME="eu-west-1.sfu_2") == []
    assert ids(check, SFU_WORKERS=-1) == ["sfu.E009"]
    assert ids(check, SFU_WORKERS=0) == []


# --- chat ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"CHAT_RATE_LIMIT_MESSAGES": 0}, ["chat.E001"]),
        ({"CHAT_RATE_LIMIT_SECONDS": 0}, ["chat.E002"]),
        ({"CHAT_HISTORY_LIMIT": 0}, ["chat.E003"]),
        ({"CHAT_RECENT_LIMIT": -1}, ["chat.E004"]),
        ({"CHAT_RECENT_LIMIT": 0}, []),
    ],
)
def test_chat_limits_that_would_break_chat_are_reported(
    overrides: dict[str, int], expected: list[str]
) -> None:
    assert ids(chat_checks.check_chat, **overrides) == expected
