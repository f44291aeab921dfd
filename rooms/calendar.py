"""RFC 5545 calendar data (icalendar) and "add to calendar" links for meetings.

One-off meetings are written in UTC; recurring ones in their own zone with a VTIMEZONE, so
that calendar apps keep the wall-clock time across DST changes just as rooms.recurrence does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from accounts.models import User
from rooms.models import Invitation, Meeting
from rooms.recurrence import calendar_rule

PRODID = "-//meet//meetings//EN"
_PARTSTAT: dict[str, str] = {
    Invitation.Response.NEEDS_ACTION: "NEEDS-ACTION",
    Invitation.Response.ACCEPTED: "ACCEPTED",
    Invitation.Response.DECLINED: "DECLINED",
    Invitation.Response.TENTATIVE: "TENTATIVE",
}


def event_description(meeting: Meeting) -> str:
    parts = [meeting.description.strip()] if meeting.description.strip() else []
    parts.append(f"Join the meeting: {meeting.join_url}")
    return "\n\n".join(parts)


def _times(meeting: Meeting) -> tuple[datetime, datetime]:
    start, end = meeting.starts_at, meeting.starts_at + meeting.duration
    if meeting.recurrence:
        zone = ZoneInfo(meeting.time_zone)
        return start.astimezone(zone), end.astimezone(zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def meeting_event(
    meeting: Meeting, invitations: Iterable[Invitation] | None = None, *, cancelled: bool = False
) -> Event:
    """The meeting's VEVENT. `invitations` default to all of the meeting's."""
    if invitations is None:
        invitations = meeting.invitations.all()
    event = Event()
    event.add("uid", meeting.ical_uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("last-modified", meeting.updated_at.astimezone(UTC))
    start, end = _times(meeting)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", meeting.title)
    event.add("description", event_description(meeting))
    event.add("location", meeting.join_url)
    event.add("url", meeting.join_url)
    cancelled = cancelled or meeting.is_cancelled
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if meeting.recurrence:
        event.add("rrule", calendar_rule(meeting))  # carries the end: COUNT or a UTC UNTIL
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
    return event


def _calendar(method: str | None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    return calendar


def meeting_calendar(
    meeting: Meeting, method: str, invitations: Iterable[Invitation] | None = None
) -> bytes:
    """A whole .ics for one meeting: METHOD:REQUEST (invite, update) or METHOD:CANCEL."""
    calendar = _calendar(method)
    calendar.add_component(meeting_event(meeting, invitations, cancelled=method == "CANCEL"))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def feed_calendar(meetings: Iterable[Meeting], name: str) -> bytes:
    """A subscription feed (no METHOD: it publishes, it does not invite)."""
    calendar = _calendar(None)
    calendar.add("x-wr-calname", name)
    for meeting in meetings:
        calendar.add_component(meeting_event(meeting))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _compact_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def google_calendar_url(meeting: Meeting) -> str:
    end = meeting.starts_at + meeting.duration
    params = {
        "action": "TEMPLATE",
        "text": meeting.title,
        "dates": f"{_compact_utc(meeting.starts_at)}/{_compact_utc(end)}",
        "details": event_description(meeting),
        "location": meeting.join_url,
        "ctz": meeting.time_zone,
    }
    if meeting.recurrence:
        params["recur"] = f"RRULE:{meeting.recurrence}"
    return "https://calendar.google.com/calendar/render?" + urlencode(params)


def outlook_calendar_url(meeting: Meeting) -> str:
    end = meeting.starts_at + meeting.duration
    params = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": meeting.title,
        "startdt": meeting.starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "enddt": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "body": event_description(meeting),
        "location": meeting.join_url,
    }
    return "https://outlook.live.com/calendar/0/deeplink/compose?" + urlencode(params)


def feed_url(user: User) -> str:
    return settings.SITE_URL + reverse("rooms:calendar_feed", args=[user.calendar_token])
