"""The admin's "Live now" page (issue 12.10): every meeting whose call is on, with who is in it
now, from the presence rows (rooms.presence.live_calls). Read-only; for staff who may see
meetings in the admin (the meetings' view or change permission). Routed by meet/admin_site.py
at admin/live/ and linked from the admin index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from rooms import presence
from rooms.models import Meeting

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite


def can_see_live_calls(user: Any) -> bool:
    return bool(
        user.is_active
        and user.is_staff
        and (user.has_perm("rooms.view_meeting") or user.has_perm("rooms.change_meeting"))
    )


def live_now(site: AdminSite, request: HttpRequest) -> TemplateResponse:
    if not can_see_live_calls(request.user):
        raise PermissionDenied
    live = presence.live_calls()
    calls = [
        {
            "meeting": meeting,
            "people": people,
            "since": people[0].joined_at,
            "guests": sum(1 for person in people if person.user_id is None),
        }
        for meeting, people in live
    ]
    context = {
        **site.each_context(request),
        "title": "Live now",
        "subtitle": None,
        "calls": calls,
        "people_total": sum(len(people) for _, people in live),
        "as_of": timezone.now(),
        "opts": Meeting._meta,
        "can_moderate": request.user.has_perm("rooms.change_meeting"),
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/live_now.html", context)
