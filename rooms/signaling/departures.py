"""Departures that outlive a connection: the end of a reconnect grace period, and the leave
itself (presence, the SFU peer, peerClosed to the others), plus room-wide broadcasts.

A grace period runs as a task of the process whose socket dropped; presence's conditional
updates make it a no-op when the peer has meanwhile resumed on any connection of any process.

A process that dies takes its grace periods and its connections' heartbeats with it; the
presence sweep (`sweep_abandoned`, a beat task) makes those participants leave the same way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from rooms.models import Participant
from rooms.signaling import presence
from rooms.signaling.sfu_gateway import SfuGateway, SfuUnavailable

logger = logging.getLogger(__name__)


def grace_seconds() -> float:
    """How long a dropped peer stays present for a reconnect."""
    return float(getattr(settings, "SIGNALING_RECONNECT_GRACE_SECONDS", 20.0))


def heartbeat_seconds() -> float:
    """How often an open connection refreshes its presence row (see presence.heartbeat)."""
    return float(getattr(settings, "PRESENCE_HEARTBEAT_SECONDS", 20.0))


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
    await close_peer(meeting.code, gateway, peer_id)
    return True


async def close_peer(code: str, gateway: SfuGateway, peer_id: str) -> None:
    """After presence has let the peer go: its SFU peer is closed and the others are told."""
    try:
        await gateway.request("leave", {"peer_id": peer_id})
    except SfuUnavailable as exc:
        # The node closes peers whose room it lost anyway; presence is what the others see.
        logger.warning("SFU leave failed for %s in %s: %s", peer_id, code, exc)
    except Exception:
        logger.exception("SFU leave failed for %s in %s", peer_id, code)
    await broadcast(code, "peerClosed", {"peerId": peer_id})


def sweep_abandoned() -> list[Participant]:
    """Synchronous (the beat task): every participant whose web process is gone leaves, as
    with a leave: presence (the meeting ends with its last participant), the SFU peer,
    peerClosed to the others. Returns those who left.

    Safe to run twice at once and against reconnects: each leave is presence's conditional
    update, so only one sweep makes a given participant leave, and one that reconnected
    meanwhile stays.
    """
    candidates = presence.abandoned_participants(
        heartbeat_seconds=heartbeat_seconds(), grace_seconds=grace_seconds()
    )
    departed = leave_abandoned(candidates)
    if departed:
        async_to_sync(announce_departures)(departed)
    return departed


def leave_abandoned(candidates: list[Participant]) -> list[Participant]:
    """Presence's half of the sweep: those of `candidates` still abandoned now leave."""
    departed: list[Participant] = []
    for participant in candidates:
        try:
            departure = presence.leave_abandoned(
                participant, heartbeat_seconds=heartbeat_seconds(), grace_seconds=grace_seconds()
            )
        except Exception:
            # One bad row (or a database blip) must not keep the others present.
            logger.exception(
                "sweep: leave failed for %s in meeting %s",
                participant.peer_id,
                participant.meeting_id,
            )
            continue
        if departure.left:
            logger.info(
                "sweep: %s left meeting %s (its connection went silent)%s",
                participant.peer_id,
                participant.meeting.code,
                "; the meeting ended" if departure.last else "",
            )
            departed.append(participant)
    return departed


async def announce_departures(departed: list[Participant]) -> None:
    """The SFU's and the others' half of the sweep, all at once: a node that does not answer
    costs one request timeout for the whole sweep, not one per participant."""
    gateways: dict[str, SfuGateway] = {}
    for participant in departed:
        gateways.setdefault(participant.meeting.code, SfuGateway(participant.meeting.code))
    outcomes = await asyncio.gather(
        *(
            _announce_departure(participant, gateways[participant.meeting.code])
            for participant in departed
        ),
        return_exceptions=True,
    )
    for participant, outcome in zip(departed, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            logger.error(
                "sweep: announcing %s's departure failed",
                participant.peer_id,
                exc_info=outcome,
            )


async def _announce_departure(participant: Participant, gateway: SfuGateway) -> None:
    code, peer_id = participant.meeting.code, participant.peer_id
    try:
        back = await database_sync_to_async(presence.is_present)(participant.meeting_id, peer_id)
    except Exception:
        logger.exception("sweep: presence check failed for %s in %s", peer_id, code)
        back = False
    if back:
        # The peer joined again (a new row) after the sweep's leave: its join has replaced the
        # SFU peer already, and a peerClosed now would remove the tile its newPeer showed.
        logger.info("sweep: %s rejoined %s before its departure went out", peer_id, code)
        return
    await close_peer(code, gateway, peer_id)


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
