"""Room events: what every participant's connection must hear about its meeting (contract 3).

The one owner of the channel-layer group `room.<code>` that every call connection of a meeting
joins, and of the two ways to send to it: `send_after_commit` for synchronous domain code (chat,
moderation), which must not announce what a rolled-back transaction never stored, and
`broadcast` for asynchronous code that has already stored what it announces (presence, the
signaling). `send_to_channel` reaches one connection (e.g. "signaling.replaced"). Every call
connection of a signed-in user is also in `user.<pk>` (`user_group_name`), which a sign-out
reaches (rooms.signaling.sign_out).

A room event as the group receives it:
    {"type": "room.event", "event": NAME, "data": {...},
     "target_peer_id": str (only that peer's connection handles it),
     "target_user_id": int (only the connections of that signed-in user handle it),
     "audience": "moderators" (only connections of hosts, co-hosts and staff forward it)}
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

ROOM_EVENT_TYPE = "room.event"
MODERATORS: Literal["moderators"] = "moderators"
Audience = Literal["moderators"]


def group_name(code: str) -> str:
    """The channel-layer group of the meeting with this join code."""
    return f"room.{code}"


def user_group_name(user_id: int) -> str:
    """The channel-layer group of every call connection of this signed-in user, whatever the
    meeting: signing out reaches them there (rooms.signaling.sign_out)."""
    return f"user.{user_id}"


def room_event(
    event: str,
    data: dict[str, Any] | None = None,
    *,
    target_peer_id: str | None = None,
    target_user_id: int | None = None,
    audience: Audience | None = None,
) -> dict[str, Any]:
    """The group message for `event` (see the module docstring for the optional targets)."""
    message: dict[str, Any] = {"type": ROOM_EVENT_TYPE, "event": event, "data": data or {}}
    if target_peer_id is not None:
        message["target_peer_id"] = target_peer_id
    if target_user_id is not None:
        message["target_user_id"] = target_user_id
    if audience is not None:
        message["audience"] = audience
    return message


def send_after_commit(
    code: str,
    event: str,
    data: dict[str, Any] | None = None,
    *,
    target_peer_id: str | None = None,
    target_user_id: int | None = None,
    audience: Audience | None = None,
) -> None:
    """Send a room event once the current transaction commits (at once outside one).

    After the commit, because a client that hears of a change and asks the server about it must
    find it stored. `robust`: the change is already committed when the event is sent, so a
    channel-layer failure is logged rather than turned into an error for a request that did its
    job; clients catch up from the database (chat history, the meeting page).

    Call from synchronous code only (async callers go through database_sync_to_async).
    """
    message = room_event(
        event,
        data,
        target_peer_id=target_peer_id,
        target_user_id=target_user_id,
        audience=audience,
    )
    group = group_name(code)

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            logger.error("No channel layer: room event %s for %s not sent", event, group)
            return
        async_to_sync(layer.group_send)(group, message)

    transaction.on_commit(send, robust=True)


async def broadcast(code: str, event: str, data: dict[str, Any]) -> None:
    """Send a room event now, from async code whose change is already stored. A failure is
    logged: what the event announces is in the database for clients that ask again."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group_name(code), room_event(event, data))
    except Exception:
        logger.exception("room event %s to %s failed", event, code)


async def send_to_channel(channel: str, message: dict[str, Any]) -> None:
    """One message to one connection's channel; a failure is logged (the connection may be
    gone, which is what the message was about to tell it anyway)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.send(channel, message)
    except Exception:
        logger.exception("could not reach channel %s", channel)
