"""Names and time zones in a real browser (issue 12, item 4): a person signs up with their full
name, is shown by it in the header, on the meeting page and in the call, is offered their
browser's time zone once and takes it; the meeting page then shows a meeting in another zone
at both times. At phone size, another person keeps UTC and is not asked again."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from rooms import services
from tests.e2e.call_page import JOIN_TIMEOUT_MS
from tests.e2e.stack import SCREENSHOT_DIR, Daphne, child_env, database_url, session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
PASSWORD = "a-long-enough-passphrase-42"


@pytest.fixture
def stack_env(transactional_db: None) -> dict[str, str]:
    """The server lets a new account in without confirming its address first (the
    development default), so that sign-up leads straight to the signed-in pages."""
    return child_env(database_url(connection.settings_dict), ACCOUNT_EMAIL_VERIFICATION="optional")


def _proposal(page: Page):
    return page.get_by_role("form", name="Time zone")


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_sign_up_with_a_name_and_take_the_browsers_time_zone(
    browser: Browser, daphne: Daphne
) -> None:
    context = browser.new_context(viewport=DESKTOP, timezone_id="Europe/Berlin")
    page = context.new_page()
    try:
        page.goto(daphne.base_url + "/accounts/signup/")
        page.get_by_label("Full name").fill("  Grace   Hopper ")
        page.get_by_label("Email").fill("grace@example.org")
        page.get_by_label(re.compile(r"^Password:?$")).fill(PASSWORD)
        page.get_by_label("Password (again)").fill(PASSWORD)
        page.get_by_role("button", name="Sign Up").click()
        expect(page).to_have_url(daphne.base_url + "/")
        user = User.objects.get(email="grace@example.org")
        assert user.full_name == "Grace Hopper"
        expect(page.locator(".nav-user")).to_have_text("Grace Hopper")

        # The browser's zone is proposed on the first signed-in page.
        proposal = _proposal(page)
        expect(proposal).to_be_visible()
        expect(proposal).to_contain_text("Use Europe/Berlin as your time zone?")
        expect(proposal.get_by_role("button", name="Keep UTC")).to_be_visible()
        _no_horizontal_scroll(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "names-time-zone-proposal-1280.png"))
        proposal.get_by_role("button", name="Use it").click()
        expect(proposal.get_by_role("status")).to_have_text(
            "Your time zone is Europe/Berlin. You can change it in Settings."
        )
        user.refresh_from_db()
        assert (user.time_zone, user.time_zone_chosen) == ("Europe/Berlin", True)
        page.reload()
        expect(page.locator(".nav-user")).to_have_text("Grace Hopper")
        expect(_proposal(page)).to_have_count(0)

        # A meeting in New York's zone: both times on its page, the people by name.
        start = (datetime.now(UTC) + timedelta(days=7)).replace(
            hour=14, minute=0, second=0, microsecond=0
        )
        meeting = services.schedule_meeting(
            user,
            services.MeetingDetails(
                title="Launch review",
                starts_at=start,
                ends_at=start + timedelta(minutes=45),
                time_zone="America/New_York",
                # A co-host, not an invitee: no invitation mail (and no broker) involved.
                co_hosts=[
                    User.objects.create_user("ann@example.org", password=None, full_name="Ann Lee")
                ],
            ),
        )
        page.goto(daphne.base_url + meeting.get_absolute_url())
        header = page.locator(".meeting-detail header")
        expect(header).to_contain_text("(America/New_York) ·")
        expect(header).to_contain_text("your time (Europe/Berlin)")
        expect(header).to_contain_text("Hosted by Grace Hopper")
        people = page.locator(".attendee-list")
        expect(people.locator("li").first).to_contain_text("Grace Hopper grace@example.org Host")
        expect(people.locator("li").nth(1)).to_contain_text("Ann Lee ann@example.org Co-host")
        _no_horizontal_scroll(page)
        page.screenshot(path=str(SCREENSHOT_DIR / "names-meeting-page-1280.png"), full_page=True)

        # In the call, by name.
        instant = services.create_instant_meeting(user)
        page.goto(daphne.base_url + reverse("rooms:join", args=[instant.code]))
        expect(page.get_by_text("Joining as Grace Hopper")).to_be_visible()
        expect(page.get_by_label("Your name")).to_have_value("Grace Hopper")
        page.get_by_role("button", name="Join now", exact=True).click()
        expect(page.get_by_role("button", name="Leave call", exact=True)).to_be_visible(
            timeout=JOIN_TIMEOUT_MS
        )
        expect(page.locator("#tile-grid")).to_contain_text("Grace Hopper")
        page.screenshot(path=str(SCREENSHOT_DIR / "names-in-call-1280.png"))
    finally:
        context.close()


def test_keeping_utc_at_phone_size_is_asked_once(browser: Browser, daphne: Daphne) -> None:
    user = User.objects.create_user("ann@example.org", password=None, full_name="Ann Lee")
    context = browser.new_context(viewport=PHONE, timezone_id="America/Sao_Paulo")
    context.add_cookies([session_cookie(user, daphne.base_url)])
    page = context.new_page()
    try:
        page.goto(daphne.base_url + "/")
        proposal = _proposal(page)
        expect(proposal).to_contain_text("Use America/Sao Paulo as your time zone?")
        _no_horizontal_scroll(page)
        for button in ("Use it", "Keep UTC"):
            box = proposal.get_by_role("button", name=button).bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= PHONE["width"], box
        page.screenshot(path=str(SCREENSHOT_DIR / "names-time-zone-proposal-360.png"))
        proposal.get_by_role("button", name="Keep UTC").click()
        expect(proposal.get_by_role("status")).to_have_text(re.compile(r"^Your time zone is UTC\."))
        user.refresh_from_db()
        assert (user.time_zone, user.time_zone_chosen) == ("UTC", True)
        page.goto(daphne.base_url + "/accounts/preferences/")
        expect(page.get_by_label("Full name")).to_have_value("Ann Lee")
        expect(_proposal(page)).to_have_count(0)
        page.screenshot(path=str(SCREENSHOT_DIR / "names-settings-360.png"), full_page=True)
    finally:
        context.close()
