"""The chat transcript: a page per meeting and a plain-text download."""

from __future__ import annotations

from django.urls import re_path

from chat import views
from rooms.models import JOIN_CODE_REGEX

app_name = "chat"

urlpatterns = [
    re_path(rf"^meetings/(?P<code>{JOIN_CODE_REGEX})/chat/$", views.transcript, name="transcript"),
    re_path(
        rf"^meetings/(?P<code>{JOIN_CODE_REGEX})/chat\.txt$",
        views.transcript_text,
        name="transcript_text",
    ),
]
