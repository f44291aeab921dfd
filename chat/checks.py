"""Start-up checks of the chat settings (chat/app_settings.py), registered by
chat.apps.ChatConfig: values that would break sending, history or the join response are
reported by every management command instead of by the first chat message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error

from chat.app_settings import app_settings


def check_chat(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if app_settings.RATE_LIMIT_MESSAGES < 1:
        # Every message would be refused as over the limit.
        messages.append(
            Error(
                "CHAT_RATE_LIMIT_MESSAGES must be at least 1 "
                f"(it is {app_settings.RATE_LIMIT_MESSAGES}).",
                hint="Messages one author may send per CHAT_RATE_LIMIT_SECONDS.",
                id="chat.E001",
            )
        )
    if app_settings.RATE_LIMIT_SECONDS < 1:
        # A window of no time limits nothing.
        messages.append(
            Error(
                "CHAT_RATE_LIMIT_SECONDS must be at least 1 "
                f"(it is {app_settings.RATE_LIMIT_SECONDS}).",
                hint="The length of the rate limit's window, in seconds.",
                id="chat.E002",
            )
        )
    if app_settings.HISTORY_LIMIT < 1:
        # Every history answer would be empty: a reconnecting client never catches up.
        messages.append(
            Error(
                f"CHAT_HISTORY_LIMIT must be at least 1 (it is {app_settings.HISTORY_LIMIT}).",
                hint="The most messages one chatHistory answer carries.",
                id="chat.E003",
            )
        )
    if app_settings.RECENT_LIMIT < 0:
        # The join response's query would raise (negative slicing) and every join fail.
        messages.append(
            Error(
                f"CHAT_RECENT_LIMIT must not be negative (it is {app_settings.RECENT_LIMIT}).",
                hint="How many of the latest messages a joining participant is sent; 0: none.",
                id="chat.E004",
            )
        )
    return messages
