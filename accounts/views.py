"""The user's preferences page (name, time zone, reminders, the personal calendar feed) and
the answer to the time-zone proposal."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import time_zones
from accounts.preferences import PreferencesForm
from rooms import access, services
from rooms.calendar import feed_url


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Preferences saved.")
        return redirect("accounts:preferences")
    return render(
        request,
        "accounts/preferences.html",
        {"form": form, "feed_url": feed_url(access.require_signed_in(request.user), request)},
    )


@login_required
@require_POST
def reset_calendar_token(request: HttpRequest) -> HttpResponse:
    services.reset_calendar_token(access.require_signed_in(request.user))
    messages.success(request, "New calendar feed address made; the old one no longer works.")
    return redirect("accounts:preferences")


@require_POST
def time_zone(request: HttpRequest) -> JsonResponse:
    """The answer to "Use <zone> as your time zone?" (static/js/time-zone.js): `time_zone`, the
    zone to use or the one kept. JSON either way: 200 {"timeZone"}; 400 {"error"} for a zone
    zoneinfo does not know (nothing stored); 403 {"error"} for a visitor who is not signed in.
    CSRF-checked like every POST."""
    user = access.signed_in(request.user)
    if user is None:
        return JsonResponse({"error": "Sign in to set your time zone."}, status=403)
    try:
        time_zones.choose_time_zone(user, request.POST.get("time_zone"))
    except ValidationError as error:
        return JsonResponse({"error": " ".join(error.messages)}, status=400)
    return JsonResponse({"timeZone": user.time_zone})
