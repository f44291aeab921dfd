"""Breakout rooms (issue 16, item 3; the requests are rooms.signaling.breakout_requests).

A host or co-host (rooms.moderation.check_can_moderate) splits the call into 1 to 50 named
rooms. Each room is a child Meeting (kind BREAKOUT, `parent` the meeting), so it has its own
join code, its own SFU router, its own presence and its own kept chat; its page is its
meeting's page, which shows each room's chat under the room's name.

Who may enter a room (rooms.access.join_decision): the meeting's moderators (they may visit
any room) and the people assigned to it (BreakoutAssignment: a user, or a guest by key, so a
reconnect and a late join find the assignment again), while it is open. The meeting's
removals and lock apply in its rooms (rooms.moderation.is_removed, rooms.signaling.admission).

What each side hears (room events, rooms.events):

- `breakoutsOpened {rooms, endsAt, mode, main}` to the meeting's room: the rooms as opened.
- `moveTo {code, name}` ("move" mode) or `breakoutInvite {code, name}` ("ask" mode) to each
  assigned peer: the client leaves this room's call and joins the other's, without a reload.
  A later join of the main room by someone assigned to an open room gets it again
  (`pending_move`).
- `breakoutBroadcast {text, from}` to the main room and every open room.
- `breakoutsClosing {seconds, code, name}` to every room and the main room; once the
  countdown is over, `moveTo` the main room to each breakout room (`return_everyone`).

The synchronous functions use the ORM: async callers go through database_sync_to_async.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from chat import services as chat_services
from chat.models import Message
from rooms import access, moderation, presence
from rooms.access import Actor
from rooms.events import send_after_commit
from rooms.models import (
    MAX_BREAKOUT_NAME_LENGTH,
    MAX_BREAKOUT_ROOMS,
    BreakoutAssignment,
    Meeting,
    Participant,
)

BREAKOUTS_OPENED = "breakoutsOpened"
MOVE_TO = "moveTo"
BREAKOUT_INVITE = "breakoutInvite"
BREAKOUT_BROADCAST = "breakoutBroadcast"
BREAKOUTS_CLOSING = "breakoutsClosing"

MAX_BROADCAST_LENGTH = 500
MAX_TIMER_SECONDS = 24 * 3600
MAX_COUNTDOWN_SECONDS = 300
# The countdown when the rooms' own timer runs out (the host's "Close" says its own).
TIMER_COUNTDOWN_SECONDS = 30

Mode = Literal["move", "ask"]
RANDOM = "random"

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class BreakoutError(moderation.ModerationError):
    """The request cannot be carried out (`invalid_data`, `unknown_peer`, `unknown_room`,
    `breakouts_open`, `no_breakouts`): the error response's code and reason."""


class BreakoutDenied(moderation.ModerationDenied):
    """Refused for who the actor is (`not_moderator`)."""


@dataclass(frozen=True)
class Opened:
    """What open_breakouts did: the state everyone is told, and the rooms' timer (seconds,
    None without one) for the signaling to close them when it runs out."""

    state: dict[str, Any]
    timer_seconds: int | None
    room_codes: list[str]


# --- reading --------------------------------------------------------------------------------


def open_rooms(meeting: Meeting, now: datetime | None = None) -> QuerySet[Meeting]:
    """The meeting's breakout rooms that are open (their closing countdown may be running)."""
    now = now or timezone.now()
    return Meeting.objects.filter(parent=meeting, kind=Meeting.Kind.BREAKOUT).filter(
        Q(breakout_closes_at__isnull=True) | Q(breakout_closes_at__gt=now)
    )


def _room_dict(room: Meeting) -> dict[str, Any]:
    return {
        "code": room.code,
        "name": room.title,
        "assigned": [a.display_name for a in room.assignments.all()],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def call_state(meeting: Meeting) -> dict[str, Any]:
    """The breakout rooms as a join response carries them (docs/protocol.md, "Breakout
    rooms"): the main room, its open rooms, and `current`, the room this call is (None in the
    main room)."""
    main = access.governing_meeting(meeting)
    rooms = list(open_rooms(main).prefetch_related("assignments").order_by("pk"))
    first = rooms[0] if rooms else None
    return {
        "main": {"code": main.code, "name": main.title},
        "rooms": [_room_dict(room) for room in rooms],
        "endsAt": _iso(first.ends_at) if first is not None else None,
        "closesAt": _iso(first.breakout_closes_at) if first is not None else None,
        "mode": first.breakout_mode if first is not None else None,
        "current": {"code": meeting.code, "name": meeting.title} if meeting.is_breakout else None,
    }


def _assignment_of(main: Meeting, user: User | None, guest_key: str) -> BreakoutAssignment | None:
    """This person's assignment to one of the main meeting's open rooms, if any."""
    if user is None and not guest_key:
        return None
    assignments = BreakoutAssignment.objects.filter(
        breakout__in=open_rooms(main), breakout__breakout_closes_at__isnull=True
    ).select_related("breakout")
    if user is not None:
        return assignments.filter(user=user).first()
    return assignments.filter(user=None, guest_key=guest_key).first()


def pending_move(
    meeting: Meeting, user: User | None, guest_key: str
) -> tuple[str, dict[str, Any]] | None:
    """The notification (moveTo or breakoutInvite, and its data) that someone joining the
    main room now gets: they are assigned to a room that is open and not closing. None in a
    breakout room, and for everyone unassigned: they stay in the main room."""
    if meeting.is_breakout:
        return None
    assignment = _assignment_of(meeting, user, guest_key)
    if assignment is None:
        return None
    room = assignment.breakout
    event = BREAKOUT_INVITE if room.breakout_mode == Meeting.BreakoutMode.ASK else MOVE_TO
    return event, {"code": room.code, "name": room.title}


# --- checks ---------------------------------------------------------------------------------


def _main_meeting_for_moderator(actor: Actor, meeting: Meeting) -> tuple[User, Meeting]:
    """The main meeting (`meeting` or, from a breakout room, its parent) and the moderator."""
    main = access.governing_meeting(meeting)
    moderator, _role = moderation.check_moderator(actor, main)
    return moderator, main


def clean_names(names: list[str]) -> list[str]:
    if not 1 <= len(names) <= MAX_BREAKOUT_ROOMS:
        raise BreakoutError(f"Make 1 to {MAX_BREAKOUT_ROOMS} breakout rooms.", code="invalid_data")
    cleaned = [_CONTROL_CHARACTERS.sub(" ", name).strip() for name in names]
    if any(not name for name in cleaned):
        raise BreakoutError("A room's name must not be empty.", code="invalid_data")
    if any(len(name) > MAX_BREAKOUT_NAME_LENGTH for name in cleaned):
        raise BreakoutError(
            f"A room's name is limited to {MAX_BREAKOUT_NAME_LENGTH} characters.",
            code="invalid_data",
        )
    if len({name.casefold() for name in cleaned}) != len(cleaned):
        raise BreakoutError("Two rooms have the same name.", code="invalid_data")
    return cleaned


def _check_seconds(value: int | None, most: int, what: str) -> None:
    if value is not None and not 0 <= value <= most:
        raise BreakoutError(f"{what} must be 0 to {most} seconds.", code="invalid_data")


def _present(meeting: Meeting, peer_id: str) -> Participant:
    participant = presence.present_participant(meeting.pk, peer_id)
    if participant is None:
        raise BreakoutError("That participant is not in the call.", code="unknown_peer")
    return participant


def _random_assignments(main: Meeting, room_count: int) -> dict[str, int]:
    """Everyone in the main room but its moderators, shuffled and dealt round the rooms."""
    people = [
        p.peer_id
        for p in presence.present_participants(main.pk)
        if p.role not in access.MODERATOR_ROLES
    ]
    random.shuffle(people)
    return {peer_id: index % room_count for index, peer_id in enumerate(people)}


def _assign(main: Meeting, room: Meeting, participant: Participant) -> BreakoutAssignment:
    """Put the person in `room`, out of any other open room of the meeting."""
    person = (
        Q(user=participant.user)
        if participant.user_id
        else Q(user=None, guest_key=participant.guest_key)
    )
    BreakoutAssignment.objects.filter(person, breakout__in=open_rooms(main)).delete()
    return BreakoutAssignment.objects.create(
        meeting=main,
        breakout=room,
        user=participant.user,
        guest_key="" if participant.user_id else participant.guest_key,
        display_name=participant.display_name,
    )


def _send_there(origin: Meeting, peer_id: str, room: Meeting) -> None:
    event = BREAKOUT_INVITE if room.breakout_mode == Meeting.BreakoutMode.ASK else MOVE_TO
    send_after_commit(
        origin.code, event, {"code": room.code, "name": room.title}, target_peer_id=peer_id
    )


# --- requests -------------------------------------------------------------------------------


def open_breakouts(
    actor: Actor,
    meeting: Meeting,
    *,
    names: list[str],
    assignments: dict[str, int] | Literal["random"],
    timer_seconds: int | None = None,
    mode: str = Meeting.BreakoutMode.MOVE,
) -> Opened:
    """Open the rooms and send the assigned people there. `assignments` maps peer ids of
    people in the main room to room indexes (0-based), or is "random"."""
    moderator, main = _main_meeting_for_moderator(actor, meeting)
    cleaned = clean_names(names)
    if mode not in Meeting.BreakoutMode.values:
        raise BreakoutError('mode must be "move" or "ask".', code="invalid_data")
    _check_seconds(timer_seconds, MAX_TIMER_SECONDS, "The timer")
    if assignments == RANDOM:
        chosen = _random_assignments(main, len(cleaned))
    else:
        assert isinstance(assignments, dict)
        chosen = assignments
    if any(not 0 <= index < len(cleaned) for index in chosen.values()):
        raise BreakoutError("An assignment names a room that is not there.", code="unknown_room")
    now = timezone.now()
    with transaction.atomic():
        # One opening at a time per meeting: a second host's click waits and finds them open.
        Meeting.objects.select_for_update().filter(pk=main.pk).first()
        if open_rooms(main, now).exists():
            raise BreakoutError("Breakout rooms are open already.", code="breakouts_open")
        participants = [(_present(main, peer_id), index) for peer_id, index in chosen.items()]
        rooms = [
            Meeting.objects.create(
                title=name,
                host_id=main.host_id,
                kind=Meeting.Kind.BREAKOUT,
                parent=main,
                access_policy=main.access_policy,
                time_zone=main.time_zone,
                starts_at=now,
                ends_at=now + timedelta(seconds=timer_seconds) if timer_seconds else None,
                breakout_mode=mode,
            )
            for name in cleaned
        ]
        for participant, index in participants:
            _assign(main, rooms[index], participant)
        state = call_state(main)
        state["openedBy"] = moderator.display_name
        send_after_commit(main.code, BREAKOUTS_OPENED, state)
        for participant, index in participants:
            _send_there(main, participant.peer_id, rooms[index])
    return Opened(state, timer_seconds or None, [room.code for room in rooms])


def assign(actor: Actor, meeting: Meeting, *, peer_id: str, room_code: str) -> dict[str, Any]:
    """Put one person (in the main room or in one of its open rooms) in an open room, e.g. a
    late joiner; they are sent there as the rooms' mode says."""
    _moderator, main = _main_meeting_for_moderator(actor, meeting)
    with transaction.atomic():
        room = open_rooms(main).filter(code=room_code, breakout_closes_at__isnull=True).first()
        if room is None:
            raise BreakoutError("There is no such open breakout room.", code="unknown_room")
        found = None
        for where in [main, *open_rooms(main)]:
            participant = presence.present_participant(where.pk, peer_id)
            if participant is not None:
                found = (where, participant)
                break
        if found is None:
            raise BreakoutError("That participant is not in the call.", code="unknown_peer")
        where, participant = found
        _assign(main, room, participant)
        if where.pk != room.pk:
            _send_there(where, participant.peer_id, room)
        state = call_state(main)
        send_after_commit(main.code, BREAKOUTS_OPENED, state)
    return state


def broadcast(actor: Actor, meeting: Meeting, text: str) -> dict[str, Any]:
    """A message from a moderator to everyone, in the main room and in every open room."""
    moderator, main = _main_meeting_for_moderator(actor, meeting)
    message = _CONTROL_CHARACTERS.sub(" ", text).strip()
    if not message or len(message) > MAX_BROADCAST_LENGTH:
        raise BreakoutError(
            f"A message is 1 to {MAX_BROADCAST_LENGTH} characters.", code="invalid_data"
        )
    rooms = list(open_rooms(main))
    if not rooms:
        raise BreakoutError("No breakout rooms are open.", code="no_breakouts")
    data = {"text": message, "from": moderator.display_name}
    for room in [main, *rooms]:
        send_after_commit(room.code, BREAKOUT_BROADCAST, data)
    return data


def close_breakouts(actor: Actor, meeting: Meeting, countdown_seconds: int) -> dict[str, Any]:
    """Close every open room after `countdown_seconds`: everyone hears breakoutsClosing now,
    and the caller calls `return_everyone` when the countdown is over."""
    _moderator, main = _main_meeting_for_moderator(actor, meeting)
    _check_seconds(countdown_seconds, MAX_COUNTDOWN_SECONDS, "The countdown")
    return _close(main, list(open_rooms(main)), countdown_seconds)


def close_by_timer(main: Meeting, room_codes: list[str]) -> dict[str, Any] | None:
    """The rooms' timer ran out: close them, if these very rooms are still open and not
    closing already (the host may have closed them and opened others)."""
    rooms = list(open_rooms(main).filter(code__in=room_codes, breakout_closes_at__isnull=True))
    if not rooms:
        return None
    return _close(main, rooms, TIMER_COUNTDOWN_SECONDS)


def _close(main: Meeting, rooms: list[Meeting], countdown_seconds: int) -> dict[str, Any]:
    if not rooms:
        raise BreakoutError("No breakout rooms are open.", code="no_breakouts")
    closes_at = timezone.now() + timedelta(seconds=countdown_seconds)
    with transaction.atomic():
        # A countdown already running is not pushed back by a second "Close".
        Meeting.objects.filter(
            pk__in=[room.pk for room in rooms], breakout_closes_at__isnull=True
        ).update(breakout_closes_at=closes_at)
        data = {"seconds": countdown_seconds, "code": main.code, "name": main.title}
        for room in [main, *rooms]:
            send_after_commit(room.code, BREAKOUTS_CLOSING, data)
    return {"seconds": countdown_seconds, "rooms": [room.code for room in rooms]}


def return_everyone(main: Meeting, room_codes: list[str]) -> None:
    """The countdown is over: everyone still in these rooms goes back to the main room."""
    data = {"code": main.code, "name": main.title}
    for code in room_codes:
        send_after_commit(code, MOVE_TO, data)


# --- the meeting's page ---------------------------------------------------------------------


def rooms_of(meeting: Meeting) -> list[Meeting]:
    """Every breakout room the meeting ever had, oldest first (their chats are kept)."""
    return list(Meeting.objects.filter(parent=meeting, kind=Meeting.Kind.BREAKOUT).order_by("pk"))


@dataclass(frozen=True)
class RoomChat:
    """One breakout room's kept chat, as the meeting's page shows it under the room's name."""

    room: Meeting
    messages: list[Message]


def page_context(user: Actor, meeting: Meeting) -> dict[str, Any]:
    """What the meeting's page adds to show "rooms/_breakout_chats.html": each breakout room's
    chat, for whoever may read the meeting's own chat afterwards (chat.services decides)."""
    if meeting.is_breakout or not chat_services.can_read_transcript(user, meeting):
        return {"breakout_chats": []}
    return {
        "breakout_chats": [
            RoomChat(room, chat_services.history_for_transcript(room)) for room in rooms_of(meeting)
        ]
    }
