"""The schedule form's invitees as chips with completion (issue 12.9), in real Chromium at
1280x800 and 360x740: part of a colleague's name shows them in the list, Enter makes their chip,
a pasted list makes one chip per address, Backspace takes the last back, an address that cannot
be right is marked and stops the form, and the meeting is scheduled with exactly the chips'
addresses; its edit page shows them as chips again. axe checks the form with the list open and
with an invalid chip. Without script the plain box schedules the same way.

Screenshots: var/screenshots/invitee-chips-*.png. Only the web process is needed (no SFU node);
the invitation e-mails are queued to the broker, and no worker runs here to send them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse
from playwright.sync_api import Browser, Locator, Page, Route, expect

from accounts.models import User
from rooms.models import Meeting
from tests.e2e.accessibility import assert_accessible
from tests.e2e.conftest import _log_name
from tests.e2e.netns import LoopbackNamespace
from tests.e2e.stack import SCREENSHOT_DIR, Daphne, no_wrap, session_cookie, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
ZONE = "Europe/Berlin"

# A paste as the browser delivers it (Playwright has no clipboard of its own to paste from).
PASTE_JS = """([selector, text]) => {
  const data = new DataTransfer();
  data.setData("text/plain", text);
  const input = document.querySelector(selector);
  const init = { clipboardData: data, bubbles: true, cancelable: true };
  input.dispatchEvent(new ClipboardEvent("paste", init));
}"""


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


def _person(email: str, full_name: str = "", **extra) -> User:
    user = User.objects.create_user(
        email, password=None, full_name=full_name, time_zone=ZONE, time_zone_chosen=True, **extra
    )
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    return user


def _page(browser: Browser, web: Daphne, user: User, viewport: dict, **options) -> Page:
    context = browser.new_context(viewport=viewport, timezone_id=ZONE, **options)
    context.add_cookies([session_cookie(user, web.base_url)])
    return context.new_page()


def _shot(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = (page.viewport_size or {}).get("width")
    page.screenshot(path=str(SCREENSHOT_DIR / f"invitee-chips-{name}-{width}.png"), full_page=True)


def _no_horizontal_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _chips(page: Page) -> Locator:
    return page.locator(".invitee-chip")


def _schedule_with_chips(browser: Browser, web: Daphne, viewport: dict, size: str) -> None:
    host = _person(f"host-{size}@example.org", "Hana Host")
    _person("ana.lopes@example.org", "Ana Lopes")
    _person("andrea.gone@example.org", "Ana Gone", is_active=False)
    _person("maria@example.org", "Maria Ana Silva")
    page = _page(browser, web, host, viewport)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(web.base_url + reverse("rooms:schedule"))
        page.get_by_label("Title").fill(f"Planning {size}")
        box = page.get_by_role("combobox", name="Invite people")
        expect(box).to_have_attribute("aria-expanded", "false")
        expect(page.locator("textarea[name=invitees]")).to_be_hidden()
        expect(page.locator("#id_invitees_helptext")).to_have_text(
            re.compile(r"^Type a name or an email address and press Enter; .* \(at most \d+\)\.$")
        )

        # Part of a name: the directory's matches (not the inactive one), as a listbox.
        box.press_sequentially("ana l")
        listbox = page.get_by_role("listbox", name="People found")
        expect(listbox.get_by_role("option")).to_have_count(1)
        expect(listbox.get_by_role("option")).to_contain_text("Ana Lopes")
        expect(listbox.get_by_role("option")).to_contain_text("ana.lopes@example.org")
        expect(box).to_have_attribute("aria-expanded", "true")
        expect(box).to_have_attribute("aria-controls", re.compile(r"\S+"))
        box.press("ArrowDown")
        option = listbox.get_by_role("option", name=re.compile("Ana Lopes"))
        expect(option).to_have_attribute("aria-selected", "true")
        expect(box).to_have_attribute("aria-activedescendant", option.get_attribute("id") or "-")
        _no_horizontal_scroll(page)
        assert_accessible(page, "schedule form, invitee completion open")
        _shot(page, "completion")

        box.press("Enter")
        expect(listbox).to_be_hidden()
        expect(box).to_have_attribute("aria-expanded", "false")
        expect(box).to_have_value("")
        expect(_chips(page)).to_have_count(1)
        ana = _chips(page).first
        expect(ana).to_have_text(re.compile(r"^\s*Ana Lopes"))
        expect(ana).to_have_attribute("title", "ana.lopes@example.org")
        expect(ana.get_by_role("button", name="Remove ana.lopes@example.org")).to_be_visible()
        assert page.url.endswith(reverse("rooms:schedule"))  # Enter made a chip, sent nothing

        # Escape closes the list and keeps the text.
        box.press_sequentially("mar")
        expect(listbox.get_by_role("option")).to_have_count(1)
        box.press("Escape")
        expect(listbox).to_be_hidden()
        expect(box).to_have_value("mar")
        box.fill("")

        # A pasted list: one chip per address; Backspace in the empty box takes the last back.
        page.evaluate(PASTE_JS, ["#id_invitees_entry", "a@example.com, b@example.com"])
        expect(_chips(page)).to_have_count(3)
        expect(_chips(page).nth(1)).to_have_text(re.compile(r"^\s*a@example\.com"))
        expect(_chips(page).nth(2)).to_have_text(re.compile(r"^\s*b@example\.com"))
        box.press("Backspace")
        expect(_chips(page)).to_have_count(2)
        expect(page.locator(".invitee-chip[data-email='b@example.com']")).to_have_count(0)

        # An address that cannot be right: marked, said, and the form is not sent.
        box.press_sequentially("not-an-address")
        box.press("Tab")
        invalid = page.locator(".invitee-chip.chip-invalid")
        expect(invalid).to_have_count(1)
        expect(invalid).to_have_text(re.compile("not-an-address"))
        problem = page.locator(".chips-problem")
        expect(problem).to_have_text(
            "Not a valid email address: not-an-address. Correct or remove it before sending."
        )
        expect(box).to_have_attribute("aria-invalid", "true")
        expect(box).to_be_focused()  # Tab made the chip; the focus stays for the next one
        _no_horizontal_scroll(page)
        assert_accessible(page, "schedule form with an invalid invitee chip")
        _shot(page, "invalid")
        page.get_by_role("button", name="Schedule and send invitations").click()
        expect(problem).to_have_attribute("role", "alert")
        expect(box).to_be_focused()
        assert page.url.endswith(reverse("rooms:schedule"))
        assert not Meeting.objects.filter(host=host).exists()

        page.get_by_role("button", name="Remove not-an-address").click()
        expect(invalid).to_have_count(0)
        expect(problem).to_be_hidden()
        expect(box).not_to_have_attribute("aria-invalid", "true")
        assert page.locator("textarea[name=invitees]").input_value().split("\n") == [
            "ana.lopes@example.org",
            "a@example.com",
        ]
        page.get_by_role("button", name="Schedule and send invitations").click()
        expect(page.locator(".meeting-detail h1")).to_contain_text(f"Planning {size}")

        meeting = Meeting.objects.get(host=host)
        assert set(meeting.invitations.values_list("email", flat=True)) == {
            "ana.lopes@example.org",
            "a@example.com",
        }

        # Editing shows the invitees as chips, with the colleague's name.
        page.goto(web.base_url + reverse("rooms:edit", args=[meeting.code]))
        expect(_chips(page)).to_have_count(2)
        edited_ana = page.locator(".invitee-chip[data-email='ana.lopes@example.org']")
        expect(edited_ana).to_have_text(re.compile(r"^\s*Ana Lopes"))
        expect(edited_ana).to_have_attribute("title", "ana.lopes@example.org")
        expect(page.locator(".invitee-chip[data-email='a@example.com']")).to_be_visible()
        _no_horizontal_scroll(page)
        assert_accessible(page, "edit form with invitee chips")
        _shot(page, "edit")

        # Remove one there and save: the invitations follow the chips.
        page.get_by_role("button", name="Remove a@example.com").click()
        page.get_by_role("button", name="Save and notify invitees").click()
        expect(page.locator(".meeting-detail h1")).to_contain_text(f"Planning {size}")
        assert list(meeting.invitations.values_list("email", flat=True)) == [
            "ana.lopes@example.org"
        ]
        assert errors == []
    finally:
        page.context.close()


def test_invitees_as_chips_on_desktop(browser: Browser, web: Daphne) -> None:
    _schedule_with_chips(browser, web, DESKTOP, "1280")


def test_invitees_as_chips_on_a_phone(browser: Browser, web: Daphne) -> None:
    _schedule_with_chips(browser, web, PHONE, "360")


def test_without_script_the_invitees_box_is_typed_as_before(browser: Browser, web: Daphne) -> None:
    host = _person("host-noscript@example.org", "Hana Host")
    page = _page(browser, web, host, DESKTOP, java_script_enabled=False)
    try:
        page.goto(web.base_url + reverse("rooms:schedule"))
        page.get_by_label("Title").fill("Planning without script")
        expect(page.locator("#id_invitees_entry")).to_have_count(0)
        page.get_by_label("Invite people").fill("x@example.com,\ny@example.com")
        page.get_by_role("button", name="Schedule and send invitations").click()
        expect(page.locator(".meeting-detail h1")).to_contain_text("Planning without script")
        meeting = Meeting.objects.get(host=host)
        assert set(meeting.invitations.values_list("email", flat=True)) == {
            "x@example.com",
            "y@example.com",
        }
    finally:
        page.context.close()


def _until_held(page: Page, held: list[Route], count: int) -> None:
    """Until `count` requests wait in `held`. Playwright calls route handlers only while the
    test is inside one of its calls, so the wait lets it run (a short wait per check)."""
    wait_until(
        lambda: page.wait_for_timeout(25) or len(held) >= count, 10, f"{count} held searches"
    )


def test_a_late_reply_to_an_older_search_is_dropped(browser: Browser, web: Daphne) -> None:
    """The directory's replies are held here and answered newest first: the list shows the
    newest search's people, and the reply to the older one, coming after, changes nothing."""
    host = _person("host-late@example.org", "Hana Host")
    page = _page(browser, web, host, DESKTOP)
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)  # answered later, in the order the test chooses

    page.route(re.compile(r"/meetings/people\?"), hold)
    try:
        page.goto(web.base_url + reverse("rooms:schedule"))
        box = page.get_by_role("combobox", name="Invite people")
        searches = page.locator(".chips-box")
        box.press_sequentially("an")
        expect(searches).to_have_attribute("data-searches", "1")
        _until_held(page, held, 1)
        box.press_sequentially("d")
        expect(searches).to_have_attribute("data-searches", "2")
        _until_held(page, held, 2)
        older, newer = held
        assert older.request.url.endswith("q=an")
        assert newer.request.url.endswith("q=and")

        newer.fulfill(json=[{"name": "Andrea Newer", "email": "andrea@example.org"}])
        options = page.get_by_role("listbox", name="People found").get_by_role("option")
        expect(options).to_have_count(1)
        expect(options).to_contain_text("Andrea Newer")
        expect(searches).to_have_attribute("data-searches", "1")

        older.fulfill(json=[{"name": "Ana Older", "email": "ana@example.org"}])
        expect(searches).to_have_attribute("data-searches", "0")
        expect(options).to_have_count(1)
        expect(options).to_contain_text("Andrea Newer")
    finally:
        page.context.close()
