"""Helpers shared by the chat and moderation tests: named people, a meeting, and a listener on
the room's channel-layer group that sees exactly what the signaling consumers would see."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

from allauth.account.models import EmailAddress
from channels.layers import get_channel_layer

from accounts.models import User
from rooms import presence, services
from rooms.models import Meeting

T = TypeVar("T")


def make_user(name: str, **extra: Any) -> User:
    """A user with a confirmed address (allauth's EmailAddress, verified), as after sign-up:
    only a confirmed address makes its owner an invitee (rooms.access.verified_emails)."""
    email = f"{name}@example.org"
    user = User.objects.create_user(email=email, first_name=name.title(), **extra)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    return user


def make_meeting(host: User, *, live: bool = True, **extra: Any) -> Meeting:
    """A meeting of `host`'s; live (someone is in the call) unless told otherwise."""
    meeting = Meeting.objects.create(host=host, title=extra.pop("title", "Weekly sync"), **extra)
    if live:
        services.mark_live(meeting)
    return meeting


class RoomListener:
    """A channel in the group `room.<code>`, like one participant's consumer."""

    def __init__(self, code: str) -> None:
        self.group = f"room.{code}"
        self.layer = get_channel_layer()
        # A plain channel name rather than new_channel()'s process-local one: those are read
        # through a lock tied to one event loop, and the sync wrapper below uses a loop per call.
        self.channel = f"test.room-listener.{uuid.uuid4().hex}"

    async def join(self) -> RoomListener:
        await self.layer.group_add(self.group, self.channel)
        return self

    async def leave(self) -> None:
        await self.layer.group_discard(self.group, self.channel)

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await self.layer.receive(self.channel)

    async def receive_event(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        message = await self.receive(timeout)
        assert message["type"] == "room.event"
        assert message["event"] == name, message
        return message

    async def assert_silent(self, wait: float = 0.3) -> None:
        try:
            async with asyncio.timeout(wait):
                message = await self.layer.receive(self.channel)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected room event: {message}")


class SyncRoomListener:
    """RoomListener for synchronous tests (the admin client, plain service calls).

    It keeps one event loop in a thread of its own for its whole life: channels_redis finishes
    each receive with a background task, which a loop per call (async_to_sync) would cancel,
    and the message would then be delivered a second time.
    """

    def __init__(self, code: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._listener = RoomListener(code)
        self._run(self._listener.join())

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def receive_event(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        return self._run(self._listener.receive_event(name, timeout))

    def assert_silent(self, wait: float = 0.3) -> None:
        self._run(self._listener.assert_silent(wait))

    def close(self) -> None:
        self._run(self._listener.leave())
        self._run(self._listener.layer.wait_received())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def client_id() -> str:
    return str(uuid.uuid4())


def invite(meeting: Meeting, user: User) -> None:
    meeting.invitations.create(email=user.email)


def attend(meeting: Meeting, user: User) -> None:
    """The user was in the call and has left."""
    peer_id = f"attended-{user.pk}"
    present(meeting, user, peer_id=peer_id, display_name=user.display_name)
    presence.leave(meeting, peer_id)


def present(meeting: Meeting, user: User | None, *, peer_id: str, display_name: str) -> Any:
    """Put someone in the call the way the signaling consumer does (rooms.presence)."""
    return presence.enter(
        meeting,
        peer_id=peer_id,
        user=user,
        guest_key="" if user is not None else "guest-" + peer_id,
        display_name=display_name,
        role="participant",
        channel_name=f"test.channel.{peer_id}",
    ).participant
