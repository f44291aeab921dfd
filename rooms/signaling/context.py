"""What the parts of one participant's connection share: who they are, where the connection
stands, and the ways to answer, close, broadcast and queue work.

The parts (membership, media relay, chat and moderation requests, room-event relay) each hold
this one object; none holds another's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from rooms import events
from rooms.access import Actor, signed_in
from rooms.sfu_gateway import SfuGateway
from rooms.signaling.admission import Admission
from rooms.signaling.protocol import ProtocolError, Request

logger = logging.getLogger(__name__)

MAX_QUEUED_JOBS = 32

Job = Callable[[], Awaitable[None]]
RequestHandler = Callable[[Request], Awaitable[dict[str, Any]]]


class Socket(Protocol):
    """What the connection needs from its WebSocket (the consumer)."""

    channel_name: str

    async def send_frame(self, frame: dict[str, Any]) -> None: ...

    async def close_with(self, code: int) -> None: ...


class State(enum.Enum):
    CONNECTED = "connected"
    JOINING = "joining"
    JOINED = "joined"
    CLOSED = "closed"


class ConnectionContext:
    def __init__(self, socket: Socket, admission: Admission, *, user: Actor, guest_key: str):
        self.socket = socket
        self.admission = admission
        self.meeting = admission.meeting
        self.code: str = admission.meeting.code
        # The signed-in user, or None for a guest (known by guest_key).
        self.user = signed_in(user)
        self.guest_key = guest_key
        self.role = admission.role
        self.state = State.CONNECTED
        self.peer_id: str | None = None
        self.display_name = ""
        self.gateway = SfuGateway(self.code)
        self._jobs: asyncio.Queue[Job] = asyncio.Queue(MAX_QUEUED_JOBS)
        self._worker: asyncio.Task[None] | None = None

    @property
    def channel_name(self) -> str:
        return self.socket.channel_name

    @property
    def user_agent(self) -> str:
        """The browser's User-Agent header, from the WebSocket's handshake ("" if none): the
        attendance record notes the browser family (rooms.attendance.browser_family)."""
        scope = getattr(self.socket, "scope", None) or {}
        for name, value in scope.get("headers", ()):
            if name == b"user-agent":
                return bytes(value).decode("latin-1")[:512]
        return ""

    @property
    def guest_key_if_guest(self) -> str:
        """The guest key where the domain names a guest by it; "" for a signed-in user."""
        return "" if self.user is not None else self.guest_key

    def require_joined(self) -> str:
        if self.state is not State.JOINED or self.peer_id is None:
            raise ProtocolError("not_joined", "Join the meeting first.")
        return self.peer_id

    # --- work, one job at a time ------------------------------------------------------------
    def enqueue(self, job: Job) -> bool:
        """Run `job` after the jobs queued before it (client requests, answers to the SFU's
        offers, a host's mute), on a worker task of its own, so that a slow SFU request never
        holds up what arrives on the consumer's channel. False when the queue is full."""
        try:
            self._jobs.put_nowait(job)
        except asyncio.QueueFull:
            return False
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work())
        return True

    async def _work(self) -> None:
        while not self._jobs.empty() and self.state is not State.CLOSED:
            job = self._jobs.get_nowait()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("signaling job failed in room %s", self.code)

    async def stop_work(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker

    # --- the socket and the room ------------------------------------------------------------
    async def send(self, frame: dict[str, Any]) -> None:
        try:
            await self.socket.send_frame(frame)
        except Exception:
            logger.debug("send failed in room %s (socket gone)", self.code, exc_info=True)

    async def close(self, code: int) -> None:
        self.state = State.CLOSED
        await self.socket.close_with(code)

    async def broadcast(self, event: str, data: dict[str, Any]) -> None:
        await events.broadcast(self.code, event, data)
