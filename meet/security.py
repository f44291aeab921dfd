"""Security plumbing around Django: the client address behind a proxy, the
Content-Security-Policy header, and secrets kept out of the debug error page.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase
from django.http.request import validate_host
from django.views.debug import SafeExceptionReporterFilter

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- The client address -------------------------------------------------------------------


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Addresses ("10.0.0.1") and networks ("10.0.0.0/24"); ValueError names a bad one."""
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class TrustedProxyMiddleware:
    """ASGI middleware: the client address (and scheme) from X-Forwarded-For / X-Real-IP /
    X-Forwarded-Proto, but only when the direct peer is one of the trusted proxies.

    Not daphne's --proxy-headers: that trusts the headers from every peer (anyone could forge
    an address per request past the rate limits, which count per address) and takes the
    leftmost X-Forwarded-For entry, the one the client wrote. A proxy appends the address it
    saw, so the client is the rightmost entry that is not itself a trusted proxy.
    """

    def __init__(self, app: ASGIApp, trusted_proxies: Iterable[str]) -> None:
        self.app = app
        self.proxies = parse_networks(trusted_proxies)

    def _trusted(self, host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in network for network in self.proxies)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        client = scope.get("client")
        if (
            self.proxies
            and scope["type"] in ("http", "websocket")
            and client
            and self._trusted(str(client[0]))
        ):
            scope = dict(scope)
            headers = _headers(scope.get("headers", []))
            forwarded = self._forwarded_client(headers)
            if forwarded is not None:
                scope["client"] = [forwarded, 0]
            proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                ws = scope["type"] == "websocket"
                scope["scheme"] = {"http": "ws", "https": "wss"}[proto] if ws else proto
        await self.app(scope, receive, send)

    def _forwarded_client(self, headers: dict[str, str]) -> str | None:
        chain = [entry.strip() for entry in headers.get("x-forwarded-for", "").split(",")]
        chain = [entry for entry in chain if entry]
        if not chain and "x-real-ip" in headers:
            chain = [headers["x-real-ip"].strip()]
        for entry in reversed(chain):
            address = _address(entry)
            if address is None:
                return None  # garbled: keep the peer's address rather than guess
            if not any(address in network for network in self.proxies):
                return str(address)
        return None


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    # Repeated headers joined as one list, as HTTP allows for X-Forwarded-For.
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


# --- The WebSocket's origin -----------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_and_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    host, _, port = netloc.rpartition(":") if not netloc.endswith("]") else (netloc, "", "")
    if not host or "]" in port:  # no port given (or an IPv6 literal without one)
        host, port = netloc, ""
    try:
        return host.lower(), int(port) if port else default_port
    except ValueError:
        return None


def websocket_origin_allowed(origin: str, host_header: str) -> bool:
    """Whether a page from `origin` may open a WebSocket to us at `host_header`.

    The same site only: the origin's host and port equal the ones the socket was opened to (and
    the host is one of ALLOWED_HOSTS), or the origin is listed in CSRF_TRUSTED_ORIGINS. Not
    Channels' AllowedHostsOriginValidator, which ignores the port: cookies are not scoped by
    port, so a page on another port of the same host could use the visitor's session.
    """
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    scheme, separator, netloc = origin.partition("://")
    if not separator or scheme not in _DEFAULT_PORTS or not netloc:
        return False
    default_port = _DEFAULT_PORTS[scheme]
    origin_address = _host_and_port(netloc, default_port)
    if origin_address is None:
        return False
    # A Host without a port names the default port of the scheme the page was served with.
    # Browsers always send Host; a client that sends none is no browser carrying a victim's
    # cookies, and is held to the allowed hosts alone.
    if host_header and origin_address != _host_and_port(host_header, default_port):
        return False
    return validate_host(origin_address[0].strip("[]"), settings.ALLOWED_HOSTS) or validate_host(
        origin_address[0], settings.ALLOWED_HOSTS
    )


class SameOriginWebSocketValidator:
    """ASGI middleware in front of the WebSocket routes: `websocket_origin_allowed` or denied
    (an HTTP 403 to the handshake, before any consumer runs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        headers = _headers(scope.get("headers", []))
        if websocket_origin_allowed(headers.get("origin", ""), headers.get("host", "")):
            await self.app(scope, receive, send)
            return
        await WebsocketDenier()(scope, receive, send)


# --- Content-Security-Policy ----------------------------------------------------------------


def content_security_policy(websocket_host: str | None) -> str:
    """The client is ES modules and stylesheets from our own origin, with no inline code: the
    policy allows nothing else. WebSockets go to this host only ('self' covers ws(s): in
    CSP 3, but not in every browser yet)."""
    connect = "'self'" + (
        f" wss://{websocket_host} ws://{websocket_host}" if websocket_host else ""
    )
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            f"connect-src {connect}",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "object-src 'none'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    """Django middleware: the Content-Security-Policy header on every response.

    With DEBUG on, Django's own error pages (inline styles and scripts) are left without it so
    that they stay readable; they only exist on a developer's machine.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if "Content-Security-Policy" in response:
            return response
        if settings.DEBUG and response.status_code in (404, 500):
            return response
        try:
            host: str | None = request.get_host()
        except DisallowedHost:
            host = None
        response["Content-Security-Policy"] = content_security_policy(host)
        return response


# --- The debug error page -------------------------------------------------------------------

# scheme://user:password@ (redis://, postgres://, smtp+tls://) and turn:user:password@.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*:(?://)?[^:@/\s]*:)[^@/\s]+@", re.I)


class SecretMaskingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter (which hides settings named like KEY, PASS, TOKEN ...) that also masks
    the password in any URL-shaped value: REDIS_URL, CACHES, CHANNEL_LAYERS, CELERY_BROKER_URL,
    SFU_ICE_SERVERS and the like carry credentials under names that say nothing of it."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return _URL_PASSWORD.sub(rf"\g<head>{self.cleansed_substitute}@", cleansed)
        return cleansed
