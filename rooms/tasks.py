"""Celery tasks of the meetings domain: calendar emails (rooms.emails.send_calendar_email) and
attendance reports (rooms.attendance.send_attendance_report), imported here so that the
worker's autodiscovery registers them, the reminder beat, the presence sweep and the expiry of
unused instant-meeting links."""

from __future__ import annotations

from celery import shared_task

from rooms import presence, reminders, services
from rooms.attendance import send_attendance_report
from rooms.emails import send_calendar_email

__all__ = [
    "expire_unused_meeting_links",
    "send_attendance_report",
    "send_calendar_email",
    "send_due_reminders",
    "sweep_abandoned_participants",
]


@shared_task
def send_due_reminders() -> int:
    """Run by beat every minute (CELERY_BEAT_SCHEDULE in settings)."""
    return reminders.send_due_reminders()


@shared_task
def sweep_abandoned_participants() -> int:
    """Run by beat every 30 s (CELERY_BEAT_SCHEDULE): participants whose web process died
    (no heartbeat for three PRESENCE_HEARTBEAT_SECONDS, or a grace period nobody ended) leave
    their call, as with a leave. Returns how many left."""
    return len(presence.sweep_abandoned())


@shared_task
def expire_unused_meeting_links() -> int:
    """Run by beat every hour (CELERY_BEAT_SCHEDULE): instant meetings whose link went unused
    for ROOMS_INSTANT_MEETING_EXPIRY_DAYS are marked expired. Returns how many."""
    return services.expire_unused_links()
