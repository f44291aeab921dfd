""" "Full screen" in the call, as Meet's: the call view fills the screen and the button turns
into "Exit full screen"; leaving the call leaves full screen (static/js/call/fullscreen.js)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.call_page import Participant, poll
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
FULL_SCREEN_ELEMENT = "document.fullscreenElement && document.fullscreenElement.id"


def test_the_call_goes_full_screen_and_back_and_leaving_ends_it(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    hana = participants("Hana")
    hana.join(meeting_url(hana))
    page = hana.page
    page.get_by_role("dialog").get_by_role("button", name="Close").click()

    page.get_by_role("button", name="Full screen", exact=True).click()
    poll(lambda: page.evaluate(FULL_SCREEN_ELEMENT) == "in-call", 10, "the call full screen")
    leave_full_screen = page.get_by_role("button", name="Exit full screen")
    expect(leave_full_screen).to_have_attribute("aria-pressed", "true")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "call-fullscreen-1280x720.png"))

    leave_full_screen.click()
    poll(lambda: page.evaluate(FULL_SCREEN_ELEMENT) is None, 10, "full screen left")
    expect(page.get_by_role("button", name="Full screen", exact=True)).to_be_visible()

    # In full screen when the call ends: the end screen is a page again.
    page.get_by_role("button", name="Full screen", exact=True).click()
    poll(lambda: page.evaluate(FULL_SCREEN_ELEMENT) == "in-call", 10, "full screen again")
    hana.leave_button.click()
    poll(lambda: page.evaluate(FULL_SCREEN_ELEMENT) is None, 10, "full screen left on leaving")
