"""Read-only queries about meetings, shared by views, feeds and tasks."""

from __future__ import annotations

from typing import Any


def upcoming_meetings_for(user: Any) -> list[Any]:
    """Meetings the user hosts or is invited to that have not ended. (Filled by the meetings
    issue; until then there are none.)"""
    return []
