"""The user's preferences page: time zone, reminders and the personal calendar feed."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

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
        {"form": form, "feed_url": feed_url(access.require_signed_in(request.user))},
    )


@login_required
@require_POST
def reset_calendar_token(request: HttpRequest) -> HttpResponse:
    services.reset_calendar_token(access.require_signed_in(request.user))
    messages.success(request, "New calendar feed address made; the old one no longer works.")
    return redirect("accounts:preferences")
