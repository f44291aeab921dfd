"""Scheduling, editing and cancelling: the pages, the domain rules and the calendar emails
(run through the real Celery tasks, eagerly; the broker path is in test_meetings_worker)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from dateutil.rrule import rrulestr
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from rooms import services
from rooms.models import Invitation, Meeting
from rooms.recurrence import occurrences_between
from rooms.tests.meetings_support import (
    attendees,
    details_of,
    eager_celery,  # noqa: F401  (fixture)
    ics_of,
    mails_to,
    make_user,
    schedule,
    utc,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

FROZEN_NOW = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)  # Berlin is on CET (+1) until 29 March


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "title": "Quarterly review",
        "description": "Numbers & plans <b>bold</b>",
        "start": "2026-03-27T09:00",
        "duration": "60",
        "time_zone": "Europe/Berlin",
        "recurrence": "",
        "access_policy": Meeting.Access.INVITEES,
        "invitees": "ana@example.org, Ben@Example.org\nnew.person@example.net",
        "co_hosts": "",
    }
    data.update(overrides)
    return data


@time_machine.travel(FROZEN_NOW, tick=False)
def test_scheduling_sends_each_invitee_an_ics_with_uid_join_link_and_utc_times(
    client, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    host = make_user("host@example.org")
    make_user("ana@example.org", time_zone="America/New_York")
    client.force_login(host)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("rooms:schedule"), form_data())
    meeting = Meeting.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("rooms:detail", args=[meeting.code])
    assert meeting.starts_at == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert meeting.ends_at == datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
    assert sorted(meeting.invitations.values_list("email", flat=True)) == [
        "ana@example.org",
        "ben@example.org",
        "new.person@example.net",
    ]
    assert sorted(m.to[0] for m in mailoutbox) == [
        "ana@example.org",
        "ben@example.org",
        "new.person@example.net",
    ]
    for message in mailoutbox:
        calendar, event, mimetype = ics_of(message)
        assert "method=REQUEST" in mimetype
        assert str(calendar["method"]) == "REQUEST"
        assert str(event["uid"]) == meeting.ical_uid
        assert int(event["sequence"]) == 0
        assert utc(event, "dtstart") == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)
        assert utc(event, "dtend") == datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
        assert str(event["url"]) == meeting.join_url
        assert str(event["location"]) == meeting.join_url
        assert meeting.join_url in str(event["description"])
        assert str(event["organizer"]) == "mailto:host@example.org"
        assert attendees(event) == {"ana@example.org", "ben@example.org", "new.person@example.net"}
        assert meeting.join_url in message.body
        assert "rsvp/" in message.body
    # Times in the email body are the recipient's: Ana is in New York (EDT since 8 March).
    (ana_mail,) = mails_to(mailoutbox, "ana@example.org")
    assert "04:00 (America/New_York)" in ana_mail.body
    (ben_mail,) = mails_to(mailoutbox, "ben@example.org")
    assert "09:00 (Europe/Berlin)" in ben_mail.body
    invitation = Invitation.objects.get(email="ana@example.org")
    assert (invitation.last_sent_sequence, invitation.last_sent_method) == (0, "REQUEST")


@time_machine.travel(FROZEN_NOW, tick=False)
def test_a_meeting_after_the_dst_change_is_an_hour_earlier_in_utc(
    client, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    client.force_login(make_user("host@example.org"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("rooms:schedule"), form_data(start="2026-03-30T09:00"))
    _calendar, event, _ = ics_of(mailoutbox[0])
    assert utc(event, "dtstart") == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # 09:00 CEST


@time_machine.travel(FROZEN_NOW, tick=False)
def test_a_weekly_meeting_keeps_its_local_time_across_the_dst_change(
    client, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    client.force_login(make_user("host@example.org"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("rooms:schedule"), form_data(recurrence="FREQ=WEEKLY"))
    meeting = Meeting.objects.get()
    calendar, event, _ = ics_of(mailoutbox[0])
    assert calendar.walk("VTIMEZONE"), "a zoned recurring event carries its VTIMEZONE"
    assert str(event["uid"]) == meeting.ical_uid
    assert event["rrule"].to_ical() == b"FREQ=WEEKLY"
    start = event.decoded("dtstart")
    expanded = rrulestr("FREQ=WEEKLY", dtstart=start)
    first_two = [moment.astimezone(UTC) for moment in expanded[:2]]
    expected = [datetime(2026, 3, 27, 8, 0, tzinfo=UTC), datetime(2026, 4, 3, 7, 0, tzinfo=UTC)]
    assert first_two == expected
    assert occurrences_between(meeting, FROZEN_NOW, FROZEN_NOW + timedelta(days=14)) == expected


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"start": "2026-03-19T09:00"}, "start", "past"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "Unknown time zone: Mars/Olympus_Mons"),
        ({"invitees": "ana@example.org, not-an-email, @x"}, "invitees", "Not valid email"),
        ({"start": "2026-03-29T02:30"}, "start", "does not exist"),
        ({"duration": "0"}, "duration", "not one of the available choices"),
        ({"recurrence": "FREQ=SECONDLY"}, "recurrence", "not one of the available choices"),
        ({"access_policy": "everyone"}, "access_policy", "not one of the available choices"),
        ({"start": "tomorrow-ish"}, "start", "valid date"),
        ({"title": ""}, "title", "required"),
    ],
)
@time_machine.travel(FROZEN_NOW, tick=False)
def test_bad_schedule_input_is_a_form_error_and_creates_nothing(
    client, mailoutbox, overrides, field, message
) -> None:
    client.force_login(make_user("host@example.org"))
    response = client.post(reverse("rooms:schedule"), form_data(**overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors
    assert message in " ".join(errors[field])
    assert not Meeting.objects.exists()
    assert mailoutbox == []


@time_machine.travel(FROZEN_NOW, tick=False)
def test_more_than_200_invitees_is_refused(client) -> None:
    client.force_login(make_user("host@example.org"))
    many = ", ".join(f"person{n}@example.org" for n in range(201))
    response = client.post(reverse("rooms:schedule"), form_data(invitees=many))
    assert response.status_code == 200
    assert "At most 200" in " ".join(response.context["form"].errors["invitees"])
    assert not Meeting.objects.exists()
    exactly = ", ".join(f"person{n}@example.org" for n in range(200))
    client.post(reverse("rooms:schedule"), form_data(invitees=exactly))
    assert Meeting.objects.get().invitations.count() == 200


@time_machine.travel(FROZEN_NOW, tick=False)
def test_the_domain_layer_refuses_an_end_before_the_start() -> None:
    host = make_user("host@example.org")
    with pytest.raises(ValidationError) as caught:
        schedule(host, length=timedelta(minutes=-30))
    assert "ends_at" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        schedule(host, starts_in=timedelta(hours=-2))
    assert "starts_at" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        schedule(host, time_zone="Nowhere/Special")
    assert "time_zone" in caught.value.message_dict
    assert not Meeting.objects.exists()


def test_new_meeting_is_live_and_goes_straight_to_its_join_page(client) -> None:
    host = make_user("host@example.org")
    client.force_login(host)
    response = client.post(reverse("rooms:new"))
    meeting = Meeting.objects.get()
    assert meeting.status == Meeting.Status.LIVE
    assert meeting.host == host
    assert response.status_code == 302
    assert response["Location"] == f"/{meeting.code}"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert f'data-meeting-code="{meeting.code}"' in page.content.decode()


def test_join_codes_have_meets_shape_and_differ() -> None:
    host = make_user("host@example.org")
    codes = {services.create_instant_meeting(host).code for _ in range(50)}
    assert len(codes) == 50
    pattern = r"^[a-z]{3}-[a-z]{4}-[a-z]{3}$"
    assert all(re.match(pattern, code) for code in codes)


@time_machine.travel(FROZEN_NOW, tick=False)
def test_editing_bumps_the_sequence_and_resends_to_everyone(
    client, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    host = make_user("host@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        meeting = schedule(host, invitees=["ana@example.org", "ben@example.org"])
    mailoutbox.clear()
    client.force_login(host)
    edit_url = reverse("rooms:edit", args=[meeting.code])
    form = client.get(edit_url).context["form"]
    data = {name: form.initial.get(name) or "" for name in form.fields}
    data["start"] = data["start"].strftime("%Y-%m-%dT%H:%M")
    data.update(title="Planning (moved)", invitees="ana@example.org\ncarl@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(edit_url, data)
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.title == "Planning (moved)"
    assert meeting.sequence == 1
    by_person = {message.to[0]: message for message in mailoutbox}
    assert set(by_person) == {"ana@example.org", "ben@example.org", "carl@example.org"}
    _cal, update, _ = ics_of(by_person["ana@example.org"])
    assert by_person["ana@example.org"].subject.startswith("Updated invitation")
    assert (str(update["uid"]), int(update["sequence"])) == (meeting.ical_uid, 1)
    assert str(update["summary"]) == "Planning (moved)"
    removed_cal, removed, _ = ics_of(by_person["ben@example.org"])
    assert str(removed_cal["method"]) == "CANCEL"
    assert str(removed["uid"]) == meeting.ical_uid
    added_cal, added, _ = ics_of(by_person["carl@example.org"])
    assert by_person["carl@example.org"].subject.startswith("Invitation")
    assert (str(added_cal["method"]), int(added["sequence"])) == ("REQUEST", 1)
    # A second edit bumps again.
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.update_meeting(host, meeting, details_of(meeting, description="Agenda"))
    meeting.refresh_from_db()
    assert meeting.sequence == 2
    assert {int(ics_of(m)[1]["sequence"]) for m in mailoutbox} == {2}


@time_machine.travel(FROZEN_NOW, tick=False)
def test_saving_without_changes_sends_nothing(mailoutbox, django_capture_on_commit_callbacks):
    host = make_user("host@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        meeting = schedule(host, invitees=["ana@example.org"])
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.update_meeting(host, meeting, details_of(meeting))
    meeting.refresh_from_db()
    assert meeting.sequence == 0
    assert mailoutbox == []


@time_machine.travel(FROZEN_NOW, tick=False)
def test_cancelling_sends_method_cancel_to_every_invitee(
    client, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    host = make_user("host@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        meeting = schedule(host, invitees=["ana@example.org", "ben@example.org"])
    mailoutbox.clear()
    client.force_login(host)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("rooms:cancel", args=[meeting.code]))
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.CANCELLED
    assert sorted(m.to[0] for m in mailoutbox) == ["ana@example.org", "ben@example.org"]
    for message in mailoutbox:
        calendar, event, mimetype = ics_of(message)
        assert "method=CANCEL" in mimetype
        assert str(calendar["method"]) == "CANCEL"
        assert str(event["status"]) == "CANCELLED"
        assert (str(event["uid"]), int(event["sequence"])) == (meeting.ical_uid, 1)
    # Cancelling twice changes nothing more.
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_meeting(host, meeting)
    assert mailoutbox == []


@time_machine.travel(FROZEN_NOW, tick=False)
def test_only_the_host_can_change_or_cancel_through_the_domain_layer() -> None:
    host, cohost = make_user("host@example.org"), make_user("co@example.org")
    meeting = schedule(host, invitees=["ana@example.org"], co_hosts=[cohost])
    for actor in (cohost, make_user("ana@example.org"), make_user("x@example.org")):
        with pytest.raises(PermissionDenied):
            services.update_meeting(actor, meeting, details_of(meeting, title="Mine now"))
        with pytest.raises(PermissionDenied):
            services.cancel_meeting(actor, meeting)
    meeting.refresh_from_db()
    assert (meeting.title, meeting.status) == ("Planning", Meeting.Status.SCHEDULED)


def test_mark_live_and_mark_ended_follow_the_call() -> None:
    host = make_user("host@example.org")
    meeting = schedule(host)
    services.mark_live(meeting)
    assert Meeting.objects.get(pk=meeting.pk).status == Meeting.Status.LIVE
    services.mark_ended(meeting)
    stored = Meeting.objects.get(pk=meeting.pk)
    assert stored.status == Meeting.Status.ENDED
    assert stored.ended_at is not None
    weekly = schedule(host, recurrence="FREQ=WEEKLY")
    services.mark_live(weekly)
    services.mark_ended(weekly)
    assert Meeting.objects.get(pk=weekly.pk).status == Meeting.Status.SCHEDULED
    services.cancel_meeting(host, weekly)
    services.mark_live(weekly)
    assert Meeting.objects.get(pk=weekly.pk).status == Meeting.Status.CANCELLED


def test_the_schedule_page_starts_in_the_users_time_zone(client) -> None:
    client.force_login(make_user("host@example.org", time_zone="Asia/Tokyo"))
    response = client.get(reverse("rooms:schedule"))
    assert response.status_code == 200
    assert response.context["form"].initial["time_zone"] == "Asia/Tokyo"
    assert 'name="time_zone" value="Asia/Tokyo"' in response.content.decode()


@time_machine.travel(FROZEN_NOW, tick=False)
def test_a_time_the_viewers_zone_skips_can_be_scheduled_in_another_zone(client) -> None:
    # 02:30 on 29 March does not exist in Berlin (the viewer's zone) but does in New York.
    client.force_login(make_user("host@example.org", time_zone="Europe/Berlin"))
    data = form_data(start="2026-03-29T02:30", time_zone="America/New_York")
    response = client.post(reverse("rooms:schedule"), data)
    assert response.status_code == 302
    assert Meeting.objects.get().starts_at == datetime(2026, 3, 29, 6, 30, tzinfo=UTC)
