from django.apps import AppConfig
from django.core.checks import register


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        # Once the app registry is ready: the checks read the models and the settings objects.
        from chat import checks

        register(checks.check_chat)
