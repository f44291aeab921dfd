"""The Django admin's sign-in page, throttled like allauth's: failed attempts are counted per
client address and per account, and over either limit the page answers 429 without looking at
the password, so the admin is no side door for guessing passwords.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import get_usage

# Failed attempts allowed per window before 429s. Per address: one machine guessing across
# many accounts. Per account: many machines guessing one account's password (so this limit is
# the lower one; a locked-out admin waits the window out, or signs in from the main page).
ADDRESS_RATE = "20/10m"
ACCOUNT_RATE = "5/10m"
ADDRESS_GROUP = "accounts.admin-login.address"
ACCOUNT_GROUP = "accounts.admin-login.account"


def _client_address(group: str, request: HttpRequest) -> str:
    # REMOTE_ADDR is the client's: meet.security's middleware puts the forwarded address there
    # for trusted proxies only, so X-Forwarded-For can't be used to start a fresh count.
    return str(request.META.get("REMOTE_ADDR", ""))


def _account(group: str, request: HttpRequest) -> str:
    # The admin form's "username" is the email (USERNAME_FIELD); case must not start a new count.
    return request.POST.get("username", "").strip().lower()


def _limits() -> list[tuple[str, Any, str]]:
    return [(ADDRESS_GROUP, _client_address, ADDRESS_RATE), (ACCOUNT_GROUP, _account, ACCOUNT_RATE)]


def _seconds_blocked(request: HttpRequest) -> int | None:
    """Seconds until the limit that is used up clears, or None while attempts are left."""
    for group, key, rate in _limits():
        usage = get_usage(request, group=group, key=key, rate=rate, increment=False)
        # get_usage reads the count without adding one: at the limit is already too many.
        if usage is not None and usage["count"] >= usage["limit"]:
            return max(int(usage["time_left"]), 1)
    return None


def _count_failure(request: HttpRequest) -> None:
    for group, key, rate in _limits():
        get_usage(request, group=group, key=key, rate=rate, increment=True)


def login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """admin.site.login behind the failure counts (routed at admin/login/ in meet/urls.py)."""
    if request.method == "POST":
        wait = _seconds_blocked(request)
        if wait is not None:
            response = HttpResponse(
                "Too many failed sign-in attempts. Try again later.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
            response["Retry-After"] = str(wait)
            return response
    response = admin.site.login(request, extra_context)
    # A failed attempt re-shows the form (200); success redirects, a bad CSRF token is a 403.
    if request.method == "POST" and response.status_code == 200:
        _count_failure(request)
    return response
