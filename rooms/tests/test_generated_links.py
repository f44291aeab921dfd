"""Generated links follow the address the site is served on (issue 12, item 11): with SITE_URL
unset, pages use the request's host and port, and emails and calendar files built outside a
request use the address `make run` serves on (PORT); a set SITE_URL wins everywhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse
from icalendar import Calendar

from meet.links import absolute_url
from meet.web import WebEndpoint, served_url
from rooms.calendar import feed_url
from rooms.tests.meetings_support import (
    eager_celery,  # noqa: F401  (fixture)
    ics_of,
    make_user,
    schedule,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _commits_send_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's transaction never commits: run what the domain defers to its commit (the
    calendar emails) at once, as a committed change would."""
    monkeypatch.setattr(
        "django.db.transaction.on_commit", lambda func, using=None, robust=False: func()
    )


REPO = Path(__file__).resolve().parents[2]
SERVED = {"HTTP_HOST": "localhost:8400"}


def _site_url_with(**environment: str) -> str:
    """settings.SITE_URL in a fresh process with this environment (SITE_URL and the served
    address unset unless given)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SITE_URL", "MEET_SERVED_URL", "PORT", "HOST", "MEET_TLS")
    }
    env.update(environment, DJANGO_SETTINGS_MODULE="meet.settings")
    code = (
        "from django.conf import settings; print(settings.SITE_URL, settings.SITE_URL_CONFIGURED)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_without_site_url_the_fallback_is_the_served_port() -> None:
    assert _site_url_with(PORT="8400") == "http://localhost:8400 False"
    assert _site_url_with() == "http://localhost:8000 False"
    assert _site_url_with(PORT="8443", MEET_TLS="true") == "https://localhost:8443 False"
    assert _site_url_with(HOST="meet.lan", PORT="9000") == "http://meet.lan:9000 False"
    # What `make run` exports to every process (honcho gives each its own PORT).
    assert (
        _site_url_with(PORT="8600", MEET_SERVED_URL="http://localhost:8400")
        == "http://localhost:8400 False"
    )
    assert (
        _site_url_with(PORT="8400", SITE_URL="https://meet.example.org/")
        == "https://meet.example.org True"
    )


def test_make_run_prints_the_address_links_fall_back_to() -> None:
    assert WebEndpoint("127.0.0.1", 8400).url == served_url("127.0.0.1", 8400, tls=False) + "/"
    assert served_url("0.0.0.0", 8400, tls=False) == "http://localhost:8400"
    assert served_url("fd00::5", 8400, tls=True) == "https://[fd00::5]:8400"
    launcher = (REPO / "meet" / "launcher.py").read_text()
    assert 'os.environ["MEET_SERVED_URL"] = endpoint.url.rstrip("/")' in launcher


@override_settings(SITE_URL_CONFIGURED=False, SITE_URL="http://localhost:8000")
def test_pages_link_to_the_host_and_port_they_were_served_on(client) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, recurrence="")
    weekly = schedule(host, title="Weekly", recurrence="FREQ=WEEKLY")
    client.force_login(host)
    expected = "http://localhost:8400" + meeting.join_path

    detail = client.get(meeting.get_absolute_url(), **SERVED).content.decode()
    assert f'value="{expected}"' in detail
    assert "localhost:8000" not in detail
    assert "localhost%3A8400" in detail  # inside the Google and Outlook links

    ics = client.get(reverse("rooms:ics", args=[meeting.code]), **SERVED).content
    (event,) = Calendar.from_ical(ics).walk("VEVENT")
    assert str(event["url"]) == expected
    assert b"localhost:8000" not in ics

    preferences = client.get(reverse("accounts:preferences"), **SERVED).content.decode()
    feed = "http://localhost:8400" + reverse("rooms:calendar_feed", args=[host.calendar_token])
    assert f'value="{feed}"' in preferences
    body = client.get(feed.removeprefix("http://localhost:8400"), **SERVED).content
    assert b"http://localhost:8400/" + weekly.code.encode() in body.replace(b"\r\n ", b"")

    client.post(reverse("rooms:later"), **SERVED)
    home = client.get(reverse("home"), **SERVED).content.decode()
    later = re.search(r'id="later-link"|value="(http://[^"]+)" aria-label="Meeting link"', home)
    assert later is not None
    assert "http://localhost:8400/" in home
    assert "localhost:8000" not in home


@override_settings(SITE_URL_CONFIGURED=False, SITE_URL="http://localhost:8400")
@pytest.mark.usefixtures("eager_celery")
def test_emails_and_their_calendar_files_use_the_served_address(mailoutbox) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, invitees=["out@example.net"])
    (message,) = mailoutbox
    assert "Join: http://localhost:8400/" + meeting.code in message.body
    assert "http://localhost:8400/rsvp/" in message.body
    assert "http://localhost:8400/meetings/" in message.body
    _cal, event, _mimetype = ics_of(message)
    assert str(event["url"]) == "http://localhost:8400" + meeting.join_path
    html = message.alternatives[0][0]
    assert f'href="http://localhost:8400/{meeting.code}"' in html
    assert "localhost:8000" not in message.body + html


@override_settings(SITE_URL_CONFIGURED=True, SITE_URL="https://meet.example.org")
def test_a_configured_site_url_is_used_in_pages_too(client) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host)
    client.force_login(host)
    detail = client.get(meeting.get_absolute_url(), **SERVED).content.decode()
    assert f'value="https://meet.example.org{meeting.join_path}"' in detail
    assert feed_url(host).startswith("https://meet.example.org/calendar/")
    assert absolute_url("/x") == "https://meet.example.org/x"
