"""Read-only queries about meetings, shared by views, feeds and tasks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from allauth.account.models import EmailAddress
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce, Lower
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from rooms.access import Actor, can_view_details, invitations_of, signed_in
from rooms.models import Invitation, Meeting, Participant
from rooms.recurrence import next_occurrence, previous_occurrence

ACTIVE_STATUSES = (Meeting.Status.SCHEDULED, Meeting.Status.LIVE)


def meetings_involving(user: User) -> QuerySet[Meeting]:
    """Meetings the user hosts, co-hosts or is invited to (and has not declined)."""
    # Invited at a confirmed address only (rooms.access.verified_emails says why).
    invited = invitations_of(user).exclude(response=Invitation.Response.DECLINED)
    co_hosted = Meeting.co_hosts.through.objects.filter(user_id=user.pk)
    # A breakout room (rooms.breakouts) shows on its meeting's page, not as a meeting.
    return Meeting.objects.filter(
        Q(host=user)
        | Q(pk__in=co_hosted.values("meeting_id"))
        | Q(pk__in=invited.values("meeting_id"))
    ).exclude(kind=Meeting.Kind.BREAKOUT)


def upcoming_meetings_for(user: Actor, now: datetime | None = None) -> list[Meeting]:
    """Meetings the user hosts or is invited to that are on now or still to come, soonest
    first. Each carries `next_start` and `next_end` (its current or next occurrence). An
    instant meeting has no time of its own: it is listed only while its call is on."""
    person = signed_in(user)
    if person is None:
        return []
    now = now or timezone.now()
    candidates = (
        meetings_involving(person)
        .filter(status__in=ACTIVE_STATUSES)
        .exclude(kind=Meeting.Kind.INSTANT, status=Meeting.Status.SCHEDULED)
        .filter(~Q(recurrence="") | Q(ends_at__gt=now) | Q(ends_at__isnull=True))
        .select_related("host")
        .prefetch_related("cancelled_occurrences")
    )
    upcoming: list[Meeting] = []
    for meeting in candidates:
        start = next_occurrence(meeting, now)
        if start is None:
            continue
        # Set on the instance for the templates; Meeting has no such fields (hence the ignores).
        meeting.next_start = start  # type: ignore[attr-defined]
        meeting.next_end = start + meeting.duration  # type: ignore[attr-defined]
        upcoming.append(meeting)
    upcoming.sort(key=lambda meeting: (meeting.next_start, meeting.pk))  # type: ignore[attr-defined]
    return upcoming


PAST_MEETINGS_LIMIT = 10
_PAST_CANDIDATES = 200  # read at most this many rows to find the latest PAST_MEETINGS_LIMIT


def past_meetings_for(
    user: Actor, now: datetime | None = None, limit: int = PAST_MEETINGS_LIMIT
) -> list[Meeting]:
    """The home page's "Past meetings": meetings the user hosts, co-hosts, is invited to or was
    in the call of, that took place, most recent first, at most `limit`. Each carries
    `held_at`: an instant meeting's last call's end, a scheduled one's start, a repeating
    one's latest occurrence that is over (occurrences cancelled one by one do not count).
    A meeting cancelled before any call took place is left out, and so is one live now (the
    upcoming list has it)."""
    person = signed_in(user)
    if person is None:
        return []
    now = now or timezone.now()
    attended = Participant.objects.filter(user_id=person.pk).values("meeting_id")
    candidates = (
        Meeting.objects.filter(
            Q(pk__in=meetings_involving(person).values("pk")) | Q(pk__in=attended)
        )
        .exclude(status=Meeting.Status.LIVE)
        .exclude(kind=Meeting.Kind.BREAKOUT)
        .exclude(status=Meeting.Status.CANCELLED, ended_at__isnull=True)
        .filter(Q(ended_at__isnull=False) | Q(kind=Meeting.Kind.SCHEDULED, starts_at__lt=now))
        .select_related("host")
        .prefetch_related("cancelled_occurrences")
        .order_by(Coalesce("ended_at", "starts_at").desc(), "-pk")[:_PAST_CANDIDATES]
    )
    past: list[Meeting] = []
    for meeting in candidates:
        held_at = _held_at(meeting, now)
        if held_at is None:
            continue
        meeting.held_at = held_at  # type: ignore[attr-defined]
        past.append(meeting)
    past.sort(key=lambda meeting: (meeting.held_at, meeting.pk), reverse=True)  # type: ignore[attr-defined]
    past = past[:limit]
    for meeting in past:
        # Someone who was only in the call (not host or invited) reads its chat on its own
        # page; the meeting's page (with the chat under it) is for the others.
        meeting.past_url = (  # type: ignore[attr-defined]
            meeting.get_absolute_url()
            if can_view_details(person, meeting)
            else reverse("chat:transcript", args=[meeting.code])
        )
    return past


def _held_at(meeting: Meeting, now: datetime) -> datetime | None:
    if meeting.is_instant:
        return meeting.ended_at
    if meeting.recurrence:
        # The latest occurrence that is over; a call held later than all (a host restarting
        # it) counts by its end.
        last = previous_occurrence(meeting, now - meeting.duration)
        return last or meeting.ended_at
    if meeting.status == Meeting.Status.ENDED or meeting.starts_at + meeting.duration <= now:
        return meeting.starts_at
    return None


@dataclass(frozen=True)
class Person:
    """Someone on a meeting's list: `name` is their full name ("" when they have none, or no
    account), `email` the address they are known by there."""

    name: str
    email: str
    invitation: Invitation | None = None


def names_by_email(emails: Iterable[str]) -> dict[str, str]:
    """The full names of the accounts behind these addresses, keyed by the lower-cased address.
    Only confirmed addresses count (as for invitations, rooms.access.verified_emails): anyone
    can sign up with any address and must not put a name of their choosing on someone else's.
    Addresses without an account, or whose account has no name, are left out."""
    wanted = {email.lower() for email in emails}
    if not wanted:
        return {}
    rows = (
        EmailAddress.objects.filter(verified=True)
        .annotate(email_lower=Lower("email"))
        .filter(email_lower__in=wanted)
        .select_related("user")
    )
    return {row.email_lower: name for row in rows if (name := row.user.get_full_name())}


def meeting_people(meeting: Meeting) -> tuple[Person, list[Person], list[Person]]:
    """The host, the co-hosts and the invitees of a meeting, for its page: by name where the
    person has one, with the address beside it."""
    invitations = list(meeting.invitations.all())
    names = names_by_email(invitation.email for invitation in invitations)
    host = Person(meeting.host.get_full_name(), meeting.host.email)
    co_hosts = [Person(user.get_full_name(), user.email) for user in meeting.co_hosts.all()]
    invitees = [
        Person(names.get(invitation.email.lower(), ""), invitation.email, invitation)
        for invitation in invitations
    ]
    return host, co_hosts, invitees
