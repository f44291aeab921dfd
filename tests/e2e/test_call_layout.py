"""The call's layout in real Chromium (issue 12.7): 16:9 tiles whatever the stage's shape,
pictures fitted rather than blindly cropped, the active speaker's ring drawn over the video
with moving bars on the mic badge, and the pre-join page side by side on a desktop and stacked
on a phone. Boxes are measured with boundingBox; every wait polls a condition.

Screenshots go to var/screenshots (call-layout-*.png, prejoin-layout-*.png).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.call_page import Participant, poll
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MEDIA_TIMEOUT = 30.0
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 720}
SIXTEEN_NINE = 16 / 9
# Tile sizes are whole pixels, so a box's ratio may be off 16:9 by a fraction of a pixel.
ASPECT_TOLERANCE = 0.02

Make = Callable[..., Participant]

# How much of a <video>'s picture its box shows, from its intrinsic size and computed
# object-fit: the scale a browser draws it at, and whether any of the picture falls outside.
PICTURE_FIT_JS = """v => {
  const box = v.getBoundingClientRect();
  const fit = getComputedStyle(v).objectFit;
  const sx = box.width / v.videoWidth, sy = box.height / v.videoHeight;
  const scale = fit === "cover" ? Math.max(sx, sy) : fit === "contain" ? Math.min(sx, sy) : null;
  const shownWidth = scale === null ? box.width : v.videoWidth * scale;
  const shownHeight = scale === null ? box.height : v.videoHeight * scale;
  return {
    fit, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
    boxWidth: box.width, boxHeight: box.height,
    croppedWidth: Math.max(0, 1 - box.width / shownWidth),
    croppedHeight: Math.max(0, 1 - box.height / shownHeight),
  };
}"""

# What is on top at a point on the tile's left edge, halfway down (inside the 3 px ring), and
# how the ring is drawn. elementFromPoint returns the topmost element that takes hits there.
RING_JS = """tile => {
  const box = tile.getBoundingClientRect();
  const ring = tile.querySelector(".tile-ring");
  const top = document.elementFromPoint(box.left + 1.5, box.top + box.height / 2);
  const style = getComputedStyle(ring);
  return {
    speaking: tile.classList.contains("tile-speaking"),
    topIsRing: top === ring,
    topTag: top ? top.tagName.toLowerCase() + "." + top.className : null,
    ringWidth: style.borderLeftWidth,
    ringColour: style.borderLeftColor,
    ringOverVideo: Number(style.zIndex) > 0
      && getComputedStyle(tile.querySelector("video")).zIndex === "auto",
  };
}"""
SPEAKING_BLUE = "rgb(138, 180, 248)"  # --speaking in call.css


def _grid_tile_boxes(participant: Participant) -> list[dict[str, float]]:
    boxes = [tile.bounding_box() for tile in participant.tiles().all()]
    assert all(box is not None for box in boxes), boxes
    return [box for box in boxes if box is not None]


def _assert_sixteen_nine(boxes: list[dict[str, float]], where: str) -> None:
    assert boxes, f"no tiles at {where}"
    for box in boxes:
        ratio = box["width"] / box["height"]
        assert abs(ratio / SIXTEEN_NINE - 1) <= ASPECT_TOLERANCE, (where, box, ratio)


def _assert_inside(boxes: list[dict[str, float]], viewport: dict[str, int], where: str) -> None:
    for box in boxes:
        assert box["x"] >= 0, (where, box)
        assert box["x"] + box["width"] <= viewport["width"] + 0.5, (where, box)
        assert box["y"] >= 0, (where, box)
        assert box["y"] + box["height"] <= viewport["height"] + 0.5, (where, box)


def _fit_of(participant: Participant, name: str) -> dict[str, Any]:
    """The fit of `name`'s camera picture, once its video has a size."""
    video = participant.tile(name).locator("video")
    return poll(
        lambda: (fit := video.evaluate(PICTURE_FIT_JS))["videoWidth"] > 0 and fit,
        MEDIA_TIMEOUT,
        f"{participant.name}'s picture of {name} to have a size",
    )


def _screenshot(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / name))


def test_tiles_are_16_9_on_desktop_and_phone_and_the_speaker_ring_is_over_the_video(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    carol = participants("Carol", viewport=PHONE)
    url = meeting_url(alice)
    for person in (alice, bob, carol):
        person.join(url)
    # Only Alice's (beeping fake) microphone is on, so the SFU names her the active speaker.
    for person in (bob, carol):
        person.button("Turn off microphone").click()
        expect(alice.tile(person.name).get_by_role("img", name="Microphone off")).to_be_visible(
            timeout=MEDIA_TIMEOUT * 1000
        )
    bob.wait_for_frames_from("Alice", 5, timeout=MEDIA_TIMEOUT)
    carol.wait_for_frames_from("Alice", 5, timeout=MEDIA_TIMEOUT)

    # Three 16:9 tiles at 1280x720 (two above, one centred below) and at 360x740 (stacked).
    for person, viewport in ((bob, DESKTOP), (carol, PHONE)):
        expect(person.tiles()).to_have_count(3, timeout=MEDIA_TIMEOUT * 1000)
        boxes = _grid_tile_boxes(person)
        where = f"{person.name} at {viewport['width']}x{viewport['height']}"
        _assert_sixteen_nine(boxes, where)
        _assert_inside(boxes, viewport, where)
        assert person.page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    # The phone's tiles are as wide as its stage allows: one column, nearly the full width.
    assert all(box["width"] >= PHONE["width"] - 24 for box in _grid_tile_boxes(carol))

    # The fake camera is 16:9 like its box: it fills the tile, nothing of it cropped.
    fit = _fit_of(bob, "Alice")
    assert fit["fit"] == "cover", fit
    assert fit["croppedWidth"] <= 0.02, fit
    assert fit["croppedHeight"] <= 0.02, fit

    # The ring: drawn by an element over the <video>, which is what is on top at its edge.
    # (The colour fades in over 150 ms, so the wait is for the full colour too.)
    ring = poll(
        lambda: (
            (r := bob.tile("Alice").evaluate(RING_JS))["speaking"]
            and r["ringColour"] == SPEAKING_BLUE
            and r
        ),
        MEDIA_TIMEOUT,
        "Alice's tile at Bob to show the speaking ring",
    )
    assert ring["topIsRing"], ring
    assert ring["ringWidth"] == "3px", ring
    assert ring["ringOverVideo"], ring
    # While she speaks, her mic badge shows the moving bars; the muted ones never do.
    expect(bob.tile("Alice").get_by_role("img", name="Speaking")).to_be_visible(
        timeout=MEDIA_TIMEOUT * 1000
    )
    expect(bob.tile("Carol").get_by_role("img", name="Speaking")).to_be_hidden()
    _screenshot(bob.page, "call-layout-three-1280x720.png")
    poll(
        lambda: carol.tile("Alice").evaluate(RING_JS)["topIsRing"],
        MEDIA_TIMEOUT,
        "the ring over Alice's video at Carol's phone",
    )
    _screenshot(carol.page, "call-layout-three-360x740.png")

    # A camera-off tile (initial and name) keeps the same 16:9 box.
    carol.button("Turn off camera").click()
    expect(bob.tile("Carol")).to_have_class(
        re.compile(r"(^|\s)tile-camera-off(\s|$)"), timeout=MEDIA_TIMEOUT * 1000
    )
    carol_box = bob.tile("Carol").bounding_box()
    assert carol_box is not None
    _assert_sixteen_nine([carol_box], "Carol's camera-off tile at Bob")
    alice_box = bob.tile("Alice").bounding_box()
    assert alice_box is not None
    assert abs(carol_box["width"] - alice_box["width"]) <= 1, (carol_box, alice_box)
    _screenshot(bob.page, "call-layout-camera-off-1280x720.png")


def test_one_to_one_and_presentation_keep_16_9_tiles_and_show_the_screen_whole(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    bob.wait_for_frames_from("Alice", 5, timeout=MEDIA_TIMEOUT)

    # 1:1: Alice is one large 16:9 tile, Bob's own picture a small 16:9 one in its corner.
    expect(bob.page.locator("#tile-grid")).to_have_class(re.compile(r"tile-grid-one-to-one"))
    large = bob.tile("Alice").bounding_box()
    small = bob.tile("Bob (You)").bounding_box()
    assert large is not None
    assert small is not None
    _assert_sixteen_nine([large, small], "Bob's 1:1 call")
    assert large["width"] > 3 * small["width"], (large, small)
    # The small picture lies within the large one (its bottom-right corner), not outside it.
    assert small["x"] + small["width"] <= large["x"] + large["width"], (large, small)
    assert small["y"] + small["height"] <= large["y"] + large["height"], (large, small)
    _screenshot(bob.page, "call-layout-one-to-one-1280x720.png")

    alice.button("Present now").click()
    presentation = bob.page.locator("#presentation").get_by_role(
        "group", name="Alice is presenting"
    )
    expect(presentation).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
    screen = presentation.locator("video")
    # The shared screen is shown whole: contained (letterboxed), none of it outside its box.
    fit = poll(
        lambda: (f := screen.evaluate(PICTURE_FIT_JS))["videoWidth"] > 0 and f,
        MEDIA_TIMEOUT,
        "the shared screen to have a size at Bob",
    )
    assert fit["fit"] == "contain", fit
    assert fit["croppedWidth"] == 0, fit
    assert fit["croppedHeight"] == 0, fit
    # Beside it, the people are a strip of small 16:9 tiles.
    expect(bob.tiles()).to_have_count(2)
    strip = _grid_tile_boxes(bob)
    _assert_sixteen_nine(strip, "Bob's strip beside the presentation")
    _assert_inside(strip, DESKTOP, "Bob's strip beside the presentation")
    _screenshot(bob.page, "call-layout-presenting-1280x720.png")


def test_prejoin_is_side_by_side_on_desktop_and_stacked_on_a_phone(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice")
    alice.open(meeting_url(alice))
    page = alice.page
    preview = page.locator(".preview-frame")
    form = page.locator(".prejoin-form")
    poll(
        lambda: page.locator("#preview-video").evaluate("v => v.videoWidth") > 0,
        MEDIA_TIMEOUT,
        "the camera preview",
    )

    # Desktop: the preview about two thirds, "Join now" and the pickers the third beside it.
    preview_box, form_box = preview.bounding_box(), form.bounding_box()
    assert preview_box is not None
    assert form_box is not None
    assert form_box["x"] >= preview_box["x"] + preview_box["width"], (preview_box, form_box)
    share = preview_box["width"] / (preview_box["width"] + form_box["width"])
    assert 0.58 <= share <= 0.72, (share, preview_box, form_box)
    assert abs(preview_box["width"] / preview_box["height"] - SIXTEEN_NINE) < 0.05, preview_box
    # The device pickers sit under the preview, in its column.
    camera = page.get_by_label("Camera", exact=True).bounding_box()
    assert camera is not None
    assert camera["y"] >= preview_box["y"] + preview_box["height"], (camera, preview_box)
    assert camera["x"] + camera["width"] <= preview_box["x"] + preview_box["width"] + 1, camera
    join = alice.button("Join now").bounding_box()
    assert join is not None
    assert join["y"] + join["height"] <= DESKTOP["height"], join
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    _screenshot(page, "prejoin-layout-1280x720.png")

    # Phone: stacked, the preview the full width of the card, nothing sticking out sideways.
    page.set_viewport_size(PHONE)
    poll(
        lambda: (
            (p := preview.bounding_box()) is not None
            and (f := form.bounding_box()) is not None
            and f["y"] >= p["y"] + p["height"]
        ),
        10,
        "the pre-join to stack at 360 px",
    )
    preview_box, form_box = preview.bounding_box(), form.bounding_box()
    assert preview_box is not None
    assert form_box is not None
    assert abs(preview_box["width"] - form_box["width"]) <= 1, (preview_box, form_box)
    assert preview_box["x"] >= 0, preview_box
    assert preview_box["x"] + preview_box["width"] <= PHONE["width"], preview_box
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _screenshot(page, "prejoin-layout-360x740.png")
