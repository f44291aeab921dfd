"""Who is in each meeting's call: one Participant row per browser tab (peer) present.

The rows are the one truth every web process shares: the join response's peer list, the
admin's view of a live meeting and the meeting's status (live while anyone is present, ended
when the last one leaves) all come from here. A participant whose WebSocket dropped stays
present, marked disconnected, for the reconnect grace period; only then do they leave.

A web process can die without running any of that (killed, crashed, an exception out of its
consumer): its rows would stay present forever. So every open connection refreshes its row's
`last_seen_at` (`heartbeat`, every PRESENCE_HEARTBEAT_SECONDS) and a beat task sweeps out
present rows that nobody has refreshed for SILENT_HEARTBEATS periods, and disconnected rows
whose grace period ended with nobody left to end it (`abandoned_participants`,
`leave_abandoned`; rooms.signaling.departures does the rest of the departure).

Synchronous (ORM) functions: the consumer calls them through database_sync_to_async.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from rooms.models import Meeting, Participant

logger = logging.getLogger(__name__)

# A connected participant whose row has not been refreshed for this many heartbeat periods is
# taken for gone. Three, so that one slow or failed refresh (a busy event loop, a database
# blip) never sweeps out someone who is still there.
SILENT_HEARTBEATS = 3


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


class Liveness(enum.Enum):
    """What a connection's heartbeat found."""

    OWNED = "owned"  # refreshed: this connection still holds the peer
    TAKEN_OVER = "taken_over"  # the peer resumed on another connection
    GONE = "gone"  # the peer is not present any more (left, or swept out)


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
            # A resume is a sign of life: a sweep that chose this row before the reconnect
            # finds it no longer abandoned when it comes to leave it.
            existing.last_seen_at = timezone.now()
            existing.save(
                update_fields=[
                    "channel_name",
                    "display_name",
                    "role",
                    "disconnected_at",
                    "last_seen_at",
                ]
            )
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


def heartbeat(meeting_id: int, peer_id: str, channel_name: str) -> Liveness:
    """The connection on this channel is alive: one UPDATE by the partial unique index."""
    refreshed = (
        active(meeting_id)
        .filter(peer_id=peer_id, channel_name=channel_name, disconnected_at__isnull=True)
        .update(last_seen_at=timezone.now())
    )
    if refreshed:
        return Liveness.OWNED
    return Liveness.TAKEN_OVER if is_present(meeting_id, peer_id) else Liveness.GONE


def is_present(meeting_id: int, peer_id: str) -> bool:
    return bool(active(meeting_id).filter(peer_id=peer_id).exists())


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
    condition = Q(peer_id=peer_id)
    if channel_name is not None:
        condition &= Q(channel_name=channel_name)
    if only_if_disconnected:
        condition &= Q(disconnected_at__isnull=False)
    return _leave_where(meeting, lambda: condition)


def abandoned_participants(
    *, heartbeat_seconds: float, grace_seconds: float, limit: int = 1000
) -> list[Participant]:
    """Present participants, in any meeting, whose web process is gone: connected ones whose
    row nobody refreshed for SILENT_HEARTBEATS heartbeats, and disconnected ones well past
    their grace period (the process that would have ended it died). Oldest first, at most
    `limit` (the next sweep takes the rest)."""
    rows = Participant.objects.filter(left_at__isnull=True).filter(
        _abandoned(heartbeat_seconds=heartbeat_seconds, grace_seconds=grace_seconds)
    )
    return list(rows.select_related("meeting").order_by("pk")[:limit])


def leave_abandoned(
    participant: Participant, *, heartbeat_seconds: float, grace_seconds: float
) -> Departure:
    """The sweep's leave: only if the row is still present and abandoned when the meeting is
    locked. A reconnect meanwhile (enter refreshes last_seen_at and clears disconnected_at), a
    heartbeat, or another sweep that got there first makes it a no-op."""
    return _leave_where(
        participant.meeting,
        lambda: (
            Q(pk=participant.pk)
            & _abandoned(heartbeat_seconds=heartbeat_seconds, grace_seconds=grace_seconds)
        ),
    )


def expire_abandoned(meeting: Meeting, grace: float, heartbeat: float) -> list[str]:
    """At a join: this meeting's abandoned participants (as for the sweep) leave now, without
    waiting for it; returns their peer ids (for peerClosed). Under the meeting's lock, as
    enter takes it: a reconnect is either seen or not, never half-way."""
    with transaction.atomic():
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        rows = active(meeting.pk).filter(
            _abandoned(heartbeat_seconds=heartbeat, grace_seconds=grace)
        )
        peer_ids = list(rows.values_list("peer_id", flat=True))
        if peer_ids:
            rows.filter(peer_id__in=peer_ids).update(left_at=timezone.now())
    return peer_ids


def rename(meeting_id: int, peer_id: str, channel_name: str, display_name: str) -> bool:
    return bool(
        active(meeting_id)
        .filter(peer_id=peer_id, channel_name=channel_name)
        .update(display_name=display_name)
    )


def _abandoned(*, heartbeat_seconds: float, grace_seconds: float) -> Q:
    """Evaluated when the query runs, so a conditional update re-checks it against now."""
    now = timezone.now()
    silent_since = now - dt.timedelta(seconds=heartbeat_seconds * SILENT_HEARTBEATS)
    # Twice the grace period plus a margin: the process that saw the drop ends it on time if
    # it is alive; only then is it certain nobody will.
    unattended_since = now - dt.timedelta(seconds=grace_seconds * 2 + 5)
    connected_but_silent = Q(disconnected_at__isnull=True, last_seen_at__lt=silent_since)
    return connected_but_silent | Q(disconnected_at__lt=unattended_since)


def _leave_where(meeting: Meeting, condition: Callable[[], Q]) -> Departure:
    """The present rows of `meeting` matching `condition()` (built under the meeting's lock)
    leave; the meeting ends if nobody is left. The lock makes concurrent leaves agree on who
    was last, and the update's own WHERE makes a leave that lost a race a no-op."""
    with transaction.atomic():
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        left = bool(active(meeting.pk).filter(condition()).update(left_at=timezone.now()))
        last = left and not active(meeting.pk).exists()
    if last:
        _call_status(meeting, "mark_ended")
    return Departure(left=left, last=last)


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
