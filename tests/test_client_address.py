"""The client address that rate limits count (join-code guesses, allauth's login limits) is the
peer's, and X-Forwarded-For / X-Real-IP count only when the peer is a configured proxy
(MEET_TRUSTED_PROXIES). Otherwise anyone could forge a fresh address per request.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from meet import checks, web
from meet.security import TrustedProxyMiddleware
from tests.e2e.stack import database_url

BASE_DIR = Path(__file__).resolve().parent.parent
# An unusual rate so that its ratelimit cache keys are this test's alone (the rate is part of
# django-ratelimit's key) even though other tests count misses for 127.0.0.1 too.
GUESS_RATE = "4/7m"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _status(url: str, headers: dict[str, str]) -> int:
    try:
        with _opener.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the web process exited with {process.returncode}")
        try:
            _status(url, {})
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the web process did not answer in 30 s")


def _start_web(**environment: str) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m meet.web` (daphne with the command line meet/web.py gives it) on a free port,
    sharing this test session's database and Redis."""
    port = _free_port()
    env = dict(os.environ)
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        DATABASE_URL=database_url(settings.DATABASES["default"]),
        ROOMS_JOIN_GUESS_RATE=GUESS_RATE,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        **environment,
    )
    env.pop("MEET_TLS", None)
    env.pop("TLS_CERT_FILE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "meet.web"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/healthz", process)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process, base


@pytest.fixture
def start_web() -> Iterator[Callable[..., str]]:
    """Starts web processes (environment as keyword arguments); stops them after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**environment: str) -> str:
        process, base = _start_web(**environment)
        processes.append(process)
        return base

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _code(n: int) -> str:
    letters = "".join("abcdefghij"[int(digit)] for digit in f"{n:03d}")
    return f"qrs-tuvw-{letters}"


# --- the web process, end to end ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_forged_x_forwarded_for_does_not_escape_the_join_guess_limit(
    start_web: Callable[..., str],
) -> None:
    web_process = start_web()
    statuses = [
        _status(
            f"{web_process}/{_code(n)}",
            {"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"},
        )
        for n in range(6)
    ]
    # A signed-out miss is the sign-in redirect; after four, every address-forging try is 429.
    assert statuses == [302] * 4 + [429] * 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_forwarded_address_counts_when_the_peer_is_a_trusted_proxy(
    start_web: Callable[..., str],
) -> None:
    base = start_web(MEET_TRUSTED_PROXIES="127.0.0.1")
    # Each client behind the proxy has its own count...
    assert [
        _status(f"{base}/{_code(n)}", {"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(6)
    ] == [302] * 6
    # ...and one client is limited: the proxy appends the peer it saw to what the client sent,
    # so the rightmost untrusted entry is the client, whatever it put on the left.
    assert [
        _status(f"{base}/{_code(n)}", {"X-Forwarded-For": f"10.9.9.{n}, 203.0.113.9"})
        for n in range(6)
    ] == [302] * 4 + [429] * 2


def test_daphne_is_not_told_to_take_the_client_address_from_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(web.os, "execvp", lambda file, args: commands.append(list(args)))
    for name in ("MEET_TLS", "TLS_CERT_FILE", "TLS_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    web.main()
    [command] = commands
    # daphne trusts these headers from every peer, and takes X-Forwarded-For's leftmost (the
    # client-written) entry: meet.security.TrustedProxyMiddleware does it for proxies only.
    assert not any(argument.startswith("--proxy-headers") for argument in command)


# --- the ASGI middleware ----------------------------------------------------------------------


async def _client_seen(
    proxies: list[str], peer: tuple[str, int] | None, headers: list[tuple[bytes, bytes]]
) -> tuple[list[Any], str]:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    scope = {"type": "http", "client": peer, "scheme": "http", "headers": headers}
    await TrustedProxyMiddleware(app, proxies)(scope, None, None)
    return list(seen["client"]), seen["scheme"]


async def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
    assert await _client_seen([], ("203.0.113.5", 4000), headers) == (
        ["203.0.113.5", 4000],
        "http",
    )
    assert await _client_seen(["10.0.0.1"], ("203.0.113.5", 4000), headers) == (
        ["203.0.113.5", 4000],
        "http",
    )


async def test_a_trusted_proxy_gives_the_rightmost_untrusted_address() -> None:
    headers = [
        (b"x-forwarded-for", b"1.1.1.1, 198.51.100.7, 10.0.0.2"),
        (b"x-forwarded-proto", b"https"),
    ]
    assert await _client_seen(["10.0.0.0/24"], ("10.0.0.1", 4000), headers) == (
        ["198.51.100.7", 0],
        "https",
    )


async def test_a_trusted_proxy_x_real_ip_is_used_without_x_forwarded_for() -> None:
    headers = [(b"x-real-ip", b"2001:db8::5")]
    assert await _client_seen(["::1"], ("::1", 4000), headers) == (["2001:db8::5", 0], "http")


async def test_a_malformed_forwarded_address_leaves_the_peer() -> None:
    headers = [(b"x-forwarded-for", b"not-an-address")]
    assert await _client_seen(["10.0.0.1"], ("10.0.0.1", 4000), headers) == (
        ["10.0.0.1", 4000],
        "http",
    )


def test_allauth_reads_the_address_django_was_given() -> None:
    # The middleware already put the client's address in REMOTE_ADDR; allauth must not read
    # X-Forwarded-For again on its own.
    assert settings.ALLAUTH_TRUSTED_PROXY_COUNT == 0
    assert settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER is None


def test_a_mistyped_trusted_proxy_is_reported_at_start_up() -> None:
    with override_settings(MEET_TRUSTED_PROXIES=["10.0.0.1", "10.0.0.300"]):
        assert [message.id for message in checks.check_trusted_proxies(None)] == ["meet.E002"]
    with override_settings(MEET_TRUSTED_PROXIES=["10.0.0.1", "192.168.0.0/16", "::1"]):
        assert checks.check_trusted_proxies(None) == []
