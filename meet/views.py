"""Project-level pages: the home page and the health endpoint."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from meet import health
from rooms.app_settings import app_settings as rooms_settings
from rooms.selectors import past_meetings_for, upcoming_meetings_for
from rooms.views import created_for_later


def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "home.html", {"upcoming_meetings": []})
    later = created_for_later(request)
    context = {
        "upcoming_meetings": upcoming_meetings_for(request.user),
        "past_meetings": past_meetings_for(request.user),
        # "Create a meeting for later" has just made it: its link, shown once, on the address
        # the page is served on (as the call's "Meeting details" does).
        "created_for_later": later,
        "later_link": later.join_url_for(request) if later else "",
        "expiry_days": rooms_settings.INSTANT_MEETING_EXPIRY_DAYS,
    }
    return render(request, "home.html", context)


def has_healthz_token(request: HttpRequest) -> bool:
    """`Authorization: Bearer <MEET_HEALTHZ_TOKEN>`; never true while the setting is empty."""
    token: str = settings.MEET_HEALTHZ_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    # Constant time: the comparison must not tell a prober how much of a guess was right.
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 or 503 with what is failing for anyone (load balancers); the detail (node names,
    loads, error messages) maps the deployment, so only staff and the token holder see it."""
    report = await health.collect()
    status = 200 if report.ok else 503
    if has_healthz_token(request) or (await request.auser()).is_staff:
        return JsonResponse(report.as_json(), status=status)
    return JsonResponse(report.summary(), status=status)
