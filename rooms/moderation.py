"""Moderation of a meeting: mute, remove and re-admit, lock, who may ask to join (guests),
the lobby, end for everyone.

The signaling consumer (in the call) and the admin actions both call these functions; neither
holds any moderation logic of its own. Each function checks first that the actor may moderate the
meeting (its host, a co-host, or staff), changes the database, and after the commit sends the
room event of contract 3 (rooms.events.send_after_commit), which every participant's
connection hears and relays to its client.

Participants are named two ways: by `peer_id` (the call's id for one browser tab, known to the
consumer) to reach them now, and by `user` or `guest_key` (a stable, non-secret id of a guest's
browser session, never the raw session key) to remember a removal or an admission past the tab.

Every action that happens is recorded in the audit log (rooms.audit.record) inside its own
transaction. `origin` says which layer asked: the signaling consumer passes "call", the admin
"admin"; it defaults to "call", where the moderation controls live.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from rooms import access, attendance, audit, presence, services
from rooms.access import Actor
from rooms.app_settings import app_settings
from rooms.audit import Action, Origin
from rooms.events import MODERATORS, send_after_commit
from rooms.models import LobbyRequest, Meeting, Participant, Removal

logger = logging.getLogger(__name__)

MAX_DISPLAY_NAME_LENGTH = 100
MAX_PEER_ID_LENGTH = 64
# A waiting person who keeps changing their knock (a looping client renaming itself) tells the
# moderators at most this many times per window; the request itself always holds the latest.
KNOCK_NOTICES_PER_WINDOW = 3
KNOCK_NOTICE_WINDOW_SECONDS = 10


class ModerationDenied(PermissionDenied):
    """The actor may not do this. `code` is the consumer's errorCode, `message` its reason."""

    def __init__(self, message: str, code: str = "not_moderator") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class ModerationError(ValidationError):
    """The request cannot be carried out as asked (unknown participant, already decided, ...).
    Django's ValidationError already carries `message` and `code`."""


# --- who may moderate ---------------------------------------------------------------------


def moderator_role(actor: Actor, meeting: Meeting) -> str | None:
    """'host', 'cohost' or 'staff' when the actor may moderate the meeting, else None."""
    person = access.signed_in(actor)
    if person is None:
        return None
    role = access.call_role(person, meeting)
    if role in access.MODERATOR_ROLES:
        return str(role)
    if person.is_staff:
        return "staff"
    return None


def check_can_moderate(actor: Actor, meeting: Meeting) -> str:
    """The actor's moderator role; ModerationDenied (code not_moderator) for anyone else."""
    role = moderator_role(actor, meeting)
    if role is None:
        raise ModerationDenied("Only the host, a co-host or staff can do this.")
    return role


def check_moderator(actor: Actor, meeting: Meeting) -> tuple[User, str]:
    """The moderating user and their role (check_can_moderate refuses anyone else)."""
    role = check_can_moderate(actor, meeting)
    moderator = access.signed_in(actor)
    assert moderator is not None  # a moderator role is only ever given to a signed-in user
    return moderator, role


def _check_peer_id(peer_id: object) -> str:
    if not isinstance(peer_id, str) or not 0 < len(peer_id) <= MAX_PEER_ID_LENGTH:
        raise ModerationError("peerId must be a participant's id.", code="invalid_peer_id")
    return peer_id


def _check_identity(user: User | None, guest_key: str) -> None:
    if (user is None) == (not guest_key):
        raise ModerationError(
            "Name the participant by exactly one of a user or a guest key.",
            code="invalid_participant",
        )


def _check_not_ended(meeting: Meeting) -> None:
    if meeting.is_ended:
        raise ModerationError("The meeting has ended.", code="meeting_ended")


def _present_participant(meeting: Meeting, peer_id: object) -> Participant:
    """The participant in the call now with this peer id (rooms.presence knows)."""
    participant = presence.present_participant(meeting.pk, _check_peer_id(peer_id))
    if participant is None:
        raise ModerationError("That participant is not in the call.", code="not_in_call")
    return participant


# --- mute ---------------------------------------------------------------------------------


def mute_participant(
    actor: Actor, meeting: Meeting, peer_id: str, *, origin: Origin | str = Origin.CALL
) -> None:
    """Ask the participant's consumer to pause their microphone ("muteRequested", which the
    consumer turns into pausing the mic producer and notifying "mutedByHost"). Nothing is stored:
    the participant may unmute themselves, as in Google Meet."""
    check_can_moderate(actor, meeting)
    participant = _present_participant(meeting, peer_id)
    with transaction.atomic():
        audit.record(
            Action.MUTE,
            meeting=meeting,
            actor=actor,
            origin=origin,
            target=audit.participant_target(participant.user, participant.display_name),
            details={"peer_id": participant.peer_id},
        )
        send_after_commit(meeting.code, "muteRequested", {}, target_peer_id=participant.peer_id)


# --- remove and re-admit ------------------------------------------------------------------


def remove_participant(
    actor: Actor,
    meeting: Meeting,
    *,
    peer_id: str | None = None,
    user: User | None = None,
    guest_key: str = "",
    origin: Origin | str = Origin.CALL,
) -> Removal:
    """Remove a participant from the meeting for good: they are told ("removed"; the consumer
    then closes the WebSocket with 4403) and `is_removed` refuses them at every later join until
    a moderator re-admits them (`readmit`, or admitting their knock in the lobby).

    Name them by `peer_id` (someone in the call now: who they are is read from presence), or by
    `user` or `guest_key` (someone who may not be in the call). A signed-in user is removed with
    all their tabs (the event targets the user); a guest by their tab.
    """
    moderator, role = check_moderator(actor, meeting)
    display_name = ""
    if peer_id is not None and user is None and not guest_key:
        participant = _present_participant(meeting, peer_id)
        user, guest_key = participant.user, "" if participant.user_id else participant.guest_key
        display_name = participant.display_name
    _check_identity(user, guest_key)
    if user is not None:
        _check_removable(moderator, role, user, meeting)
        display_name = display_name or user.display_name
    # A removal from a breakout room is a removal from its meeting, and one from the meeting
    # reaches the person in whichever of its rooms they are (rooms.breakouts).
    governing = access.governing_meeting(meeting)
    with transaction.atomic():
        removal, _ = Removal.objects.update_or_create(
            meeting=governing,
            user=user,
            guest_key=guest_key,
            defaults={
                "removed_by": moderator,
                "removed_at": timezone.now(),
                "display_name": display_name[:MAX_DISPLAY_NAME_LENGTH],
            },
        )
        audit.record(
            Action.REMOVE,
            meeting=governing,
            actor=moderator,
            origin=origin,
            target=audit.participant_target(user, removal.display_name),
            details={"peer_id": peer_id or "", "guest_key": guest_key},
        )
        rooms = [governing, *Meeting.objects.filter(parent=governing, kind=Meeting.Kind.BREAKOUT)]
        for room in rooms:
            if user is not None:
                send_after_commit(room.code, "removed", {}, target_user_id=user.pk)
                continue
            # Guests have no user id to target: each of their tabs in the call, by peer id.
            tabs = presence.present_guest_tabs(room.pk, guest_key)
            if peer_id is not None and room.pk == meeting.pk:
                tabs.add(peer_id)
            for tab in sorted(tabs):
                send_after_commit(room.code, "removed", {}, target_peer_id=tab)
    return removal


def _check_removable(actor: User, actor_role: str, user: User, meeting: Meeting) -> None:
    if user.pk == meeting.host_id:
        raise ModerationDenied(
            "The host cannot be removed from their meeting.", "cannot_remove_host"
        )
    if user.pk == actor.pk:
        raise ModerationDenied("Leave the call instead of removing yourself.", "cannot_remove_self")
    if actor_role == "cohost" and moderator_role(user, meeting) == "cohost":
        raise ModerationDenied("Only the host can remove a co-host.", "cannot_remove_cohost")


def is_removed(meeting: Meeting, *, user: User | None = None, guest_key: str = "") -> bool:
    """Whether this participant was removed from the meeting and not re-admitted since. The
    consumer refuses the join (errorCode "removed") when it is."""
    user = access.signed_in(user)
    # A breakout room has its meeting's removals (rooms.breakouts).
    meetings = [meeting.pk] if meeting.parent_id is None else [meeting.pk, meeting.parent_id]
    removals = Removal.objects.filter(meeting_id__in=meetings)
    if user is not None:
        return removals.filter(user=user).exists()
    if guest_key:
        return removals.filter(user=None, guest_key=guest_key).exists()
    return False


def readmit(
    actor: Actor,
    meeting: Meeting,
    *,
    user: User | None = None,
    guest_key: str = "",
    origin: Origin | str = Origin.CALL,
) -> bool:
    """Lift a removal; True when there was one (and only then is it recorded)."""
    check_can_moderate(actor, meeting)
    _check_identity(user, guest_key)
    with transaction.atomic():
        removal = (
            Removal.objects.select_for_update()
            .filter(meeting=meeting, user=user, guest_key=guest_key if user is None else "")
            .first()
        )
        if removal is None:
            return False
        # The removal row goes: its name for the person is read before it does.
        target = audit.participant_target(user, removal.display_name)
        removal.delete()
        audit.record(
            Action.READMIT,
            meeting=meeting,
            actor=actor,
            origin=origin,
            target=target,
            details={"guest_key": guest_key},
        )
    return True


# --- lock ---------------------------------------------------------------------------------


def set_locked(
    actor: Actor, meeting: Meeting, locked: bool, *, origin: Origin | str = Origin.CALL
) -> Meeting:
    """Lock (nobody new enters; the consumer checks `meeting.locked` at join for everyone but
    moderators) or unlock the meeting. Sends "meetingLocked" {locked} when it changes."""
    check_can_moderate(actor, meeting)
    if not isinstance(locked, bool):
        raise ModerationError("locked must be true or false.", code="invalid_locked")
    _check_not_ended(meeting)
    with transaction.atomic():
        current = Meeting.objects.select_for_update().get(pk=meeting.pk)
        if current.locked != locked:
            current.locked = locked
            current.save(update_fields=["locked", "updated_at"])
            audit.record(
                Action.LOCK if locked else Action.UNLOCK,
                meeting=current,
                actor=actor,
                origin=origin,
            )
            send_after_commit(meeting.code, "meetingLocked", {"locked": locked})
    meeting.locked = locked
    return meeting


# --- who may ask to join -------------------------------------------------------------------


def guests_may_ask(meeting: Meeting) -> bool:
    """Whether people without an account may ask to join ("Anyone with the link can ask to
    join"): the meeting's access policy (rooms.access.join_decision) sends them to the lobby."""
    return meeting.access_policy == Meeting.Access.GUESTS


def set_guest_access(
    actor: Actor, meeting: Meeting, allowed: bool, *, origin: Origin | str = Origin.CALL
) -> Meeting:
    """The host control "Let guests ask to join", as in Meet's host controls: the meeting's
    access policy becomes "guests with the link" (signed-in people enter, guests ask to join)
    or "anyone signed in with the link". A meeting for invited people only keeps its policy
    (ModerationError `invitees_only`: change it on the meeting's edit page), so that the switch
    never opens it to everyone signed in. Turning guests off turns away the guests waiting now
    ("lobbyDenied"): the policy would refuse their join anyway. Sends "guestAccessChanged"
    {allowed} to the room when it changes."""
    moderator, _role = check_moderator(actor, meeting)
    if not isinstance(allowed, bool):
        raise ModerationError("allowed must be true or false.", code="invalid_allowed")
    _check_not_ended(meeting)
    policy = Meeting.Access.GUESTS if allowed else Meeting.Access.SIGNED_IN
    with transaction.atomic():
        current = Meeting.objects.select_for_update().get(pk=meeting.pk)
        if current.access_policy == Meeting.Access.INVITEES:
            raise ModerationError(
                "This meeting is for invited people only; change who may join on its page.",
                code="invitees_only",
            )
        if current.access_policy != policy:
            current.access_policy = policy
            current.save(update_fields=["access_policy", "updated_at"])
            send_after_commit(meeting.code, "guestAccessChanged", {"allowed": allowed})
            turned_away = 0
            if not allowed:
                waiting_guests = current.lobby_requests.select_for_update().filter(
                    state=LobbyRequest.State.WAITING, user=None
                )
                for request in waiting_guests:
                    _settle(request, LobbyRequest.State.DENIED, "lobbyDenied", moderator)
                    turned_away += 1
            audit.record(
                Action.GUESTS_ALLOWED if allowed else Action.GUESTS_REFUSED,
                meeting=current,
                actor=moderator,
                origin=origin,
                details={"waiting_guests_denied": turned_away},
            )
    meeting.access_policy = policy
    return meeting


# --- lobby --------------------------------------------------------------------------------


def lobby_request_dict(request: LobbyRequest) -> dict[str, Any]:
    """A lobby request as clients see it (guest keys stay on the server)."""
    return {
        "requestId": request.pk,
        "displayName": request.display_name,
        "peerId": request.peer_id,
        "isGuest": request.user_id is None,
        "state": request.state,
        "requestedAt": request.requested_at.isoformat().replace("+00:00", "Z"),
    }


def request_entry(
    meeting: Meeting,
    *,
    display_name: str,
    peer_id: str,
    user: User | None = None,
    guest_key: str = "",
) -> LobbyRequest:
    """Someone not let in directly "asks to join": a waiting request the moderators are told of
        ("lobbyKnock" {request} to hosts and co-hosts). Asking again while waiting updates the same
        request (a reconnecting tab, a corrected name) and tells the moderators again, but only when
        something changed, and at most KNOCK_NOTICES_PER_WINDOW times per window, so a looping
    client cannot flood the host with knocks."""
    _check_identity(user, guest_key)
    _check_peer_id(peer_id)
    if not isinstance(display_name, str) or not display_name.strip():
        raise ModerationError("Enter your name to ask to join.", code="invalid_display_name")
    name = display_name.strip()[:MAX_DISPLAY_NAME_LENGTH]
    identity = {"user": user} if user is not None else {"user": None, "guest_key": guest_key}
    with transaction.atomic():
        current = Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        # An instant (or recurring) meeting's ended call was only its latest: a guest may ask
        # to join the next one. A one-off scheduled meeting that ended is over.
        if current is None or access.only_moderators_may_restart(current):
            raise ModerationError("The meeting has ended.", code="meeting_ended")
        request = (
            LobbyRequest.objects.filter(
                meeting=meeting, state=LobbyRequest.State.WAITING, **identity
            )
            .order_by("-pk")
            .first()
        )
        if request is None:
            request = LobbyRequest.objects.create(
                meeting=meeting, display_name=name, peer_id=peer_id, **identity
            )
        elif (request.display_name, request.peer_id) != (name, peer_id):
            request.display_name = name
            request.peer_id = peer_id
            request.save(update_fields=["display_name", "peer_id"])
        else:
            return request  # the same knock again (a retried join): the moderators know already
        if _may_notify_knock(meeting, request):
            send_after_commit(
                meeting.code,
                "lobbyKnock",
                {"request": lobby_request_dict(request)},
                audience=MODERATORS,
            )
    return request


def _may_notify_knock(meeting: Meeting, request: LobbyRequest) -> bool:
    """Whether this request's knock may reach the moderators now (KNOCK_NOTICES_PER_WINDOW per
    window). Counted in the shared cache, so every web process counts alike; the key names the
    request by more than its id, which a database may hand out again after a rollback.

    The window starts at the first notice and the count expires with it (Redis's INCR keeps
    the key's expiry): a burst never gets two windows' worth by straddling a clock boundary."""
    created = request.requested_at.timestamp()
    key = f"rooms:knock-notices:{meeting.code}:{request.pk}:{created}"
    cache.add(key, 0, timeout=KNOCK_NOTICE_WINDOW_SECONDS)
    return cache.incr(key) <= KNOCK_NOTICES_PER_WINDOW


def lobby_request_in_meeting(meeting: Meeting, request_id: object) -> LobbyRequest:
    """The meeting's lobby request with this id (clients name them by requestId)."""
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        raise ModerationError("requestId must be a lobby request's id.", code="invalid_request_id")
    request = LobbyRequest.objects.filter(meeting=meeting, pk=request_id).first()
    if request is None:
        raise ModerationError("There is no such request to join.", code="request_not_found")
    return request


def waiting_requests(meeting: Meeting) -> list[LobbyRequest]:
    """Who is waiting now, oldest first (a moderator joining late, or reloading, is shown
    them: requests are kept in the database, not in any connection)."""
    expire_stale_requests(meeting)
    return list(meeting.lobby_requests.filter(state=LobbyRequest.State.WAITING).order_by("pk"))


def admit(
    actor: Actor, request: LobbyRequest, *, origin: Origin | str = Origin.CALL
) -> LobbyRequest:
    """Let a waiting person in: "lobbyAdmitted" to their waiting peer, after which their join
    succeeds (`is_admitted`); an earlier removal is lifted. Moderators get "lobbyResolved"."""
    return _decide(actor, request, LobbyRequest.State.ADMITTED, "lobbyAdmitted", origin)


def deny(
    actor: Actor, request: LobbyRequest, *, origin: Origin | str = Origin.CALL
) -> LobbyRequest:
    """Turn a waiting person away: "lobbyDenied" to their waiting peer. They may ask again."""
    return _decide(actor, request, LobbyRequest.State.DENIED, "lobbyDenied", origin)


def _decide(
    actor: Actor, request: LobbyRequest, state: str, event: str, origin: Origin | str
) -> LobbyRequest:
    meeting = request.meeting
    moderator, _role = check_moderator(actor, meeting)
    with transaction.atomic():
        current = LobbyRequest.objects.select_for_update().get(pk=request.pk)
        if current.state == state:
            return current  # a second click, or two moderators agreeing: nothing new to say
        if current.state != LobbyRequest.State.WAITING:
            raise ModerationError(
                f"This request was already {current.get_state_display().lower()}.",
                code="already_decided",
            )
        if state == LobbyRequest.State.ADMITTED:
            Removal.objects.filter(
                meeting=meeting, user=current.user, guest_key=current.guest_key
            ).delete()
        _settle(current, state, event, moderator)
        audit.record(
            Action.LOBBY_ADMIT if state == LobbyRequest.State.ADMITTED else Action.LOBBY_DENY,
            meeting=meeting,
            actor=moderator,
            origin=origin,
            target=audit.lobby_request_target(current),
            details={"request_id": current.pk, "peer_id": current.peer_id},
        )
    return current


def _settle(request: LobbyRequest, state: str, event: str | None, by: User | None) -> None:
    """Move a waiting request (locked by the caller) to its final `state`; after the commit the
    waiting peer gets `event` {requestId} (None: nothing, it withdrew the request itself) and
    the moderators "lobbyResolved" {request}, which takes the knock off their notice and list."""
    request.state = state
    request.decided_by = by
    request.decided_at = timezone.now()
    request.save(update_fields=["state", "decided_by", "decided_at"])
    code = request.meeting.code
    if event is not None:
        send_after_commit(code, event, {"requestId": request.pk}, target_peer_id=request.peer_id)
    send_after_commit(
        code, "lobbyResolved", {"request": lobby_request_dict(request)}, audience=MODERATORS
    )


def _waiting_request_of_peer(
    meeting: Meeting, request_id: int, peer_id: str
) -> LobbyRequest | None:
    """The waiting request `request_id`, locked, if the tab `peer_id` is the one waiting on it
    (a second tab of the same person that knocked since holds it now)."""
    return (
        LobbyRequest.objects.select_for_update()
        .filter(meeting=meeting, pk=request_id, peer_id=peer_id, state=LobbyRequest.State.WAITING)
        .first()
    )


def withdraw_entry(meeting: Meeting, request_id: int, *, peer_id: str) -> LobbyRequest | None:
    """The person waiting withdraws their request ("Cancel", or their waiting tab closed): it
    is cancelled and the moderators' notice of it goes ("lobbyResolved"). No actor: the
    consumer names the request its own connection filed (by id and the tab's peer id). None
    when it was no longer waiting (decided, timed out, or taken over by another tab)."""
    with transaction.atomic():
        request = _waiting_request_of_peer(meeting, request_id, peer_id)
        if request is None:
            return None
        _settle(request, LobbyRequest.State.CANCELLED, None, None)
    return request


def expire_entry(meeting: Meeting, request_id: int, *, peer_id: str) -> LobbyRequest | None:
    """Nobody answered within ROOMS_LOBBY_WAIT_SECONDS: the request times out, the waiting peer
    gets "lobbyTimedOut" {requestId} and the moderators "lobbyResolved". None when it was no
    longer waiting."""
    with transaction.atomic():
        request = _waiting_request_of_peer(meeting, request_id, peer_id)
        if request is None:
            return None
        _settle(request, LobbyRequest.State.EXPIRED, "lobbyTimedOut", None)
    return request


def lobby_wait_seconds() -> float:
    return app_settings.LOBBY_WAIT_SECONDS


def expire_stale_requests(meeting: Meeting) -> int:
    """Waiting requests older than the wait (plus a minute) whose connection is gone without
    withdrawing them (its web process died): timed out, without events (nobody waits on them).
    Called before the waiting list is read, so a host never sees such a knock."""
    cutoff = timezone.now() - timedelta(seconds=lobby_wait_seconds() + 60)
    return meeting.lobby_requests.filter(
        state=LobbyRequest.State.WAITING, requested_at__lt=cutoff
    ).update(state=LobbyRequest.State.EXPIRED, decided_at=timezone.now())


def is_admitted(meeting: Meeting, *, user: User | None = None, guest_key: str = "") -> bool:
    """Whether a moderator admitted this person from the lobby (their join then goes ahead even
    though the access policy sent them to the lobby). Removal wins over admission: check
    `is_removed` as well."""
    admitted = LobbyRequest.objects.filter(meeting=meeting, state=LobbyRequest.State.ADMITTED)
    user = access.signed_in(user)
    if user is not None:
        return admitted.filter(user=user).exists()
    if guest_key:
        return admitted.filter(user=None, guest_key=guest_key).exists()
    return False


# --- end ----------------------------------------------------------------------------------


def end_meeting(actor: Actor, meeting: Meeting, *, origin: Origin | str = Origin.CALL) -> Meeting:
    """End the call for everyone: "meetingEnded" to the room (each consumer notifies its client
    and closes with 4410), waiting lobby requests denied, and the status moved on by the
    meetings domain (rooms.services.mark_ended: ended, or back to scheduled for a recurring
    meeting's next occurrence). Only a live meeting has a call to end: for any other, nothing
    happens."""
    moderator, _role = check_moderator(actor, meeting)
    with transaction.atomic():
        current = Meeting.objects.select_for_update().get(pk=meeting.pk)
        if current.status != Meeting.Status.LIVE:
            return current
        current = services.mark_ended(current, with_breakout_rooms=True)
        # Its open breakout rooms close with it, and everyone in them is told (rooms.breakouts).
        now = timezone.now()
        open_rooms = Meeting.objects.filter(parent=current, kind=Meeting.Kind.BREAKOUT).filter(
            Q(breakout_closes_at__isnull=True) | Q(breakout_closes_at__gt=now)
        )
        for room in open_rooms:
            send_after_commit(room.code, "meetingEnded", {})
        open_rooms.update(breakout_closes_at=now)
        # Everyone's attendance ends now, tabs whose web process died included; the report
        # goes out (rooms.attendance).
        attendance.end_for_all(current)
        waiting = list(
            current.lobby_requests.select_for_update().filter(state=LobbyRequest.State.WAITING)
        )
        current.lobby_requests.filter(pk__in=[r.pk for r in waiting]).update(
            state=LobbyRequest.State.DENIED, decided_by=moderator, decided_at=timezone.now()
        )
        audit.record(
            Action.END_FOR_ALL,
            meeting=current,
            actor=moderator,
            origin=origin,
            details={"waiting_denied": len(waiting)},
        )
        send_after_commit(current.code, "meetingEnded", {})
        # Those asking to join are not in the call: each waiting tab is told the meeting ended
        # (its consumer then closes with 4410), so nobody is left asking an empty room.
        for request in waiting:
            send_after_commit(current.code, "meetingEnded", {}, target_peer_id=request.peer_id)
    meeting.status, meeting.ended_at = current.status, current.ended_at
    return current
