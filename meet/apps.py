"""The project as an app, so that its settings checks run at start-up like the apps' own."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import register


class MeetConfig(AppConfig):
    name = "meet"
    verbose_name = "meet"

    def ready(self) -> None:
        # Once the app registry is ready: the checks read the models and the settings objects.
        from meet import checks

        register(checks.check_site_url)
        register(checks.check_secret_key)
