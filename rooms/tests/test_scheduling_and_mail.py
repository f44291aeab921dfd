"""Scheduling and mail as in Meet (issue 12, item 9): the proposed start, the searchable time
zone, "Cancel" that asks first and can cancel one occurrence (the .ics's EXDATE, a
cancellation for that occurrence alone), "Add to Outlook" for repeating meetings, HTML mails
with a Join button in each recipient's zone, the RSVP result page, and past meetings on home.
Real database, the real Celery tasks run eagerly."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from icalendar import Calendar

from rooms import calendar, services
from rooms.emails import reminder_email, rsvp_token
from rooms.forms import next_half_hour
from rooms.models import CancelledOccurrence, Invitation, Meeting
from rooms.recurrence import next_occurrence, occurrences_between
from rooms.reminders import due_reminders
from rooms.selectors import past_meetings_for, upcoming_meetings_for
from rooms.tests.meetings_support import (
    eager_celery,  # noqa: F401  (fixture)
    ics_of,
    mails_to,
    make_user,
    schedule,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


@pytest.fixture(autouse=True)
def _commits_send_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's transaction never commits: run what the domain defers to its commit (the
    calendar emails) at once, as a committed change would."""
    monkeypatch.setattr(
        "django.db.transaction.on_commit", lambda func, using=None, robust=False: func()
    )


NOW = datetime(2026, 3, 20, 10, 5, tzinfo=UTC)  # Berlin: 11:05 (CET)
# A weekly meeting on Fridays, 09:00 Berlin (08:00 UTC in winter, 07:00 UTC from 29 March).
WEEKLY_START = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)
SECOND = datetime(2026, 4, 3, 7, 0, tzinfo=UTC)  # the second occurrence, after the DST change


def _weekly(host, invitees=("ana@example.org", "out@example.net")) -> Meeting:
    return schedule(
        host,
        title="Weekly sync",
        starts_at=WEEKLY_START,
        time_zone="Europe/Berlin",
        recurrence="FREQ=WEEKLY",
        invitees=list(invitees),
    )


def _html(message) -> str:
    (html, mimetype) = message.alternatives[0]
    assert mimetype == "text/html"
    return html


# --- 1. the proposed start and the searchable time zone ------------------------------------


@pytest.mark.parametrize(
    ("now", "proposed"),
    [
        (datetime(2026, 3, 20, 10, 5, tzinfo=UTC), datetime(2026, 3, 20, 11, 30)),
        (datetime(2026, 3, 20, 10, 30, tzinfo=UTC), datetime(2026, 3, 20, 12, 0)),
        (datetime(2026, 3, 20, 22, 59, tzinfo=UTC), datetime(2026, 3, 21, 0, 0)),
    ],
)
def test_the_next_half_hour_is_taken_in_the_hosts_zone(now, proposed) -> None:
    assert next_half_hour(now, "Europe/Berlin") == proposed


@time_machine.travel(NOW, tick=False)
def test_the_schedule_form_proposes_the_next_half_hour_for_an_hour(client) -> None:
    client.force_login(make_user("host@example.org", time_zone="Europe/Berlin"))
    page = client.get(reverse("rooms:schedule")).content.decode()
    assert 'name="start" value="2026-03-20T11:30"' in page
    assert re.search(r'<option value="60" selected>1 hour</option>', page)


def test_the_time_zone_is_a_searchable_box_with_every_zone_listed(client) -> None:
    client.force_login(make_user("host@example.org", time_zone="Asia/Tokyo"))
    page = client.get(reverse("rooms:schedule")).content.decode()
    assert re.search(
        r'<input type="text" name="time_zone" value="Asia/Tokyo"[^>]*list="time-zone-names"', page
    )
    datalist = re.search(r'<datalist id="time-zone-names">(.*?)</datalist>', page, re.S)
    assert datalist is not None
    assert '<option value="Europe/Berlin">' in datalist.group(1)
    assert datalist.group(1).count("<option") > 400


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("typed", "stored"),
    [("Europe/Berlin", "Europe/Berlin"), ("america/new york", "America/New_York")],
)
def test_a_typed_time_zone_is_read_as_the_zone_it_names(client, typed, stored) -> None:
    client.force_login(make_user("host@example.org"))
    data = {
        "title": "Zones",
        "start": "2026-03-27T09:00",
        "duration": "60",
        "time_zone": typed,
        "access_policy": Meeting.Access.SIGNED_IN,
    }
    assert client.post(reverse("rooms:schedule"), data).status_code == 302
    assert Meeting.objects.get().time_zone == stored


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("typed", ["Berlin", "Europe/Berlin<script>", ""])
def test_a_time_zone_not_in_the_list_is_refused_and_nothing_is_scheduled(client, typed) -> None:
    client.force_login(make_user("host@example.org"))
    data = {
        "title": "Zones",
        "start": "2026-03-27T09:00",
        "duration": "60",
        "time_zone": typed,
        "access_policy": Meeting.Access.SIGNED_IN,
    }
    response = client.post(reverse("rooms:schedule"), data)
    assert response.status_code == 200
    assert "time_zone" in response.context["form"].errors
    assert "<script>" not in response.content.decode().split("<main")[1]
    assert not Meeting.objects.exists()


# --- 2. cancel asks first; one occurrence or the whole series -----------------------------


@time_machine.travel(NOW, tick=False)
def test_cancel_meeting_asks_for_confirmation_before_anything_is_cancelled(
    client, mailoutbox
) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, invitees=["ana@example.org"])
    mailoutbox.clear()
    client.force_login(host)
    detail = client.get(meeting.get_absolute_url()).content.decode()
    cancel_url = reverse("rooms:cancel", args=[meeting.code])
    # On the meeting page "Cancel meeting" is a link to the question, not a one-click form.
    assert f'href="{cancel_url}"' in detail
    assert f'action="{cancel_url}"' not in detail
    page = client.get(cancel_url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Cancel “Planning”?" in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert "This occurrence" not in body  # a one-off meeting has nothing to choose
    meeting.refresh_from_db()
    assert (meeting.status, meeting.sequence, mailoutbox) == (Meeting.Status.SCHEDULED, 0, [])
    # The POST needs the CSRF token.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(host)
    assert strict.post(cancel_url, {"scope": "series"}).status_code == 403
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.SCHEDULED
    # Confirmed: cancelled, and the invitee is told.
    response = client.post(cancel_url, {"scope": "series"})
    assert response["Location"] == meeting.get_absolute_url()
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.CANCELLED
    assert [m.subject.split(":")[0] for m in mailoutbox] == ["Cancelled"]


@time_machine.travel(NOW, tick=False)
def test_a_repeating_meeting_offers_this_occurrence_or_the_whole_series(client) -> None:
    host = make_user("host@example.org", time_zone="Europe/Berlin")
    meeting = _weekly(host)
    client.force_login(host)
    detail = client.get(meeting.get_absolute_url()).content.decode()
    link = re.search(r'href="(/meetings/[^"]+/cancel[^"]*)"', detail)
    assert link is not None
    body = client.get(link.group(1).replace("&amp;", "&")).content.decode()
    assert "This occurrence" in body
    assert "The whole series" in body
    # The occurrence the page showed (the next one) is the one proposed, in the viewer's zone.
    selected = re.search(r'<option value="([^"]+)" selected>([^<]+)</option>', body)
    assert selected is not None
    assert datetime.fromisoformat(selected.group(1)) == WEEKLY_START
    assert selected.group(2) == "Friday 27 March 2026, 09:00"
    assert "Saturday 4 April" not in body


@time_machine.travel(NOW, tick=False)
def test_cancelling_one_occurrence_keeps_the_series_and_tells_invitees_about_that_one(
    client, mailoutbox
) -> None:
    host = make_user("host@example.org", time_zone="Europe/Berlin")
    meeting = _weekly(host)
    mailoutbox.clear()
    client.force_login(host)
    response = client.post(
        reverse("rooms:cancel", args=[meeting.code]),
        {"scope": "occurrence", "occurrence": SECOND.isoformat()},
    )
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.SCHEDULED
    assert meeting.sequence == 1
    assert list(CancelledOccurrence.objects.values_list("starts_at", flat=True)) == [SECOND]

    # Each invitee gets a METHOD:CANCEL for that occurrence alone.
    assert sorted(m.to[0] for m in mailoutbox) == ["ana@example.org", "out@example.net"]
    for message in mailoutbox:
        cal, event, mimetype = ics_of(message)
        assert mimetype == "text/calendar; method=CANCEL"
        assert str(cal["method"]) == "CANCEL"
        assert str(event["uid"]) == meeting.ical_uid
        assert event.decoded("recurrence-id").astimezone(UTC) == SECOND
        assert str(event["status"]) == "CANCELLED"
        assert event["sequence"] == 1
        assert "rrule" not in event
        assert "The other occurrences stay as they are." in message.body
    out = mails_to(mailoutbox, "out@example.net")[0]
    assert "Friday 03 April 2026, 09:00 (Europe/Berlin)" in out.subject

    # The series' .ics leaves it out (EXDATE in the meeting's zone), and so does everything
    # that expands the rule: the next occurrence, the upcoming list, reminders.
    ics = Calendar.from_ical(client.get(reverse("rooms:ics", args=[meeting.code])).content)
    (event,) = ics.walk("VEVENT")
    exdates = [d.dt.astimezone(UTC) for d in event["exdate"].dts]
    assert exdates == [SECOND]
    # In DTSTART's zone (RFC 5545: EXDATE of the same type as DTSTART).
    assert "EXDATE;TZID=Europe/Berlin:20260403T090000" in ics.to_ical().decode()
    assert str(event["status"]) == "CONFIRMED"
    starts = occurrences_between(meeting, WEEKLY_START, WEEKLY_START + timedelta(days=15))
    assert SECOND not in starts
    assert len(starts) == 2
    assert next_occurrence(meeting, WEEKLY_START + timedelta(hours=2)) == SECOND + timedelta(days=7)
    with time_machine.travel(SECOND - timedelta(minutes=5), tick=False):
        (upcoming,) = upcoming_meetings_for(host)
        assert upcoming.next_start == SECOND + timedelta(days=7)  # type: ignore[attr-defined]
        assert not [
            r for r in due_reminders(SECOND - timedelta(minutes=5)) if r.occurrence_start == SECOND
        ]
    # The meeting page moves on to the occurrence after it.
    with time_machine.travel(SECOND - timedelta(hours=1), tick=False):
        detail = client.get(meeting.get_absolute_url()).content.decode()
        assert "Friday 10 April 2026, 09:00" in detail


@time_machine.travel(NOW, tick=False)
def test_the_whole_series_is_cancelled_as_before(client, mailoutbox) -> None:
    host = make_user("host@example.org")
    meeting = _weekly(host)
    mailoutbox.clear()
    client.force_login(host)
    client.post(reverse("rooms:cancel", args=[meeting.code]), {"scope": "series"})
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.CANCELLED
    assert not CancelledOccurrence.objects.exists()
    for message in mailoutbox:
        _cal, event, _mimetype = ics_of(message)
        assert "recurrence-id" not in event
        assert str(event["status"]) == "CANCELLED"
        assert "rrule" in event


@time_machine.travel(NOW, tick=False)
def test_only_a_real_coming_occurrence_can_be_cancelled(client) -> None:
    host = make_user("host@example.org")
    meeting = _weekly(host, invitees=())
    with pytest.raises(ValidationError, match="no occurrence at that time"):
        services.cancel_occurrence(host, meeting, SECOND + timedelta(minutes=30))
    one_off = schedule(host)
    with pytest.raises(ValidationError, match="repeating"):
        services.cancel_occurrence(host, one_off, one_off.starts_at)
    with (
        time_machine.travel(WEEKLY_START + timedelta(minutes=10), tick=False),
        pytest.raises(ValidationError, match="already started"),
    ):
        services.cancel_occurrence(host, meeting, WEEKLY_START)
    # Twice the same: nothing more happens.
    services.cancel_occurrence(host, meeting, SECOND)
    services.cancel_occurrence(host, meeting, SECOND)
    meeting.refresh_from_db()
    assert meeting.sequence == 1
    # A stale choice on the page is a form error, not a crash.
    client.force_login(host)
    response = client.post(
        reverse("rooms:cancel", args=[meeting.code]),
        {"scope": "occurrence", "occurrence": "2020-01-01T00:00:00+00:00"},
    )
    assert response.status_code == 200
    assert "Choose the occurrence to cancel." in response.content.decode()


@time_machine.travel(NOW, tick=False)
def test_moving_a_series_forgets_occurrences_cancelled_at_the_old_time(client) -> None:
    from rooms.tests.meetings_support import details_of

    host = make_user("host@example.org")
    meeting = _weekly(host, invitees=())
    services.cancel_occurrence(host, meeting, SECOND)
    services.update_meeting(
        host,
        meeting,
        details_of(
            meeting,
            starts_at=WEEKLY_START + timedelta(hours=1),
            ends_at=WEEKLY_START + timedelta(hours=2),
        ),
    )
    assert not CancelledOccurrence.objects.exists()


# --- 3. "Add to Outlook" keeps the repetition ---------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_add_to_outlook_for_a_repeating_meeting_is_the_ics(client) -> None:
    host = make_user("host@example.org")
    weekly = _weekly(host, invitees=())
    one_off = schedule(host)
    assert calendar.outlook_calendar_url(weekly) is None
    assert calendar.outlook_calendar_url(one_off).startswith("https://outlook.live.com/")
    client.force_login(host)
    page = client.get(weekly.get_absolute_url()).content.decode()
    assert "outlook.live.com" not in page
    ics_url = reverse("rooms:ics", args=[weekly.code])
    assert (
        f'<a href="{ics_url}" aria-describedby="outlook-ics-note">Add to Outlook (.ics)</a>' in page
    )
    assert "Outlook's web links cannot repeat an event" in page
    ics = Calendar.from_ical(client.get(ics_url).content)
    assert ics.walk("VEVENT")[0]["rrule"].to_ical() == b"FREQ=WEEKLY"
    assert "outlook.live.com" in client.get(one_off.get_absolute_url()).content.decode()


# --- 4. HTML mails, times in each recipient's zone ----------------------------------------


@time_machine.travel(NOW, tick=False)
def test_invitations_have_a_text_and_an_html_part_with_a_join_button_and_the_ics(
    mailoutbox,
) -> None:
    host = make_user("host@example.org", full_name="Ann <b>Lee</b>")
    meeting = schedule(
        host,
        title='Budget <script>alert("x")</script>',
        description="Bring <img src=x onerror=alert(1)> & numbers",
        starts_at=WEEKLY_START,
        time_zone="Europe/Berlin",
        invitees=["out@example.net"],
    )
    (message,) = mailoutbox
    html = _html(message)
    assert '<script>alert("x")</script>' in message.body  # the text part is plain text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; numbers" in html
    assert "Ann &lt;b&gt;Lee&lt;/b&gt;" in html
    assert "<style" not in html  # inline styles only
    join = re.search(r'<a href="([^"]+)" style="[^"]+">Join meeting</a>', html)
    assert join is not None
    assert join.group(1) == meeting.join_url
    for answer in ("accepted", "tentative", "declined"):
        assert f"?response={answer}" in html
    _cal, event, mimetype = ics_of(message)
    assert mimetype == "text/calendar; method=REQUEST"
    assert str(event["uid"]) == meeting.ical_uid


@time_machine.travel(NOW, tick=False)
def test_each_recipient_reads_the_time_in_their_zone_with_the_meetings_beside_it(
    mailoutbox,
) -> None:
    host = make_user("host@example.org")
    make_user("ny@example.org", time_zone="America/New_York")
    make_user("utc@example.org", time_zone="UTC", time_zone_chosen=True)
    make_user("never.chose@example.org")  # UTC by default, never chosen
    schedule(
        host,
        starts_at=WEEKLY_START,
        time_zone="Europe/Berlin",
        invitees=[
            "ny@example.org",
            "utc@example.org",
            "never.chose@example.org",
            "out@example.net",
        ],
    )
    ny = mails_to(mailoutbox, "ny@example.org")[0]
    assert "When: Friday 27 March 2026, 04:00 (America/New_York)" in ny.body
    assert "09:00 (Europe/Berlin) in the meeting's time zone" in ny.body
    assert "04:00 (America/New_York)" in ny.subject
    assert "09:00 (Europe/Berlin) in the meeting's time zone" in _html(ny)
    chosen_utc = mails_to(mailoutbox, "utc@example.org")[0]
    assert "When: Friday 27 March 2026, 08:00 (UTC)" in chosen_utc.body
    assert "09:00 (Europe/Berlin) in the meeting's time zone" in chosen_utc.body
    for outsider in ("never.chose@example.org", "out@example.net"):
        message = mails_to(mailoutbox, outsider)[0]
        assert "When: Friday 27 March 2026, 09:00 (Europe/Berlin)" in message.body
        assert "in the meeting's time zone" not in message.body


@time_machine.travel(NOW, tick=False)
def test_another_day_in_the_meetings_zone_is_named_with_its_day(mailoutbox) -> None:
    host = make_user("host@example.org")
    make_user("tokyo@example.org", time_zone="Asia/Tokyo")
    schedule(
        host,
        starts_at=datetime(2026, 3, 27, 20, 0, tzinfo=UTC),  # 21:00 Berlin, 05:00 Tokyo next day
        time_zone="Europe/Berlin",
        invitees=["tokyo@example.org"],
    )
    (message,) = mailoutbox
    assert "When: Saturday 28 March 2026, 05:00 (Asia/Tokyo)" in message.body
    assert "Friday 27 March, 21:00 (Europe/Berlin) in the meeting's time zone" in message.body


@time_machine.travel(NOW, tick=False)
def test_reminders_have_an_html_part_with_the_join_button() -> None:
    host = make_user("host@example.org", time_zone="America/New_York")
    meeting = schedule(host, starts_at=WEEKLY_START, time_zone="Europe/Berlin")
    message = reminder_email(meeting, host.email, WEEKLY_START)
    assert (
        "04:00 (America/New_York) (09:00 (Europe/Berlin) in the meeting's time zone)"
        in message.body
    )
    html = _html(message)
    assert f'<a href="{meeting.join_url}"' in html
    assert "Join meeting" in html


# --- 5. the RSVP pages -------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_rsvp_result_page_has_the_join_link_and_a_way_to_change_the_answer(client) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, invitees=["out@example.net"], starts_at=WEEKLY_START)
    invitation = meeting.invitations.get()
    url = reverse("rooms:rsvp", args=[rsvp_token(invitation)])

    form_page = client.get(url + "?response=tentative").content.decode()
    assert 'class="rsvp-options"' in form_page
    assert (
        'value="tentative" class="" id="id_response_1" required checked' in form_page
        or re.search(r'value="tentative"[^>]*checked', form_page)
    )
    assert "css/meetings.css" in form_page

    done = client.post(url, {"response": "accepted"})
    assert done.status_code == 200
    body = done.content.decode()
    assert "your answer is recorded: <strong>Accepted</strong>" in body
    join_url = "http://testserver" + meeting.join_path
    assert f'value="{join_url}"' in body
    assert f'<a class="button button-primary" href="{join_url}">Join</a>' in body
    assert "Change your answer" in body
    assert re.search(r'value="accepted"[^>]*checked', body)
    assert '<form method="post" class="stack rsvp-choice-form">' in body  # posts to this page

    # Changing it is the same form again.
    again = client.post(url, {"response": "declined"}).content.decode()
    assert "your answer is recorded: <strong>Declined</strong>" in again
    invitation.refresh_from_db()
    assert invitation.response == Invitation.Response.DECLINED


# --- 6. past meetings on the home page ---------------------------------------------------


def test_past_meetings_are_listed_on_home_most_recent_first(client) -> None:
    me = make_user("me@example.org")
    other = make_user("other@example.org")
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start - timedelta(days=1), tick=False):
        one_off = schedule(me, title="Kick-off", starts_at=start)
        invited = schedule(
            other,
            title="Their review",
            starts_at=start + timedelta(days=3),
            invitees=["me@example.org"],
        )
        daily = schedule(me, title="Daily", starts_at=start, recurrence="FREQ=DAILY;COUNT=3")
        future = schedule(me, title="Next quarter", starts_at=start + timedelta(days=60))
        cancelled = schedule(me, title="Called off", starts_at=start + timedelta(days=1))
        services.cancel_meeting(me, cancelled)
        schedule(other, title="Not mine", starts_at=start)
    with time_machine.travel(start + timedelta(days=4), tick=False):
        instant = services.create_instant_meeting(me, "Quick chat")
        services.mark_ended(instant)
    with time_machine.travel(start + timedelta(days=5), tick=False):
        past = past_meetings_for(me)
        assert [m.title for m in past] == ["Quick chat", "Their review", "Daily", "Kick-off"]
        assert past[2].held_at == start + timedelta(days=2)  # type: ignore[attr-defined]
        client.force_login(me)
        home = client.get(reverse("home")).content.decode()
    section = home.split('id="past-heading"')[1]
    assert ">Past meetings</h2>" in home
    for meeting in (instant, invited, daily, one_off):
        assert f'href="{meeting.get_absolute_url()}"' in section
    assert future.title not in section
    assert cancelled.title not in section
    assert "Not mine" not in section
    assert section.index("Quick chat") < section.index("Kick-off")


def test_past_meetings_are_limited_and_empty_says_so(client) -> None:
    me = make_user("me@example.org")
    client.force_login(me)
    assert "No past meetings yet." in client.get(reverse("home")).content.decode()
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start - timedelta(days=1), tick=False):
        for day in range(12):
            schedule(me, title=f"Meeting {day}", starts_at=start + timedelta(days=day))
    with time_machine.travel(start + timedelta(days=20), tick=False):
        titles = [m.title for m in past_meetings_for(me)]
    assert titles == [f"Meeting {day}" for day in range(11, 1, -1)]


@time_machine.travel(NOW, tick=False)
def test_the_rsvp_page_names_the_next_occurrence_not_a_cancelled_one(client) -> None:
    host = make_user("host@example.org")
    meeting = _weekly(host, invitees=["out@example.net"])
    services.cancel_occurrence(host, meeting, WEEKLY_START)
    url = reverse("rooms:rsvp", args=[rsvp_token(meeting.invitations.get())])
    page = client.get(url).content.decode()
    assert "Friday 3 April 2026, 09:00" in page
    assert "27 March" not in page
