"""Who is in each meeting's call: one Participant row per browser tab (peer) present.

The rows are the one truth every web process shares: the join response's peer list, the
admin's view of a live meeting, moderation's "who is this peer" and the meeting's status (live
while anyone is present, ended when the last one leaves) all come from here, and nothing else
queries Participant for presence. A participant whose WebSocket dropped stays present, marked
disconnected, for the reconnect grace period; only then do they leave.

A leave has three halves: the row (synchronous, under the meeting's lock), the SFU peer and
"peerClosed" to the others (asynchronous, `finish_departure` / `announce_departures`).

A web process can die without running any of that (killed, crashed, an exception out of its
consumer): its rows would stay present forever. So every open connection refreshes its row's
`last_seen_at` (`heartbeat`, every PRESENCE_HEARTBEAT_SECONDS) and a beat task
(`sweep_abandoned`) makes present rows that nobody has refreshed for SILENT_HEARTBEATS periods,
and disconnected rows whose grace period ended with nobody left to end it, leave the same way.

Every row's stay is kept as attendance (rooms.attendance): opened by `enter` (continued by a
resume), closed with the row however it leaves, and the report queued when the call is over.

The synchronous functions use the ORM: async callers go through database_sync_to_async.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from rooms import attendance, events, services
from rooms.app_settings import app_settings
from rooms.models import Meeting, Participant
from rooms.sfu_gateway import SfuGateway, SfuUnavailable

logger = logging.getLogger(__name__)

# A connected participant whose row has not been refreshed for this many heartbeat periods is
# taken for gone. Three, so that one slow or failed refresh (a busy event loop, a database
# blip) never sweeps out someone who is still there.
SILENT_HEARTBEATS = 3


def grace_seconds() -> float:
    """How long a dropped peer stays present for a reconnect."""
    return app_settings.SIGNALING_RECONNECT_GRACE_SECONDS


def heartbeat_seconds() -> float:
    """How often an open connection refreshes its presence row (see `heartbeat`)."""
    return app_settings.PRESENCE_HEARTBEAT_SECONDS


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


# --- who is present -----------------------------------------------------------------------


def _present(meeting_id: int) -> QuerySet[Participant]:
    return Participant.objects.filter(meeting_id=meeting_id, left_at__isnull=True)


def present_participants(meeting_id: int) -> list[Participant]:
    """Everyone present, disconnected ones inside their grace period included, in join order."""
    return list(_present(meeting_id).select_related("user").order_by("joined_at", "pk"))


def present_participant(meeting_id: int, peer_id: str) -> Participant | None:
    """The participant present with this peer id (its user loaded), if any."""
    return _present(meeting_id).filter(peer_id=peer_id).select_related("user").first()


def present_participant_by_pk(meeting_id: int, pk: int) -> Participant | None:
    """A present participant by its row id (the admin's participants page names rows so)."""
    return _present(meeting_id).filter(pk=pk).first()


def present_guest_tabs(meeting_id: int, guest_key: str) -> set[str]:
    """The peer ids of a guest's tabs present in the call."""
    return set(
        _present(meeting_id)
        .filter(user=None, guest_key=guest_key)
        .values_list("peer_id", flat=True)
    )


def live_calls() -> list[tuple[Meeting, list[Participant]]]:
    """Every meeting with someone in its call now, each with who is present (join order,
    users loaded), the longest-running call first: the admin's "Live now" page
    (rooms/admin_live.py). A meeting whose call ended has nobody present, so is not listed."""
    rows = (
        Participant.objects.filter(left_at__isnull=True)
        .select_related("meeting", "meeting__host", "user")
        .order_by("joined_at", "pk")
    )
    calls: dict[int, tuple[Meeting, list[Participant]]] = {}
    for row in rows:
        calls.setdefault(row.meeting_id, (row.meeting, []))[1].append(row)
    return list(calls.values())


def is_present(meeting_id: int, peer_id: str) -> bool:
    return bool(_present(meeting_id).filter(peer_id=peer_id).exists())


def was_in_the_call(user: User, meeting: Meeting) -> bool:
    """Whether this signed-in user ever joined the meeting's call (rows stay after a leave:
    they are the meeting's attendance)."""
    return Participant.objects.filter(meeting=meeting, user=user).exists()


def check_peer_owner(meeting_id: int, peer_id: str, user: User | None, guest_key: str) -> None:
    """PeerIdTaken when someone else is present with this peer id (checked before anything
    else happens for a join, the lobby knock included)."""
    existing = _present(meeting_id).filter(peer_id=peer_id).first()
    if existing is not None and not _same_person(existing, user, guest_key):
        raise PeerIdTaken(peer_id)


# --- joining and staying ------------------------------------------------------------------


def enter(
    meeting: Meeting,
    *,
    peer_id: str,
    user: User | None,
    guest_key: str,
    display_name: str,
    role: str,
    channel_name: str,
    user_agent: str = "",
) -> Entry:
    """Make the peer present on this connection, resuming it if it is already present.

    The meeting row is locked for the check-and-insert so two tabs joining at once agree on
    who was first, and the partial unique constraint backs the one-row-per-peer rule. The
    attendance record (rooms.attendance) opens, or continues on a resume, with the row.
    """
    with transaction.atomic():
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        existing = _present(meeting.pk).filter(peer_id=peer_id).first()
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
            attendance.resume_session(existing, user_agent)
            return Entry(existing, resumed=True, replaced_channel=replaced, first=False)
        first = not _present(meeting.pk).exists()
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
        attendance.open_session(participant, user_agent)
    if first:
        _change_call_status(meeting, services.mark_live)
    return Entry(participant, resumed=False, replaced_channel=None, first=first)


def heartbeat(meeting_id: int, peer_id: str, channel_name: str) -> Liveness:
    """The connection on this channel is alive: one UPDATE by the partial unique index."""
    refreshed = (
        _present(meeting_id)
        .filter(peer_id=peer_id, channel_name=channel_name, disconnected_at__isnull=True)
        .update(last_seen_at=timezone.now())
    )
    if refreshed:
        return Liveness.OWNED
    return Liveness.TAKEN_OVER if is_present(meeting_id, peer_id) else Liveness.GONE


def rename(meeting_id: int, peer_id: str, channel_name: str, display_name: str) -> bool:
    renamed = bool(
        _present(meeting_id)
        .filter(peer_id=peer_id, channel_name=channel_name)
        .update(display_name=display_name)
    )
    if renamed:
        attendance.renamed(meeting_id, peer_id, display_name)
    return renamed


def mark_disconnected(meeting_id: int, peer_id: str, channel_name: str) -> bool:
    """The peer's socket on this channel dropped; its grace period starts. False when another
    connection has already taken the peer over (nothing to wait for)."""
    return bool(
        _present(meeting_id)
        .filter(peer_id=peer_id, channel_name=channel_name)
        .update(disconnected_at=timezone.now())
    )


# --- leaving: the rows --------------------------------------------------------------------


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
    return _leave_where(meeting, lambda: condition, silent_after=None)


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
        silent_after=_silent_after(heartbeat_seconds),
    )


def expire_abandoned(meeting: Meeting, grace: float, heartbeat: float) -> list[str]:
    """At a join: this meeting's abandoned participants (as for the sweep) leave now, without
    waiting for it; returns their peer ids (for peerClosed). Under the meeting's lock, as
    enter takes it: a reconnect is either seen or not, never half-way."""
    with transaction.atomic():
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        rows = _present(meeting.pk).filter(
            _abandoned(heartbeat_seconds=heartbeat, grace_seconds=grace)
        )
        peer_ids = list(rows.values_list("peer_id", flat=True))
        if peer_ids:
            rows.filter(peer_id__in=peer_ids).update(left_at=timezone.now())
            attendance.close_departed(meeting.pk, silent_after=_silent_after(heartbeat))
    return peer_ids


def _abandoned(*, heartbeat_seconds: float, grace_seconds: float) -> Q:
    """Evaluated when the query runs, so a conditional update re-checks it against now."""
    now = timezone.now()
    silent_since = now - dt.timedelta(seconds=heartbeat_seconds * SILENT_HEARTBEATS)
    # Twice the grace period plus a margin: the process that saw the drop ends it on time if
    # it is alive; only then is it certain nobody will.
    unattended_since = now - dt.timedelta(seconds=grace_seconds * 2 + 5)
    connected_but_silent = Q(disconnected_at__isnull=True, last_seen_at__lt=silent_since)
    return connected_but_silent | Q(disconnected_at__lt=unattended_since)


def _leave_where(
    meeting: Meeting, condition: Callable[[], Q], *, silent_after: dt.timedelta | None
) -> Departure:
    """The present rows of `meeting` matching `condition()` (built under the meeting's lock)
    leave; the meeting ends if nobody is left. The lock makes concurrent leaves agree on who
    was last, and the update's own WHERE makes a leave that lost a race a no-op.
    `silent_after`: set for rows let go as abandoned (their attendance ends at their last
    heartbeat)."""
    closed: set[dt.datetime] = set()
    with transaction.atomic():
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        left = bool(_present(meeting.pk).filter(condition()).update(left_at=timezone.now()))
        last = left and not _present(meeting.pk).exists()
        if left:
            # The attendance record closes with the rows (rooms.attendance).
            closed = attendance.close_departed(meeting.pk, silent_after=silent_after)
    if last:
        _change_call_status(meeting, services.mark_ended)
        try:
            if not meeting.is_breakout:  # a breakout room's people are its meeting's
                attendance.call_over(meeting, closed)  # the report e-mail, once the call is over
        except Exception:
            logger.exception("queueing the attendance report failed for meeting %s", meeting.pk)
    return Departure(left=left, last=last)


def _silent_after(heartbeat: float) -> dt.timedelta:
    """How long a connection is silent before it is taken for gone (see `_abandoned`)."""
    return dt.timedelta(seconds=heartbeat * SILENT_HEARTBEATS)


def _same_person(participant: Participant, user: User | None, guest_key: str) -> bool:
    if user is not None:
        return participant.user_id == user.pk
    return participant.user_id is None and bool(guest_key) and participant.guest_key == guest_key


def _change_call_status(meeting: Meeting, change: Callable[[Meeting], Meeting]) -> None:
    """The meetings domain owns the status (rooms.services.mark_live / mark_ended); presence
    only says when. A failure there must not undo the join or the leave that caused it."""
    try:
        change(meeting)
    except Exception:
        logger.exception("%s failed for meeting %s", change.__name__, meeting.pk)


# --- leaving: the SFU peer and the others --------------------------------------------------

_background: set[asyncio.Task[Any]] = set()


def schedule_grace_expiry(
    meeting: Meeting, gateway: SfuGateway, peer_id: str, channel_name: str, grace: float
) -> None:
    """The peer's socket on `channel_name` dropped: it leaves after `grace` seconds unless it
    resumed meanwhile on any connection of any process (the leave's conditional update)."""

    async def expire() -> None:
        await asyncio.sleep(grace)
        await finish_departure(
            meeting, gateway, peer_id, channel_name=channel_name, only_if_disconnected=True
        )

    task = asyncio.ensure_future(expire())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def finish_departure(
    meeting: Meeting,
    gateway: SfuGateway,
    peer_id: str,
    *,
    channel_name: str,
    only_if_disconnected: bool = False,
) -> bool:
    """The peer leaves if this connection still owns it: the row, the SFU peer, peerClosed
    to the others (and the meeting ends with its last participant)."""
    try:
        departure = await database_sync_to_async(leave)(
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
    """After the row has let the peer go: its SFU peer is closed and the others are told."""
    try:
        await gateway.leave(peer_id)
    except SfuUnavailable as exc:
        # The node closes peers whose room it lost anyway; presence is what the others see.
        logger.warning("SFU leave failed for %s in %s: %s", peer_id, code, exc)
    except Exception:
        logger.exception("SFU leave failed for %s in %s", peer_id, code)
    await events.broadcast(code, "peerClosed", {"peerId": peer_id})


async def clear_abandoned(meeting: Meeting, gateway: SfuGateway) -> list[str]:
    """At a join: this meeting's abandoned participants leave now, as with the sweep — the row,
    the SFU peer, peerClosed to the others — so the newcomer neither sees nor receives them.
    Each only once: `expire_abandoned` lets a row go under the meeting's lock, and only the
    caller whose update did it closes the SFU peer."""
    gone = await database_sync_to_async(expire_abandoned)(
        meeting, grace_seconds(), heartbeat_seconds()
    )
    for peer_id in gone:
        await _close_unless_back(meeting.pk, meeting.code, gateway, peer_id)
    return gone


def sweep_abandoned() -> list[Participant]:
    """Synchronous (the beat task): every participant whose web process is gone leaves, as
    with a leave: the row (the meeting ends with its last participant), the SFU peer,
    peerClosed to the others. Returns those who left.

    Safe to run twice at once and against reconnects: each leave is a conditional update, so
    only one sweep makes a given participant leave, and one that reconnected meanwhile stays.
    """
    candidates = abandoned_participants(
        heartbeat_seconds=heartbeat_seconds(), grace_seconds=grace_seconds()
    )
    departed = leave_all_abandoned(candidates)
    if departed:
        async_to_sync(announce_departures)(departed)
    return departed


def leave_all_abandoned(candidates: list[Participant]) -> list[Participant]:
    """The rows' half of the sweep: those of `candidates` still abandoned now leave."""
    departed: list[Participant] = []
    for participant in candidates:
        try:
            departure = leave_abandoned(
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
            _close_unless_back(
                participant.meeting_id,
                participant.meeting.code,
                gateways[participant.meeting.code],
                participant.peer_id,
            )
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


async def _close_unless_back(meeting_id: int, code: str, gateway: SfuGateway, peer_id: str) -> None:
    """close_peer for a participant let go as abandoned, unless it has joined again since."""
    try:
        back = await database_sync_to_async(is_present)(meeting_id, peer_id)
    except Exception:
        logger.exception("presence check failed for %s in %s", peer_id, code)
        back = False
    if back:
        # The peer joined again (a new row) after its row was let go: its join has replaced
        # the SFU peer already, and a peerClosed now would remove the tile its newPeer showed.
        logger.info("%s rejoined %s before its departure went out", peer_id, code)
        return
    await close_peer(code, gateway, peer_id)
