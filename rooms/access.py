"""Who may see a meeting and who may enter it: one policy for pages, the calendar and the
call's signaling consumer (rooms.signaling.admission reads `join_decision`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rooms.models import Invitation, Meeting


@dataclass(frozen=True)
class Decision:
    """`allowed`: may open the pre-join page (and knock or join). `needs_lobby`: must wait for
    a host to admit them. `role`: host, cohost, participant or guest. `reason`: why, for logs
    and for the page (sign_in, not_invited, cancelled, ok, lobby)."""

    allowed: bool
    needs_lobby: bool
    reason: str
    role: str | None = None

    @property
    def lobby(self) -> bool:
        return self.needs_lobby


def _signed_in(user: Any) -> Any | None:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def is_cohost(user: Any, meeting: Meeting) -> bool:
    return meeting.co_hosts.filter(pk=user.pk).exists()


def is_invited(user: Any, meeting: Meeting) -> bool:
    return Invitation.objects.filter(meeting=meeting, email__iexact=user.email).exists()


def can_manage(user: Any, meeting: Meeting) -> bool:
    """Edit and cancel: the host only."""
    user = _signed_in(user)
    return user is not None and meeting.host_id == user.pk


def can_view_details(user: Any, meeting: Meeting) -> bool:
    """The detail page and the .ics: host, co-hosts, invitees and staff."""
    user = _signed_in(user)
    if user is None:
        return False
    return (
        meeting.host_id == user.pk
        or user.is_staff
        or is_cohost(user, meeting)
        or is_invited(user, meeting)
    )


def join_decision(user: Any | None, meeting: Meeting) -> Decision:
    """May this person (None or an anonymous user: a guest) enter the meeting's call?"""
    user = _signed_in(user)
    if meeting.status == Meeting.Status.CANCELLED:
        return Decision(False, False, "cancelled")
    if user is not None:
        if meeting.host_id == user.pk:
            return Decision(True, False, "ok", "host")
        if is_cohost(user, meeting):
            return Decision(True, False, "ok", "cohost")
        if (
            meeting.access_policy != Meeting.Access.INVITEES
            or user.is_staff
            or is_invited(user, meeting)
        ):
            return Decision(True, False, "ok", "participant")
        return Decision(False, False, "not_invited")
    if meeting.access_policy == Meeting.Access.GUESTS:
        return Decision(True, True, "lobby", "guest")
    return Decision(False, False, "sign_in")
