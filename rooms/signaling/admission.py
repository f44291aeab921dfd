"""Who may open the call's WebSocket, and as whom: the meeting by its code, the meetings
domain's access policy, removals and the lock. The consumer asks once at connect (an outsider
is closed with 4404 whether the meeting exists or not) and again, the whole question, at every
join: the meeting may have been cancelled, the invitation withdrawn, the person removed or
signed out, or the meeting locked in between.

Synchronous (ORM); called through database_sync_to_async.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import User
from rooms import access, moderation
from rooms.access import MODERATOR_ROLES, Actor, Role
from rooms.models import Meeting
from rooms.signaling import protocol

logger = logging.getLogger(__name__)

GUEST_KEY_SESSION_FIELD = "meet_guest_key"


@dataclass(frozen=True)
class Admission:
    meeting: Meeting
    role: Role
    # The policy lets this person ask to enter (a knock), not enter: join goes to the lobby.
    lobby: bool
    is_staff: bool = False
    # The socket's Django session, so that every join can check it still signs the user in.
    session: SessionBase | None = field(default=None, compare=False, repr=False)

    @property
    def may_moderate(self) -> bool:
        return self.role in MODERATOR_ROLES or self.is_staff


def find_meeting(code: str) -> Meeting | None:
    if not code or len(code) > 64:
        return None
    return Meeting.objects.filter(code=code).first()


def admit(
    meeting: Meeting | None, user: Actor, session: SessionBase | None = None
) -> Admission | None:
    """The person's admission to the meeting's call, or None when they may not even knock.

    `rooms.access.join_decision` is the one policy (pages, calendar and call alike); this
    only adds what the call needs on top: staff may moderate, moderators skip the lobby.
    """
    if meeting is None:
        return None
    person = access.signed_in(user)
    # A breakout room knows its guests by key (their assignment).
    guest_key = "" if person is not None else guest_key_for(session)
    decision = access.join_decision(person, meeting, guest_key)
    if not decision.allowed or decision.role is None:
        return None
    return Admission(
        meeting=meeting,
        role=decision.role,
        lobby=decision.needs_lobby and decision.role not in MODERATOR_ROLES,
        is_staff=person is not None and person.is_staff,
        session=session,
    )


@dataclass(frozen=True)
class Refusal:
    """Why a join is refused: the errorCode and reason the client gets, and `close`, the close
    code that follows the response when nothing this socket can do would help (None: the
    socket stays open, e.g. to wait in the lobby or to try again after an unlock)."""

    code: str
    reason: str
    close: int | None = None


def refusal_at_join(
    admission: Admission, user: Actor, guest_key: str, session: SessionBase | None = None
) -> Refusal | None:
    """Why a join must be refused now, else None. The whole decision is taken again against
    the meeting as it is now, because the socket may have been opened long ago: signed out
    since (`session`: the socket's Django session), cancelled or no longer allowed, ended,
    removed, locked, or in the lobby. Moderators pass the lock and the lobby."""
    meeting = Meeting.objects.filter(pk=admission.meeting.pk).first()
    person = access.signed_in(user)
    if person is not None and not session_still_signed_in(session, person):
        return Refusal(
            "signed_out",
            "You are signed out. Sign in again to join.",
            protocol.CLOSE_UNAUTHENTICATED,
        )
    decision = access.join_decision(person, meeting, guest_key) if meeting is not None else None
    if meeting is None or decision is None or not decision.allowed:
        # As at connect: a guest may be helped by signing in, anyone else cannot tell "gone"
        # from "not allowed".
        close = protocol.CLOSE_NOT_FOUND if person is not None else protocol.CLOSE_UNAUTHENTICATED
        return Refusal("not_allowed", "You may no longer join this meeting.", close)
    return standing_refusal(meeting, admission, person, guest_key)


def refusal_on_page(meeting: Meeting, user: Actor, session: SessionBase | None) -> Refusal | None:
    """What a join from the meeting's page would be refused for now, so that the join page
    shows that end state (removed, locked, ended) instead of a pre-join whose "Join now"
    cannot work. The same decision as refusal_at_join, taken with a fresh admission; no
    session check (the page's own request is as signed in as its session is)."""
    admission = admit(meeting, user, session)
    if admission is None:
        return Refusal("not_allowed", "You may no longer join this meeting.")
    person = access.signed_in(user)
    guest_key = "" if person is not None else guest_key_for(session)
    return standing_refusal(meeting, admission, person, guest_key)


def standing_refusal(
    meeting: Meeting, admission: Admission, person: User | None, guest_key: str
) -> Refusal | None:
    """The meeting's own reasons to refuse someone the policy lets in: ended (a one-off
    scheduled meeting), removed, locked, or the lobby. Moderators pass the lock and the lobby."""
    if access.only_moderators_may_restart(meeting) and not admission.may_moderate:
        # A one-off scheduled meeting that ended; an instant meeting's link works again.
        return Refusal("meeting_ended", "The meeting has ended.")
    if moderation.is_removed(meeting, user=person, guest_key=guest_key):
        return Refusal("removed", "You were removed from this meeting.")
    if admission.may_moderate:
        return None
    if meeting.is_breakout:
        # A breakout room follows its meeting's lock; those assigned to it were let in already
        # (access.join_decision let nobody else this far).
        governing = access.governing_meeting(meeting)
        admitted = access.is_assigned_to_breakout(meeting, person, guest_key)
        if (meeting.locked or governing.locked) and not admitted:
            return Refusal("meeting_locked", "The meeting is locked; nobody new can join.")
        return None
    admitted = moderation.is_admitted(meeting, user=person, guest_key=guest_key)
    if meeting.locked and not admitted:
        return Refusal("meeting_locked", "The meeting is locked; nobody new can join.")
    if admission.lobby and not admitted:
        return Refusal("lobby", "Ask to join and wait for the host to let you in.")
    return None


def session_still_signed_in(session: SessionBase | None, user: User) -> bool:
    """Whether the socket's Django session, read again from its store, still signs `user` in.

    The scope's session was loaded once, at the handshake; a sign-out in another tab flushes
    the stored one, and a password change makes its hash stale (as django.contrib.auth.get_user
    checks on every HTTP request).
    """
    if session is None or not session.session_key:
        return False
    # A fresh store of the configured engine (the scope's session is a lazy wrapper, loaded once).
    engine = import_module(settings.SESSION_ENGINE)
    stored: SessionBase = engine.SessionStore(session.session_key)
    if str(stored.get(SESSION_KEY, "")) != str(user.pk):
        return False
    current = User.objects.filter(pk=user.pk, is_active=True).first()
    session_hash = stored.get(HASH_SESSION_KEY)
    return (
        current is not None
        and isinstance(session_hash, str)
        and constant_time_compare(session_hash, current.get_session_auth_hash())
    )


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
