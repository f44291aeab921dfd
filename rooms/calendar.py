"""RFC 5545 calendar data (icalendar) and "add to calendar" links for meetings.

One-off meetings are written in UTC; recurring ones in their own zone with a VTIMEZONE, so
that calendar apps keep the wall-clock time across DST changes just as rooms.recurrence does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from accounts.models import User
from meet.links import absolute_url
from rooms.models import Invitation, Meeting
from rooms.recurrence import calendar_rule

PRODID = "-//meet//meetings//EN"
_PARTSTAT: dict[str, str] = {
    Invitation.Response.NEEDS_ACTION: "NEEDS-ACTION",
    Invitation.Response.ACCEPTED: "ACCEPTED",
    Invitation.Response.DECLINED: "DECLINED",
    Invitation.Response.TENTATIVE: "TENTATIVE",
}


def event_description(meeting: Meeting, request: HttpRequest | None = None) -> str:
    parts = [meeting.description.strip()] if meeting.description.strip() else []
    parts.append(f"Join the meeting: {meeting.join_url_for(request)}")
    return "\n\n".join(parts)


def _times(meeting: Meeting) -> tuple[datetime, datetime]:
    start, end = meeting.starts_at, meeting.starts_at + meeting.duration
    if meeting.recurrence:
        zone = ZoneInfo(meeting.time_zone)
        return start.astimezone(zone), end.astimezone(zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def meeting_event(
    meeting: Meeting,
    invitations: Iterable[Invitation] | None = None,
    *,
    cancelled: bool = False,
    request: HttpRequest | None = None,
) -> Event:
    """The meeting's VEVENT. `invitations` default to all of the meeting's. Links are on the
    request's address when given (meet.links)."""
    if invitations is None:
        invitations = meeting.invitations.all()
    join_url = meeting.join_url_for(request)
    event = Event()
    event.add("uid", meeting.ical_uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("last-modified", meeting.updated_at.astimezone(UTC))
    start, end = _times(meeting)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", meeting.title)
    event.add("description", event_description(meeting, request))
    event.add("location", join_url)
    event.add("url", join_url)
    cancelled = cancelled or meeting.is_cancelled
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if meeting.recurrence:
        event.add("rrule", calendar_rule(meeting))  # carries the end: COUNT or a UTC UNTIL
        # Occurrences cancelled one by one, in DTSTART's zone (RFC 5545 3.8.5.1: same type).
        zone = ZoneInfo(meeting.time_zone)
        for excluded in meeting.excluded_starts:
            event.add("exdate", excluded.astimezone(zone))
    _add_people(event, meeting, invitations)
    return event


def _add_people(event: Event, meeting: Meeting, invitations: Iterable[Invitation]) -> None:
    organizer = vCalAddress(f"mailto:{meeting.host.email}")
    organizer.params["cn"] = vText(meeting.host.display_name)
    event.add("organizer", organizer)
    for invitation in invitations:
        attendee = vCalAddress(f"mailto:{invitation.email}")
        attendee.params["cutype"] = "INDIVIDUAL"
        attendee.params["role"] = "REQ-PARTICIPANT"
        attendee.params["partstat"] = _PARTSTAT.get(invitation.response, "NEEDS-ACTION")
        attendee.params["rsvp"] = "TRUE"
        event.add("attendee", attendee, encode=False)


def _calendar(method: str | None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    return calendar


def meeting_calendar(
    meeting: Meeting,
    method: str,
    invitations: Iterable[Invitation] | None = None,
    *,
    request: HttpRequest | None = None,
) -> bytes:
    """A whole .ics for one meeting: METHOD:REQUEST (invite, update) or METHOD:CANCEL."""
    calendar = _calendar(method)
    calendar.add_component(
        meeting_event(meeting, invitations, cancelled=method == "CANCEL", request=request)
    )
    calendar.add_missing_timezones()
    return calendar.to_ical()


def occurrence_cancellation(
    meeting: Meeting, occurrence_start: datetime, invitations: Iterable[Invitation]
) -> bytes:
    """METHOD:CANCEL for one occurrence of a recurring meeting (RFC 5546 3.2.5): the series'
    UID with the occurrence's RECURRENCE-ID, STATUS:CANCELLED, the meeting's SEQUENCE. Calendar
    apps remove that occurrence alone."""
    zone = ZoneInfo(meeting.time_zone)
    start = occurrence_start.astimezone(zone)
    event = Event()
    event.add("uid", meeting.ical_uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("recurrence-id", start)
    event.add("dtstart", start)
    event.add("dtend", start + meeting.duration)
    event.add("summary", meeting.title)
    event.add("status", "CANCELLED")
    _add_people(event, meeting, invitations)
    calendar = _calendar("CANCEL")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def feed_calendar(
    meetings: Iterable[Meeting], name: str, *, request: HttpRequest | None = None
) -> bytes:
    """A subscription feed (no METHOD: it publishes, it does not invite)."""
    calendar = _calendar(None)
    calendar.add("x-wr-calname", name)
    for meeting in meetings:
        calendar.add_component(meeting_event(meeting, request=request))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _compact_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def google_calendar_url(meeting: Meeting, request: HttpRequest | None = None) -> str:
    end = meeting.starts_at + meeting.duration
    params = {
        "action": "TEMPLATE",
        "text": meeting.title,
        "dates": f"{_compact_utc(meeting.starts_at)}/{_compact_utc(end)}",
        "details": event_description(meeting, request),
        "location": meeting.join_url_for(request),
        "ctz": meeting.time_zone,
    }
    if meeting.recurrence:
        params["recur"] = f"RRULE:{meeting.recurrence}"
    return "https://calendar.google.com/calendar/render?" + urlencode(params)


def outlook_calendar_url(meeting: Meeting, request: HttpRequest | None = None) -> str | None:
    """Outlook's web "add event" link; None for a repeating meeting: the deeplink has no
    parameter for a repetition (it would add the first occurrence alone), so the page offers
    the .ics instead, which Outlook opens with its RRULE and EXDATEs."""
    if meeting.recurrence:
        return None
    end = meeting.starts_at + meeting.duration
    params = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": meeting.title,
        "startdt": meeting.starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "enddt": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "body": event_description(meeting, request),
        "location": meeting.join_url_for(request),
    }
    return "https://outlook.live.com/calendar/0/deeplink/compose?" + urlencode(params)


def feed_url(user: User, request: HttpRequest | None = None) -> str:
    return absolute_url(reverse("rooms:calendar_feed", args=[user.calendar_token]), request)
