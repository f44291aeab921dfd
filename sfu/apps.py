from django.apps import AppConfig
from django.core.checks import register


class SfuConfig(AppConfig):
    name = "sfu"
    verbose_name = "SFU nodes"

    def ready(self) -> None:
        # Once the app registry is ready: the checks read the models and the settings objects.
        from sfu import checks

        register(checks.check_heartbeat)
        register(checks.check_requests_and_capacity)
        register(checks.check_ice)
        register(checks.check_nodes)
