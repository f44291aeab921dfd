"""Reminders: N minutes before each occurrence, per user, exactly once, none when cancelled."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection

from rooms import reminders, services
from rooms.models import Invitation, ReminderDelivery
from rooms.tests.meetings_support import make_user, schedule

START = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)


def _at(moment: datetime) -> int:
    with time_machine.travel(moment, tick=False):
        return reminders.send_due_reminders()


@pytest.fixture
def meeting(db):
    host = make_user("host@example.org")  # default: 10 minutes
    make_user("ana@example.org", reminder_minutes=30)
    make_user("off@example.org", reminder_minutes=0)
    with time_machine.travel(START - timedelta(days=2), tick=False):
        meeting = schedule(
            host,
            starts_at=START,
            invitees=["ana@example.org", "bob@example.net", "carl@example.net", "off@example.org"],
        )
    services.respond_to_invitation(
        meeting.invitations.get(email="carl@example.net"), Invitation.Response.DECLINED
    )
    return meeting


def test_each_person_is_reminded_once_at_their_own_lead_time(meeting, mailoutbox) -> None:
    assert _at(START - timedelta(minutes=31)) == 0
    assert _at(START - timedelta(minutes=30)) == 1
    assert [m.to for m in mailoutbox] == [["ana@example.org"]]
    assert _at(START - timedelta(minutes=20)) == 0  # a second beat: nothing again
    assert _at(START - timedelta(minutes=9)) == 2
    assert sorted(m.to[0] for m in mailoutbox) == [
        "ana@example.org",
        "bob@example.net",
        "host@example.org",
    ]
    assert _at(START - timedelta(minutes=1)) == 0
    assert _at(START + timedelta(minutes=1)) == 0
    assert all(m.subject.startswith("Reminder: Planning") for m in mailoutbox)
    assert all(meeting.join_url in m.body for m in mailoutbox)
    rows = ReminderDelivery.objects.filter(meeting=meeting)
    assert rows.count() == 3
    assert all(row.sent_at is not None and row.occurrence_start == START for row in rows)


def test_a_cancelled_meeting_sends_no_reminders(meeting, mailoutbox) -> None:
    services.cancel_meeting(meeting.host, meeting)
    assert _at(START - timedelta(minutes=5)) == 0
    assert mailoutbox == []
    assert not ReminderDelivery.objects.exists()


@pytest.mark.django_db
def test_every_occurrence_of_a_recurring_meeting_gets_its_reminder_across_dst(mailoutbox):
    host = make_user("host@example.org", time_zone="Europe/Berlin")
    # Daily at 09:00 Berlin from Saturday 28 March 2026; DST starts on the 29th.
    first = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    with time_machine.travel(first - timedelta(days=1), tick=False):
        meeting = schedule(
            host, starts_at=first, time_zone="Europe/Berlin", recurrence="FREQ=DAILY;COUNT=3"
        )
    second = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # still 09:00 local
    assert _at(first - timedelta(minutes=5)) == 1
    assert _at(first - timedelta(minutes=4)) == 0
    assert _at(second - timedelta(minutes=11)) == 0
    assert _at(second - timedelta(minutes=10)) == 1
    assert _at(second - timedelta(minutes=2)) == 0
    starts = sorted(ReminderDelivery.objects.values_list("occurrence_start", flat=True))
    assert starts == [first, second]
    assert "09:00 (Europe/Berlin)" in mailoutbox[1].subject
    # After the last occurrence there is nothing left to remind of.
    assert _at(datetime(2026, 4, 2, 6, 55, tzinfo=UTC)) == 0
    assert meeting.reminders.count() == 2


class _FailingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):  # type: ignore[no-untyped-def]
        raise ConnectionError("mail server down")


def test_a_failed_send_gives_the_claim_back_for_the_next_beat(meeting, settings, mailoutbox):
    settings.EMAIL_BACKEND = f"{__name__}._FailingBackend"
    assert _at(START - timedelta(minutes=30)) == 0
    assert not ReminderDelivery.objects.exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert _at(START - timedelta(minutes=29)) == 1
    assert [m.to for m in mailoutbox] == [["ana@example.org"]]


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_send_each_reminder_once(mailoutbox) -> None:
    host = make_user("host@example.org")
    with time_machine.travel(START - timedelta(days=1), tick=False):
        schedule(host, starts_at=START, invitees=[f"p{n}@example.net" for n in range(6)])
    barrier = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def beat() -> None:
        try:
            barrier.wait(timeout=10)
            counts.append(reminders.send_due_reminders(now=START - timedelta(minutes=5)))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(counts) == 7
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        ["host@example.org"] + [f"p{n}@example.net" for n in range(6)]
    )
    assert ReminderDelivery.objects.count() == 7
