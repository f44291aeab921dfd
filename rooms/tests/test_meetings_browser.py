"""The meeting page in a real browser: the copy button puts the join link on the clipboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings
from django.test import Client

from rooms.tests.meetings_support import make_user, schedule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# Nothing but the live server on 127.0.0.1: Chromium's own background traffic is switched off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-pings",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-sync",
    "--disable-features=OptimizationHints,MediaRouter,Translate",
]


@pytest.fixture
def page(live_server) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    playwright_sync = pytest.importorskip("playwright.sync_api")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context()
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        try:
            yield context
        finally:
            context.close()
            browser.close()


@pytest.fixture
def signed_in(live_server) -> tuple[object, str]:
    """A meeting and its host's session cookie, made before the browser starts (Playwright's
    sync API runs an event loop, in which Django refuses synchronous database calls)."""
    host = make_user("host@example.org")
    meeting = schedule(host, title="Design review")
    client = Client()
    client.force_login(host)
    return meeting, client.cookies[django_settings.SESSION_COOKIE_NAME].value


def test_copy_button_copies_the_join_link(signed_in, page, live_server) -> None:
    meeting, cookie = signed_in
    context = page
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": cookie,
                "domain": urlparse(live_server.url).hostname,
                "path": "/",
            }
        ]
    )
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(f"{live_server.url}/meetings/{meeting.code}/")
    button = tab.get_by_role("button", name="Copy link")
    button.click()
    # The link is on the address the page was served on (meet.links), its port included.
    expected = live_server.url + meeting.join_path
    tab.wait_for_function(
        "expected => navigator.clipboard.readText().then(text => text === expected)",
        arg=expected,
        timeout=10_000,
    )
    assert tab.evaluate("() => navigator.clipboard.readText()") == expected
    assert errors == []


def test_a_code_typed_without_dashes_on_the_home_page_opens_the_join_page(
    signed_in, page, live_server
) -> None:
    meeting, session = signed_in
    page.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    tab = page.new_page()
    tab.goto(live_server.url + "/")
    tab.get_by_placeholder("Enter a code or link").fill(meeting.code.replace("-", " ").upper())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / "home-enter-code-1280.png"))
    tab.set_viewport_size({"width": 360, "height": 740})
    assert tab.get_by_placeholder("Enter a code or link").is_visible()
    tab.screenshot(path=str(SCREENSHOTS / "home-enter-code-360.png"))
    tab.get_by_role("button", name="Join", exact=True).click()
    tab.wait_for_url(f"**/{meeting.code}")
    assert urlparse(tab.url).path == f"/{meeting.code}"
    assert tab.get_by_role("button", name="Join now", exact=True).count() == 1
