"""The lobby in the browser (issue 12, item 3), with two Chromium pages: the host lets guests
ask to join an instant meeting from the call's host controls; a guest on a phone asks to join,
cancels, asks again; the host gets the notice that stays, the badge on People and the chime,
opens the waiting list with "View all", and admits from the notice; the guest is in the call
and media flows both ways (getStats). Screenshots at 1280x800 and 360x740 in var/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from rooms.models import Meeting
from tests.e2e.call_page import JOIN_TIMEOUT_MS, Participant, poll
from tests.e2e.stack import SCREENSHOT_DIR, Daphne

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
MEDIA_TIMEOUT = 30
# A name with markup in it: it must show as typed, never as HTML.
GUEST_NAME = "Gail <b>B</b>"
GUEST_LABEL = f"{GUEST_NAME} (guest)"


def _shot(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SCREENSHOT_DIR / f"lobby-{name}-{width}.png"))


def _shot_at(page: Page, name: str, viewport: dict[str, int]) -> None:
    """A screenshot at another size, then back to the page's own."""
    own = page.viewport_size
    page.set_viewport_size(viewport)
    _shot(page, name)
    if own:
        page.set_viewport_size(own)


def _fits_sideways(page: Page) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_a_guest_asks_to_join_and_the_host_admits_them_from_the_notice(
    participants: Make, daphne: Daphne
) -> None:
    from rooms.services import create_instant_meeting

    alice = participants("Alice", viewport=DESKTOP)
    meeting = create_instant_meeting(alice.user)  # type: ignore[attr-defined]
    assert meeting.access_policy == Meeting.Access.SIGNED_IN
    url = f"{daphne.base_url}/{meeting.code}"
    alice.join(url)
    alice.page.get_by_role("dialog").get_by_role("button", name="Close").click()

    # Host controls: "Let guests ask to join", stored on the meeting.
    alice.people_button.click()
    people = alice.page.get_by_role("complementary", name=re.compile("In the call"))
    guests_switch = people.get_by_role("switch", name="Let guests ask to join")
    expect(guests_switch).not_to_be_checked()
    guests_switch.check()
    expect(guests_switch).to_be_checked()
    poll(
        lambda: Meeting.objects.get(pk=meeting.pk).access_policy == Meeting.Access.GUESTS,
        10,
        "the meeting to take guests",
    )
    expect(alice.page.locator("#call-toast")).to_have_text(
        "Guests can now ask to join this call.", timeout=10_000
    )
    people.get_by_role("button", name="Close panel").click()

    # The guest, on a phone: "Ask to join", the name field in the join block beside the preview.
    gail = participants("Gail", viewport=PHONE, guest=True)
    gail.open(url)
    ask = gail.button("Ask to join")
    expect(ask).to_be_enabled()
    expect(gail.button("Join now")).to_have_count(0)
    expect(gail.page.locator(".prejoin-form #guest-name")).to_have_count(1)
    # A disabled join button looks disabled (grey), phones included.
    grey = gail.page.evaluate(
        """() => {
          const b = document.getElementById("join-button");
          b.disabled = true;
          const colour = getComputedStyle(b).backgroundColor;
          b.disabled = false;
          return colour;
        }"""
    )
    assert grey == "rgb(232, 234, 237)", grey
    _fits_sideways(gail.page)
    _shot(gail.page, "guest-prejoin")
    # On a wide screen the join block, name field included, sits beside the preview.
    gail.page.set_viewport_size(DESKTOP)
    preview = gail.page.locator(".prejoin-preview").bounding_box()
    name_box = gail.page.locator("#guest-name").bounding_box()
    assert preview
    assert name_box
    assert name_box["x"] >= preview["x"] + preview["width"]
    _shot(gail.page, "guest-prejoin")
    gail.page.set_viewport_size(PHONE)
    gail.page.get_by_label("Your name").fill(GUEST_NAME)

    # Asking, then cancelling: the host's notice comes and goes.
    ask.click()
    waiting = gail.page.get_by_role("status").filter(has_text="Asking to be let in…")
    expect(waiting).to_be_visible(timeout=10_000)
    cancel = gail.button("Cancel")
    expect(cancel).to_be_visible()
    expect(ask).to_be_hidden()
    expect(gail.page.locator("#lobby-wait .spinner")).to_be_visible()
    notice = alice.page.get_by_role("region", name=re.compile("wants to join"))
    expect(notice).to_be_visible(timeout=10_000)
    cancel.click()
    expect(ask).to_be_enabled(timeout=10_000)
    expect(waiting).to_be_hidden()
    expect(notice).to_be_hidden(timeout=10_000)
    expect(alice.page.locator("#lobby-badge")).to_be_hidden()

    # Asking again; the host gets the notice that stays, the badge and the chime.
    ask.click()
    expect(waiting).to_be_visible(timeout=10_000)
    _fits_sideways(gail.page)
    _shot(gail.page, "guest-asking")
    _shot_at(gail.page, "guest-asking", DESKTOP)
    expect(notice).to_be_visible(timeout=10_000)
    expect(notice.locator("#lobby-notice-text")).to_have_text(
        f"{GUEST_LABEL} wants to join this call"
    )
    expect(notice.locator("b")).to_have_count(0)  # the name as text, not markup
    expect(alice.page.get_by_role("button", name="People 1 asking to join: 1")).to_be_visible()
    poll(lambda: alice.page.evaluate("window.meetCall.chime.played") >= 1, 10, "the chime")
    _shot(alice.page, "host-notice")
    _shot_at(alice.page, "host-notice", PHONE)
    # Not a toast: still there after a toast would have gone (4 s), by the page's own clock.
    since = alice.page.evaluate("performance.now()")
    alice.page.wait_for_function("since => performance.now() > since + 5000", arg=since)
    expect(notice).to_be_visible()

    # "View all": the People panel at the waiting list (Admit / Deny there too).
    notice.get_by_role("button", name="View all").click()
    lobby = alice.page.locator("#people-panel").get_by_role("region", name="Waiting to join")
    expect(lobby).to_be_visible()
    expect(lobby.get_by_role("heading", name="Waiting to join")).to_be_focused()
    expect(lobby.get_by_role("button", name=f"Admit {GUEST_NAME}")).to_be_visible()
    expect(lobby.get_by_role("button", name=f"Deny {GUEST_NAME}")).to_be_visible()
    # While People is open its list is in view: the notice steps aside, and comes back after.
    expect(notice).to_be_hidden()
    _shot(alice.page, "host-view-all")
    alice.page.locator("#people-panel").get_by_role("button", name="Close panel").click()
    expect(notice).to_be_visible()

    # Admit, from the notice.
    notice.get_by_role("button", name="Admit", exact=True).click()
    expect(gail.leave_button).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    expect(notice).to_be_hidden(timeout=10_000)
    expect(alice.page.locator("#lobby-badge")).to_be_hidden()
    expect(alice.page.locator("#lobby-section")).to_be_hidden()
    expect(alice.tile(GUEST_LABEL)).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
    alice.wait_for_frames_from(GUEST_LABEL, 5, timeout=MEDIA_TIMEOUT)
    gail.wait_for_frames_from("Alice", 5, timeout=MEDIA_TIMEOUT)
    _shot(gail.page, "guest-in-call")
    _shot_at(gail.page, "guest-in-call", DESKTOP)
