from django.apps import AppConfig
from django.core.checks import register


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from chat import checks

        register(checks.check_chat)
