"""https settings, the Content-Security-Policy header, and secrets kept off the debug page."""

from __future__ import annotations

import re
import sys
from types import ModuleType
from typing import Any

import pytest
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.views.debug import ExceptionReporter, get_default_exception_reporter_filter

from rooms.tests.meetings_support import make_user, schedule
from tests.settings_support import load_settings_module


def load_settings(monkeypatch: pytest.MonkeyPatch, **environment: str | None) -> ModuleType:
    """meet/settings.py afresh, with none of the https switches set unless given."""
    tls_switches = ("MEET_TLS", "TLS_CERT_FILE", "TLS_KEY_FILE", "SITE_URL", "BEHIND_TLS_PROXY")
    return load_settings_module(monkeypatch, **{**dict.fromkeys(tls_switches), **environment})


# --- https settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environment",
    [
        {"MEET_TLS": "true"},
        {"TLS_CERT_FILE": "/etc/meet/cert.pem", "TLS_KEY_FILE": "/etc/meet/key.pem"},
        {"SITE_URL": "https://meet.example.org"},
        {"BEHIND_TLS_PROXY": "true"},
    ],
)
def test_cookies_are_secure_when_serving_https(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    module = load_settings(monkeypatch, **environment)
    assert module.SESSION_COOKIE_SECURE is True
    assert module.CSRF_COOKIE_SECURE is True


def test_plain_http_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_settings(monkeypatch, SECURE_HSTS_SECONDS=None, SECURE_SSL_REDIRECT=None)
    assert module.SESSION_COOKIE_SECURE is False
    assert module.CSRF_COOKIE_SECURE is False
    assert module.SECURE_HSTS_SECONDS == 0
    assert module.SECURE_SSL_REDIRECT is False


def test_hsts_and_the_https_redirect_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load_settings(
        monkeypatch,
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_SSL_REDIRECT="true",
    )
    assert module.SECURE_HSTS_SECONDS == 31536000
    assert module.SECURE_HSTS_INCLUDE_SUBDOMAINS is True
    assert module.SECURE_SSL_REDIRECT is True


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600)
def test_the_redirect_and_hsts_apply_but_not_to_the_health_check(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert "max-age=3600" in client.get("/", secure=True)["Strict-Transport-Security"]
    assert client.get("/healthz").status_code != 301


# --- Content-Security-Policy ----------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=|\son[a-z]+=", re.I)


def _assert_strict_and_clean(response: Any) -> None:
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().partition(" ")[::2] for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    # What the policy would block, and so break, must not be on the page.
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html)
    assert not INLINE_STYLE.search(html), INLINE_STYLE.search(html)


@pytest.mark.django_db
@override_settings(DEBUG=False)
@pytest.mark.parametrize("signed_in", [False, True])
def test_pages_carry_a_strict_policy_they_comply_with(client: Client, signed_in: bool) -> None:
    host = make_user("host@example.org")
    if signed_in:
        client.force_login(host)
    _assert_strict_and_clean(client.get("/"))
    _assert_strict_and_clean(client.get(reverse("admin:login")))
    if not signed_in:
        _assert_strict_and_clean(client.get(reverse("account_login")))
        _assert_strict_and_clean(client.get(reverse("account_signup")))
    else:
        meeting = schedule(host)
        _assert_strict_and_clean(client.get(f"/{meeting.code}"))  # the call page
        _assert_strict_and_clean(client.get(reverse("rooms:detail", args=[meeting.code])))
        _assert_strict_and_clean(client.get(reverse("rooms:schedule")))


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_websocket_connections_are_allowed_to_this_host_only(client: Client) -> None:
    policy = client.get("/", HTTP_HOST="localhost")["Content-Security-Policy"]
    [connect] = [part for part in policy.split("; ") if part.startswith("connect-src")]
    assert connect == "connect-src 'self' wss://localhost ws://localhost"


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_error_responses_carry_the_policy_too(client: Client) -> None:
    assert "Content-Security-Policy" in client.get("/no/such/page")


# --- the debug error page -------------------------------------------------------------------

# Every password below contains it; the page's source excerpts must not show it either.
MARK = "hunter2"
SECRETS = {
    "REDIS_URL": "redis://:hunter2-redis@redis.example.org:6379/0",
    "CELERY_BROKER_URL": "redis://meet:hunter2-broker@redis.example.org:6379/0",
    "CACHES": {"default": {"LOCATION": "redis://:hunter2-cache@redis.example.org:6379/1"}},
    "CHANNEL_LAYERS": {
        "default": {
            "CONFIG": {"hosts": [{"address": "rediss://u:hunter2-layer@redis.example.org/0"}]}
        }
    },
    "SFU_ICE_SERVERS": ["stun:stun.example.org", "turn:user:hunter2-turn@turn.example.org:3478"],
    "MY_DATABASE_URL": "postgres://meet:hunter2-db@db.example.org:5432/meet",
}


@override_settings(**SECRETS)
def test_the_debug_page_masks_passwords_in_urls() -> None:
    safe = get_default_exception_reporter_filter().get_safe_settings()
    shown = repr({name: safe[name] for name in SECRETS})
    assert MARK not in shown
    # Only the password goes: where the service lives stays readable.
    assert safe["REDIS_URL"] == "redis://:********************@redis.example.org:6379/0"
    assert "turn:user:********************@turn.example.org:3478" in safe["SFU_ICE_SERVERS"]
    assert safe["SFU_ICE_SERVERS"][0] == "stun:stun.example.org"

    request = RequestFactory().get("/")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        page = ExceptionReporter(request, *sys.exc_info()).get_traceback_html()
    assert MARK not in page
