"""The end of a repeating meeting: "Ends: never / on <date> / after <N> occurrences" on the
schedule and edit forms, kept in the RRULE (UNTIL in UTC at the end of the day in the
meeting's zone, or COUNT), carried by the .ics and the feed, obeyed by reminders and shown on
the pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
import time_machine
from dateutil.rrule import rrulestr
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from icalendar import Calendar, Event

from rooms import reminders, services
from rooms.models import Meeting, ReminderDelivery
from rooms.recurrence import (
    RecurrenceEnd,
    describe_rule,
    end_of_day_utc,
    occurrences_between,
    split_end,
    with_end,
)
from rooms.tests.meetings_support import (
    details_of,
    eager_celery,  # noqa: F401  (fixture)
    ics_of,
    make_user,
    schedule,
)
from rooms.tests.test_meetings_browser import page  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

FROZEN_NOW = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)  # Berlin is on CET (+1) until 29 March
FIRST = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)  # Friday 27 March 2026, 09:00 CET


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "title": "Team sync",
        "description": "",
        "start": "2026-03-27T09:00",
        "duration": "30",
        "time_zone": "Europe/Berlin",
        "recurrence": "FREQ=WEEKLY",
        "ends": "never",
        "end_date": "",
        "end_count": "",
        "access_policy": Meeting.Access.INVITEES,
        "invitees": "ana@example.org",
        "co_hosts": "",
    }
    data.update(overrides)
    return data


def edit_data(form: Any, **overrides: str) -> dict[str, str]:
    """What the browser posts back for the edit form as it was shown, with `overrides`."""
    data: dict[str, str] = {}
    for name in form.fields:
        value = form.initial.get(name)
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%dT%H:%M")
        elif isinstance(value, date):
            value = value.isoformat()
        data[name] = "" if value is None else str(value)
    data.update(overrides)
    return data


def expand(event: Event) -> list[datetime]:
    """Every occurrence of a calendar event, as a calendar app computes them: the RRULE read
    back from the file and expanded by dateutil from the file's zoned DTSTART."""
    start = event.decoded("dtstart")
    assert start.tzinfo is not None
    rule = rrulestr(event["rrule"].to_ical().decode(), dtstart=start)
    occurrences = list(rule[:1000])
    assert len(occurrences) < 1000, "the rule must end"
    return [moment.astimezone(UTC) for moment in occurrences]


def the_event(ics: bytes) -> Event:
    (event,) = Calendar.from_ical(ics).walk("VEVENT")
    return event


# --- the forms -----------------------------------------------------------------------------


@time_machine.travel(FROZEN_NOW, tick=False)
def test_an_end_date_round_trips_through_the_forms_and_a_count_replaces_it(
    client, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    host = make_user("host@example.org")
    client.force_login(host)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("rooms:schedule"), form_data(ends="on", end_date="2026-04-17")
        )
    assert response.status_code == 302
    meeting = Meeting.objects.get()
    # The last second of Friday 17 April in Berlin (CEST, +2), in UTC.
    assert meeting.recurrence == "FREQ=WEEKLY;UNTIL=20260417T215959Z"
    _cal, invitation, _ = ics_of(mailoutbox[0])
    assert invitation["rrule"].to_ical() == b"FREQ=WEEKLY;UNTIL=20260417T215959Z"
    assert "Repeats: Weekly on Friday, until 17 Apr 2026" in mailoutbox[0].body

    edit_url = reverse("rooms:edit", args=[meeting.code])
    edit_page = client.get(edit_url)
    form = edit_page.context["form"]
    assert form.initial["recurrence"] == "FREQ=WEEKLY"
    assert form.initial["ends"] == "on"
    assert form.initial["end_date"] == date(2026, 4, 17)
    html = edit_page.content.decode()
    assert 'type="date" name="end_date" value="2026-04-17"' in html
    assert 'value="on" id="id_ends_1" checked' in html

    # Saving the form as shown changes nothing, so nothing is sent.
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(edit_url, edit_data(form)).status_code == 302
    meeting.refresh_from_db()
    assert (meeting.recurrence, meeting.sequence) == ("FREQ=WEEKLY;UNTIL=20260417T215959Z", 0)
    assert mailoutbox == []

    # Ending after three occurrences instead is an edit like any other: SEQUENCE up, resent.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(edit_url, edit_data(form, ends="after", end_count="3"))
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert (meeting.recurrence, meeting.sequence) == ("FREQ=WEEKLY;COUNT=3", 1)
    (update,) = mailoutbox
    _cal, event, _ = ics_of(update)
    assert update.subject.startswith("Updated invitation")
    assert (int(event["sequence"]), event["rrule"].to_ical()) == (1, b"FREQ=WEEKLY;COUNT=3")
    form = client.get(edit_url).context["form"]
    assert (form.initial["ends"], form.initial["end_count"]) == ("after", 3)

    # And back to never.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(edit_url, edit_data(form, ends="never"))
    meeting.refresh_from_db()
    assert (meeting.recurrence, meeting.sequence) == ("FREQ=WEEKLY", 2)


@time_machine.travel(FROZEN_NOW, tick=False)
def test_end_fields_are_ignored_for_a_meeting_that_does_not_repeat(client) -> None:
    client.force_login(make_user("host@example.org"))
    response = client.post(
        reverse("rooms:schedule"),
        form_data(recurrence="", ends="on", end_date="not a date", end_count="zero"),
    )
    assert response.status_code == 302
    assert Meeting.objects.get().recurrence == ""


@time_machine.travel(FROZEN_NOW, tick=False)
def test_a_stale_value_in_the_box_not_chosen_is_no_error(client) -> None:
    client.force_login(make_user("host@example.org"))
    response = client.post(
        reverse("rooms:schedule"), form_data(ends="after", end_count="4", end_date="garbage")
    )
    assert response.status_code == 302
    assert Meeting.objects.get().recurrence == "FREQ=WEEKLY;COUNT=4"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"ends": "on", "end_date": "2026-03-26"}, "end_date", "cannot end before the first"),
        ({"ends": "on", "end_date": ""}, "end_date", "Choose the day"),
        ({"ends": "on", "end_date": "17/04/2026"}, "end_date", "YYYY-MM-DD"),
        ({"ends": "on", "end_date": "2026-02-30"}, "end_date", "YYYY-MM-DD"),
        ({"ends": "after", "end_count": "0"}, "end_count", "from 1 to 365"),
        ({"ends": "after", "end_count": "-3"}, "end_count", "from 1 to 365"),
        ({"ends": "after", "end_count": "366"}, "end_count", "from 1 to 365"),
        ({"ends": "after", "end_count": "1" + "0" * 30}, "end_count", "from 1 to 365"),
        ({"ends": "after", "end_count": "three"}, "end_count", "whole number"),
        ({"ends": "after", "end_count": ""}, "end_count", "how many times"),
        ({"ends": "sometimes"}, "ends", "not one of the available choices"),
    ],
)
@time_machine.travel(FROZEN_NOW, tick=False)
def test_bad_end_input_is_a_form_error_kept_on_redisplay_and_stores_nothing(
    client, mailoutbox, overrides, field, message
) -> None:
    client.force_login(make_user("host@example.org"))
    response = client.post(reverse("rooms:schedule"), form_data(**overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    html = response.content.decode()
    assert message.replace("'", "&#x27;") in html  # shown, under the "Ends" group
    for name in ("end_date", "end_count"):
        if overrides.get(name):
            assert f'name="{name}" value="{overrides[name]}"' in html  # kept as typed
    assert not Meeting.objects.exists()
    assert mailoutbox == []


@time_machine.travel(FROZEN_NOW, tick=False)
def test_a_bad_end_on_the_edit_form_changes_and_sends_nothing(
    client, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    host = make_user("host@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        meeting = schedule(
            host,
            starts_at=FIRST,
            time_zone="Europe/Berlin",
            recurrence="FREQ=WEEKLY;COUNT=5",
            invitees=["ana@example.org"],
        )
    mailoutbox.clear()
    client.force_login(host)
    edit_url = reverse("rooms:edit", args=[meeting.code])
    form = client.get(edit_url).context["form"]
    response = client.post(edit_url, edit_data(form, ends="on", end_date="2026-03-01"))
    assert response.status_code == 200
    assert "cannot end before the first" in " ".join(response.context["form"].errors["end_date"])
    meeting.refresh_from_db()
    assert (meeting.recurrence, meeting.sequence) == ("FREQ=WEEKLY;COUNT=5", 0)
    assert mailoutbox == []


@time_machine.travel(FROZEN_NOW, tick=False)
def test_the_domain_layer_refuses_ends_the_form_would_refuse() -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, starts_at=FIRST, recurrence="FREQ=DAILY;COUNT=2")
    for rule in (
        "FREQ=DAILY;UNTIL=20260326T000000Z",  # before the first occurrence
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;COUNT=366",
        "FREQ=DAILY;COUNT=3;UNTIL=20260401T000000Z",  # both: RFC 5545 forbids it
    ):
        with pytest.raises(ValidationError) as refused:
            services.update_meeting(host, meeting, details_of(meeting, recurrence=rule))
        assert "recurrence" in refused.value.message_dict, rule
    meeting.refresh_from_db()
    assert (meeting.recurrence, meeting.sequence) == ("FREQ=DAILY;COUNT=2", 0)


# --- the rule itself -----------------------------------------------------------------------


def test_until_is_the_last_second_of_the_day_in_the_meetings_zone() -> None:
    # CEST (+2), CET (+1), EST (-5), and a day whose next midnight Santiago skips (DST starts
    # at 00:00 on 6 September 2026): the day ends at the change.
    assert end_of_day_utc(date(2026, 4, 17), "Europe/Berlin") == datetime(
        2026, 4, 17, 21, 59, 59, tzinfo=UTC
    )
    assert end_of_day_utc(date(2026, 12, 15), "Europe/Berlin") == datetime(
        2026, 12, 15, 22, 59, 59, tzinfo=UTC
    )
    assert end_of_day_utc(date(2026, 11, 2), "America/New_York") == datetime(
        2026, 11, 3, 4, 59, 59, tzinfo=UTC
    )
    assert end_of_day_utc(date(2026, 9, 5), "America/Santiago") == datetime(
        2026, 9, 6, 3, 59, 59, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("end", "rule"),
    [
        (RecurrenceEnd(), "FREQ=WEEKLY"),
        (RecurrenceEnd(last_day=date(2026, 12, 15)), "FREQ=WEEKLY;UNTIL=20261215T225959Z"),
        (RecurrenceEnd(count=7), "FREQ=WEEKLY;COUNT=7"),
    ],
)
def test_an_end_is_written_into_the_rule_and_read_back(end, rule) -> None:
    assert with_end("FREQ=WEEKLY;COUNT=2", end, "Europe/Berlin") == rule
    assert split_end(rule, "Europe/Berlin") == ("FREQ=WEEKLY", end)


@pytest.mark.parametrize(
    ("rule", "label"),
    [
        ("FREQ=WEEKLY", "Weekly on Tuesday"),
        ("FREQ=WEEKLY;UNTIL=20261215T225959Z", "Weekly on Tuesday, until 15 Dec 2026"),
        ("FREQ=DAILY;COUNT=5", "Daily, 5 times"),
        ("FREQ=DAILY;COUNT=1", "Daily, once"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH", "Every 2 weeks on Monday and Thursday"),
        ("FREQ=WEEKLY;BYHOUR=7", "FREQ=WEEKLY;BYHOUR=7"),  # not put in words: shown as is
    ],
)
def test_the_label_says_how_often_and_until_when(rule, label) -> None:
    tuesday_morning = datetime(2026, 10, 6, 7, 0, tzinfo=UTC)
    assert describe_rule(rule, tuesday_morning, "Europe/Berlin") == label


# --- calendars: the .ics, the feed ---------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "start", "overrides", "expected"),
    [
        # Weekly 09:00 Berlin from Friday 27 March, until 10 April: DST starts on 29 March,
        # so the later ones are an hour earlier in UTC; 10 April is the last.
        (
            "Europe/Berlin",
            "2026-03-27T09:00",
            {"recurrence": "FREQ=WEEKLY", "ends": "on", "end_date": "2026-04-10"},
            [
                datetime(2026, 3, 27, 8, 0, tzinfo=UTC),
                datetime(2026, 4, 3, 7, 0, tzinfo=UTC),
                datetime(2026, 4, 10, 7, 0, tzinfo=UTC),
            ],
        ),
        # Daily 23:30 New York until Monday 2 November: DST ends on the 1st. The last one is
        # already 3 November in UTC, and still in: the end is the end of the local day.
        (
            "America/New_York",
            "2026-10-30T23:30",
            {"recurrence": "FREQ=DAILY", "ends": "on", "end_date": "2026-11-02"},
            [
                datetime(2026, 10, 31, 3, 30, tzinfo=UTC),
                datetime(2026, 11, 1, 3, 30, tzinfo=UTC),
                datetime(2026, 11, 2, 4, 30, tzinfo=UTC),
                datetime(2026, 11, 3, 4, 30, tzinfo=UTC),
            ],
        ),
        # The same, ending after four occurrences.
        (
            "America/New_York",
            "2026-10-30T23:30",
            {"recurrence": "FREQ=DAILY", "ends": "after", "end_count": "4"},
            [
                datetime(2026, 10, 31, 3, 30, tzinfo=UTC),
                datetime(2026, 11, 1, 3, 30, tzinfo=UTC),
                datetime(2026, 11, 2, 4, 30, tzinfo=UTC),
                datetime(2026, 11, 3, 4, 30, tzinfo=UTC),
            ],
        ),
    ],
)
@time_machine.travel(FROZEN_NOW, tick=False)
def test_the_ics_expands_to_exactly_the_occurrences_up_to_the_end_across_dst(
    client, zone, start, overrides, expected
) -> None:
    host = make_user("host@example.org", time_zone=zone)
    client.force_login(host)
    response = client.post(
        reverse("rooms:schedule"), form_data(start=start, time_zone=zone, **overrides)
    )
    assert response.status_code == 302
    meeting = Meeting.objects.get()
    ics = client.get(reverse("rooms:ics", args=[meeting.code])).content
    event = the_event(ics)
    assert str(event["dtstart"].params["TZID"]) == zone
    assert Calendar.from_ical(ics).walk("VTIMEZONE")
    until = event["rrule"].get("UNTIL")
    if until:
        assert until[0].utcoffset() == timedelta(0), "UNTIL is UTC when DTSTART has a TZID"
    assert expand(event) == expected
    # The app's own expansion (reminders, the upcoming list) agrees.
    everything = occurrences_between(meeting, FROZEN_NOW, FROZEN_NOW + timedelta(days=400))
    assert everything == expected


@time_machine.travel(FROZEN_NOW, tick=False)
def test_the_feed_carries_the_end_and_drops_the_series_once_it_is_over(client) -> None:
    host = make_user("host@example.org")
    ended = datetime(2026, 4, 17, 21, 59, 59, tzinfo=UTC)
    meeting = schedule(
        host,
        starts_at=FIRST,
        time_zone="Europe/Berlin",
        recurrence=with_end(
            "FREQ=WEEKLY", RecurrenceEnd(last_day=date(2026, 4, 17)), "Europe/Berlin"
        ),
    )
    feed_url = reverse("rooms:calendar_feed", args=[host.calendar_token])
    (event,) = Calendar.from_ical(client.get(feed_url).content).walk("VEVENT")
    assert str(event["uid"]) == meeting.ical_uid
    assert expand(event)[-1] == datetime(2026, 4, 17, 7, 0, tzinfo=UTC)
    with time_machine.travel(ended + timedelta(hours=1), tick=False):
        assert Calendar.from_ical(client.get(feed_url).content).walk("VEVENT") == []


# --- reminders -----------------------------------------------------------------------------


def _beat_at(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return reminders.send_due_reminders()


@pytest.mark.parametrize(
    "end",
    [{"ends": "on", "end_date": "2026-03-29"}, {"ends": "after", "end_count": "3"}],
    ids=["until", "count"],
)
def test_reminders_stop_after_the_last_occurrence(client, mailoutbox, end) -> None:
    host = make_user("host@example.org")  # reminded 10 minutes before
    client.force_login(host)
    # Daily 09:00 Berlin from Friday 27 March; the last is Sunday 29 March, the day DST starts.
    with time_machine.travel(FROZEN_NOW, tick=False):
        response = client.post(
            reverse("rooms:schedule"), form_data(recurrence="FREQ=DAILY", invitees="", **end)
        )
    assert response.status_code == 302
    occurrences = [
        datetime(2026, 3, 27, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 28, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC),  # 09:00 CEST
    ]
    for start in occurrences:
        assert _beat_at(start - timedelta(minutes=10)) == 1
    # The next days' beats at reminder time (and all through the following week) send nothing.
    day_after = datetime(2026, 3, 30, 6, 50, tzinfo=UTC)
    for days in range(8):
        assert _beat_at(day_after + timedelta(days=days)) == 0
    sent = sorted(ReminderDelivery.objects.values_list("occurrence_start", flat=True))
    assert sent == occurrences
    assert len(mailoutbox) == 3


# --- pages ---------------------------------------------------------------------------------


@time_machine.travel(FROZEN_NOW, tick=False)
def test_the_meeting_page_and_the_upcoming_list_show_the_end(client) -> None:
    host = make_user("host@example.org")
    until = schedule(
        host,
        title="Until April",
        starts_at=FIRST,
        time_zone="Europe/Berlin",
        recurrence="FREQ=WEEKLY;UNTIL=20260417T215959Z",
    )
    counted = schedule(
        host,
        title="Five times",
        starts_at=FIRST + timedelta(hours=2),
        time_zone="Europe/Berlin",
        recurrence="FREQ=DAILY;COUNT=5",
    )
    client.force_login(host)
    detail = client.get(reverse("rooms:detail", args=[until.code])).content.decode()
    assert "Weekly on Friday, until 17 Apr 2026" in detail
    detail = client.get(reverse("rooms:detail", args=[counted.code])).content.decode()
    assert "Daily, 5 times" in detail
    home = client.get(reverse("home")).content.decode()
    assert "Weekly on Friday, until 17 Apr 2026" in home
    assert "Daily, 5 times" in home


# --- in a real browser ---------------------------------------------------------------------


@pytest.fixture
def host_cookie(live_server) -> str:
    """A host's session cookie, made before the browser starts (see test_meetings_browser)."""
    client = Client()
    client.force_login(make_user("host@example.org"))
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_ends_group_shows_only_while_the_meeting_repeats(host_cookie, page, live_server):  # noqa: F811
    page.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": host_cookie,
                "domain": urlparse(live_server.url).hostname,
                "path": "/",
            }
        ]
    )
    tab = page.new_page()
    tab.goto(live_server.url + reverse("rooms:schedule"))
    ends_group = tab.get_by_role("group", name="Ends")
    assert not ends_group.is_visible()
    tab.get_by_label("Repeats").select_option("FREQ=WEEKLY")
    ends_group.wait_for(state="visible", timeout=5_000)
    tab.get_by_label("After").check()
    tab.get_by_label("Number of occurrences").fill("400")
    tab.get_by_label("Title").fill("Team sync")
    tab.get_by_label("Starts").fill("2099-03-27T09:00")
    tab.get_by_role("button", name="Schedule and send invitations").click()
    tab.get_by_text("Enter a number of occurrences from 1 to 365.").wait_for(timeout=5_000)
    assert tab.get_by_label("Number of occurrences").input_value() == "400"
    assert tab.get_by_label("After").is_checked()
    tab.get_by_label("Repeats").select_option("")
    ends_group.wait_for(state="hidden", timeout=5_000)
