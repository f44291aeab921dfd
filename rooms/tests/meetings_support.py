"""Helpers for the meetings tests: users, scheduling through the domain layer, eager Celery
(the real tasks, run in-process), and reading the .ics out of an email."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.utils import timezone
from icalendar import Calendar, Event

from meet.celery import app as celery_app
from rooms import services
from rooms.models import Meeting


def make_user(email: str, *, confirmed: bool = True, **extra: Any) -> Any:
    """A user whose address is confirmed (an allauth EmailAddress with verified=True), as after
    sign-up and verification: only a confirmed address makes its owner an invitee
    (rooms.access.verified_emails). confirmed=False: signed up, link not used yet."""
    user = get_user_model().objects.create_user(email=email, password=None, **extra)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=confirmed)
    return user


def schedule(
    host: Any,
    *,
    invitees: Sequence[str] = (),
    starts_in: timedelta = timedelta(days=1),
    starts_at: datetime | None = None,
    length: timedelta = timedelta(hours=1),
    **extra: Any,
) -> Meeting:
    start = starts_at or (timezone.now() + starts_in).replace(microsecond=0)
    details = services.MeetingDetails(
        title=extra.pop("title", "Planning"),
        starts_at=start,
        ends_at=start + length,
        invitee_emails=list(invitees),
        **extra,
    )
    return services.schedule_meeting(host, details)


def details_of(meeting: Meeting, **changes: Any) -> services.MeetingDetails:
    values: dict[str, Any] = {
        "title": meeting.title,
        "description": meeting.description,
        "starts_at": meeting.starts_at,
        "ends_at": meeting.ends_at,
        "time_zone": meeting.time_zone,
        "access_policy": meeting.access_policy,
        "recurrence": meeting.recurrence,
        "invitee_emails": list(meeting.invitations.values_list("email", flat=True)),
        "co_hosts": list(meeting.co_hosts.all()),
    }
    values.update(changes)
    return services.MeetingDetails(**values)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run enqueued tasks in-process (the real task functions, without a broker)."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        conf.task_always_eager, conf.task_eager_propagates = saved


def ics_of(message: EmailMessage) -> tuple[Calendar, Event, str]:
    """The calendar attached to an email, its one VEVENT and the attachment's MIME type."""
    attachments = [a for a in message.attachments if str(a[2]).startswith("text/calendar")]
    assert len(attachments) == 1, message.attachments
    _name, content, mimetype = attachments[0]
    calendar = Calendar.from_ical(content)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0], mimetype


def utc(event: Event, name: str) -> datetime:
    return event.decoded(name).astimezone(UTC)


def attendees(event: Event) -> set[str]:
    value = event.get("attendee") or []
    if not isinstance(value, list):
        value = [value]
    return {str(address).removeprefix("mailto:").lower() for address in value}


def mails_to(outbox: list[EmailMessage], email: str) -> list[EmailMessage]:
    return [message for message in outbox if email in message.to]
