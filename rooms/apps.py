from django.apps import AppConfig
from django.core.checks import register


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = "Meetings"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from rooms import checks
        from rooms.signaling import sign_out

        register(checks.check_presence)
        register(checks.check_signaling_rate)
        register(checks.check_join_guess_rate)
        register(checks.check_instant_meeting_expiry)
        user_logged_out.connect(sign_out.on_user_logged_out, dispatch_uid="rooms.sign_out")
