"""Occurrences of a (possibly recurring) meeting, computed with dateutil.

A recurring meeting repeats at the same wall-clock time in the zone it was scheduled in, so the
rule is expanded in that zone and the results converted to UTC: a 09:00 Berlin meeting is at
08:00 UTC in winter and 07:00 UTC in summer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr
from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from rooms.models import Meeting

ALLOWED_FREQUENCIES = frozenset({"DAILY", "WEEKLY"})


def validate_rrule(value: str) -> None:
    """A daily or weekly RRULE (without the RRULE: prefix) that dateutil can expand."""
    if not value:
        return
    parts = dict(part.partition("=")[::2] for part in value.upper().split(";"))
    if parts.get("FREQ") not in ALLOWED_FREQUENCIES:
        raise ValidationError("Only daily or weekly repetition is supported.")
    try:
        rrulestr(value, dtstart=datetime(2000, 1, 1, tzinfo=UTC))
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"Not a valid repetition rule: {exc}") from exc


def _rule(meeting: Meeting) -> rrule:
    local_start = meeting.starts_at.astimezone(ZoneInfo(meeting.time_zone))
    rule = rrulestr(meeting.recurrence, dtstart=local_start)
    assert isinstance(rule, rrule)
    return rule


def occurrences_between(meeting: Meeting, after: datetime, before: datetime) -> list[datetime]:
    """UTC start times of the meeting's occurrences that start in [after, before)."""
    if not meeting.recurrence:
        return [meeting.starts_at] if after <= meeting.starts_at < before else []
    zone = ZoneInfo(meeting.time_zone)
    found = _rule(meeting).between(after.astimezone(zone), before.astimezone(zone), inc=True)
    return [start.astimezone(UTC) for start in found if start < before]


def next_occurrence(meeting: Meeting, now: datetime) -> datetime | None:
    """UTC start of the occurrence that is on now or comes next; None when all are over."""
    duration = meeting.duration
    if not meeting.recurrence:
        return meeting.starts_at if meeting.starts_at + duration > now else None
    zone = ZoneInfo(meeting.time_zone)
    found = _rule(meeting).after((now - duration).astimezone(zone), inc=False)
    return found.astimezone(UTC) if found is not None else None
