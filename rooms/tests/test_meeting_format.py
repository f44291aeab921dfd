"""How a meeting's length reads on its page: "45 min", "1 h 30 min", never "1:30:00"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from rooms.templatetags.meeting_format import format_duration
from rooms.tests.meetings_support import make_user, schedule


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (timedelta(minutes=45), "45 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(minutes=90), "1 h 30 min"),
        (timedelta(hours=8), "8 h"),
        (timedelta(minutes=15, seconds=29), "15 min"),
        (timedelta(seconds=20), "0 min"),
        (timedelta(days=1, hours=2), "1 day 2 h"),
        (timedelta(days=2, minutes=5), "2 days 5 min"),
        (timedelta(0), "0 min"),
        (None, ""),
    ],
)
def test_a_duration_reads_as_hours_and_minutes(length: timedelta | None, text: str) -> None:
    assert format_duration(length) == text


@pytest.mark.django_db
def test_the_meeting_page_shows_its_length_in_words(client) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host)
    meeting.ends_at = meeting.starts_at + timedelta(minutes=90)
    meeting.save()
    client.force_login(host)

    page = client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()

    assert "· 1 h 30 min" in page
    assert "1:30:00" not in page
