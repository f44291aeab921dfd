"""Refusal close codes as a real client gets them, through daphne (issue 11).

In-process tests (WebsocketCommunicator) see whatever code the consumer closes with, but daphne
turns a close before the handshake is accepted into an HTTP 403, and its WebSocket layer sends
only 1000 and 3000-4999. So this opens raw WebSockets to a real daphne and reads the close
frame off the wire. No browser and no SFU node: refusals happen at connect.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import struct
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from accounts.models import User
from rooms.models import Meeting
from rooms.signaling import protocol
from tests.e2e.stack import LOG_DIR, Daphne, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_SECONDS = 10


@pytest.fixture
def server(stack_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[Daphne]:
    # On the host network even where the browser tests use a namespace: this client runs here.
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
    daphne = Daphne(stack_env, LOG_DIR / f"{name}-daphne.log")
    daphne.start()
    yield daphne
    daphne.stop()


async def _close_code(port: int, path: str, cookie: str | None) -> int:
    """Open a WebSocket to daphne and return the close code the server sends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            f"Origin: http://127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        assert b" 101 " in status, f"handshake refused: {status.decode(errors='replace')}"
        while True:
            first, second = await reader.readexactly(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            payload = await reader.readexactly(length)  # server frames are not masked
            if opcode == 0x8:
                assert len(payload) >= 2, "close frame without a code"
                code: int = struct.unpack("!H", payload[:2])[0]
                return code
    finally:
        writer.close()


def close_code(daphne: Daphne, path: str, cookie: str | None = None) -> int:
    return asyncio.run(asyncio.wait_for(_close_code(daphne.port, path, cookie), TIMEOUT_SECONDS))


def _cookie_header(user: User | None, base_url: str) -> str:
    if user is not None:
        cookie = session_cookie(user, base_url)
        return f"{cookie['name']}={cookie['value']}"
    session = SessionStore()
    session["guest"] = True
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def test_a_meeting_one_may_not_enter_closes_with_4404(server: Daphne) -> None:
    host = User.objects.create_user("host@example.org", password=None)
    outsider = User.objects.create_user("eve@example.org", password=None)
    meeting = Meeting.objects.create(
        host=host, title="Board", access_policy=Meeting.Access.INVITEES
    )
    cookie = _cookie_header(outsider, server.base_url)
    assert close_code(server, f"/ws/rooms/{meeting.code}/", cookie) == protocol.CLOSE_NOT_FOUND


def test_a_signed_out_visitor_closes_with_4401(server: Daphne) -> None:
    host = User.objects.create_user("host@example.org", password=None)
    meeting = Meeting.objects.create(host=host, title="Board")
    cookie = _cookie_header(None, server.base_url)
    assert (
        close_code(server, f"/ws/rooms/{meeting.code}/", cookie) == protocol.CLOSE_UNAUTHENTICATED
    )
