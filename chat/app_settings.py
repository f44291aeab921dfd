"""Chat settings, read through one object with defaults (override any of them in settings.py)."""

from __future__ import annotations

from django.conf import settings


class ChatSettings:
    @property
    def RATE_LIMIT_MESSAGES(self) -> int:
        """How many messages one author may send per window."""
        return int(getattr(settings, "CHAT_RATE_LIMIT_MESSAGES", 10))

    @property
    def RATE_LIMIT_SECONDS(self) -> int:
        return int(getattr(settings, "CHAT_RATE_LIMIT_SECONDS", 10))

    @property
    def HISTORY_LIMIT(self) -> int:
        """The most messages one history answer carries; the client asks again from the last id."""
        return int(getattr(settings, "CHAT_HISTORY_LIMIT", 500))

    @property
    def RECENT_LIMIT(self) -> int:
        """How many of the latest messages a joining participant is sent."""
        return int(getattr(settings, "CHAT_RECENT_LIMIT", 100))


app_settings = ChatSettings()
