"""The pre-join page says who is already in the call, and keeps saying it as people come, as
Meet's does before "Join now" (rooms/in_call.py, static/js/in-call-summary.js)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.call_page import Participant
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
# The page refreshes the sentence every 10 s: one refresh late is still right.
REFRESHED_WITHIN_MS = 25_000


def test_the_pre_join_names_who_is_in_and_follows_people_arriving(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    hana = participants("Hana")
    url = meeting_url(hana)
    hana.join(url)

    vi = participants("Vi", viewport={"width": 360, "height": 740})
    vi.open(url)
    sentence = vi.page.locator("#in-call-summary")
    expect(sentence).to_have_text("Hana is in this call.")

    cy = participants("Cy")
    cy.join(url)
    expect(sentence).to_have_text("Hana and Cy are in this call.", timeout=REFRESHED_WITHIN_MS)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    vi.page.screenshot(path=str(SCREENSHOT_DIR / "prejoin-in-call-360.png"))

    # Once Vi is in the call, the page stops asking (the call's own roster takes over).
    vi.press_join()
    expect(sentence).to_have_attribute("data-refresh", "stopped", timeout=REFRESHED_WITHIN_MS)
