"""Reminder emails N minutes before each occurrence (N per user, default 10).

Beat runs `send_due_reminders` every minute. A reminder is claimed by inserting its
ReminderDelivery row before the email goes out; the unique constraint (meeting, occurrence,
email) makes a retried task, an overlapping run or a second beat find it taken and skip it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from rooms.emails import reminder_email
from rooms.models import Invitation, Meeting, ReminderDelivery
from rooms.recurrence import occurrences_between

logger = logging.getLogger(__name__)

DEFAULT_REMINDER_MINUTES = 10
MAX_REMINDER_MINUTES = 24 * 60
LOOKAHEAD = timedelta(minutes=MAX_REMINDER_MINUTES)


@dataclass(frozen=True)
class DueReminder:
    meeting: Meeting
    occurrence_start: datetime
    email: str


def _reminder_minutes(emails: set[str]) -> dict[str, int]:
    users = (
        get_user_model()
        .objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=emails)
        .values_list("email_lower", "reminder_minutes")
    )
    return dict(users)


def due_reminders(now: datetime) -> list[DueReminder]:
    """Every (meeting, occurrence, recipient) whose reminder time has come and whose
    occurrence has not started. Cancelled and ended meetings get none, nor instant ones (they
    have no time of their own); nor do invitees who declined."""
    candidates = (
        Meeting.objects.filter(status__in=[Meeting.Status.SCHEDULED, Meeting.Status.LIVE])
        .exclude(kind=Meeting.Kind.INSTANT)
        .filter(starts_at__lte=now + LOOKAHEAD)
        .filter(~Q(recurrence="") | Q(starts_at__gt=now))
        .select_related("host")
        .prefetch_related("invitations", "cancelled_occurrences")
    )
    due: list[DueReminder] = []
    for meeting in candidates:
        starts = occurrences_between(meeting, now + timedelta(microseconds=1), now + LOOKAHEAD)
        if not starts:
            continue
        recipients = {meeting.host.email.lower()} | {
            invitation.email
            for invitation in meeting.invitations.all()
            if invitation.response != Invitation.Response.DECLINED
        }
        minutes = _reminder_minutes(recipients)
        for start in starts:
            for email in sorted(recipients):
                lead = minutes.get(email, DEFAULT_REMINDER_MINUTES)
                if lead > 0 and start - timedelta(minutes=lead) <= now:
                    due.append(DueReminder(meeting, start, email))
    return due


def send_due_reminders(now: datetime | None = None) -> int:
    """Send what is due; the number sent. Safe to run any number of times at once."""
    now = now or timezone.now()
    sent = 0
    for reminder in due_reminders(now):
        try:
            with transaction.atomic():
                delivery = ReminderDelivery.objects.create(
                    meeting=reminder.meeting,
                    occurrence_start=reminder.occurrence_start,
                    email=reminder.email,
                )
        except IntegrityError:
            continue  # claimed by an earlier or concurrent run
        try:
            reminder_email(reminder.meeting, reminder.email, reminder.occurrence_start).send()
        except Exception:
            # Give the claim back so that the next beat tries again; the others go on.
            delivery.delete()
            logger.exception("reminder to %s for %s failed", reminder.email, reminder.meeting.code)
            continue
        ReminderDelivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now())
        sent += 1
    return sent
