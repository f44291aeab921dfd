"""Time zones: the browser's zone proposed once (the proposal on signed-in pages, the endpoint
that takes the answer) and a meeting's own zone shown beside the viewer's where they differ."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from rooms.services import create_instant_meeting
from rooms.tests.meetings_support import make_user, schedule
from tests.node_test_runner import run_node_tests

pytestmark = pytest.mark.django_db

User = get_user_model()
ENDPOINT = reverse("accounts:time_zone")
PROPOSAL = 'id="time-zone-proposal"'


def _stored(user):
    return User.objects.values_list("time_zone", "time_zone_chosen").get(pk=user.pk)


# --- the endpoint ----------------------------------------------------------------------------


def test_answering_with_a_zone_stores_it_and_marks_it_chosen(client) -> None:
    user = make_user("me@example.org")
    client.force_login(user)
    response = client.post(ENDPOINT, {"time_zone": "Europe/Berlin"})
    assert response.status_code == 200
    assert response.json() == {"timeZone": "Europe/Berlin"}
    assert _stored(user) == ("Europe/Berlin", True)


def test_keeping_the_current_zone_is_an_answer_too(client) -> None:
    user = make_user("me@example.org")
    client.force_login(user)
    assert client.post(ENDPOINT, {"time_zone": "UTC"}).status_code == 200
    assert _stored(user) == ("UTC", True)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("Mars/Base", "Unknown time zone: Mars/Base"),
        ("europe/berlin", "Unknown time zone: europe/berlin"),
        ("", "Choose a time zone."),
        ("Europe/" + "x" * 100, "Unknown time zone."),
        (None, "Choose a time zone."),
    ],
)
def test_a_zone_zoneinfo_does_not_know_is_a_400_and_stores_nothing(client, value, error) -> None:
    user = make_user("me@example.org")
    client.force_login(user)
    response = client.post(ENDPOINT, {} if value is None else {"time_zone": value})
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert _stored(user) == ("UTC", False)


def test_a_visitor_who_is_not_signed_in_is_refused(client) -> None:
    response = client.post(ENDPOINT, {"time_zone": "Europe/Berlin"})
    assert response.status_code == 403
    assert response.json() == {"error": "Sign in to set your time zone."}


def test_the_answer_must_carry_the_csrf_token() -> None:
    user = make_user("me@example.org")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    refused = client.post(ENDPOINT, {"time_zone": "Europe/Berlin"})
    assert refused.status_code == 403
    assert _stored(user) == ("UTC", False)
    # With the token the page carries, it is taken.
    page = client.get(reverse("home"))
    token = page.context["csrf_token"]
    taken = client.post(ENDPOINT, {"time_zone": "Europe/Berlin", "csrfmiddlewaretoken": str(token)})
    assert taken.status_code == 200
    assert _stored(user) == ("Europe/Berlin", True)


def test_only_post_is_answered(client) -> None:
    client.force_login(make_user("me@example.org"))
    assert client.get(ENDPOINT).status_code == 405


# --- asked once ------------------------------------------------------------------------------


def test_signed_in_pages_carry_the_proposal_until_it_is_answered(client) -> None:
    user = make_user("me@example.org")
    client.force_login(user)
    page = client.get(reverse("home")).content.decode()
    assert PROPOSAL in page
    assert 'data-current-zone="UTC"' in page
    assert "Keep UTC" in page
    assert "js/time-zone" in page
    client.post(ENDPOINT, {"time_zone": "UTC"})
    for url in (reverse("home"), reverse("accounts:preferences")):
        page = client.get(url).content.decode()
        assert PROPOSAL not in page
        assert "js/time-zone" not in page


def test_a_zone_picked_in_settings_is_never_proposed_over(client) -> None:
    user = make_user("me@example.org")
    client.force_login(user)
    client.post(
        reverse("accounts:preferences"),
        {"full_name": "Me", "time_zone": "Asia/Tokyo", "reminder_minutes": "10"},
    )
    assert _stored(user) == ("Asia/Tokyo", True)
    assert PROPOSAL not in client.get(reverse("home")).content.decode()


def test_saving_settings_without_touching_the_zone_is_no_answer(client) -> None:
    user = make_user("me@example.org")
    client.force_login(user)
    client.post(
        reverse("accounts:preferences"),
        {"full_name": "Me Myself", "time_zone": "UTC", "reminder_minutes": "10"},
    )
    assert _stored(user) == ("UTC", False)
    assert PROPOSAL in client.get(reverse("home")).content.decode()


def test_nobody_signed_out_and_no_call_page_gets_the_proposal(client) -> None:
    assert PROPOSAL not in client.get(reverse("home")).content.decode()
    user = make_user("me@example.org")
    meeting = create_instant_meeting(user)
    client.force_login(user)
    join = client.get(reverse("rooms:join", args=[meeting.code])).content.decode()
    assert PROPOSAL not in join


def test_the_zone_detection_and_its_fallback_pass_under_node() -> None:
    assert "# pass 5" in run_node_tests("time-zone.test.mjs")


# --- the meeting's zone beside the viewer's ---------------------------------------------------

START = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (CET, UTC+1)


def _meeting_page(client, viewer, meeting) -> str:
    client.force_login(viewer)
    return client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()


def test_a_meeting_in_another_zone_shows_both_times(client) -> None:
    host = make_user("host@example.org", time_zone="Europe/Berlin")
    viewer = make_user("viewer@example.org", time_zone="UTC")
    meeting = schedule(
        host, starts_at=START, time_zone="Europe/Berlin", invitees=["viewer@example.org"]
    )
    page = _meeting_page(client, viewer, meeting)
    assert "Tuesday 15 January 2030, 10:00</time> (Europe/Berlin)</span>" in page
    assert '<time datetime="2030-01-15T09:00:00+00:00">09:00</time> your time (UTC)' in page


def test_the_viewers_date_is_named_when_it_is_another_day(client) -> None:
    host = make_user("host@example.org", time_zone="Europe/Berlin")
    viewer = make_user("viewer@example.org", time_zone="America/Los_Angeles")
    meeting = schedule(
        host, starts_at=START, time_zone="Europe/Berlin", invitees=["viewer@example.org"]
    )
    page = _meeting_page(client, viewer, meeting)
    assert "10:00</time> (Europe/Berlin)" in page
    assert '-08:00">01:00</time> your time (America/Los_Angeles)' in page
    late = schedule(
        host,
        starts_at=datetime(2030, 1, 15, 5, 0, tzinfo=UTC),  # 06:00 Berlin, 21:00 the day before
        time_zone="Europe/Berlin",
        invitees=["viewer@example.org"],
    )
    page = _meeting_page(client, viewer, late)
    assert "Monday 14 January, 21:00</time> your time (America/Los_Angeles)" in page


def test_a_meeting_in_the_viewers_zone_shows_one_time(client) -> None:
    host = make_user("host@example.org", time_zone="Europe/Berlin")
    meeting = schedule(host, starts_at=START, time_zone="Europe/Berlin")
    page = _meeting_page(client, host, meeting)
    assert "Tuesday 15 January 2030, 10:00</time> (Europe/Berlin)" in page
    assert "viewer-zone-time" not in page
