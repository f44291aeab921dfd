"""Chat settings, read through one object: `from chat.app_settings import app_settings`.

The rule, the same in every app's app_settings module: a setting's default is written here
and nowhere else. meet/settings.py sets a setting only when its environment variable is set,
so an unset variable means the default below. Each property reads django.conf.settings when
asked (never cached), so override_settings and pytest-django's `settings` fixture apply.
"""

from __future__ import annotations

from django.conf import settings


class ChatSettings:
    @property
    def RATE_LIMIT_MESSAGES(self) -> int:
        """Messages (a count) one author may send per window of RATE_LIMIT_SECONDS."""
        return int(getattr(settings, "CHAT_RATE_LIMIT_MESSAGES", 10))

    @property
    def RATE_LIMIT_SECONDS(self) -> int:
        """The length of the rate limit's sliding window, in seconds."""
        return int(getattr(settings, "CHAT_RATE_LIMIT_SECONDS", 10))

    @property
    def HISTORY_LIMIT(self) -> int:
        """The most messages one history answer carries; the client asks again from the last id."""
        return int(getattr(settings, "CHAT_HISTORY_LIMIT", 500))

    @property
    def RECENT_LIMIT(self) -> int:
        """How many of the latest messages a joining participant is sent (0: none)."""
        return int(getattr(settings, "CHAT_RECENT_LIMIT", 100))


app_settings = ChatSettings()
