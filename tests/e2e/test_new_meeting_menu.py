"""The home page's "New meeting" menu in a real browser, as in Meet: a menu button (mouse and
keyboard) with "Create a meeting for later" (a dialog with the link, Copy and the code; no call
started), "Start an instant meeting" (into the call) and "Schedule in calendar"; at desktop and
phone sizes, and without script (a page with the same choices). And an instant meeting's link
still lets someone else in after everyone left."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, expect

from rooms.models import Meeting
from tests.e2e.call_page import JOIN_TIMEOUT_MS, Participant, poll
from tests.e2e.stack import SCREENSHOT_DIR, Daphne, session_cookie

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
ITEMS = ["Create a meeting for later", "Start an instant meeting", "Schedule in calendar"]


def _menu_button(page: Page):
    return page.get_by_role("button", name="New meeting", exact=True)


def _focused_text(page: Page) -> str:
    return page.evaluate("document.activeElement.textContent.trim()")


def _inside_viewport(page: Page, selector: str, *, vertically: bool = True) -> None:
    """The element is on screen, not cut off (only sideways with vertically=False: below the
    fold is fine for something in the page's flow)."""
    box = page.locator(selector).bounding_box()
    assert box is not None
    viewport = page.viewport_size
    assert viewport is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= viewport["width"], (box, viewport)
    if vertically:
        assert box["y"] >= 0, box
        assert box["y"] + box["height"] <= viewport["height"], (box, viewport)


def test_new_meeting_menu_creates_a_meeting_for_later_with_a_link_to_copy(
    participants: Make, daphne: Daphne
) -> None:
    host = participants("Hana", viewport=DESKTOP)
    host.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = host.page
    page.goto(daphne.base_url + "/")

    button = _menu_button(page)
    expect(button).to_have_attribute("aria-haspopup", "menu")
    expect(button).to_have_attribute("aria-expanded", "false")
    menu = page.get_by_role("menu", name="New meeting")
    expect(menu).to_be_hidden()

    # Mouse: opens on the first item, with the three choices.
    button.click()
    expect(menu).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(menu.get_by_role("menuitem")).to_have_text(ITEMS)
    expect(menu.get_by_role("menuitem", name=ITEMS[0])).to_be_focused()
    _inside_viewport(page, "#new-meeting-menu")
    page.screenshot(path=str(SCREENSHOT_DIR / "home-new-meeting-menu-1280.png"))

    # Keyboard: arrows move and wrap round, Home/End jump, a letter finds an item, Escape
    # closes and gives the focus back to the button.
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name=ITEMS[1])).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name=ITEMS[0])).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(menu.get_by_role("menuitem", name=ITEMS[2])).to_be_focused()
    page.keyboard.press("Home")
    expect(menu.get_by_role("menuitem", name=ITEMS[0])).to_be_focused()
    page.keyboard.press("s")
    expect(menu.get_by_role("menuitem", name=ITEMS[1])).to_be_focused()
    page.keyboard.press("s")
    expect(menu.get_by_role("menuitem", name=ITEMS[2])).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    # ArrowUp on the button opens on the last item; a click elsewhere closes.
    page.keyboard.press("ArrowUp")
    expect(menu.get_by_role("menuitem", name=ITEMS[2])).to_be_focused()
    page.get_by_role("heading", name="Upcoming meetings").click()
    expect(menu).to_be_hidden()

    # Enter on "Create a meeting for later": the link, no call.
    button.focus()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name=ITEMS[0])).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Here's the link to your meeting")
    expect(dialog).to_be_visible()
    meeting = Meeting.objects.get(host=host.user)  # type: ignore[attr-defined]
    assert (meeting.kind, meeting.status) == (Meeting.Kind.INSTANT, Meeting.Status.SCHEDULED)
    assert not meeting.participants.exists()
    link = f"{daphne.base_url}/{meeting.code}"
    expect(dialog.get_by_label("Meeting link")).to_have_value(link)
    expect(dialog).to_contain_text(f"Meeting code: {meeting.code}")
    copy = dialog.get_by_role("button", name="Copy", exact=True)
    expect(copy).to_be_focused()
    assert page.evaluate("document.querySelector('#later-dialog').matches(':modal')")
    _inside_viewport(page, "#later-dialog")
    copy.click()
    expect(dialog.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link
    page.screenshot(path=str(SCREENSHOT_DIR / "home-meeting-for-later-1280.png"))
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(_menu_button(page)).to_be_focused()

    # The link works: its pre-join page, and nobody is in it yet.
    page.goto(link)
    expect(page.get_by_text("No one is in the call yet.")).to_be_visible()
    expect(page.get_by_role("button", name="Join now", exact=True)).to_be_enabled(
        timeout=JOIN_TIMEOUT_MS
    )
    page.screenshot(path=str(SCREENSHOT_DIR / "meeting-for-later-prejoin-1280.png"))


def test_on_a_phone_the_menu_fits_and_starts_an_instant_meeting_whose_link_outlives_the_call(
    participants: Make, daphne: Daphne
) -> None:
    host = participants("Pia", viewport=PHONE)
    page = host.page
    page.goto(daphne.base_url + "/")
    _menu_button(page).click()
    menu = page.get_by_role("menu", name="New meeting")
    expect(menu).to_be_visible()
    _inside_viewport(page, "#new-meeting-menu")
    for name in ITEMS:  # nothing cut off: each item as wide as its text needs
        item = menu.get_by_role("menuitem", name=name)
        assert item.evaluate("el => el.scrollWidth <= el.clientWidth"), name
    page.screenshot(path=str(SCREENSHOT_DIR / "home-new-meeting-menu-360.png"))

    # "Create a meeting for later" on a phone: the dialog fits, link and Copy side by side.
    menu.get_by_role("menuitem", name=ITEMS[0]).click()
    dialog = page.get_by_role("dialog", name="Here's the link to your meeting")
    expect(dialog).to_be_visible()
    _inside_viewport(page, "#later-dialog")
    link_box = dialog.get_by_label("Meeting link").bounding_box()
    copy_box = dialog.get_by_role("button", name="Copy", exact=True).bounding_box()
    assert link_box is not None
    assert copy_box is not None
    assert abs(link_box["y"] - copy_box["y"]) < 8  # one row
    page.screenshot(path=str(SCREENSHOT_DIR / "home-meeting-for-later-360.png"))
    page.keyboard.press("Escape")  # a modal dialog closes on Escape
    expect(dialog).to_be_hidden()

    # "Start an instant meeting": straight to its pre-join page, and into the call.
    _menu_button(page).click()
    menu.get_by_role("menuitem", name=ITEMS[1]).click()
    expect(page).to_have_url(re.compile(r"/[a-z]{3}-[a-z]{4}-[a-z]{3}$"))
    meeting = Meeting.objects.get(
        host=host.user,  # type: ignore[attr-defined]
        status=Meeting.Status.LIVE,
    )
    assert (meeting.kind, meeting.status) == (Meeting.Kind.INSTANT, Meeting.Status.LIVE)
    host.press_join()
    link = page.url

    # Everyone leaves: the call is over, the link is not.
    host.leave_button.click()
    poll(
        lambda: Meeting.objects.get(pk=meeting.pk).status == Meeting.Status.ENDED,
        15,
        "the call to end with its last participant",
    )
    other = participants("Otto", viewport=PHONE)
    other.join(link)  # a signed-in person who was never in it, not the host: in the call
    assert Meeting.objects.get(pk=meeting.pk).status == Meeting.Status.LIVE
    other.page.screenshot(path=str(SCREENSHOT_DIR / "instant-meeting-rejoined-360.png"))


def test_without_script_new_meeting_is_a_page_with_the_same_choices(
    browser: Browser, daphne: Daphne
) -> None:
    from accounts.models import User

    user = User.objects.create_user("nojs@example.org", password=None, first_name="Noa")
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        context.add_cookies([session_cookie(user, daphne.base_url)])
        page = context.new_page()
        page.goto(daphne.base_url + "/")
        page.get_by_role("link", name="New meeting").click()
        expect(page.get_by_role("heading", name="New meeting")).to_be_visible()
        for name in ITEMS[:2]:
            expect(page.get_by_role("button", name=name)).to_be_visible()
        expect(page.get_by_role("link", name=ITEMS[2])).to_be_visible()
        page.get_by_role("button", name=ITEMS[0]).click()
        dialog = page.get_by_role("dialog", name="Here's the link to your meeting")
        expect(dialog).to_be_visible()
        meeting = Meeting.objects.get(host=user)
        expect(dialog.get_by_label("Meeting link")).to_have_value(
            f"{daphne.base_url}/{meeting.code}"
        )
        _inside_viewport(page, "#later-dialog", vertically=False)
        dialog.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOT_DIR / "home-meeting-for-later-nojs-360.png"))
        dialog.get_by_role("button", name="Close").click()  # the dialog form's own closing
        expect(dialog).to_be_hidden()
    finally:
        context.close()


def test_the_meeting_page_and_the_link_say_what_state_an_instant_meeting_is_in(
    participants: Make, daphne: Daphne
) -> None:
    from rooms import services

    host = participants("Ines", viewport=DESKTOP)
    meeting = services.create_instant_meeting(host.user)  # type: ignore[attr-defined]
    services.mark_ended(meeting)  # everyone left
    page = host.page
    page.goto(f"{daphne.base_url}/meetings/{meeting.code}/")
    expect(page.get_by_role("heading", name=meeting.title)).to_contain_text("Call ended")
    expect(page.get_by_text("The last call ended")).to_be_visible()
    expect(page.get_by_role("link", name="Join", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Add to Google Calendar")).to_have_count(0)
    page.screenshot(path=str(SCREENSHOT_DIR / "instant-meeting-ended-details-1280.png"))

    Meeting.objects.filter(pk=meeting.pk).update(status=Meeting.Status.EXPIRED)
    phone = participants("Olga", viewport=PHONE)
    response = phone.page.goto(f"{daphne.base_url}/{meeting.code}")
    assert response is not None
    assert response.status == 410
    expect(phone.page.get_by_role("heading", name="This meeting link has expired")).to_be_visible()
    expect(phone.page.get_by_role("button", name="Start a new meeting")).to_be_visible()
    _inside_viewport(phone.page, ".link-expired")
    phone.page.screenshot(path=str(SCREENSHOT_DIR / "instant-meeting-link-expired-360.png"))
