"""Departures that outlive a connection: the end of a reconnect grace period, and the leave
itself (presence, the SFU peer, peerClosed to the others), plus room-wide broadcasts.

A grace period runs as a task of the process whose socket dropped; presence's conditional
updates make it a no-op when the peer has meanwhile resumed on any connection of any process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from rooms.signaling import presence
from rooms.signaling.sfu_gateway import SfuGateway, SfuUnavailable

logger = logging.getLogger(__name__)


def group_name(code: str) -> str:
    return f"room.{code}"


_background: set[asyncio.Task[Any]] = set()


def schedule_grace_expiry(
    meeting: Any, gateway: SfuGateway, peer_id: str, channel_name: str, grace: float
) -> None:
    async def expire() -> None:
        await asyncio.sleep(grace)
        await finish_departure(
            meeting, gateway, peer_id, channel_name=channel_name, only_if_disconnected=True
        )

    task = asyncio.ensure_future(expire())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def finish_departure(
    meeting: Any,
    gateway: SfuGateway,
    peer_id: str,
    *,
    channel_name: str,
    only_if_disconnected: bool = False,
) -> bool:
    """The peer leaves if this connection still owns it: presence, the SFU peer, peerClosed
    to the others (and the meeting ends with its last participant, in presence)."""
    try:
        departure = await database_sync_to_async(presence.leave)(
            meeting,
            peer_id,
            channel_name=channel_name,
            only_if_disconnected=only_if_disconnected,
        )
    except Exception:
        logger.exception("presence leave failed for %s in %s", peer_id, meeting.code)
        return False
    if not departure.left:
        return False
    try:
        await gateway.request("leave", {"peer_id": peer_id})
    except SfuUnavailable as exc:
        # The node closes peers whose room it lost anyway; presence is what the others see.
        logger.warning("SFU leave failed for %s in %s: %s", peer_id, meeting.code, exc)
    except Exception:
        logger.exception("SFU leave failed for %s in %s", peer_id, meeting.code)
    await broadcast(meeting.code, "peerClosed", {"peerId": peer_id})
    return True


async def broadcast(code: str, event: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(
            group_name(code), {"type": "room.event", "event": event, "data": data}
        )
    except Exception:
        logger.exception("room event %s to %s failed", event, code)


async def channel_send(channel: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.send(channel, message)
    except Exception:
        logger.exception("could not reach channel %s", channel)
