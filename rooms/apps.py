from django.apps import AppConfig
from django.core.checks import register


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = "Meetings"

    def ready(self) -> None:
        from rooms import checks

        register(checks.check_presence)
        register(checks.check_signaling_rate)
        register(checks.check_join_guess_rate)
