"""meet's admin site (issue 12.10): Django's, with a "Live now" page (who is in which call,
rooms/admin_live.py) linked from the index, and the everyday tables (meetings, chat, people)
listed apart from, and ahead of, the technical ones (SFU nodes and placements, Celery beat
schedules, third-party sign-in apps, sites), which operators rather than moderators use.

Installed as the default admin site through MeetAdminConfig (INSTALLED_APPS, in place of
"django.contrib.admin"), so `admin.site` and every `@admin.register` are this site.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

# Everyday apps first, in this order; any other app after them, then the technical ones.
EVERYDAY_APPS = ("rooms", "chat", "accounts", "account", "auth")
TECHNICAL_APPS = ("sfu", "django_celery_beat", "socialaccount", "sites")


# allauth's app is called "Accounts" like meet's own (users): told apart by what it holds.
APP_NAMES = {"account": "Email addresses"}


def _order(app: dict[str, Any]) -> tuple[int, int, str]:
    label = app["app_label"]
    if label in TECHNICAL_APPS:
        return (2, TECHNICAL_APPS.index(label), "")
    if label in EVERYDAY_APPS:
        return (0, EVERYDAY_APPS.index(label), "")
    return (1, 0, app["name"].lower())


class MeetAdminSite(admin.AdminSite):
    site_header = "meet administration"
    site_title = "meet admin"

    def get_app_list(
        self, request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["technical"] = app["app_label"] in TECHNICAL_APPS
            app["name"] = APP_NAMES.get(app["app_label"], app["name"])
        return sorted(apps, key=_order)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        from rooms.admin_live import can_see_live_calls

        apps = self.get_app_list(request)
        context = {
            "everyday_apps": [app for app in apps if not app["technical"]],
            "technical_apps": [app for app in apps if app["technical"]],
            "can_see_live_calls": can_see_live_calls(request.user),
            **(extra_context or {}),
        }
        return super().index(request, context)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        live = path("live/", self.admin_view(self.live_now_view), name="live_now")
        return [live, *super().get_urls()]

    def live_now_view(self, request: HttpRequest) -> HttpResponse | TemplateResponse:
        from rooms.admin_live import live_now

        return live_now(self, request)


class MeetAdminConfig(AdminConfig):
    default_site = "meet.admin_site.MeetAdminSite"
