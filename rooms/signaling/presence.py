"""Who is in each meeting's call: one Participant row per browser tab (peer) present.

The rows are the one truth every web process shares: the join response's peer list, the
admin's view of a live meeting and the meeting's status (live while anyone is present, ended
when the last one leaves) all come from here. A participant whose WebSocket dropped stays
present, marked disconnected, for the reconnect grace period; only then do they leave.

Synchronous (ORM) functions: the consumer calls them through database_sync_to_async.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from rooms.models import Meeting, Participant

logger = logging.getLogger(__name__)


class PeerIdTaken(Exception):
    """Someone else is present with this peerId: a reconnect must come from the same person."""


@dataclass(frozen=True)
class Entry:
    participant: Participant
    # The same peer was already present (a reconnect): no newPeer, no duplicate tile.
    resumed: bool
    # The channel of a connection of that peer still open (a half-open socket, or the tab
    # reconnected before the server noticed the old socket go): it is to be closed.
    replaced_channel: str | None
    # Nobody was present before: the meeting has just gone live.
    first: bool


@dataclass(frozen=True)
class Departure:
    left: bool  # False: the peer had already left, or resumed on another connection
    last: bool  # nobody is present any more: the meeting has ended


def active(meeting_id: int) -> Any:
    return Participant.objects.filter(meeting_id=meeting_id, left_at__isnull=True)


def present_participants(meeting_id: int) -> list[Participant]:
    """Everyone present, disconnected ones inside their grace period included, in join order."""
    return list(active(meeting_id).select_related("user").order_by("joined_at", "pk"))


def enter(
    meeting: Meeting,
    *,
    peer_id: str,
    user: Any,
    guest_key: str,
    display_name: str,
    role: str,
    channel_name: str,
) -> Entry:
    """Make the peer present on this connection, resuming it if it is already present.

    The meeting row is locked for the check-and-insert so two tabs joining at once agree on
    who was first, and the partial unique constraint backs the one-row-per-peer rule.
    """
    with transaction.atomic():
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        existing = active(meeting.pk).filter(peer_id=peer_id).first()
        if existing is not None:
            if not _same_person(existing, user, guest_key):
                raise PeerIdTaken(peer_id)
            replaced = (
                existing.channel_name
                if existing.disconnected_at is None and existing.channel_name != channel_name
                else None
            )
            existing.channel_name = channel_name
            existing.display_name = display_name
            existing.role = role
            existing.disconnected_at = None
            existing.save(update_fields=["channel_name", "display_name", "role", "disconnected_at"])
            return Entry(existing, resumed=True, replaced_channel=replaced, first=False)
        first = not active(meeting.pk).exists()
        participant = Participant.objects.create(
            meeting=meeting,
            peer_id=peer_id,
            user=user,
            guest_key=guest_key,
            is_guest=user is None,
            display_name=display_name,
            role=role,
            channel_name=channel_name,
        )
    if first:
        _call_status(meeting, "mark_live")
    return Entry(participant, resumed=False, replaced_channel=None, first=first)


def check_peer_owner(meeting_id: int, peer_id: str, user: Any, guest_key: str) -> None:
    """PeerIdTaken when someone else is present with this peer id (checked before anything
    else happens for a join, the lobby knock included)."""
    existing = active(meeting_id).filter(peer_id=peer_id).first()
    if existing is not None and not _same_person(existing, user, guest_key):
        raise PeerIdTaken(peer_id)


def mark_disconnected(meeting_id: int, peer_id: str, channel_name: str) -> bool:
    """The peer's socket on this channel dropped; its grace period starts. False when another
    connection has already taken the peer over (nothing to wait for)."""
    return bool(
        active(meeting_id)
        .filter(peer_id=peer_id, channel_name=channel_name)
        .update(disconnected_at=timezone.now())
    )


def leave(
    meeting: Meeting,
    peer_id: str,
    *,
    channel_name: str | None = None,
    only_if_disconnected: bool = False,
) -> Departure:
    """The peer leaves. With `channel_name`, only if that connection still owns the peer; with
    `only_if_disconnected`, only if it did not reconnect meanwhile (the grace period's end)."""
    with transaction.atomic():
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        rows = active(meeting.pk).filter(peer_id=peer_id)
        if channel_name is not None:
            rows = rows.filter(channel_name=channel_name)
        if only_if_disconnected:
            rows = rows.filter(disconnected_at__isnull=False)
        left = bool(rows.update(left_at=timezone.now()))
        last = left and not active(meeting.pk).exists()
    if last:
        _call_status(meeting, "mark_ended")
    return Departure(left=left, last=last)


def expire_abandoned(meeting: Meeting, grace: float) -> list[str]:
    """Peers disconnected for well over the grace period: their server process died before
    their grace period ended. They leave now; returns their peer ids (for peerClosed)."""
    cutoff = timezone.now() - dt.timedelta(seconds=grace * 2 + 5)
    with transaction.atomic():
        rows = active(meeting.pk).filter(disconnected_at__lt=cutoff)
        peer_ids = list(rows.values_list("peer_id", flat=True))
        if peer_ids:
            rows.update(left_at=timezone.now())
    return peer_ids


def rename(meeting_id: int, peer_id: str, channel_name: str, display_name: str) -> bool:
    return bool(
        active(meeting_id)
        .filter(peer_id=peer_id, channel_name=channel_name)
        .update(display_name=display_name)
    )


def _same_person(participant: Participant, user: Any, guest_key: str) -> bool:
    if user is not None:
        return participant.user_id == user.pk
    return participant.user_id is None and bool(guest_key) and participant.guest_key == guest_key


def _call_status(meeting: Meeting, name: str) -> None:
    """The meetings domain owns the status (rooms.services.mark_live / mark_ended); presence
    only says when. A failure there must not undo the join or the leave that caused it."""
    try:
        from rooms import services

        getattr(services, name)(meeting)
    except Exception:
        logger.exception("%s failed for meeting %s", name, meeting.pk)
