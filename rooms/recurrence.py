"""Occurrences of a (possibly recurring) meeting, computed with dateutil, and the end of a
repetition ("Ends: never / on a date / after N occurrences") as it is kept in the RRULE.

A recurring meeting repeats at the same wall-clock time in the zone it was scheduled in, so the
rule is expanded in that zone and the results converted to UTC: a 09:00 Berlin meeting is at
08:00 UTC in winter and 07:00 UTC in summer.

The end lives in the rule itself, as RFC 5545 has it: COUNT, or UNTIL. Calendar files write a
recurring meeting's DTSTART with a TZID, and then UNTIL must be a UTC date-time (RFC 5545
3.3.10), so "ends on 15 December" is stored as the last instant of 15 December in the meeting's
zone, in UTC (UNTIL=20261215T225959Z for Berlin), as Google Calendar writes it. Rules are read
and written with icalendar's vRecur and expanded with dateutil, never pieced together by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.dates import WEEKDAYS
from django.utils.formats import date_format
from icalendar import vRecur


class RecurrencePreset(models.TextChoices):
    """The rules the forms offer (Meeting.Recurrence); any other RRULE is described in words."""

    NONE = "", "Does not repeat"
    DAILY = "FREQ=DAILY", "Daily"
    WEEKLY = "FREQ=WEEKLY", "Weekly"


class Schedule(Protocol):
    """What this module reads of a meeting (rooms.models.Meeting is one)."""

    @property
    def recurrence(self) -> str: ...

    @property
    def starts_at(self) -> datetime: ...

    @property
    def time_zone(self) -> str: ...

    @property
    def duration(self) -> timedelta: ...


ALLOWED_FREQUENCIES = frozenset({"DAILY", "WEEKLY"})
# "After N occurrences" goes up to a year of daily meetings; "never" has no limit.
MAX_OCCURRENCES = 365
_END_PARTS = ("UNTIL", "COUNT")
_WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _parse(value: str) -> vRecur:
    try:
        return vRecur.from_ical(value)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"Not a valid repetition rule: {exc}") from exc


def validate_rrule(value: str) -> None:
    """A daily or weekly RRULE (without the RRULE: prefix) that dateutil can expand, ending
    at most one way (COUNT or UNTIL, not both: RFC 5545 forbids it)."""
    if not value:
        return
    parts = dict(part.partition("=")[::2] for part in value.upper().split(";"))
    if parts.get("FREQ") not in ALLOWED_FREQUENCIES:
        raise ValidationError("Only daily or weekly repetition is supported.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValidationError("A repetition ends on a date or after a number of times, not both.")
    try:
        rrulestr(value, dtstart=datetime(2000, 1, 1, tzinfo=UTC))
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"Not a valid repetition rule: {exc}") from exc


# --- the end of a repetition ----------------------------------------------------------------


@dataclass(frozen=True)
class RecurrenceEnd:
    """When a repetition stops: never (both unset), with the last occurrence on or before
    `last_day` (a date in the meeting's zone), or after `count` occurrences."""

    last_day: date | None = None
    count: int | None = None

    @property
    def kind(self) -> str:
        """The schedule form's choice: "never", "on" or "after"."""
        if self.last_day is not None:
            return "on"
        if self.count is not None:
            return "after"
        return "never"


NEVER = RecurrenceEnd()


def end_of_day_utc(day: date, zone_name: str) -> datetime:
    """The last second of `day` in the zone, in UTC. Taken as one second before the next
    day's midnight, which stays right where the clocks change at midnight (a skipped midnight
    is read at the old offset, i.e. the moment of the change)."""
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone_name))
    return next_midnight.astimezone(UTC) - timedelta(seconds=1)


def with_end(base_rule: str, end: RecurrenceEnd, zone_name: str) -> str:
    """The rule with `end` in place of whatever end it had ("" stays "": a meeting that does
    not repeat has no end to keep)."""
    if not base_rule:
        return ""
    rule = vRecur.from_ical(base_rule)
    for part in _END_PARTS:
        rule.pop(part, None)
    if end.last_day is not None:
        rule["UNTIL"] = [end_of_day_utc(end.last_day, zone_name)]
    elif end.count is not None:
        rule["COUNT"] = [end.count]
    return rule.to_ical().decode()


def split_end(rule_text: str, zone_name: str) -> tuple[str, RecurrenceEnd]:
    """The rule without its end, and the end: the inverse of `with_end`. An UNTIL is shown as
    the day it falls on in the meeting's zone."""
    if not rule_text:
        return "", NEVER
    rule = vRecur.from_ical(rule_text)
    until = rule.pop("UNTIL", [None])[0]
    count = rule.pop("COUNT", [None])[0]
    base = rule.to_ical().decode()
    if until is not None:
        if isinstance(until, datetime):
            # An aware UNTIL is an instant; a floating one is already wall-clock time.
            local = until.astimezone(ZoneInfo(zone_name)) if until.tzinfo else until
            return base, RecurrenceEnd(last_day=local.date())
        return base, RecurrenceEnd(last_day=until)
    if count is not None:
        return base, RecurrenceEnd(count=int(count))
    return base, NEVER


def validate_end(rule_text: str, starts_at: datetime) -> None:
    """The end of a repetition that starts at `starts_at` (aware): after 1 to MAX_OCCURRENCES
    occurrences, or on a day no earlier than the first occurrence's."""
    if not rule_text:
        return
    rule = _parse(rule_text)
    count = rule.get("COUNT", [None])[0]
    if count is not None and not 1 <= int(count) <= MAX_OCCURRENCES:
        raise ValidationError(
            "A repetition ends after 1 to %(max)d occurrences.", params={"max": MAX_OCCURRENCES}
        )
    until = rule.get("UNTIL", [None])[0]
    if isinstance(until, datetime) and until.tzinfo is not None and until < starts_at:
        raise ValidationError("The repetition cannot end before the first occurrence.")


def calendar_rule(meeting: Schedule) -> vRecur:
    """The meeting's RRULE for a calendar file, whose DTSTART has a TZID: an UNTIL must then be
    a UTC date-time (RFC 5545 3.3.10). The forms store it so; a rule typed into the admin
    with a date or a floating time is read as the end of that day / that wall-clock time in
    the meeting's zone."""
    rule = vRecur.from_ical(meeting.recurrence)
    until = rule.get("UNTIL", [None])[0]
    if until is None:
        return rule
    if not isinstance(until, datetime):
        until = end_of_day_utc(until, meeting.time_zone)
    elif until.tzinfo is None:
        until = until.replace(tzinfo=ZoneInfo(meeting.time_zone))
    rule["UNTIL"] = [until.astimezone(UTC)]
    return rule


# --- occurrences ----------------------------------------------------------------------------


def _rule(meeting: Schedule) -> rrule | rruleset:
    """The meeting's occurrences, less those cancelled one by one (`excluded_starts`, which a
    Meeting has: rooms.models.CancelledOccurrence)."""
    local_start = meeting.starts_at.astimezone(ZoneInfo(meeting.time_zone))
    rule = rrulestr(meeting.recurrence, dtstart=local_start)
    assert isinstance(rule, rrule)
    excluded = getattr(meeting, "excluded_starts", None) or []
    if not excluded:
        return rule
    with_exceptions = rruleset()
    with_exceptions.rrule(rule)
    for start in excluded:
        with_exceptions.exdate(start)
    return with_exceptions


def rule_occurrences(meeting: Schedule, after: datetime, before: datetime) -> list[datetime]:
    """UTC starts of the rule's occurrences in [after, before), cancelled ones included (the
    cancel page checks that a start is one of them)."""
    zone = ZoneInfo(meeting.time_zone)
    rule = rrulestr(meeting.recurrence, dtstart=meeting.starts_at.astimezone(zone))
    found = rule.between(after.astimezone(zone), before.astimezone(zone), inc=True)
    return [start.astimezone(UTC) for start in found if start < before]


def upcoming_occurrences(meeting: Schedule, now: datetime, limit: int) -> list[datetime]:
    """UTC starts of the next `limit` occurrences that have not started yet (cancelled ones
    left out): what "Cancel this occurrence" offers."""
    if not meeting.recurrence:
        return [meeting.starts_at] if meeting.starts_at > now else []
    zone = ZoneInfo(meeting.time_zone)
    found: list[datetime] = []
    for start in _rule(meeting).xafter(now.astimezone(zone), count=limit, inc=False):
        found.append(start.astimezone(UTC))
    return found


def previous_occurrence(meeting: Schedule, now: datetime) -> datetime | None:
    """UTC start of the latest occurrence that has started by `now` (cancelled ones left out);
    None when none has."""
    if not meeting.recurrence:
        return meeting.starts_at if meeting.starts_at <= now else None
    zone = ZoneInfo(meeting.time_zone)
    found = _rule(meeting).before(now.astimezone(zone), inc=True)
    return found.astimezone(UTC) if found is not None else None


def occurrences_between(meeting: Schedule, after: datetime, before: datetime) -> list[datetime]:
    """UTC start times of the meeting's occurrences that start in [after, before)."""
    if not meeting.recurrence:
        return [meeting.starts_at] if after <= meeting.starts_at < before else []
    zone = ZoneInfo(meeting.time_zone)
    found = _rule(meeting).between(after.astimezone(zone), before.astimezone(zone), inc=True)
    return [start.astimezone(UTC) for start in found if start < before]


def next_occurrence(meeting: Schedule, now: datetime) -> datetime | None:
    """UTC start of the occurrence that is on now or comes next; None when all are over."""
    duration = meeting.duration
    if not meeting.recurrence:
        return meeting.starts_at if meeting.starts_at + duration > now else None
    zone = ZoneInfo(meeting.time_zone)
    found = _rule(meeting).after((now - duration).astimezone(zone), inc=False)
    return found.astimezone(UTC) if found is not None else None


# --- labels ---------------------------------------------------------------------------------


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _describe_base(rule: vRecur, local_start: datetime) -> str | None:
    """The repetition in words ("Daily", "Every 2 days", "Weekly on Tuesday", "Weekly on Monday
    and Thursday"); None for a rule with parts this does not put in words (the admin accepts
    any RRULE)."""
    if set(rule) - {"FREQ", "INTERVAL", "BYDAY", "WKST"}:
        return None
    frequency = rule["FREQ"][0]
    interval = int(rule.get("INTERVAL", [1])[0])
    if frequency == "DAILY" and "BYDAY" not in rule:
        return "Daily" if interval == 1 else f"Every {interval} days"
    if frequency != "WEEKLY":
        return None
    codes = [str(code) for code in rule.get("BYDAY", [])] or [_WEEKDAY_CODES[local_start.weekday()]]
    if any(code not in _WEEKDAY_CODES for code in codes):
        return None
    days = _join_names([str(WEEKDAYS[index]) for index in sorted(map(_WEEKDAY_CODES.index, codes))])
    return f"Weekly on {days}" if interval == 1 else f"Every {interval} weeks on {days}"


def describe_rule(rule_text: str, starts_at: datetime, zone_name: str) -> str:
    """What a calendar app would say: "Weekly on Tuesday, until 15 Dec 2026", "Daily, 5 times".
    "" for a meeting that does not repeat."""
    if not rule_text:
        return ""
    try:
        base_text, end = split_end(rule_text, zone_name)
        base = _describe_base(
            vRecur.from_ical(base_text), starts_at.astimezone(ZoneInfo(zone_name))
        )
    except (ValueError, TypeError, KeyError):
        return rule_text  # an admin-entered rule that does not parse: show it as it is
    base = base or dict(RecurrencePreset.choices).get(base_text, base_text)
    if end.last_day is not None:
        return f"{base}, until {date_format(end.last_day, 'j M Y')}"
    if end.count is not None:
        return f"{base}, once" if end.count == 1 else f"{base}, {end.count} times"
    return base


def describe(meeting: Schedule) -> str:
    """`describe_rule` for a meeting."""
    return describe_rule(meeting.recurrence, meeting.starts_at, meeting.time_zone)
