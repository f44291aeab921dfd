"""The real broker path: a Celery worker (threads in this process) consuming from the test
session's Redis (settings.CELERY_BROKER_URL), as beat and the web process would feed it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.utils import timezone

from meet.celery import app as celery_app
from rooms import services, tasks
from rooms.models import Meeting, ReminderDelivery
from rooms.tests.meetings_support import ics_of, make_user, schedule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def celery_worker() -> Iterator[None]:
    assert celery_app.conf.broker_url == settings.CELERY_BROKER_URL
    assert not celery_app.conf.task_always_eager
    # Tasks that other tests enqueued without a worker would otherwise run here.
    celery_app.control.purge()
    with start_worker(celery_app, perform_ping_check=False, shutdown_timeout=30):
        yield


@pytest.fixture
def finished_tasks() -> Iterator[list[str]]:
    names: list[str] = []

    def record(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
        names.append(sender.name)

    task_postrun.connect(record, weak=False)
    try:
        yield names
    finally:
        task_postrun.disconnect(record)


@pytest.mark.usefixtures("celery_worker")
def test_invitations_go_out_through_the_broker(mailoutbox, finished_tasks) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, invitees=["ana@example.org", "bob@example.net"])
    wait_until(lambda: len(mailoutbox) == 2, what="two invitations")
    for message in mailoutbox:
        _calendar, event, _ = ics_of(message)
        assert str(event["uid"]) == meeting.ical_uid
        assert str(event["url"]) == meeting.join_url
    services.cancel_meeting(host, meeting)
    wait_until(lambda: len(mailoutbox) == 4, what="two cancellations")
    assert {str(ics_of(m)[0]["method"]) for m in mailoutbox[2:]} == {"CANCEL"}
    wait_until(
        lambda: finished_tasks.count("rooms.tasks.send_calendar_email") == 4,
        what="four calendar-email tasks finished",
    )
    assert len(mailoutbox) == 4


@pytest.mark.usefixtures("celery_worker")
def test_reminders_go_out_once_per_occurrence_through_the_broker(
    mailoutbox, finished_tasks
) -> None:
    host = make_user("host@example.org")
    soon = timezone.now() + timedelta(minutes=5)
    meeting = schedule(host, starts_at=soon.replace(microsecond=0), invitees=["ana@example.org"])
    cancelled = schedule(host, starts_at=soon.replace(microsecond=0), invitees=["zed@example.org"])
    services.cancel_meeting(host, cancelled)
    wait_until(
        lambda: finished_tasks.count("rooms.tasks.send_calendar_email") == 3,
        what="the invitation and cancellation emails",
    )
    mailoutbox.clear()
    # Two beats and a redelivery of the same beat message: three runs of the task.
    for _ in range(3):
        tasks.send_due_reminders.delay()
    wait_until(
        lambda: finished_tasks.count("rooms.tasks.send_due_reminders") == 3,
        what="three reminder runs",
    )
    assert sorted(m.to[0] for m in mailoutbox) == ["ana@example.org", "host@example.org"]
    assert all(m.subject.startswith("Reminder: ") for m in mailoutbox)
    assert ReminderDelivery.objects.filter(meeting=meeting).count() == 2
    assert not ReminderDelivery.objects.filter(meeting=cancelled).exists()
    assert Meeting.objects.get(pk=cancelled.pk).status == Meeting.Status.CANCELLED


def test_beat_runs_the_reminder_task_every_minute() -> None:
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    entry = settings.CELERY_BEAT_SCHEDULE["rooms-send-due-reminders"]
    assert entry["task"] == tasks.send_due_reminders.name
    assert entry["task"] in celery_app.tasks
    DatabaseScheduler(app=celery_app)  # what `celery beat -S django` does at start-up
    stored = PeriodicTask.objects.get(name="rooms-send-due-reminders")
    assert stored.task == "rooms.tasks.send_due_reminders"
    assert stored.interval is not None
    assert (stored.interval.every, stored.interval.period) == (60, "seconds")
    assert stored.enabled
