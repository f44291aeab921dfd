"""Breakout rooms in real Chromium against real daphne + SFU processes: Alice (the host) makes
two rooms, puts Bob in one and Cara in the other, and opens them; each page moves to its room
without a reload and sees nobody from the others; Dan, late, lands in the main room and Alice
puts him in Cara's room; Alice visits Bob's room (media flows between
them there, Cara still sees nobody), broadcasts to all rooms, and closes them: after the
countdown everyone is back in the main room, where they see each other again. Screenshots at
1280x800 (and Cara's room on a phone, 360x740) go to var/screenshots/breakouts-*.png."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.accessibility import assert_accessible
from tests.e2e.call_page import JOIN_TIMEOUT_MS, Participant
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
TIMEOUT_MS = 20_000
# The panel's countdown is 10 s; the move back takes a join and a publish on top.
CLOSING_TIMEOUT_MS = 40_000


def _shot(person: Participant, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = (person.page.viewport_size or {}).get("width")
    person.page.screenshot(path=str(SCREENSHOT_DIR / f"breakouts-{name}-{width}.png"))


def _page_loads(person: Participant) -> int:
    """How many times the page has loaded: moving between rooms must not reload it."""
    return int(person.page.evaluate("performance.getEntriesByType('navigation').length"))


def test_host_splits_the_call_visits_a_room_and_brings_everyone_back(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice", viewport=DESKTOP)
    bob = participants("Bob", viewport=DESKTOP)
    cara = participants("Cara", viewport=DESKTOP)
    url = meeting_url(alice)
    for person in (alice, bob, cara):
        person.join(url)
    for person, others in (
        (alice, ("Bob", "Cara")),
        (bob, ("Alice", "Cara")),
        (cara, ("Alice", "Bob")),
    ):
        for other in others:
            expect(person.tile(other)).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    alice.page.get_by_role("dialog", name="Your meeting's ready").get_by_role(
        "button", name="Close"
    ).click()
    # Only hosts and co-hosts have the button.
    expect(bob.button("Breakout rooms")).to_be_hidden()

    # Alice names two rooms and puts one person in each.
    alice.button("Breakout rooms").click()
    expect(alice.button("Breakout rooms")).to_have_attribute("aria-expanded", "true")
    panel = alice.page.locator("#breakouts-panel")
    form = panel.get_by_role("form", name="Set up rooms")
    form.get_by_label("Name of room 1", exact=True).fill("Red")
    form.get_by_label("Name of room 2", exact=True).fill("Blue")
    form.get_by_label("Bob", exact=True).select_option(label="Red")
    form.get_by_label("Cara", exact=True).select_option(label="Blue")
    _shot(alice, "setup")
    assert_accessible(alice.page, "the Breakout rooms panel with the set-up form")
    form.get_by_role("button", name="Open rooms").click()

    # Each participant's page moves to its room, without a reload, and sees only itself there.
    expect(bob.page.locator("#breakout-where")).to_have_text("You are in Red", timeout=TIMEOUT_MS)
    expect(cara.page.locator("#breakout-where")).to_have_text("You are in Blue", timeout=TIMEOUT_MS)
    for person in (bob, cara):
        expect(person.tiles()).to_have_count(1, timeout=TIMEOUT_MS)
        assert _page_loads(person) == 1
    # Alice stays in the main room, alone now.
    expect(alice.tiles()).to_have_count(1, timeout=TIMEOUT_MS)
    live = panel.locator("#breakout-live")
    expect(live.get_by_text("Red", exact=True)).to_be_visible()
    expect(live.get_by_text("Bob", exact=True)).to_be_visible()
    _shot(alice, "open")

    # A late joiner lands in the main room; Alice puts him in Blue from the panel.
    dan = participants("Dan", viewport=DESKTOP)
    dan.join(url)
    expect(dan.tile("Alice")).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    late = live.get_by_role("list", name="Put in a room")
    late.get_by_label("Dan", exact=True).select_option(label="Blue")
    expect(dan.page.locator("#breakout-where")).to_have_text("You are in Blue", timeout=TIMEOUT_MS)
    expect(cara.tile("Dan")).to_be_visible(timeout=TIMEOUT_MS)
    expect(live.get_by_text("Cara, Dan", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    expect(alice.tiles()).to_have_count(1, timeout=TIMEOUT_MS)

    # Alice visits Red: she and Bob see and hear each other there; Cara, in Blue, nobody.
    alice.button("Join Red").click()
    expect(alice.page.locator("#breakout-where")).to_have_text("You are in Red", timeout=TIMEOUT_MS)
    expect(alice.tile("Bob")).to_be_visible(timeout=TIMEOUT_MS)
    expect(bob.tile("Alice")).to_be_visible(timeout=TIMEOUT_MS)
    alice.wait_for_frames_from("Bob", 5)
    bob.wait_for_frames_from("Alice", 5)
    expect(cara.tiles()).to_have_count(2)  # herself and Dan
    expect(alice.tiles()).to_have_count(2)
    _shot(bob, "visited")
    # Red has its own chat, kept with the meeting.
    bob.button("Chat").click()
    bob.page.get_by_role("textbox", name="Send a message").fill("Hello from Red")
    bob.page.get_by_role("textbox", name="Send a message").press("Enter")
    expect(alice.page.locator("#chat-list")).to_contain_text("Hello from Red", timeout=TIMEOUT_MS)
    bob.button("Chat").click()

    # A message to every room.
    live.get_by_label("Message to all rooms").fill("Two minutes left")
    live.get_by_role("button", name="Broadcast").click()
    for person in (bob, cara):
        expect(person.page.locator("#breakout-message")).to_have_text(
            "Alice: Two minutes left", timeout=TIMEOUT_MS
        )
    cara.page.set_viewport_size(PHONE)
    _shot(cara, "room")
    cara.page.set_viewport_size(DESKTOP)

    # Close: a countdown, then everyone is back in the main room and sees everyone again.
    live.get_by_role("button", name="Close breakout rooms").click()
    expect(cara.page.locator("#breakout-where")).to_contain_text(
        "Breakout rooms close in", timeout=TIMEOUT_MS
    )
    _shot(cara, "closing")
    for person, others in (
        (alice, ("Bob", "Cara")),
        (bob, ("Alice", "Cara")),
        (cara, ("Alice", "Bob")),
    ):
        for other in others:
            expect(person.tile(other)).to_be_visible(timeout=CLOSING_TIMEOUT_MS)
    bob.wait_for_frames_from("Cara", 5)
    cara.wait_for_frames_from("Bob", 5)
    expect(dan.tile("Bob")).to_be_visible(timeout=CLOSING_TIMEOUT_MS)
    for person in (alice, bob, cara):
        expect(person.page.locator("#breakout-banner")).to_be_hidden(timeout=TIMEOUT_MS)
        assert _page_loads(person) == 1
    # Alice's panel is back to its set-up form.
    expect(form).to_be_visible(timeout=TIMEOUT_MS)
    _shot(bob, "back")
    # Red's chat stayed there: not in the main room's.
    expect(bob.page.locator("#chat-list")).not_to_contain_text("Hello from Red")

    # The meeting's page shows each room's chat under its name.
    alice.leave_button.click()
    base, code = url.rsplit("/", 1)
    alice.page.goto(f"{base}/meetings/{code}/")
    rooms = alice.page.get_by_role("region", name="Breakout rooms")
    expect(rooms.get_by_role("heading", name="Red", exact=True)).to_be_visible()
    expect(rooms.get_by_role("region", name="Red")).to_contain_text("Hello from Red")
    expect(rooms.get_by_role("region", name="Blue")).to_contain_text("No one wrote")
    rooms.scroll_into_view_if_needed()
    _shot(alice, "meeting-page")
