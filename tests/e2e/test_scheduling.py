"""Scheduling in a real browser (issue 12, item 9): the schedule form proposes the next half
hour in the host's zone, an hour long, with a searchable time-zone box; a weekly meeting is
scheduled with that start, and "Cancel meeting" asks first and cancels this occurrence only.
At 1280x800 and 360x740, screenshots in var/screenshots/scheduling-*.png.

Then an invitee answers from the e-mail's link (the RSVP page and its result page, with the
join link and "Change your answer").

Only the web process is needed (no SFU node, no call): no invitees when scheduling, so no mail
task either."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from rooms.emails import rsvp_token
from rooms.forms import next_half_hour
from rooms.models import CancelledOccurrence, Invitation, Meeting
from tests.e2e.conftest import _log_name
from tests.e2e.netns import LoopbackNamespace
from tests.e2e.stack import SCREENSHOT_DIR, Daphne, no_wrap, session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
ZONE = "Europe/Berlin"


@pytest.fixture
def web(
    stack_env: dict[str, str],
    loopback_network: LoopbackNamespace | None,
    request: pytest.FixtureRequest,
) -> Iterator[Daphne]:
    server = Daphne(
        stack_env,
        _log_name(request, "daphne"),
        wrap=loopback_network.wrap if loopback_network else no_wrap,
    )
    server.start()
    yield server
    server.stop()


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _proposed_starts() -> set[str]:
    """The start the form may propose: the next half hour now, or a minute later (the page
    may load across a half hour)."""
    now = timezone.now()
    return {
        next_half_hour(moment, ZONE).strftime("%Y-%m-%dT%H:%M")
        for moment in (now, now + timedelta(minutes=1))
    }


def _schedule_and_cancel_one(browser: Browser, web: Daphne, viewport: dict, size: str) -> None:
    host = User.objects.create_user(
        f"host-{size}@example.org",
        password=None,
        full_name="Hana Host",
        time_zone=ZONE,
        time_zone_chosen=True,
    )
    context = browser.new_context(viewport=viewport, timezone_id=ZONE)
    context.add_cookies([session_cookie(host, web.base_url)])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(web.base_url + "/meetings/schedule")
        starts = page.get_by_label("Starts")
        proposed = starts.input_value()
        assert proposed in _proposed_starts()
        assert proposed[-2:] in ("00", "30")
        expect(page.get_by_label("Duration")).to_have_value("60")
        zone_box = page.get_by_label("Time zone")
        expect(zone_box).to_have_value(ZONE)
        expect(zone_box).to_have_attribute("list", "time-zone-names")
        assert page.locator("#time-zone-names option").count() > 400
        # Searchable: typing filters the list the browser proposes; an exact name is taken.
        zone_box.fill("europe/berl")
        zone_box.fill(ZONE)
        page.get_by_label("Title").fill(f"Weekly sync {size}")
        page.get_by_label("Repeats").select_option(label="Weekly")
        _no_horizontal_scroll(page)
        page.screenshot(path=str(SCREENSHOT_DIR / f"scheduling-form-{size}.png"), full_page=True)
        page.get_by_role("button", name="Schedule and send invitations").click()
        expect(page.locator(".meeting-detail h1")).to_contain_text(f"Weekly sync {size}")

        meeting = Meeting.objects.get(host=host)
        first = meeting.starts_at
        local_first = first.astimezone(ZoneInfo(ZONE))
        assert local_first.strftime("%Y-%m-%dT%H:%M") == proposed
        assert meeting.duration == timedelta(hours=1)
        assert meeting.recurrence == "FREQ=WEEKLY"

        # "Cancel meeting…" asks first: this occurrence (the one shown) or the whole series.
        page.get_by_role("link", name="Cancel meeting…").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel “Weekly sync {size}”?")
        this_one = page.get_by_role("radio", name="This occurrence")
        expect(this_one).to_be_checked()
        expect(page.get_by_role("radio", name="The whole series")).not_to_be_checked()
        which = page.get_by_label("Which occurrence")
        expect(which).to_have_value(first.isoformat())
        first_label = f"{local_first:%A} {local_first.day} {local_first:%B %Y, %H:%M}"
        expect(which.locator("option:checked")).to_have_text(first_label)
        meeting.refresh_from_db()
        assert meeting.status == Meeting.Status.SCHEDULED  # nothing happened yet
        _no_horizontal_scroll(page)
        page.screenshot(path=str(SCREENSHOT_DIR / f"scheduling-cancel-confirm-{size}.png"))

        page.get_by_role("button", name="Cancel meeting").click()
        expect(page.locator(".meeting-detail")).to_be_visible()
        expect(page.get_by_text(f"The meeting on {first_label} is cancelled")).to_be_visible()
        meeting.refresh_from_db()
        assert meeting.status == Meeting.Status.SCHEDULED
        assert list(
            CancelledOccurrence.objects.filter(meeting=meeting).values_list("starts_at", flat=True)
        ) == [first]
        # The page moves on to the week after.
        second = (local_first + timedelta(days=7)).replace(tzinfo=None)
        second_label = f"{second:%A} {second.day} {second:%B %Y, %H:%M}"
        expect(page.locator(".meeting-detail header")).to_contain_text(second_label)
        expect(page.get_by_role("link", name="Add to Outlook (.ics)")).to_be_visible()
        _no_horizontal_scroll(page)
        page.screenshot(
            path=str(SCREENSHOT_DIR / f"scheduling-after-cancel-{size}.png"), full_page=True
        )
        # Fetched by the page (it runs in the test network, where the server is).
        ics = page.evaluate(
            "url => fetch(url).then(response => response.text())",
            f"/meetings/{meeting.code}/invite.ics",
        )
        unfolded = ics.replace("\r\n ", "")
        assert f"EXDATE;TZID={ZONE}:{local_first:%Y%m%dT%H%M%S}" in unfolded
        assert f"{web.base_url}/{meeting.code}" in unfolded  # the served address

        # An invitee answers from the e-mail's link (no mail sent here: the row is made
        # directly) and lands on a page with the join link and a way to change the answer.
        invitation = Invitation.objects.create(meeting=meeting, email="guest@example.net")
        guest = browser.new_context(viewport=viewport, timezone_id=ZONE)
        try:
            rsvp = guest.new_page()
            token = rsvp_token(invitation)
            rsvp.goto(web.base_url + reverse("rooms:rsvp", args=[token]) + "?response=accepted")
            expect(rsvp.get_by_role("radio", name="Yes")).to_be_checked()
            _no_horizontal_scroll(rsvp)
            rsvp.screenshot(path=str(SCREENSHOT_DIR / f"scheduling-rsvp-{size}.png"))
            rsvp.get_by_role("button", name="Send reply").click()
            expect(rsvp.get_by_role("status")).to_contain_text("your answer is recorded: Accepted")
            expect(rsvp.get_by_role("link", name="Join", exact=True)).to_have_attribute(
                "href", f"{web.base_url}/{meeting.code}"
            )
            expect(rsvp.get_by_role("group", name=re.compile("Change your answer"))).to_be_visible()
            _no_horizontal_scroll(rsvp)
            rsvp.screenshot(path=str(SCREENSHOT_DIR / f"scheduling-rsvp-done-{size}.png"))
            rsvp.get_by_role("radio", name="Maybe").check()
            rsvp.get_by_role("button", name="Change answer").click()
            expect(rsvp.get_by_role("status")).to_contain_text("your answer is recorded: Maybe")
            invitation.refresh_from_db()
            assert invitation.response == Invitation.Response.TENTATIVE
        finally:
            guest.close()
        assert errors == []
    finally:
        context.close()


def test_schedule_with_the_proposed_start_and_cancel_one_occurrence_on_desktop(
    browser: Browser, web: Daphne
) -> None:
    _schedule_and_cancel_one(browser, web, DESKTOP, "1280")


def test_schedule_with_the_proposed_start_and_cancel_one_occurrence_on_a_phone(
    browser: Browser, web: Daphne
) -> None:
    _schedule_and_cancel_one(browser, web, PHONE, "360")
