"""Celery tasks of the meetings domain: calendar emails, the reminder beat and the presence
sweep."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.utils import timezone

from rooms import emails, reminders
from rooms.models import Invitation, Meeting
from rooms.signaling import departures

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(smtplib.SMTPException, ConnectionError),
    retry_backoff=True,
    max_retries=5,
)
def send_calendar_email(meeting_id: int, email: str, kind: str) -> bool:
    """One invitation, update or cancellation (with its .ics) to one person. Sends the
    meeting as it is when the task runs, so a late task never sends a stale SEQUENCE."""
    meeting = Meeting.objects.select_related("host").filter(pk=meeting_id).first()
    if meeting is None or kind not in emails.KINDS:
        logger.info("calendar email %s for missing meeting %s skipped", kind, meeting_id)
        return False
    if kind in ("invitation", "update") and meeting.is_cancelled:
        return False
    if kind in ("invitation", "update") and not meeting.invitations.filter(email=email).exists():
        return False  # taken off the list since; they got (or get) a cancellation
    emails.calendar_email(meeting, email, kind).send()
    method = emails.KINDS[kind][0]
    Invitation.objects.filter(meeting=meeting, email=email).update(
        last_sent_sequence=meeting.sequence, last_sent_method=method, last_sent_at=timezone.now()
    )
    return True


@shared_task
def send_due_reminders() -> int:
    """Run by beat every minute (CELERY_BEAT_SCHEDULE in settings)."""
    return reminders.send_due_reminders()


@shared_task
def sweep_abandoned_participants() -> int:
    """Run by beat every 30 s (CELERY_BEAT_SCHEDULE): participants whose web process died
    (no heartbeat for three PRESENCE_HEARTBEAT_SECONDS, or a grace period nobody ended) leave
    their call, as with a leave. Returns how many left."""
    return len(departures.sweep_abandoned())
