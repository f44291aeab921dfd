"""Who may see a meeting and who may enter it: one policy for pages, the calendar and the
call's signaling consumer (rooms.signaling.admission reads `join_decision`), and the one place
a person's role in a meeting is worked out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from allauth.account.models import EmailAddress
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import User
from rooms.models import BreakoutAssignment, Invitation, Meeting, Participant

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

# Whoever acts: a signed-in user, Django's anonymous user, or None (no user at all: a guest
# known only by a guest key, a Celery task).
Actor: TypeAlias = "User | AnonymousUser | None"

Role = Participant.Role
MODERATOR_ROLES = frozenset({Role.HOST, Role.COHOST})


@dataclass(frozen=True)
class Decision:
    """`allowed`: may open the pre-join page (and knock or join). `needs_lobby`: must wait for
    a host to admit them. `role`: who they are in the call. `reason`: why, for logs and for the
    page (sign_in, not_invited, cancelled, expired, ok, lobby)."""

    allowed: bool
    needs_lobby: bool
    reason: str
    role: Role | None = None


def signed_in(user: Actor) -> User | None:
    """The signed-in user, or None for the anonymous user and for no user."""
    if user is None or not user.is_authenticated:
        return None
    assert isinstance(user, User)
    return user


MAX_CALL_NAME_LENGTH = 100


def call_name(user: User | None, chosen: str) -> str:
    """The name a person goes by in the call and its chat. A signed-in person's is their
    account's name, as in Meet: nobody can take the host's name, and a name is changed in the
    account's preferences, not in the call. A guest's is the one they typed; guests are marked
    as guests wherever their name is shown."""
    if user is None:
        return chosen
    return user.display_name.strip()[:MAX_CALL_NAME_LENGTH] or chosen


def require_signed_in(user: Actor) -> User:
    """The signed-in user behind a view that @login_required guards (PermissionDenied for
    anyone else, should such a view ever lose its guard)."""
    person = signed_in(user)
    if person is None:
        raise PermissionDenied("Sign in first.")
    return person


def governing_meeting(meeting: Meeting) -> Meeting:
    """The meeting whose host, co-hosts, removals and lock rule this one: a breakout room's
    parent (rooms.breakouts), else the meeting itself."""
    if meeting.is_breakout and meeting.parent_id is not None:
        parent = meeting.parent
        assert parent is not None
        return parent
    return meeting


def is_cohost(user: User, meeting: Meeting) -> bool:
    # A breakout room has the co-hosts of its meeting (it has none of its own).
    return governing_meeting(meeting).co_hosts.filter(pk=user.pk).exists()


def verified_emails(user: User) -> QuerySet[EmailAddress, str]:
    """The addresses the user has confirmed (allauth's EmailAddress rows with verified=True,
    primary or not), lower-cased, as a subquery. An invitation is matched to an account by
    address only: anyone can sign up with any address, so an address counts only once its
    owner has shown they read its mail (with verification optional, unconfirmed accounts
    exist and must not get an invitee's access)."""
    return (
        EmailAddress.objects.filter(user_id=user.pk, verified=True)
        .annotate(email_lower=Lower("email"))
        .values_list("email_lower", flat=True)
    )


def invitations_of(user: User) -> QuerySet[Invitation]:
    """Every invitation addressed to one of the user's confirmed addresses, whatever the
    letter case on either side (as the iexact match it replaces)."""
    return Invitation.objects.alias(email_lower=Lower("email")).filter(
        email_lower__in=verified_emails(user)
    )


def is_invited(user: User, meeting: Meeting) -> bool:
    return invitations_of(user).filter(meeting=meeting).exists()


def call_role(user: Actor, meeting: Meeting) -> Role:
    """The person's role in the meeting, whether or not they may enter."""
    person = signed_in(user)
    if person is None:
        return Role.GUEST
    if meeting.host_id == person.pk:
        return Role.HOST
    if is_cohost(person, meeting):
        return Role.COHOST
    return Role.PARTICIPANT


def can_manage(user: Actor, meeting: Meeting) -> bool:
    """Edit and cancel: the host only."""
    person = signed_in(user)
    return person is not None and meeting.host_id == person.pk


def only_moderators_may_restart(meeting: Meeting) -> bool:
    """A one-off scheduled meeting whose call ended is over: only its host or a co-host may
    start it again. An instant meeting's ended call was only its latest one: its link lets
    everyone the access policy lets in start the next (rooms.services.mark_ended)."""
    # A breakout room's call ends whenever its last person leaves; it stays open to those
    # assigned until its meeting's host closes the rooms (rooms.breakouts).
    return meeting.is_ended and not meeting.is_instant and not meeting.is_breakout


def may_start_next_call(user: Actor, meeting: Meeting) -> bool:
    """Whether, once the call now on is ended (the last one out, "End meeting for all"), this
    person may start the next one from the link: anyone let in for an instant or a recurring
    meeting (services.mark_ended keeps their link working), only moderators and staff for a
    one-off scheduled meeting (only_moderators_may_restart). The call's end screen offers
    "Rejoin" only then."""
    if meeting.is_instant or meeting.is_recurring:
        return True
    if call_role(user, meeting) in MODERATOR_ROLES:
        return True
    person = signed_in(user)
    return person is not None and person.is_staff


def can_enter_call(user: Actor, meeting: Meeting) -> bool:
    """Whether the meeting's state lets the person into its call now (the lock and the lobby
    aside, which the call itself applies): the pages offer "Join" only then."""
    decision = join_decision(user, meeting)
    if not decision.allowed:
        return False
    if not only_moderators_may_restart(meeting) or decision.role in MODERATOR_ROLES:
        return True
    person = signed_in(user)
    return person is not None and person.is_staff  # staff moderate every call


def can_view_details(user: Actor, meeting: Meeting) -> bool:
    """The detail page and the .ics: host, co-hosts, invitees and staff."""
    person = signed_in(user)
    if person is None:
        return False
    return (
        meeting.host_id == person.pk
        or person.is_staff
        or is_cohost(person, meeting)
        or is_invited(person, meeting)
    )


def is_assigned_to_breakout(breakout: Meeting, user: User | None, guest_key: str) -> bool:
    """Whether this person (a signed-in user, or a guest by key) is assigned to the room."""
    assignments = BreakoutAssignment.objects.filter(breakout=breakout)
    if user is not None:
        return assignments.filter(user=user).exists()
    return bool(guest_key) and assignments.filter(user=None, guest_key=guest_key).exists()


def breakout_is_open(breakout: Meeting) -> bool:
    """Open, or closing with its countdown still running (people are moved back at its end)."""
    closes_at = breakout.breakout_closes_at
    return closes_at is None or closes_at > timezone.now()


def _breakout_decision(person: User | None, breakout: Meeting, guest_key: str) -> Decision:
    """A breakout room lets in whom its meeting lets in, and of those only the meeting's
    moderators (who may visit any room) and the people assigned to it, while it is open."""
    parent = governing_meeting(breakout)
    parent_decision = join_decision(person, parent, guest_key)
    if not parent_decision.allowed or parent_decision.role is None:
        return parent_decision
    if not breakout_is_open(breakout):
        return Decision(False, False, "breakout_closed")
    role = parent_decision.role
    if role in MODERATOR_ROLES or (person is not None and person.is_staff):
        return Decision(True, False, "ok", role)
    if is_assigned_to_breakout(breakout, person, guest_key):
        # A guest assigned here was admitted to the meeting already: no second lobby.
        return Decision(True, False, "ok", role)
    return Decision(False, False, "not_assigned")


def join_decision(user: Actor, meeting: Meeting, guest_key: str = "") -> Decision:
    """May this person (None or an anonymous user: a guest) enter the meeting's call?

    A cancelled meeting and an instant meeting whose link expired refuse everyone, the host
    too. An ended meeting is not refused here: an instant meeting's link works after its call
    ended (as Meet's do); a one-off scheduled meeting that ended only lets a host or co-host
    start it again, which the call checks at join (only_moderators_may_restart).

    A breakout room (`guest_key` names a guest there) follows its meeting's decision and then
    its own assignments (_breakout_decision)."""
    if meeting.is_breakout:
        return _breakout_decision(signed_in(user), meeting, guest_key)
    if meeting.status == Meeting.Status.CANCELLED:
        return Decision(False, False, "cancelled")
    if meeting.is_expired:
        return Decision(False, False, "expired")
    person = signed_in(user)
    role = call_role(person, meeting)
    if role in MODERATOR_ROLES:
        return Decision(True, False, "ok", role)
    if person is not None:
        if (
            meeting.access_policy != Meeting.Access.INVITEES
            or person.is_staff
            or is_invited(person, meeting)
        ):
            return Decision(True, False, "ok", role)
        return Decision(False, False, "not_invited")
    if meeting.access_policy == Meeting.Access.GUESTS:
        return Decision(True, True, "lobby", role)
    return Decision(False, False, "sign_in")
