"""Template filters for how meetings read on pages: `{% load meeting_format %}`."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter(name="duration")
def format_duration(value: timedelta | None) -> str:
    """A meeting's length as people write it, as Meet shows it: "45 min", "1 h",
    "1 h 30 min", "2 days 3 h" — never Python's "1:30:00". Seconds are rounded to the minute."""
    if value is None:
        return ""
    minutes = max(0, round(value.total_seconds() / 60))
    if minutes == 0:
        return "0 min"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(f"{days} day" if days == 1 else f"{days} days")
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    return " ".join(parts)
