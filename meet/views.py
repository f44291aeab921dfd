"""Project-level pages: the home page and the health endpoint."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from meet import health
from rooms.selectors import upcoming_meetings_for


def home(request: HttpRequest) -> HttpResponse:
    upcoming = upcoming_meetings_for(request.user) if request.user.is_authenticated else []
    return render(request, "home.html", {"upcoming_meetings": upcoming})


@never_cache
async def healthz(request: HttpRequest) -> JsonResponse:
    report = await health.collect()
    return JsonResponse(report.as_json(), status=200 if report.ok else 503)
