"""Sharing a meeting from inside the call, as in Meet: the host who is first in gets a "Your
meeting's ready" card with the link and a copy button; everyone has "Meeting details" with the
link and the code, on phones too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.call_page import Participant
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]


def test_the_first_host_in_gets_the_link_to_share_and_everyone_has_meeting_details(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    host = participants("Hana")
    url = meeting_url(host)
    code = url.rstrip("/").rsplit("/", 1)[-1]
    host.context.grant_permissions(["clipboard-read", "clipboard-write"])
    host.join(url)
    page = host.page
    link = page.evaluate("location.origin") + "/" + code

    card = page.get_by_role("dialog", name="Your meeting's ready")
    expect(card).to_be_visible()
    expect(card.get_by_label("Meeting link")).to_have_value(link)
    page.screenshot(path=str(SCREENSHOT_DIR / "call-meeting-ready-1280.png"))
    card.get_by_role("button", name="Copy link").click()
    expect(page.locator("#call-toast")).to_have_text("Meeting link copied")
    assert page.evaluate("navigator.clipboard.readText()") == link
    card.get_by_role("button", name="Close").click()
    expect(card).to_be_hidden()

    # Meeting details: the link and the code, whenever wanted.
    host.button("Meeting details").click()
    details = page.get_by_role("complementary", name="Meeting details")
    expect(details.get_by_label("Meeting link")).to_have_value(link)
    expect(details).to_contain_text(f"Meeting code: {code}")
    # Escape closes it and gives the focus back to its button.
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()
    expect(host.button("Meeting details")).to_be_focused()
    # Nothing under the call takes the focus: the site header ("Sign out") is inert.
    assert page.evaluate("document.querySelector('.site-header').inert") is True
    sign_out_takes_focus = """() => {
      const button = document.querySelector('.site-header button');
      button.focus();
      return document.activeElement === button;
    }"""
    assert page.evaluate(sign_out_takes_focus) is False
    for _ in range(40):  # every control of the call, and round again
        page.keyboard.press("Tab")
        assert page.evaluate("!document.activeElement.closest('.site-header')")

    # Someone joining later is not told the meeting is ready; on a phone the details are there.
    guest = participants("Gus", viewport={"width": 360, "height": 740})
    guest.join(url)
    expect(guest.page.get_by_role("dialog", name="Your meeting's ready")).to_be_hidden()
    guest.button("Meeting details").click()
    phone_details = guest.page.get_by_role("complementary", name="Meeting details")
    expect(phone_details.get_by_label("Meeting link")).to_have_value(link)
    expect(phone_details.get_by_role("button", name="Copy joining info")).to_be_visible()
    guest.page.screenshot(path=str(SCREENSHOT_DIR / "call-meeting-details-360.png"))
