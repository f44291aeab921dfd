"""The meetings admin: search, filters, invitations inline with calendar state, reminders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from rooms.models import Invitation, ReminderDelivery
from rooms.tests.meetings_support import make_user, schedule

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    client.force_login(make_user("admin@example.org", is_staff=True, is_superuser=True))
    return client


def test_changelist_searches_and_filters(admin_client_) -> None:
    host = make_user("host@example.org")
    budget = schedule(host, title="Budget review", invitees=["cfo@example.org"])
    schedule(host, title="Standup")
    url = reverse("admin:rooms_meeting_changelist")
    body = admin_client_.get(url, {"q": "cfo@example.org"}).content.decode()
    assert "Budget review" in body
    assert "Standup" not in body
    assert budget.code in admin_client_.get(url, {"q": budget.code}).content.decode()
    cancelled = admin_client_.get(url, {"status__exact": "cancelled"}).content.decode()
    assert "Budget review" not in cancelled
    today = timezone.now() + timedelta(days=1)
    dated = admin_client_.get(url, {"starts_at__year": today.year, "starts_at__month": today.month})
    assert dated.status_code == 200


def test_change_page_shows_invitations_and_reminder_state(admin_client_) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, invitees=["ana@example.org"])
    Invitation.objects.filter(meeting=meeting).update(
        last_sent_sequence=0, last_sent_method="REQUEST"
    )
    ReminderDelivery.objects.create(
        meeting=meeting, occurrence_start=meeting.starts_at, email="ana@example.org"
    )
    body = admin_client_.get(reverse("admin:rooms_meeting_change", args=[meeting.pk])).content
    text = body.decode()
    assert "ana@example.org" in text
    assert "REQUEST" in text
    assert meeting.ical_uid in text
    assert admin_client_.get(reverse("admin:rooms_reminderdelivery_changelist")).status_code == 200


def test_the_change_page_names_the_host_and_says_the_recurrence_in_words(admin_client_) -> None:
    host = make_user("host@example.org", full_name="Hana Host")
    meeting = schedule(host, recurrence="FREQ=WEEKLY", title="Weekly sync")
    page = admin_client_.get(reverse("admin:rooms_meeting_change", args=[meeting.pk]))
    text = page.content.decode()
    # The host is an autocomplete box showing the account, searched by name, not an id to type.
    assert 'class="admin-autocomplete' in text
    assert f'<option value="{host.pk}" selected>host@example.org</option>' in text
    assert meeting.recurrence_label.split(",")[0] in text  # "Weekly on …"
    assert meeting.recurrence_label.startswith("Weekly")
    # The autocomplete's search finds the host by name, for staff.
    found = admin_client_.get(
        reverse("admin:autocomplete"),
        {"term": "Hana", "app_label": "rooms", "model_name": "meeting", "field_name": "host"},
    )
    assert [r["id"] for r in found.json()["results"]] == [str(host.pk)]


def test_a_meeting_that_does_not_repeat_says_so(admin_client_) -> None:
    meeting = schedule(make_user("host@example.org"))
    text = admin_client_.get(reverse("admin:rooms_meeting_change", args=[meeting.pk])).content
    assert "Does not repeat" in text.decode()
