"""An instant meeting's lifetime, as in Meet: its link works after everyone left, "ended" is
only its latest call, and it expires after ROOMS_INSTANT_MEETING_EXPIRY_DAYS unused. Scheduled
meetings keep their rules (one-off: over once ended; recurring: back to scheduled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ValidationError
from django.urls import reverse

from rooms import access, checks, moderation, reminders, services, tasks
from rooms.models import Meeting
from rooms.selectors import upcoming_meetings_for
from rooms.signaling import admission
from rooms.tests.meetings_support import details_of, make_user, schedule

pytestmark = pytest.mark.django_db

CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def host():
    return make_user("host@example.org")


@pytest.fixture
def other():
    """Someone signed in who is neither host nor invited: an instant meeting lets them in."""
    return make_user("nia@example.org")


def _stored(meeting: Meeting) -> Meeting:
    return Meeting.objects.get(pk=meeting.pk)


def _join_page(client, user, meeting: Meeting):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(reverse("rooms:join", args=[meeting.code]))


def _session(user):
    """The signed-in session a call's socket carries (refusal_at_join reads it again)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session


def _call_refusal(user, meeting: Meeting) -> str | None:
    """What the call's signaling answers a join now: None (in), or the refusal's code."""
    fresh = _stored(meeting)
    session = _session(user) if user is not None else None
    entry = admission.admit(fresh, user, session)
    if entry is None:
        return "not_allowed"
    guest_key = "" if user is not None else "guest-key"
    refusal = admission.refusal_at_join(entry, user, guest_key, session)
    return None if refusal is None else refusal.code


# --- creating ------------------------------------------------------------------------------


def test_a_meeting_for_later_is_an_instant_meeting_nobody_has_started(host) -> None:
    meeting = services.create_meeting_for_later(host)
    stored = _stored(meeting)
    assert stored.kind == Meeting.Kind.INSTANT
    assert stored.status == Meeting.Status.SCHEDULED
    assert stored.host == host
    assert stored.ended_at is None
    assert not stored.participants.exists()
    assert stored.title == f"{host.display_name}'s meeting"
    assert stored.state_label == "Not started"
    # Nobody is in it, so the link's lifetime is counted from now.
    assert stored.link_expires_at == stored.created_at + timedelta(days=365)


def test_a_meeting_for_later_has_no_time_so_no_upcoming_entry_and_no_reminder(host) -> None:
    later = services.create_meeting_for_later(host)
    planned = schedule(host, starts_in=timedelta(minutes=5))
    assert [m.pk for m in upcoming_meetings_for(host)] == [planned.pk]
    due = reminders.due_reminders(later.created_at + timedelta(seconds=1))
    assert {reminder.meeting.pk for reminder in due} == {planned.pk}


def test_an_instant_meeting_is_live_and_instant(host) -> None:
    meeting = _stored(services.create_instant_meeting(host))
    assert (meeting.kind, meeting.status) == (Meeting.Kind.INSTANT, Meeting.Status.LIVE)
    assert meeting.link_expires_at is None  # in use now
    assert not meeting.is_expired


def test_the_first_person_in_starts_a_meeting_for_later(host, other) -> None:
    meeting = services.create_meeting_for_later(host)
    assert _call_refusal(other, meeting) is None
    services.mark_live(meeting)
    assert _stored(meeting).status == Meeting.Status.LIVE


# --- after everyone left ----------------------------------------------------------------


def test_an_instant_meetings_link_lets_others_in_after_everyone_left(client, host, other) -> None:
    meeting = services.create_instant_meeting(host)
    services.mark_ended(meeting)  # the last person left
    stored = _stored(meeting)
    assert stored.status == Meeting.Status.ENDED
    assert stored.ended_at is not None
    assert stored.state_label == "Call ended"
    assert not stored.is_over
    # Someone who was never in it, not only the host, joins again from the link.
    assert _call_refusal(other, meeting) is None
    page = _join_page(client, other, meeting)
    assert page.status_code == 200
    body = page.content.decode()
    assert "This meeting has ended." not in body
    assert "No one is in the call yet." in body
    services.mark_live(meeting)
    assert _stored(meeting).status == Meeting.Status.LIVE
    assert _stored(meeting).ended_at is None


def test_an_instant_meeting_with_guests_takes_a_guests_knock_after_everyone_left(host) -> None:
    meeting = services.create_instant_meeting(host)
    meeting.access_policy = Meeting.Access.GUESTS
    meeting.save()
    services.mark_ended(meeting)
    # The guest asks to be let in, as in any call; not "the meeting has ended".
    assert _call_refusal(None, meeting) == "lobby"


def test_ending_an_instant_meeting_for_all_ends_this_call_only(client, host, other) -> None:
    meeting = services.create_instant_meeting(host)
    moderation.end_meeting(host, meeting)
    assert _stored(meeting).status == Meeting.Status.ENDED
    assert _call_refusal(other, meeting) is None
    assert _join_page(client, other, meeting).status_code == 200


def test_a_one_off_scheduled_meeting_that_ended_still_lets_only_its_host_back(
    client, host, other
) -> None:
    meeting = schedule(host, invitees=[other.email])
    services.mark_live(meeting)
    services.mark_ended(meeting)
    stored = _stored(meeting)
    assert stored.is_over
    assert access.only_moderators_may_restart(stored)
    assert _call_refusal(other, meeting) == "meeting_ended"
    assert _call_refusal(host, meeting) is None
    assert not access.can_enter_call(other, stored)
    assert access.can_enter_call(host, stored)
    ended_page = _join_page(client, other, meeting).content.decode()
    assert "This meeting has ended" in ended_page
    assert "Join now" not in ended_page  # the end screen, not a pre-join (issue 12.5)


def test_an_ended_instant_meeting_can_still_be_edited_but_an_expired_one_cannot(host) -> None:
    meeting = services.create_instant_meeting(host)
    services.mark_ended(meeting)
    updated = services.update_meeting(host, meeting, details_of(meeting, title="Stand-up"))
    assert updated.title == "Stand-up"
    Meeting.objects.filter(pk=meeting.pk).update(status=Meeting.Status.EXPIRED)
    with pytest.raises(ValidationError):
        services.update_meeting(host, _stored(meeting), details_of(meeting, title="Again"))


# --- expiry ------------------------------------------------------------------------------


def test_an_unused_meeting_for_later_expires_after_the_set_days(client, settings, host, other):
    settings.ROOMS_INSTANT_MEETING_EXPIRY_DAYS = 30
    with time_machine.travel(CREATED, tick=False):
        meeting = services.create_meeting_for_later(host)
    with time_machine.travel(CREATED + timedelta(days=30) - timedelta(minutes=1), tick=False):
        assert not _stored(meeting).is_expired
        assert _join_page(client, other, meeting).status_code == 200
    with time_machine.travel(CREATED + timedelta(days=30), tick=False):
        stored = _stored(meeting)
        assert stored.is_expired
        assert access.join_decision(host, stored).reason == "expired"
        assert _call_refusal(host, meeting) == "not_allowed"  # the call refuses the host too
        for person in (other, host, None):
            page = _join_page(client, person, meeting)
            assert page.status_code == 410
            assert "This meeting link has expired" in page.content.decode()
            assert "was not used for 30 days" in page.content.decode()


def test_each_call_pushes_the_expiry_back(client, settings, host, other) -> None:
    settings.ROOMS_INSTANT_MEETING_EXPIRY_DAYS = 30
    with time_machine.travel(CREATED, tick=False):
        meeting = services.create_instant_meeting(host)
    used = CREATED + timedelta(days=20)
    with time_machine.travel(used, tick=False):
        services.mark_ended(meeting)  # the call ends on day 20
    with time_machine.travel(CREATED + timedelta(days=45), tick=False):
        # 45 days after it was created, but 25 after its last call: still good.
        assert _stored(meeting).link_expires_at == used + timedelta(days=30)
        assert _join_page(client, other, meeting).status_code == 200
        assert services.expire_unused_links() == 0
    with time_machine.travel(used + timedelta(days=30), tick=False):
        assert _join_page(client, other, meeting).status_code == 410


def test_the_clean_up_task_marks_only_unused_instant_links_expired(settings, host) -> None:
    settings.ROOMS_INSTANT_MEETING_EXPIRY_DAYS = 10
    with time_machine.travel(CREATED, tick=False):
        for_later = services.create_meeting_for_later(host)
        ended = services.create_instant_meeting(host)
        services.mark_ended(ended)
        in_a_call = services.create_instant_meeting(host)
        cancelled = services.create_meeting_for_later(host)
        services.cancel_meeting(host, cancelled)
    with time_machine.travel(CREATED + timedelta(days=5), tick=False):
        recent = services.create_meeting_for_later(host)
    with time_machine.travel(CREATED + timedelta(days=10), tick=False):
        scheduled = schedule(host, starts_in=timedelta(days=1))
        Meeting.objects.filter(pk=scheduled.pk).update(created_at=CREATED)
        assert tasks.expire_unused_meeting_links() == 2
        assert tasks.expire_unused_meeting_links() == 0
    statuses = {m.pk: m.status for m in Meeting.objects.all()}
    assert statuses == {
        for_later.pk: Meeting.Status.EXPIRED,
        ended.pk: Meeting.Status.EXPIRED,
        in_a_call.pk: Meeting.Status.LIVE,
        cancelled.pk: Meeting.Status.CANCELLED,
        recent.pk: Meeting.Status.SCHEDULED,
        scheduled.pk: Meeting.Status.SCHEDULED,
    }
    stored = _stored(for_later)
    assert stored.is_expired
    assert stored.is_over
    assert stored.state_label == "Link expired"
    services.mark_live(stored)  # an expired link does not come back to life
    assert _stored(for_later).status == Meeting.Status.EXPIRED


def test_scheduled_meetings_never_expire(settings, host) -> None:
    settings.ROOMS_INSTANT_MEETING_EXPIRY_DAYS = 1
    with time_machine.travel(CREATED, tick=False):
        meeting = schedule(host, starts_in=timedelta(days=1))
        services.mark_live(meeting)
        services.mark_ended(meeting)
    with time_machine.travel(CREATED + timedelta(days=400), tick=False):
        stored = _stored(meeting)
        assert stored.link_expires_at is None
        assert not stored.is_expired
        assert services.expire_unused_links() == 0


def test_the_clean_up_runs_hourly_on_beat() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["rooms-expire-unused-meeting-links"]
    assert entry["task"] == tasks.expire_unused_meeting_links.name
    assert entry["schedule"] == 3600.0


def test_an_expiry_of_less_than_a_day_is_reported(settings) -> None:
    settings.ROOMS_INSTANT_MEETING_EXPIRY_DAYS = 0
    assert [m.id for m in checks.check_instant_meeting_expiry(None)] == ["rooms.E007"]
    settings.ROOMS_INSTANT_MEETING_EXPIRY_DAYS = 1
    assert checks.check_instant_meeting_expiry(None) == []


# --- the meeting page says which -----------------------------------------------------------


def _detail(client, user, meeting: Meeting) -> str:
    client.logout()
    client.force_login(user)
    response = client.get(reverse("rooms:detail", args=[meeting.code]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_meeting_page_of_an_ended_instant_meeting_offers_its_link_not_a_calendar(
    client, host
) -> None:
    meeting = services.create_instant_meeting(host)
    services.mark_ended(meeting)
    body = _detail(client, host, meeting)
    assert "Call ended" in body
    assert "The last call ended" in body
    assert "The link works whenever it is used" in body
    assert f'href="/{meeting.code}"' in body  # Join
    assert "Copy link" in body
    assert "Add to Google Calendar" not in body
    assert "Download .ics" not in body
    assert "Cancel meeting" in body  # the host can still turn the link off


def test_the_meeting_page_of_an_expired_link_offers_no_join(client, settings, host) -> None:
    settings.ROOMS_INSTANT_MEETING_EXPIRY_DAYS = 1
    with time_machine.travel(CREATED, tick=False):
        meeting = services.create_meeting_for_later(host)
    with time_machine.travel(CREATED + timedelta(days=2), tick=False):
        body = _detail(client, host, meeting)
    assert "Link expired" in body
    assert "This link has expired" in body
    assert f'href="/{meeting.code}"' not in body
    assert "Copy link" not in body
    assert "Cancel meeting" not in body


def test_the_meeting_page_of_an_ended_scheduled_meeting_offers_no_join(client, host, other) -> None:
    meeting = schedule(host, invitees=[other.email])
    services.mark_live(meeting)
    services.mark_ended(meeting)
    body = _detail(client, other, meeting)
    assert ">Ended<" in body
    assert f'href="/{meeting.code}"' not in body


def test_the_migration_takes_meetings_made_by_new_meeting_for_instant_ones(host) -> None:
    from importlib import import_module

    from django.apps import apps

    migration = import_module("rooms.migrations.0006_meeting_kind_and_expired_status")
    made_by_new_meeting = services.create_instant_meeting(host)
    planned = schedule(host, starts_in=timedelta(days=1))
    planned_now = schedule(host, starts_in=timedelta(0), invitees=["ana@example.org"])
    Meeting.objects.update(kind=Meeting.Kind.SCHEDULED)  # as before the field existed
    migration.mark_instant_meetings(apps, None)
    kinds = dict(Meeting.objects.values_list("pk", "kind"))
    assert kinds == {
        made_by_new_meeting.pk: Meeting.Kind.INSTANT,
        planned.pk: Meeting.Kind.SCHEDULED,
        planned_now.pk: Meeting.Kind.SCHEDULED,
    }
