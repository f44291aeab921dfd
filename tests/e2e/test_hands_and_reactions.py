"""Raised hands and reactions in real Chromium against real daphne + SFU processes: Alice (the
host, at 1280x800) and Bob (on a phone, 360x740). A raised hand is seen on the tile and at the
top of People, in the order raised, and announced; the host lowers all hands; a hand lowers
itself after its owner has been the active speaker for a while; a reaction is seen by the other
(floating, or standing still for someone who asks for reduced motion); the host turns
reactions off. Screenshots of both sizes go to var/screenshots/hands-*.png."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.accessibility import assert_accessible
from tests.e2e.call_page import JOIN_TIMEOUT_MS, PEOPLE, Participant
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
TIMEOUT_MS = 15_000


def _shot(person: Participant, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = (person.page.viewport_size or {}).get("width")
    person.page.screenshot(path=str(SCREENSHOT_DIR / f"hands-{name}-{width}.png"))


def _hand_on_tile(viewer: Participant, name: str, position: int):
    return viewer.tile(name).get_by_role("img", name=f"Hand raised, number {position} in line")


def test_raised_hands_in_order_and_a_reaction_seen_by_the_other(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice", viewport=DESKTOP)
    bob = participants("Bob", viewport=PHONE)
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    expect(alice.tile("Bob")).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    expect(bob.tile("Alice")).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    alice.page.get_by_role("dialog", name="Your meeting's ready").get_by_role(
        "button", name="Close"
    ).click()
    # The fake microphones beep: muted, nobody is the active speaker, so no hand lowers itself
    # before the test says so.
    for person in (alice, bob):
        person.button("Turn off microphone").click()
        expect(person.button("Turn on microphone")).to_be_visible()

    # Bob raises his hand with the button; Alice sees it on his tile, first in line, and her
    # screen reader is told.
    bob.button("Raise hand").click()
    expect(bob.button("Lower hand")).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT_MS)
    expect(_hand_on_tile(alice, "Bob", 1)).to_be_visible(timeout=TIMEOUT_MS)
    expect(alice.page.locator("#call-announcer")).to_have_text("Bob raised a hand")
    # Alice raises hers with Meet's shortcut: second in line, on both screens.
    alice.page.keyboard.press("Control+Alt+h")
    expect(alice.button("Lower hand")).to_be_visible(timeout=TIMEOUT_MS)
    expect(_hand_on_tile(bob, "Alice", 2)).to_be_visible(timeout=TIMEOUT_MS)
    expect(_hand_on_tile(bob, "Bob (You)", 1)).to_be_visible()
    expect(_hand_on_tile(alice, "Alice (You)", 2)).to_be_visible()

    # People: the raised hands at the top, in order, with their positions.
    alice.people_button.click()
    hands = alice.page.locator("#people-panel #hands-list")
    expect(alice.page.get_by_role("heading", name="Raised hands")).to_be_visible()
    expect(hands.locator(".person-name")).to_have_text(["Bob", "Alice (You)"])
    expect(hands.locator(".hand-position")).to_have_text(["1", "2"])
    bob.people_button.click()
    expect(bob.page.locator("#hands-list .person-name")).to_have_text(["Bob (You)", "Alice"])
    _shot(alice, "people")
    _shot(bob, "people")
    assert_accessible(alice.page, "raised hands in People, the host's side")
    assert_accessible(bob.page, "raised hands in People, on a phone")
    bob.page.locator("#people-panel").get_by_role("button", name="Close panel").click()
    _shot(bob, "tiles")
    assert_accessible(bob.page, "raised hands on the tiles")

    # Bob may lower only his own hand; the host lowers all.
    expect(bob.page.get_by_role("button", name="Lower all hands")).to_have_count(0)
    alice.button("Lower all hands").click()
    expect(bob.button("Raise hand")).to_have_attribute("aria-pressed", "false", timeout=TIMEOUT_MS)
    expect(bob.page.locator("#call-toast")).to_have_text("Alice lowered all hands")
    expect(alice.page.locator("#call-announcer")).to_have_text("You lowered all hands")
    expect(alice.page.get_by_role("heading", name="Raised hands")).to_be_hidden()
    expect(alice.tile("Bob").locator(".tile-hand")).to_have_count(0)
    alice.page.locator("#people-panel").get_by_role("button", name="Close panel").click()

    # A reaction: Bob opens the bar and sends a thumbs up; Alice sees it float up and on his tile.
    bob.button("Send a reaction").click()
    expect(bob.button("Send a reaction")).to_have_attribute("aria-expanded", "true")
    picker = bob.page.get_by_role("group", name="Reactions")
    expect(picker.get_by_role("button")).to_have_count(9)
    _shot(bob, "reaction-bar")
    assert_accessible(bob.page, "the reactions bar open")
    picker.get_by_role("button", name="Thumbs up").click()
    floating = alice.page.get_by_role("img", name="Bob: Thumbs up")
    expect(floating).to_be_visible(timeout=TIMEOUT_MS)
    expect(alice.tile("Bob").locator(".tile-reaction")).to_have_text("👍")
    assert floating.evaluate("e => getComputedStyle(e).animationName") == "reaction-rise"
    _shot(alice, "reaction")
    _shot(bob, "reaction")
    assert_accessible(alice.page, "a reaction floating up")
    expect(floating).to_have_count(0, timeout=TIMEOUT_MS)  # gone after a few seconds

    # Reduced motion: the same reaction stands still while it shows.
    alice.page.emulate_media(reduced_motion="reduce")
    picker.get_by_role("button", name="Party popper").click()
    still = alice.page.get_by_role("img", name="Bob: Party popper")
    expect(still).to_be_visible(timeout=TIMEOUT_MS)
    assert still.evaluate("e => getComputedStyle(e).animationName") == "none"
    _shot(alice, "reaction-reduced-motion")
    bob.page.keyboard.press("Escape")
    expect(picker).to_be_hidden()

    # The host turns reactions off: Bob's button is disabled and he is told.
    alice.people_button.click()
    switch = alice.page.get_by_role("switch", name="Let people send reactions")
    expect(switch).to_be_checked()
    switch.uncheck()
    expect(bob.button("Send a reaction")).to_be_disabled(timeout=TIMEOUT_MS)
    expect(bob.page.locator("#call-toast")).to_have_text("The host turned reactions off")
    alice.page.locator("#people-panel").get_by_role("button", name="Close panel").click()

    # Bob speaks with his hand up (his beeping microphone back on, Alice's still off): it lowers
    # itself once he has been the active speaker for 3 s in all. The fake microphone beeps, so
    # he is the speaker for about 0.3 s in every 1.5 s: that takes some 15 s.
    bob.button("Raise hand").click()
    expect(_hand_on_tile(alice, "Bob", 1)).to_be_visible(timeout=TIMEOUT_MS)
    bob.button("Turn on microphone").click()
    expect(alice.tile("Bob")).to_have_class(re.compile(r"\btile-speaking\b"), timeout=30_000)
    expect(bob.button("Raise hand")).to_be_visible(timeout=45_000)
    expect(bob.page.locator("#call-toast")).to_have_text(
        "Your hand was lowered because you were speaking"
    )
    expect(alice.tile("Bob").locator(".tile-hand")).to_have_count(0, timeout=TIMEOUT_MS)

    # Nothing sticks out sideways on the phone with the two new buttons.
    assert bob.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for name in ("Raise hand", "Send a reaction", "Leave call", PEOPLE, "Chat"):
        box = bob.button(name).bounding_box()
        assert box is not None, name
        assert box["x"] >= 0, (name, box)
        assert box["x"] + box["width"] <= PHONE["width"], (name, box)
        assert box["y"] + box["height"] <= PHONE["height"], (name, box)
