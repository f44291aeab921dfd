"""{{ meeting|recurrence_summary }}: "Weekly on Tuesday, until 15 Dec 2026" (rooms.recurrence).

A filter rather than a Meeting property so that the wording, which depends on the meeting's
zone and the rule's end, stays with the rest of the recurrence code.
"""

from __future__ import annotations

from django import template

from rooms.models import Meeting
from rooms.recurrence import describe

register = template.Library()


@register.filter
def recurrence_summary(meeting: Meeting) -> str:
    return describe(meeting)
