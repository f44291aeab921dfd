"""Test helpers for the signaling server: a protoo client over Channels' WebsocketCommunicator
(through meet.asgi.application, so Origin checks and session auth are the real ones), a real
in-process SFU node, session cookies and condition polling."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from accounts.models import User
from meet.asgi import application


async def make_user(name: str, **extra: Any) -> User:
    """A signed-in person with a confirmed address (an invitation counts only for those)."""
    user = await User.objects.acreate(
        email=f"{name}-{uuid.uuid4().hex[:6]}@example.org", first_name=name.title(), **extra
    )
    await EmailAddress.objects.acreate(user=user, email=user.email, primary=True, verified=True)
    return user


POLL_SECONDS = 0.05
ServerRequestHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


async def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> None:
    """Poll `condition` (a function, or a coroutine function) until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}")
        await asyncio.sleep(POLL_SECONDS)


def _session_cookie(user: Any | None) -> bytes:
    session = SessionStore()
    if user is not None:
        session[SESSION_KEY] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
    else:
        session["guest"] = True
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


async def session_cookie(user: Any | None) -> bytes:
    """A session cookie for a signed-in user, or (user None) for a guest's browser."""
    return await sync_to_async(_session_cookie)(user)


# Every client a test opens, closed by the sfu_node fixture's teardown: a consumer left
# running would outlive the test's event loop.
_open_clients: list[SignalingClient] = []


class SignalingClient:
    """One browser tab's WebSocket, speaking contract 1."""

    def __init__(self, code: str, cookie: bytes | None, origin: bytes = b"http://localhost"):
        headers = [(b"origin", origin), (b"host", b"localhost")]
        if cookie:
            headers.append((b"cookie", cookie))
        self.communicator = WebsocketCommunicator(
            application, f"/ws/rooms/{code}/", headers=headers
        )
        _open_clients.append(self)
        self.notifications: list[dict[str, Any]] = []
        self.unmatched: list[dict[str, Any]] = []  # responses with no request waiting
        self.closed_with: int | None = None
        self.on_server_request: ServerRequestHandler | None = None
        # Called with each notification frame as it is read, before the frames behind it.
        self.on_notification: Callable[[dict[str, Any]], None] | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def connect(self) -> tuple[bool, int | None]:
        connected, code = await self.communicator.connect(timeout=10)
        if connected:
            self._reader = asyncio.create_task(self._read())
        else:
            self.closed_with = code
        return connected, code

    async def _read(self) -> None:
        while True:
            try:
                message = await self.communicator.receive_output(timeout=3600)
            except (asyncio.CancelledError, Exception):
                return
            if message["type"] == "websocket.close":
                self.closed_with = message.get("code", 1000)
                for future in self._waiting.values():
                    if not future.done():
                        future.set_exception(ConnectionError(f"closed {self.closed_with}"))
                return
            if message["type"] != "websocket.send" or message.get("text") is None:
                continue
            frame = json.loads(message["text"])
            if frame.get("response"):
                future = self._waiting.pop(frame.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(frame)
                else:
                    self.unmatched.append(frame)
            elif frame.get("notification"):
                self.notifications.append(frame)
                if self.on_notification is not None:
                    self.on_notification(frame)
            elif frame.get("request"):
                task = asyncio.create_task(self._answer(frame))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    async def _answer(self, frame: dict[str, Any]) -> None:
        if self.on_server_request is None:
            reply = {
                "response": True,
                "id": frame["id"],
                "ok": False,
                "errorCode": "unsupported",
                "errorReason": "test client",
            }
        else:
            try:
                data = await self.on_server_request(frame["method"], frame["data"])
                reply = {"response": True, "id": frame["id"], "ok": True, "data": data}
            except Exception as exc:
                reply = {
                    "response": True,
                    "id": frame["id"],
                    "ok": False,
                    "errorCode": "failed",
                    "errorReason": str(exc),
                }
        await self.send_text(json.dumps(reply))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def request_frame(
        self, method: str, data: dict[str, Any] | None = None, timeout: float = 20.0
    ) -> dict[str, Any]:
        """The whole response frame (ok or not)."""
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        await self.send_text(
            json.dumps({"request": True, "id": request_id, "method": method, "data": data or {}})
        )
        async with asyncio.timeout(timeout):
            return await future

    async def request(
        self, method: str, data: dict[str, Any] | None = None, timeout: float = 20.0
    ) -> dict[str, Any]:
        """The response's data; AssertionError when the server refused."""
        frame = await self.request_frame(method, data, timeout)
        assert frame["ok"], (
            f"{method} refused: {frame.get('errorCode')}: {frame.get('errorReason')}"
        )
        return frame["data"]

    async def join(self, peer_id: str | None = None, name: str = "Ada") -> dict[str, Any]:
        self.peer_id = peer_id or uuid.uuid4().hex
        return await self.request("join", {"peerId": self.peer_id, "displayName": name})

    def notified(self, method: str, **matching: Any) -> list[dict[str, Any]]:
        return [
            n["data"]
            for n in self.notifications
            if n["method"] == method and all(n["data"].get(k) == v for k, v in matching.items())
        ]

    async def wait_closed(self, timeout: float = 20.0) -> int:
        await wait_until(lambda: self.closed_with is not None, timeout, "the socket to close")
        assert self.closed_with is not None
        return self.closed_with

    async def drop(self) -> None:
        """The socket goes away without a leave (a network blip, a closed laptop lid)."""
        if self._reader is not None:
            self._reader.cancel()
        for task in list(self._handlers):
            task.cancel()
        if self._reader is None:
            return  # never accepted: the server already closed it
        # Short: the consumer's own disconnect work takes milliseconds, but channels_redis can
        # take seconds to cancel the instance's pending channel receive afterwards.
        with contextlib.suppress(Exception):
            await self.communicator.disconnect(code=1006, timeout=3)


async def drop_open_clients() -> None:
    """Every client still open goes away (their consumers leave or start their grace)."""
    while _open_clients:
        await _open_clients.pop().drop()


@pytest.fixture
async def sfu_node() -> AsyncIterator[Any]:
    """A real SFU node, in process, on the test's event loop, behind the real channel layer."""
    from sfu.tests.helpers import start_node, stop_node

    node, task = await start_node(f"sig-{uuid.uuid4().hex[:8]}")
    try:
        yield node
    finally:
        # Sockets first (their consumers leave or start their grace period), then the node.
        await drop_open_clients()
        await stop_node(node, task)
