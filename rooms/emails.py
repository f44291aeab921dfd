"""The meeting emails: invitation, update, cancellation (each with the .ics) and reminder.

Built here; a calendar email is sent by the Celery task `send_calendar_email` below (which the
meetings domain enqueues after its commit), a reminder by the reminder beat (rooms.reminders).

Each is a text part with an HTML alternative (a "Join" button; inline styles only, every value
autoescaped), and the calendar ones carry the .ics. Times are in the recipient's zone (a known
user's chosen zone; anyone else gets the meeting's), named, with the meeting's own time beside
it where its zone differs. Links are built outside a request: meet.links says which address.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from celery import shared_task
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from meet.links import absolute_url
from rooms import calendar
from rooms.models import Invitation, Meeting
from rooms.recurrence import next_occurrence

logger = logging.getLogger(__name__)

RSVP_SALT = "rooms.rsvp"
KINDS = {
    # kind: (calendar METHOD, subject prefix)
    "invitation": ("REQUEST", "Invitation"),
    "update": ("REQUEST", "Updated invitation"),
    "cancellation": ("CANCEL", "Cancelled"),
    "removed": ("CANCEL", "Cancelled"),
    # One occurrence of a recurring meeting (rooms.services.cancel_occurrence).
    "occurrence_cancelled": ("CANCEL", "Cancelled"),
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
    url = absolute_url(reverse("rooms:rsvp", args=[rsvp_token(invitation)]))
    return f"{url}?response={response}" if response else url


def recipient_zone(email: str, meeting: Meeting) -> ZoneInfo:
    """The zone a recipient reads times in: a known user's own (chosen, or set to anything but
    the default UTC), else the meeting's: an outside invitee, or someone who never chose, gets
    the time the host scheduled rather than UTC."""
    user = (
        get_user_model()
        .objects.filter(email__iexact=email)
        .only("time_zone", "time_zone_chosen")
        .first()
    )
    if user is not None and (user.time_zone_chosen or user.time_zone != "UTC"):
        return ZoneInfo(user.time_zone)
    return ZoneInfo(meeting.time_zone)


@dataclass(frozen=True)
class When:
    """A time as a recipient reads it: `text` in their zone, named ("Friday 27 March 2026,
    04:00 (America/New_York)"); `meeting_text` the meeting's own time where its zone differs
    ("09:00 (Europe/Berlin)", with the day when it is another one there), else ""."""

    text: str
    meeting_text: str = ""

    def __str__(self) -> str:
        return self.text


def _when(moment: datetime, zone: ZoneInfo, meeting_zone: str | None = None) -> When:
    local = moment.astimezone(zone)
    text = f"{local:%A %d %B %Y, %H:%M} ({zone.key})"
    if meeting_zone is None or meeting_zone == zone.key:
        return When(text)
    there = moment.astimezone(ZoneInfo(meeting_zone))
    shown = f"{there:%H:%M}" if there.date() == local.date() else f"{there:%A %d %B, %H:%M}"
    return When(text, f"{shown} ({meeting_zone})")


def _shown_start(meeting: Meeting) -> datetime:
    """The start a calendar email names: a repeating meeting's current or next occurrence (not
    a first one long past, or cancelled on its own), else its start."""
    if meeting.recurrence:
        upcoming = next_occurrence(meeting, timezone.now())
        if upcoming is not None:
            return upcoming
    return meeting.starts_at


def _with_html(message: EmailMultiAlternatives, template: str, context: dict) -> None:
    message.attach_alternative(render_to_string(template, context), "text/html")


def calendar_email(
    meeting: Meeting, email: str, kind: str, occurrence_start: datetime | None = None
) -> EmailMultiAlternatives:
    """`occurrence_start`: for "occurrence_cancelled", the start of the occurrence cancelled."""
    method, prefix = KINDS[kind]
    zone = recipient_zone(email, meeting)
    invitation = meeting.invitations.filter(email=email).first()
    if kind == "occurrence_cancelled":
        assert occurrence_start is not None
        attendees = [invitation or Invitation(meeting=meeting, email=email)]
        ics = calendar.occurrence_cancellation(meeting, occurrence_start, attendees)
    elif method == "CANCEL":
        # Addressed to this one person; for "removed" the invitation row is already gone.
        attendees = [invitation or Invitation(meeting=meeting, email=email)]
        ics = calendar.meeting_calendar(meeting, method, attendees)
    else:
        ics = calendar.meeting_calendar(meeting, method)
    context = {
        "kind": kind,
        "meeting": meeting,
        "when": _when(occurrence_start or _shown_start(meeting), zone, meeting.time_zone),
        "repeats": meeting.recurrence_label if meeting.recurrence else "",
        "join_url": meeting.join_url,
        "detail_url": absolute_url(meeting.get_absolute_url()),
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
    _with_html(message, "rooms/email/calendar_email.html", context)
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
def send_calendar_email(
    meeting_id: int, email: str, kind: str, occurrence: str | None = None
) -> bool:
    """One invitation, update or cancellation (with its .ics) to one person. Sends the
    meeting as it is when the task runs, so a late task never sends a stale SEQUENCE.
    `occurrence`: the ISO start of the one occurrence an "occurrence_cancelled" is about."""
    meeting = Meeting.objects.select_related("host").filter(pk=meeting_id).first()
    if meeting is None or kind not in KINDS:
        logger.info("calendar email %s for missing meeting %s skipped", kind, meeting_id)
        return False
    if kind in ("invitation", "update") and meeting.is_cancelled:
        return False
    if kind in ("invitation", "update") and not meeting.invitations.filter(email=email).exists():
        return False  # taken off the list since; they got (or get) a cancellation
    if kind == "occurrence_cancelled" and (
        occurrence is None
        or meeting.is_cancelled  # the whole series went (or goes) out as one cancellation
        or not meeting.invitations.filter(email=email).exists()
    ):
        return False
    occurrence_start = datetime.fromisoformat(occurrence) if occurrence else None
    calendar_email(meeting, email, kind, occurrence_start).send()
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
        "kind": "reminder",
        "meeting": meeting,
        "when": _when(occurrence_start, zone, meeting.time_zone),
        "join_url": meeting.join_url,
        "detail_url": absolute_url(meeting.get_absolute_url()),
    }
    message = EmailMultiAlternatives(
        subject=f"Reminder: {meeting.title} @ {context['when']}",
        body=render_to_string("rooms/email/reminder.txt", context),
        to=[email],
    )
    _with_html(message, "rooms/email/reminder.html", context)
    return message
