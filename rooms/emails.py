"""The meeting emails: invitation, update, cancellation (each with the .ics) and reminder.

Built here; a calendar email is sent by the Celery task `send_calendar_email` below (which the
meetings domain enqueues after its commit), a reminder by the reminder beat (rooms.reminders).
Times are shown in the recipient's zone when they have an account, else in the meeting's zone.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime
from zoneinfo import ZoneInfo

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from rooms import calendar
from rooms.models import Invitation, Meeting

logger = logging.getLogger(__name__)

RSVP_SALT = "rooms.rsvp"
KINDS = {
    # kind: (calendar METHOD, subject prefix)
    "invitation": ("REQUEST", "Invitation"),
    "update": ("REQUEST", "Updated invitation"),
    "cancellation": ("CANCEL", "Cancelled"),
    "removed": ("CANCEL", "Cancelled"),
}


def rsvp_token(invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "m": invitation.meeting_id}, salt=RSVP_SALT)


def invitation_from_token(token: str) -> Invitation | None:
    """The invitation a signed RSVP token names; None for a tampered or stale token."""
    try:
        data = signing.loads(token, salt=RSVP_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    invitation_id, meeting_id = data.get("i"), data.get("m")
    if not isinstance(invitation_id, int) or not isinstance(meeting_id, int):
        return None
    return (
        Invitation.objects.select_related("meeting", "meeting__host")
        .filter(pk=invitation_id, meeting_id=meeting_id)
        .first()
    )


def rsvp_url(invitation: Invitation, response: str | None = None) -> str:
    url = settings.SITE_URL + reverse("rooms:rsvp", args=[rsvp_token(invitation)])
    return f"{url}?response={response}" if response else url


def recipient_zone(email: str, meeting: Meeting) -> ZoneInfo:
    user = get_user_model().objects.filter(email__iexact=email).only("time_zone").first()
    return ZoneInfo(user.time_zone if user is not None else meeting.time_zone)


def _when(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%A %d %B %Y, %H:%M} ({zone.key})"


def calendar_email(meeting: Meeting, email: str, kind: str) -> EmailMultiAlternatives:
    method, prefix = KINDS[kind]
    zone = recipient_zone(email, meeting)
    invitation = meeting.invitations.filter(email=email).first()
    if method == "CANCEL":
        # Addressed to this one person; for "removed" the invitation row is already gone.
        attendees = [invitation or Invitation(meeting=meeting, email=email)]
        ics = calendar.meeting_calendar(meeting, method, attendees)
    else:
        ics = calendar.meeting_calendar(meeting, method)
    context = {
        "kind": kind,
        "meeting": meeting,
        "when": _when(meeting.starts_at, zone),
        "repeats": meeting.recurrence_label if meeting.recurrence else "",
        "join_url": meeting.join_url,
        "detail_url": settings.SITE_URL + meeting.get_absolute_url(),
        "rsvp": (
            {
                response: rsvp_url(invitation, response)
                for response in ("accepted", "tentative", "declined")
            }
            if invitation is not None and method == "REQUEST"
            else None
        ),
    }
    message = EmailMultiAlternatives(
        subject=f"{prefix}: {meeting.title} @ {context['when']}",
        body=render_to_string("rooms/email/calendar_email.txt", context),
        to=[email],
    )
    message.attach(
        "invite.ics" if method == "REQUEST" else "cancel.ics",
        ics.decode(),
        f"text/calendar; method={method}",
    )
    return message


# Named as when it lived in rooms.tasks: queued messages and worker logs keep their name.
@shared_task(
    name="rooms.tasks.send_calendar_email",
    autoretry_for=(smtplib.SMTPException, ConnectionError),
    retry_backoff=True,
    max_retries=5,
)
def send_calendar_email(meeting_id: int, email: str, kind: str) -> bool:
    """One invitation, update or cancellation (with its .ics) to one person. Sends the
    meeting as it is when the task runs, so a late task never sends a stale SEQUENCE."""
    meeting = Meeting.objects.select_related("host").filter(pk=meeting_id).first()
    if meeting is None or kind not in KINDS:
        logger.info("calendar email %s for missing meeting %s skipped", kind, meeting_id)
        return False
    if kind in ("invitation", "update") and meeting.is_cancelled:
        return False
    if kind in ("invitation", "update") and not meeting.invitations.filter(email=email).exists():
        return False  # taken off the list since; they got (or get) a cancellation
    calendar_email(meeting, email, kind).send()
    method = KINDS[kind][0]
    Invitation.objects.filter(meeting=meeting, email=email).update(
        last_sent_sequence=meeting.sequence, last_sent_method=method, last_sent_at=timezone.now()
    )
    return True


def reminder_email(
    meeting: Meeting, email: str, occurrence_start: datetime
) -> EmailMultiAlternatives:
    zone = recipient_zone(email, meeting)
    context = {
        "meeting": meeting,
        "when": _when(occurrence_start, zone),
        "join_url": meeting.join_url,
    }
    return EmailMultiAlternatives(
        subject=f"Reminder: {meeting.title} @ {context['when']}",
        body=render_to_string("rooms/email/reminder.txt", context),
        to=[email],
    )
