"""Layouts as Meet's (issue 14.1) in real Chromium, with four pages: Alice hosts, Bob, Carol
(a phone, 360x740) and Dan join with their microphones off.

- Over the tile limit (3, kept in localStorage as the "Change layout" dialog keeps it): oneself,
  one other and an "N others" tile that opens People; the video of a person without a tile
  stops arriving (getStats: bytes stand still), because the hidden tile reports 0x0.
- A new speaker (the SFU's activeSpeaker) swaps into view in place of the shown person, whose
  video then stops in turn.
- "Change layout" (the dialog, checked with axe while open): Spotlight shows the speaker alone,
  Sidebar the speaker large with a strip beside; measured by the tiles' boxes.
- The host's "Spotlight for everyone" puts Dan on everyone's stage; one's own pin wins; "Remove
  spotlight" gives the stage back.
- Camera off: the tile is an avatar with the name, and that video's bytes stop.

Screenshots at 1280x720 and 360x740: var/screenshots/layouts-*.png. Every wait polls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.accessibility import assert_accessible
from tests.e2e.call_page import Participant, poll
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
MEDIA_TIMEOUT = 30.0
MEDIA_TIMEOUT_MS = 30_000
PHONE = {"width": 360, "height": 740}
# Set before the page's scripts run, as the "Change layout" dialog would have kept it.
KEEP_LAYOUT_JS = "localStorage.setItem('meet.layout', {choice});"

# Bytes received per remote video track (the track id a tile's <video> shows), from getStats.
BYTES_BY_TRACK_JS = """async () => {
  const bytes = {};
  for (const pc of window.__peerConnections) {
    if (pc.connectionState === "closed") continue;
    for (const s of (await pc.getStats()).values()) {
      if (s.type === "inbound-rtp" && s.kind === "video" && s.trackIdentifier) {
        bytes[s.trackIdentifier] = s.bytesReceived || 0;
      }
    }
  }
  return bytes;
}"""
# The boxes of the people's tiles shown in the grid (not "N others"): [name, x, y, width,
# height], in no special order.
SHOWN_TILES_JS = """grid => [...grid.querySelectorAll(".tile[data-peer-id]")]
  .filter(t => !t.hidden && getComputedStyle(t).display !== "none")
  .map(t => { const r = t.getBoundingClientRect();
    return [t.getAttribute("aria-label"), r.x, r.y, r.width, r.height]; })"""


def _shot(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SCREENSHOT_DIR / f"layouts-{name}-{width}.png"))


def _keep_layout(person: Participant, mode: str, tiles: int) -> None:
    choice = json.dumps(json.dumps({"mode": mode, "tiles": tiles}))
    person.context.add_init_script(KEEP_LAYOUT_JS.format(choice=choice))


def _join_muted(person: Participant, url: str) -> None:
    person.open(url)
    person.button("Turn off microphone").click()
    person.press_join()


def _tile_element(person: Participant, name: str) -> Locator:
    """A person's tile whether shown or not (a hidden tile is not in the accessibility tree)."""
    return person.page.locator(f'#tile-grid .tile[aria-label="{name}"]')


def _shown(person: Participant) -> dict[str, dict[str, float]]:
    rows = person.page.locator("#tile-grid").evaluate(SHOWN_TILES_JS)
    return {
        name: {"x": x, "y": y, "width": width, "height": height}
        for name, x, y, width, height in rows
    }


def _shown_names(person: Participant) -> set[str]:
    return set(_shown(person))


def _others_tile(person: Participant) -> Locator:
    return person.page.get_by_role("button", name=re.compile(r"^\d+ others?: show everyone"))


def _track_of(person: Participant, name: str) -> str | None:
    return (
        _tile_element(person, name)
        .locator("video")
        .evaluate("v => (v.srcObject && v.srcObject.getVideoTracks()[0] || {}).id || null")
    )


def _bytes_of(person: Participant, name: str) -> int:
    track = _track_of(person, name)
    if not track:
        return -1
    # No inbound-rtp yet: not a packet has come for that video.
    return int(person.page.evaluate(BYTES_BY_TRACK_JS).get(track, 0))


def _wait_bytes_stop(person: Participant, name: str) -> None:
    """Until the bytes of `name`'s video have not moved over five polls (over a second)."""
    history: list[int] = []

    def stopped() -> bool:
        history.append(_bytes_of(person, name))
        return len(history) >= 6 and history[-1] >= 0 and len(set(history[-6:])) == 1

    poll(stopped, MEDIA_TIMEOUT, f"{person.name}'s bytes of {name}'s video to stop")


def _wait_bytes_flow(person: Participant, name: str) -> None:
    start = _bytes_of(person, name)
    poll(
        lambda: _bytes_of(person, name) > max(start, 0) + 20_000,
        MEDIA_TIMEOUT,
        f"{person.name} to receive {name}'s video",
    )


def _largest(person: Participant) -> str | None:
    """The clearly largest shown tile (1.5 times the next), or None for tiles of equal size."""
    boxes = _shown(person)
    ranked = sorted(boxes.items(), key=lambda item: item[1]["width"] * item[1]["height"])[::-1]
    if len(ranked) == 1:
        return ranked[0][0]
    first, second = (box["width"] * box["height"] for _, box in ranked[:2])
    return ranked[0][0] if first > second * 1.5 else None


def _choose_layout(person: Participant, layout: str, *, check_accessible: bool = False) -> None:
    page = person.page
    if page.locator("#settings-panel").is_hidden():
        person.button("Settings").click()
    person.button("Change layout").click()
    dialog = page.get_by_role("dialog", name="Change layout")
    expect(dialog).to_be_visible()
    radio = dialog.get_by_role("radio", name=layout, exact=True)
    radio.check()
    expect(radio).to_be_checked()
    if check_accessible:
        _shot(page, "dialog")
        assert_accessible(page, "the call with the Change layout dialog open")
    page.keyboard.press("Escape")  # the dialog closes, the settings panel under it stays
    expect(dialog).to_be_hidden()
    expect(person.button("Change layout")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#settings-panel")).to_be_hidden()


def test_layouts_over_the_limit_speakers_spotlight_sidebar_and_the_hosts_spotlight(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    carol, dan = participants("Carol", viewport=PHONE), participants("Dan")
    _keep_layout(alice, "tiled", 3)
    _keep_layout(carol, "auto", 3)
    url = meeting_url(alice)
    for person in (alice, bob, carol, dan):
        _join_muted(person, url)
    alice.page.get_by_role("dialog", name="Your meeting's ready").get_by_role(
        "button", name="Close"
    ).click()

    # --- over the limit: Alice, one other, "2 others" -----------------------------------------
    others = _others_tile(alice)
    expect(others.locator(".tile-others-label")).to_have_text("2 others", timeout=MEDIA_TIMEOUT_MS)
    poll(lambda: len(_shown_names(alice)) == 2, 10, "two people's tiles at Alice")
    people_shown = _shown_names(alice) & {"Bob", "Carol", "Dan"}
    assert len(people_shown) == 1, _shown(alice)
    assert "Alice (You)" in _shown_names(alice)
    (seen,) = people_shown
    hidden = sorted({"Bob", "Carol", "Dan"} - people_shown)
    _wait_bytes_flow(alice, seen)
    # Everyone's video reached the page once; a person without a tile costs nothing now.
    for name in hidden:
        expect(_tile_element(alice, name)).to_be_hidden()
        _wait_bytes_stop(alice, name)
    # At least one of them was shown (and sent) before the last one joined.
    assert max(_bytes_of(alice, name) for name in hidden) > 0
    _shot(alice.page, "overflow")
    # The phone: its own limit of 3 too, its tiles inside its width.
    expect(_others_tile(carol).locator(".tile-others-label")).to_have_text(
        "2 others", timeout=MEDIA_TIMEOUT_MS
    )
    _shot(carol.page, "overflow")
    # "2 others" opens People, where everyone is.
    others.click()
    expect(alice.page.locator("#people-panel")).to_be_visible()
    expect(alice.person("Dan")).to_be_visible()
    alice.page.keyboard.press("Escape")
    expect(alice.page.locator("#people-panel")).to_be_hidden()

    # --- a new speaker swaps into view --------------------------------------------------------
    speaker = next(name for name in ("Dan", "Carol", "Bob") if name != seen)
    by_name = {"Bob": bob, "Carol": carol, "Dan": dan}
    by_name[speaker].button("Turn on microphone").click()
    expect(alice.page.locator("#tile-grid").get_by_role("group", name=speaker)).to_be_visible(
        timeout=MEDIA_TIMEOUT_MS
    )
    assert seen not in _shown_names(alice), _shown(alice)
    expect(others.locator(".tile-others-label")).to_have_text("2 others")
    _wait_bytes_flow(alice, speaker)
    _wait_bytes_stop(alice, seen)
    _shot(alice.page, "speaker-swapped")

    # --- Spotlight: the speaker alone; Sidebar: the speaker large, a strip beside -------------
    _choose_layout(alice, "Spotlight", check_accessible=True)
    poll(lambda: _shown_names(alice) == {speaker}, 10, f"{speaker} alone in Spotlight")
    box = _shown(alice)[speaker]
    assert box["width"] >= 1280 * 0.6, box
    _shot(alice.page, "spotlight")
    _choose_layout(alice, "Sidebar")
    poll(lambda: _largest(alice) == speaker, 10, f"{speaker} on the Sidebar stage")
    boxes = _shown(alice)
    strip = [b for name, b in boxes.items() if name != speaker]
    assert strip, boxes
    assert all(b["x"] >= boxes[speaker]["x"] + boxes[speaker]["width"] - 1 for b in strip), boxes
    assert "Alice (You)" in boxes
    expect(others).to_be_visible()
    _shot(alice.page, "sidebar")

    # --- the host's spotlight for everyone ----------------------------------------------------
    alice.people_button.click()
    alice.choose_for_person("Dan", "Spotlight for everyone")
    alice.page.keyboard.press("Escape")
    poll(lambda: _largest(bob) == "Dan", MEDIA_TIMEOUT, "Dan on Bob's stage")
    poll(lambda: _largest(carol) == "Dan", MEDIA_TIMEOUT, "Dan on Carol's stage")
    poll(lambda: _largest(alice) == "Dan", MEDIA_TIMEOUT, "Dan on Alice's stage")
    poll(lambda: _largest(dan) == "Dan (You)", MEDIA_TIMEOUT, "Dan on his own stage")
    _shot(bob.page, "host-spotlight")
    _shot(carol.page, "host-spotlight")
    # One's own pin wins, for oneself only.
    bob.people_button.click()
    bob.choose_for_person("Carol", "Pin")
    bob.page.keyboard.press("Escape")
    poll(lambda: _largest(bob) == "Carol", 10, "Bob's own pin on his stage")
    assert _largest(carol) == "Dan"
    # Removed: Carol's Auto grid is back (her own 3 tiles with "2 others").
    alice.people_button.click()
    alice.choose_for_person("Dan", "Remove spotlight")
    poll(lambda: _largest(carol) is None, MEDIA_TIMEOUT, "Carol's grid back")
    assert _largest(bob) == "Carol"

    # --- camera off: an avatar with the name, and no video arrives for it ---------------------
    dan.button("Turn off camera").click()
    dan_at_bob = _tile_element(bob, "Dan")
    expect(dan_at_bob).to_have_class(re.compile(r"\btile-camera-off\b"), timeout=MEDIA_TIMEOUT_MS)
    expect(dan_at_bob.locator(".tile-initial")).to_be_visible()
    expect(dan_at_bob.locator(".tile-initial")).to_have_text("D")
    expect(dan_at_bob.locator(".tile-name")).to_have_text("Dan")
    _wait_bytes_stop(bob, "Dan")
    _shot(bob.page, "camera-off")
