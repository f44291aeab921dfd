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


async def _session_cookie(user: User) -> bytes:
    from asgiref.sync import sync_to_async

    return await sync_to_async(session_cookie_for)(user)
