"""The WebSocket route checks the Origin header and the session before any consumer runs."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from accounts.models import User
from meet.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie_for(user: User) -> bytes:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


async def connect(
    origin: bytes, cookie: bytes | None = None, code: str = "abc-defg-hij"
) -> tuple[bool, object]:
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{code}/", headers=headers)
    connected, code = await communicator.connect()
    await communicator.disconnect()
    return connected, code


async def test_websocket_from_foreign_origin_is_rejected() -> None:
    user = await User.objects.acreate(email="ws@example.org")
    cookie = await _session_cookie(user)
    connected, _ = await connect(b"https://evil.example.com", cookie)
    assert connected is False


async def test_websocket_without_session_is_closed() -> None:
    from rooms.signaling import protocol

    # Accepted, then closed with 4401: a close before accepting reaches a browser as HTTP 403.
    communicator = WebsocketCommunicator(
        application, "/ws/rooms/abc-defg-hij/", headers=[(b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect()
    assert connected is True
    closed = await communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHENTICATED}
    await communicator.wait()


async def test_websocket_from_own_origin_with_session_is_accepted() -> None:
    from rooms.models import Meeting

    user = await User.objects.acreate(email="ws2@example.org")
    meeting = await Meeting.objects.acreate(host=user, title="Security check")
    cookie = await _session_cookie(user)
    connected, _ = await connect(b"http://localhost", cookie, meeting.code)
    assert connected is True


async def test_websocket_from_another_port_of_the_same_host_is_rejected() -> None:
    """Cookies are not scoped by port: a page served from another port of the same host must
    not open the call's socket with the visitor's session."""
    from rooms.models import Meeting

    user = await User.objects.acreate(email="ws3@example.org")
    meeting = await Meeting.objects.acreate(host=user, title="Port check")
    cookie = await _session_cookie(user)
    connected, _ = await connect(b"http://localhost:8080", cookie, meeting.code)
    assert connected is False


async def test_websocket_from_a_trusted_origin_is_accepted(settings: object) -> None:
    from rooms.models import Meeting

    settings.CSRF_TRUSTED_ORIGINS = ["https://meet.example.org"]  # type: ignore[attr-defined]
    settings.ALLOWED_HOSTS = ["localhost", "meet.example.org"]  # type: ignore[attr-defined]
    user = await User.objects.acreate(email="ws4@example.org")
    meeting = await Meeting.objects.acreate(host=user, title="Trusted origin")
    cookie = await _session_cookie(user)
    connected, _ = await connect(b"https://meet.example.org", cookie, meeting.code)
    assert connected is True


async def _session_cookie(user: User) -> bytes:
    from asgiref.sync import sync_to_async

    return await sync_to_async(session_cookie_for)(user)


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://localhost", "localhost", True),
        ("http://localhost:8000", "localhost:8000", True),
        ("https://localhost", "localhost:443", True),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("http://localhost:8080", "localhost:8000", False),
        ("https://localhost:8443", "localhost", False),
        ("http://evil.example.com", "evil.example.com", False),
        ("null", "localhost", False),
        ("", "localhost", False),
    ],
)
def test_a_websocket_origin_must_be_the_same_host_and_port(
    origin: str, host: str, allowed: bool
) -> None:
    from meet.security import websocket_origin_allowed

    assert websocket_origin_allowed(origin, host) is allowed
