"""Read-only queries about meetings, shared by views, feeds and tasks."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from rooms.access import Actor, invitations_of, signed_in
from rooms.models import Invitation, Meeting
from rooms.recurrence import next_occurrence

ACTIVE_STATUSES = (Meeting.Status.SCHEDULED, Meeting.Status.LIVE)


def meetings_involving(user: User) -> QuerySet[Meeting]:
    """Meetings the user hosts, co-hosts or is invited to (and has not declined)."""
    # Invited at a confirmed address only (rooms.access.verified_emails says why).
    invited = invitations_of(user).exclude(response=Invitation.Response.DECLINED)
    co_hosted = Meeting.co_hosts.through.objects.filter(user_id=user.pk)
    return Meeting.objects.filter(
        Q(host=user)
        | Q(pk__in=co_hosted.values("meeting_id"))
        | Q(pk__in=invited.values("meeting_id"))
    )


def upcoming_meetings_for(user: Actor, now: datetime | None = None) -> list[Meeting]:
    """Meetings the user hosts or is invited to that are on now or still to come, soonest
    first. Each carries `next_start` and `next_end` (its current or next occurrence)."""
    person = signed_in(user)
    if person is None:
        return []
    now = now or timezone.now()
    candidates = (
        meetings_involving(person)
        .filter(status__in=ACTIVE_STATUSES)
        .filter(~Q(recurrence="") | Q(ends_at__gt=now) | Q(ends_at__isnull=True))
        .select_related("host")
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
