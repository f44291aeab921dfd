"""The preferences page: time zone, reminder minutes, the calendar feed address and its reset;
and pages showing times in the viewer's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from rooms.tests.meetings_support import make_user, schedule

pytestmark = pytest.mark.django_db


def test_preferences_need_sign_in(client) -> None:
    response = client.get(reverse("accounts:preferences"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    reset = client.post(reverse("accounts:reset_calendar_token"))
    assert reset.status_code == 302
    assert reset["Location"].startswith(reverse("account_login"))


def test_saving_time_zone_and_reminder_minutes(client) -> None:
    user = make_user("me@example.org")
    client.force_login(user)
    page = client.get(reverse("accounts:preferences"))
    assert page.status_code == 200
    assert user.calendar_token in page.content.decode()
    response = client.post(
        reverse("accounts:preferences"),
        {"full_name": "Me", "time_zone": "Asia/Kolkata", "reminder_minutes": "25"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.time_zone, user.reminder_minutes) == ("Asia/Kolkata", 25)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"full_name": "Me", "time_zone": "Mars/Base", "reminder_minutes": "10"}, "time_zone"),
        ({"full_name": "Me", "time_zone": "UTC", "reminder_minutes": "-5"}, "reminder_minutes"),
        ({"full_name": "Me", "time_zone": "UTC", "reminder_minutes": "999999"}, "reminder_minutes"),
        ({"full_name": "Me", "time_zone": "UTC", "reminder_minutes": "soon"}, "reminder_minutes"),
    ],
)
def test_bad_preferences_are_form_errors_and_change_nothing(client, data, field) -> None:
    user = make_user("me@example.org")
    client.force_login(user)
    response = client.post(reverse("accounts:preferences"), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    stored = get_user_model().objects.get(pk=user.pk)
    assert (stored.time_zone, stored.reminder_minutes) == ("UTC", 10)


def test_resetting_the_feed_address_retires_the_old_one(client) -> None:
    user = make_user("me@example.org")
    old = user.calendar_token
    client.force_login(user)
    response = client.post(reverse("accounts:reset_calendar_token"))
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.calendar_token != old
    assert client.get(reverse("rooms:calendar_feed", args=[old])).status_code == 404
    page = client.get(reverse("accounts:preferences")).content.decode()
    assert user.calendar_token in page
    assert old not in page
    assert client.get(reverse("accounts:reset_calendar_token")).status_code == 405


def test_meeting_times_are_shown_in_the_viewers_zone(client) -> None:
    host = make_user("host@example.org", time_zone="Asia/Tokyo")
    guest = make_user("guest@example.org", time_zone="America/Los_Angeles")
    start = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
    meeting = schedule(host, starts_at=start, invitees=["guest@example.org"])
    client.force_login(host)
    assert "21:00" in client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()
    client.force_login(guest)
    assert "04:00" in client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()
    assert "04:00" in client.get(reverse("home")).content.decode()


def test_the_name_others_see_in_calls_is_set_in_preferences(client) -> None:
    user = make_user("grace@example.org")
    client.force_login(user)
    response = client.post(
        reverse("accounts:preferences"),
        {"full_name": "  Grace   Hopper ", "time_zone": "UTC", "reminder_minutes": "10"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.full_name == "Grace Hopper"
    assert user.display_name == "Grace Hopper"
    page = client.get(reverse("accounts:preferences")).content.decode()
    assert 'value="Grace Hopper"' in page
    assert "what others see in calls" in page
