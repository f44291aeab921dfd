"""Start-up checks of the project's own settings (SITE_URL, SECRET_KEY, MEET_TRUSTED_PROXIES),
registered by meet.apps.MeetConfig (which imports this module). Every management command runs
them (migrate in `make run` included), so a deployment that would send dead links, run with a
guessable key or fail to load its proxy list says so before serving.

A SECRET_KEY missing with DEBUG off never gets here: meet/settings.py refuses to load.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.http.request import split_domain_port, validate_host

SITE_URL_HINT = "Set SITE_URL to the address people open meet at, e.g. https://meet.example.org."


def check_site_url(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """Links in emails and calendar files, and allauth's site domain, are SITE_URL plus a path:
    it must be an address other people can open."""
    url = str(settings.SITE_URL)
    parts = _absolute_http_url(url)
    if parts is None:
        return [
            Error(
                f"SITE_URL {url!r} is not an absolute http(s) URL with a host.",
                hint=SITE_URL_HINT,
                id="meet.E001",
            )
        ]
    messages: list[CheckMessage] = []
    host = parts.hostname or ""
    if not settings.DEBUG and _is_this_machine(host):
        messages.append(
            Warning(
                f"SITE_URL {url!r} points at this machine while DEBUG is off: links in emails "
                "and calendar files work for nobody else.",
                hint=SITE_URL_HINT,
                id="meet.W001",
            )
        )
    domain, _port = split_domain_port(parts.netloc.rpartition("@")[2])
    if domain and not validate_host(domain, _allowed_hosts()):
        messages.append(
            Warning(
                f"SITE_URL's host {domain!r} is not in ALLOWED_HOSTS: links in emails and "
                "calendar files lead to 400 Bad Request.",
                hint="Add the host to ALLOWED_HOSTS, or correct SITE_URL.",
                id="meet.W002",
            )
        )
    return messages


def check_secret_key(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    """Django's own test of a weak key (`check --deploy`, security.W009), made at every start
    with DEBUG off: deployments rarely run --deploy, and a guessable key forges sessions."""
    if settings.DEBUG:
        return []
    key = str(settings.SECRET_KEY)
    if (
        len(key) >= SECRET_KEY_MIN_LENGTH
        and len(set(key)) >= SECRET_KEY_MIN_UNIQUE_CHARACTERS
        and not key.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        return []
    return [
        Warning(
            f"SECRET_KEY is weak (shorter than {SECRET_KEY_MIN_LENGTH} characters, fewer than "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones, or Django's "
            f"'{SECRET_KEY_INSECURE_PREFIX}' development key) and DEBUG is off.",
            hint="Generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
            id="meet.W003",
        )
    ]


@register  # here rather than in MeetConfig.ready: importing this module (ready does) is enough
def check_trusted_proxies(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """A mistyped MEET_TRUSTED_PROXIES entry would otherwise stop the web process as it loads
    meet.asgi, with a bare ValueError and no word of which setting."""
    from meet.security import parse_networks

    try:
        parse_networks(settings.MEET_TRUSTED_PROXIES)
    except ValueError as error:
        return [
            Error(
                f"MEET_TRUSTED_PROXIES: {error}.",
                hint="List the proxies' addresses or networks, e.g. 10.0.0.5,192.168.1.0/24.",
                id="meet.E002",
            )
        ]
    return []


def _absolute_http_url(url: str) -> SplitResult | None:
    parts = urlsplit(url)
    try:
        # Reading the port parses it: one that is not a number ("https://host:x") raises.
        _ = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts


def _is_this_machine(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed_hosts() -> list[str]:
    # What Django's HttpRequest.get_host accepts: localhost variants too with DEBUG on and
    # ALLOWED_HOSTS empty.
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return allowed
