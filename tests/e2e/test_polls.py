"""Polls in real Chromium against real daphne + SFU processes: Alice (the host) starts a poll in
the Polls panel, Bob votes, Alice sees the count live, closes the poll, and Bob sees the
results. At 1280x800, and Bob's results once more on a phone (360x740); axe runs with the panel
open. Screenshots go to var/screenshots/polls-*.png."""

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
TIMEOUT_MS = 15_000


def _shot(person: Participant, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = (person.page.viewport_size or {}).get("width")
    person.page.screenshot(path=str(SCREENSHOT_DIR / f"polls-{name}-{width}.png"))


def test_host_starts_a_poll_the_other_votes_and_sees_the_results(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice", viewport=DESKTOP)
    bob = participants("Bob", viewport=DESKTOP)
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    expect(alice.tile("Bob")).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    expect(bob.tile("Alice")).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    alice.page.get_by_role("dialog", name="Your meeting's ready").get_by_role(
        "button", name="Close"
    ).click()

    # Alice opens Polls and starts one: a question, three options (one added), named.
    alice.button("Polls").click()
    expect(alice.button("Polls")).to_have_attribute("aria-expanded", "true")
    panel = alice.page.locator("#polls-panel")
    form = panel.get_by_role("form", name="Start a poll")
    expect(form).to_be_visible()
    form.get_by_label("Question").fill("Where shall we have lunch?")
    form.get_by_label("Option 1", exact=True).fill("Pizza <b>place</b>")
    form.get_by_label("Option 2", exact=True).fill("Salad bar")
    form.get_by_role("button", name="Add an option").click()
    expect(form.get_by_label("Option 3", exact=True)).to_be_focused()
    form.get_by_label("Option 3", exact=True).fill("Soup kitchen")
    _shot(alice, "form")
    assert_accessible(alice.page, "the Polls panel with the form, the host's side")
    form.get_by_role("button", name="Launch").click()
    alice_poll = panel.locator("#poll-list > li").first
    expect(alice_poll.get_by_role("heading", name="Where shall we have lunch?")).to_be_visible(
        timeout=TIMEOUT_MS
    )
    expect(alice_poll.locator(".poll-meta")).to_have_text("Open · Named · 0 votes")
    expect(form.get_by_label("Question")).to_have_value("")  # ready for the next one

    # Bob is told, opens Polls and sees the question with radio options, no counts.
    expect(bob.page.locator("#call-toast")).to_have_text(
        "New poll: Where shall we have lunch?", timeout=TIMEOUT_MS
    )
    bob.button("Polls").click()
    bob_panel = bob.page.locator("#polls-panel")
    expect(bob_panel.get_by_role("form", name="Start a poll")).to_be_hidden()
    choices = bob_panel.get_by_role("radiogroup", name="Where shall we have lunch?")
    expect(choices.get_by_role("radio")).to_have_count(3)
    # The text people typed is text, not markup.
    expect(choices.get_by_role("radio", name="Pizza <b>place</b>")).to_be_visible()
    expect(bob_panel.locator(".poll-results")).to_have_count(0)
    choices.get_by_role("radio", name="Salad bar").check()
    _shot(bob, "vote")
    assert_accessible(bob.page, "the Polls panel, a participant voting")
    bob_panel.get_by_role("button", name="Vote").click()
    expect(bob_panel.get_by_role("status").filter(has_text="Thanks for voting")).to_be_visible(
        timeout=TIMEOUT_MS
    )

    # Alice sees the vote live, with Bob's name (a named poll).
    salad = alice_poll.locator(".poll-result").nth(1)
    expect(salad.locator(".poll-count")).to_have_text("1 vote · 100%", timeout=TIMEOUT_MS)
    expect(salad.locator(".poll-voters")).to_have_text("Bob")
    expect(alice_poll.locator(".poll-meta")).to_have_text("Open · Named · 1 vote")
    _shot(alice, "live-results")
    assert_accessible(alice.page, "live results, the host's side")

    # Alice closes it; Bob sees the results, his choice marked, and no voters' names.
    alice_poll.get_by_role("button", name="Close poll").click()
    expect(alice_poll.locator(".poll-meta")).to_have_text(
        "Closed · Named · 1 vote", timeout=TIMEOUT_MS
    )
    expect(alice_poll.get_by_role("button", name="Close poll")).to_have_count(0)
    expect(salad.locator(".poll-voters")).to_have_text("Bob")  # still hers to see
    bob_poll = bob_panel.locator("#poll-list > li").first
    expect(bob_poll.locator(".poll-meta")).to_have_text(
        "Closed · Named · 1 vote", timeout=TIMEOUT_MS
    )
    expect(bob_poll.get_by_role("radio")).to_have_count(0)
    bob_salad = bob_poll.locator(".poll-result").nth(1)
    expect(bob_salad.locator(".poll-option-text")).to_have_text("Salad bar (your vote)")
    expect(bob_salad.locator(".poll-count")).to_have_text("1 vote · 100%")
    expect(bob_poll.locator(".poll-voters")).to_have_count(0)
    expect(bob_poll.locator(".poll-result").first.locator(".poll-count")).to_have_text(
        "0 votes · 0%"
    )
    _shot(alice, "closed")
    _shot(bob, "results")
    assert_accessible(bob.page, "the results, a participant's side")

    # The same results on a phone: the panel covers the stage and nothing sticks out sideways.
    bob.page.set_viewport_size(PHONE)
    expect(bob_salad).to_be_visible()
    _shot(bob, "results")
    assert_accessible(bob.page, "the results on a phone")
    assert bob.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = bob_poll.bounding_box()
    assert box is not None, box
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= PHONE["width"], box
    # Escape closes the panel and gives the focus back to the Polls button.
    bob.page.keyboard.press("Escape")
    expect(bob_panel).to_be_hidden()
    expect(bob.button("Polls")).to_be_focused()
