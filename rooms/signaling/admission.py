"""Who may open the call's WebSocket, and as whom: the meeting by its code, the meetings
domain's access policy, removals and the lock. The consumer asks once at connect (an outsider
is closed with 4404 whether the meeting exists or not) and again at every join, because a
removal or a lock may have happened in between.

Synchronous (ORM); called through database_sync_to_async.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.sessions.backends.base import SessionBase
from django.utils.crypto import salted_hmac

from rooms import access, moderation
from rooms.access import MODERATOR_ROLES, Actor, Role
from rooms.models import Meeting

logger = logging.getLogger(__name__)

GUEST_KEY_SESSION_FIELD = "meet_guest_key"


@dataclass(frozen=True)
class Admission:
    meeting: Meeting
    role: Role
    # The policy lets this person ask to enter (a knock), not enter: join goes to the lobby.
    lobby: bool
    is_staff: bool = False

    @property
    def may_moderate(self) -> bool:
        return self.role in MODERATOR_ROLES or self.is_staff


def find_meeting(code: str) -> Meeting | None:
    if not code or len(code) > 64:
        return None
    return Meeting.objects.filter(code=code).first()


def admit(meeting: Meeting | None, user: Actor) -> Admission | None:
    """The person's admission to the meeting's call, or None when they may not even knock.

    `rooms.access.join_decision` is the one policy (pages, calendar and call alike); this
    only adds what the call needs on top: staff may moderate, moderators skip the lobby.
    """
    if meeting is None:
        return None
    person = access.signed_in(user)
    decision = access.join_decision(person, meeting)
    if not decision.allowed or decision.role is None:
        return None
    return Admission(
        meeting=meeting,
        role=decision.role,
        lobby=decision.needs_lobby and decision.role not in MODERATOR_ROLES,
        is_staff=person is not None and person.is_staff,
    )


def refusal_at_join(admission: Admission, user: Actor, guest_key: str) -> tuple[str, str] | None:
    """(errorCode, reason) when a join must be refused now, else None: removed, locked, in the
    lobby, or ended. Moderators pass the lock and the lobby."""
    meeting = Meeting.objects.get(pk=admission.meeting.pk)
    person = access.signed_in(user)
    if meeting.is_ended and not admission.may_moderate:
        return "meeting_ended", "The meeting has ended."
    if moderation.is_removed(meeting, user=person, guest_key=guest_key):
        return "removed", "You were removed from this meeting."
    if admission.may_moderate:
        return None
    admitted = moderation.is_admitted(meeting, user=person, guest_key=guest_key)
    if meeting.locked and not admitted:
        return "meeting_locked", "The meeting is locked; nobody new can join."
    if admission.lobby and not admitted:
        return "lobby", "Ask to join and wait for the host to let you in."
    return None


def guest_key_for(session: SessionBase | None) -> str:
    """A guest's stable, non-secret id: kept in their session, derived from it the first
    time. Empty when the browser has no session at all (the guest then cannot resume after a
    reconnect; the meeting page gives every guest a session first)."""
    if session is None:
        return ""
    stored = session.get(GUEST_KEY_SESSION_FIELD)
    if isinstance(stored, str) and stored:
        return stored
    session_key = session.session_key
    if not session_key:
        return ""
    return salted_hmac("rooms.signaling.guest_key", session_key).hexdigest()[:32]
