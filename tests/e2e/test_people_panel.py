"""The People panel as Meet's (issue 12, item 8), with three Chromium pages: Alice hosts, Bob
and Carol join. Each person's row has a microphone icon named for what it shows and a ⋮ menu
that holds only what the viewer may do: "Pin" / "Unpin" for everyone, "Mute" (while that mic
is on), "Spotlight for everyone" and "Remove from call" for hosts and co-hosts. The menu works
by keyboard. Pinning puts that person on your own stage only; the lock shows to everyone.
Effects are checked on the other page (its sending track) and in the database, not in the
host's UI alone.
Screenshots at 1280x720 and 360x740 in var/screenshots/people-*.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Locator, Page, expect

from rooms.models import Meeting
from tests.e2e.accessibility import assert_accessible
from tests.e2e.call_page import Participant, poll
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
MEDIA_TIMEOUT_MS = 30_000
MIC_ON = re.compile(r"^(Microphone on|Speaking)$")
# Whether every audio track this page sends is switched off (a host's mute turns it off).
SENDS_NO_SOUND_JS = """() => window.__peerConnections.every(pc => pc.getSenders()
  .filter(s => s.track && s.track.kind === "audio").every(s => !s.track.enabled))"""
TILE_AREAS_JS = """grid => Object.fromEntries([...grid.querySelectorAll(".tile")].map(t => {
  const r = t.getBoundingClientRect();
  return [t.getAttribute("aria-label"), Math.round(r.width * r.height)];
}))"""


def _shot(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SCREENSHOT_DIR / f"people-{name}-{width}.png"))


def _tile_areas(person: Participant) -> dict[str, int]:
    return person.page.locator("#tile-grid").evaluate(TILE_AREAS_JS)


def _largest_tile(person: Participant) -> str | None:
    areas = _tile_areas(person)
    ranked = sorted(areas.items(), key=lambda item: item[1], reverse=True)
    # The largest, and clearly so (not one of a grid of equals).
    if len(ranked) > 1 and ranked[0][1] > ranked[1][1] * 1.5:
        return ranked[0][0]
    return None


def _mic(person: Participant, name: str) -> Locator:
    return person.person(name).locator(".person-mic")


def _menu_items(menu: Locator) -> Locator:
    return menu.get_by_role("menuitem")


def _close_people(person: Participant) -> None:
    person.page.locator("#people-panel").get_by_role("button", name="Close panel").click()
    expect(person.page.locator("#people-panel")).to_be_hidden()


def _tab_to(page: Page, target: Locator, start: Locator, most: int = 40) -> None:
    """Reach `target` with the Tab key from `start`: it is in the keyboard's way."""
    start.focus()
    for _ in range(most):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


@pytest.mark.parametrize(
    "viewport", [{"width": 1280, "height": 720}, {"width": 360, "height": 740}], ids=["1280", "360"]
)
def test_people_panel_mic_icons_menu_pin_lock_and_removal(
    participants: Make, meeting_url: Callable[[Participant], str], viewport: dict[str, int]
) -> None:
    alice = participants("Alice", viewport=viewport)
    bob = participants("Bob", viewport=viewport)
    carol = participants("Carol")
    url = meeting_url(alice)  # Alice hosts
    meeting = Meeting.objects.get(code=urlparse(url).path.strip("/").split("/")[-1])
    for person in (alice, bob, carol):
        person.join(url)
    alice.page.get_by_role("dialog").get_by_role("button", name="Close").click()
    for name in ("Bob", "Carol"):
        expect(alice.tile(name)).to_be_visible(timeout=MEDIA_TIMEOUT_MS)

    # Mic icons, named: Bob's is on, then off when he mutes himself.
    alice.people_button.click()
    expect(_mic(alice, "Bob")).to_have_accessible_name(MIC_ON, timeout=MEDIA_TIMEOUT_MS)
    expect(_mic(alice, "Alice (You)")).to_have_accessible_name(MIC_ON)
    bob.button("Turn off microphone").click()
    expect(_mic(alice, "Bob")).to_have_accessible_name("Microphone off", timeout=10_000)
    # The beeping fake microphones of Alice and Carol make one of them the active speaker,
    # shown in People with its own icon and name. Watched on every frame: a beep is short.
    speaking = alice.page.wait_for_function(
        """() => {
          const mic = document.querySelector("#people-list .person-mic[data-state=speaking]");
          return mic && mic.getAttribute("aria-label");
        }""",
        polling="raf",
        timeout=MEDIA_TIMEOUT_MS,
    )
    assert speaking.json_value() == "Speaking"
    _shot(alice.page, "speaking")

    # The host's menu for a muted person: no "Mute". Escape closes it, focus back on ⋮.
    menu = alice.open_person_menu("Bob")
    expect(_menu_items(menu)).to_have_text(["Pin", "Spotlight for everyone", "Remove from call"])
    expect(_menu_items(menu).first).to_be_focused()
    _shot(alice.page, "host-menu")
    assert_accessible(alice.page, "People with a person's menu open")
    alice.page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    more_for_bob = alice.button("More options for Bob")
    expect(more_for_bob).to_be_focused()
    expect(more_for_bob).to_have_attribute("aria-expanded", "false")
    expect(alice.page.locator("#people-panel")).to_be_visible()  # only the menu closed

    # Bob unmutes: "Mute" is offered; by keyboard alone, Tab to ⋮, Enter, arrows, Enter.
    bob.button("Turn on microphone").click()
    expect(_mic(alice, "Bob")).to_have_accessible_name(MIC_ON, timeout=10_000)
    _tab_to(
        alice.page,
        more_for_bob,
        alice.page.locator("#people-panel").get_by_role("button", name="Close panel"),
    )
    alice.page.keyboard.press("Enter")
    menu = alice.page.get_by_role("menu", name="Options for Bob")
    expect(_menu_items(menu)).to_have_text(
        ["Pin", "Mute", "Spotlight for everyone", "Remove from call"]
    )
    expect(menu.get_by_role("menuitem", name="Pin")).to_be_focused()
    alice.page.keyboard.press("End")
    expect(menu.get_by_role("menuitem", name="Remove from call")).to_be_focused()
    alice.page.keyboard.press("ArrowDown")  # wraps around
    expect(menu.get_by_role("menuitem", name="Pin")).to_be_focused()
    alice.page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Mute")).to_be_focused()
    alice.page.keyboard.press("Enter")
    expect(menu).to_be_hidden()
    expect(more_for_bob).to_be_focused()
    # The effect on Bob's side: his page stopped sending sound, and says so.
    poll(lambda: bob.page.evaluate(SENDS_NO_SOUND_JS), 10, "Bob's microphone to be off")
    expect(bob.button("Turn on microphone")).to_be_visible()
    expect(_mic(alice, "Bob")).to_have_accessible_name("Microphone off", timeout=10_000)

    # A participant: only "Pin", for anyone, and no host controls.
    bob.people_button.click()
    expect(bob.page.get_by_role("region", name="Host controls")).to_have_count(0)
    expect(bob.page.get_by_role("button", name="Lock meeting")).to_be_hidden()
    bob_menu = bob.open_person_menu("Alice")
    expect(_menu_items(bob_menu)).to_have_text(["Pin"])
    _shot(bob.page, "participant-menu")
    bob.page.keyboard.press("Escape")
    expect(_menu_items(bob.open_person_menu("Carol"))).to_have_text(["Pin"])
    bob.page.keyboard.press("Escape")
    _close_people(bob)

    # Pin: Carol takes Alice's stage, and only hers.
    alice.choose_for_person("Carol", "Pin")
    _close_people(alice)
    poll(lambda: _largest_tile(alice) == "Carol", 10, "Carol's tile to be the largest for Alice")
    assert alice.tile("Carol").evaluate("t => t.classList.contains('tile-pinned')")
    assert _largest_tile(bob) is None, _tile_areas(bob)  # Bob's grid: three equals
    expect(bob.page.locator("#tile-grid.tile-grid-pinned")).to_have_count(0)
    _shot(alice.page, "pinned")
    _shot(bob.page, "not-pinned")
    alice.people_button.click()
    expect(_menu_items(alice.open_person_menu("Carol"))).to_have_text(
        ["Unpin", "Mute", "Spotlight for everyone", "Remove from call"]
    )
    alice.page.keyboard.press("Escape")

    # The lock, for everyone, live.
    indicator_of = {p.name: p.page.locator("#lock-indicator") for p in (alice, bob, carol)}
    alice.page.locator("#host-controls").get_by_role("button", name="Lock meeting").click()
    for indicator in indicator_of.values():
        expect(indicator).to_be_visible(timeout=10_000)
        expect(indicator).to_have_text("Meeting locked")
    poll(lambda: Meeting.objects.get(pk=meeting.pk).locked, 10, "the meeting to be locked")
    _shot(bob.page, "locked")
    _shot(alice.page, "host-controls-locked")
    assert_accessible(bob.page, "the call with the lock shown")
    alice.page.locator("#host-controls").get_by_role("button", name="Unlock meeting").click()
    for indicator in indicator_of.values():
        expect(indicator).to_be_hidden(timeout=10_000)

    # Remove Carol: she is out, stays out (the server's record), and Alice's pin goes with her.
    alice.choose_for_person("Carol", "Remove from call")
    expect(
        carol.page.get_by_role("heading", name="You've been removed from the meeting")
    ).to_be_visible(timeout=10_000)
    from rooms import moderation

    poll(
        lambda: moderation.is_removed(meeting, user=carol.user),  # type: ignore[attr-defined]
        10,
        "Carol to be removed on the server",
    )
    expect(alice.tile("Carol")).to_have_count(0, timeout=MEDIA_TIMEOUT_MS)
    expect(alice.person("Carol")).to_have_count(0)
    expect(alice.page.locator("#tile-grid.tile-grid-pinned")).to_have_count(0)
