"""The call in real Chromium against real daphne + SFU processes (fake camera and microphone).

Media is checked through getStats() of every RTCPeerConnection each page created: decoded
frames and their size, received audio packets, and canvas snapshots that prove the picture
moves. Rooms stay at 2-3 people; every wait polls a condition with a generous bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.call_page import PEOPLE, Participant, poll
from tests.e2e.netns import LoopbackNamespace
from tests.e2e.stack import SCREENSHOT_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MEDIA_TIMEOUT = 30.0

Make = Callable[..., Participant]


def _remote_video(participant: Participant, expected: int) -> list[dict]:
    """Inbound video streams decoding at 640 px wide, once there are `expected` of them."""
    stats = participant.media_stats()
    decoding = [
        s for s in stats["videoInbound"] if s["framesDecoded"] > 0 and s["frameWidth"] == 640
    ]
    return decoding if len(decoding) >= expected else []


def _audio_packets(participant: Participant) -> dict[str, int]:
    return {
        s["trackIdentifier"]: s["packetsReceived"]
        for s in participant.media_stats()["audioInbound"]
    }


def test_three_participants_decode_each_others_video_and_receive_audio(
    participants: Make,
    meeting_url: Callable[[Participant], str],
    loopback_network: LoopbackNamespace | None,
) -> None:
    alice, bob, carol = participants("Alice"), participants("Bob"), participants("Carol")
    url = meeting_url(alice)
    for person in (alice, bob, carol):
        person.join(url)

    for person in (alice, bob, carol):
        others = [p.name for p in (alice, bob, carol) if p is not person]
        for other in others:
            expect(person.tile(other)).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
        # Each video starts at its smallest layer and climbs as the viewer's downlink estimate
        # grows (sfu/downlink.py); on a saturated 2-core runner that climb has taken over 30 s.
        poll(
            lambda p=person: _remote_video(p, 2),
            2 * MEDIA_TIMEOUT,
            f"{person.name} to decode 2 videos at 640 px",
        )
        audio_before = poll(
            lambda p=person: (a := _audio_packets(p)) and len(a) >= 2 and all(a.values()) and a,
            MEDIA_TIMEOUT,
            f"{person.name} to receive audio from both others",
        )
        # Still flowing: every stream keeps growing.
        for other in others:
            frames = person.frames_from(other)
            person.wait_for_frames_from(other, frames)
        poll(
            lambda p=person, before=audio_before: all(
                _audio_packets(p).get(track, 0) > count for track, count in before.items()
            ),
            MEDIA_TIMEOUT,
            f"{person.name}'s audio packet counts to grow",
        )
        # The picture is live, not a frozen frame.
        change = poll(
            lambda p=person, o=others[0]: (c := p.picture_change(o)) > 0.01 and c,
            MEDIA_TIMEOUT,
            f"{person.name}'s view of {others[0]} to move",
        )
        assert change > 0.01
        # Loopback only: every selected ICE pair is 127.0.0.1 on both ends.
        if loopback_network is not None:
            pairs = person.selected_candidate_addresses()
            assert pairs, "no connected peer connection"
            assert all(local == remote == "127.0.0.1" for local, remote in pairs), pairs

    # Three tiles in two rows: the last row's tile is centred under the two above (no hole).
    boxes = [tile.bounding_box() for tile in alice.tiles().all()]
    assert all(box is not None for box in boxes)
    rows: dict[float, list[dict[str, float]]] = {}
    for box in boxes:
        assert box is not None
        rows.setdefault(round(box["y"]), []).append(box)
    if len(rows) == 2:
        top, bottom = (rows[y] for y in sorted(rows))
        top_centre = (min(b["x"] for b in top) + max(b["x"] + b["width"] for b in top)) / 2
        assert len(bottom) == 1
        assert abs(bottom[0]["x"] + bottom[0]["width"] / 2 - top_centre) <= 2, (top, bottom)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    alice.page.screenshot(path=str(SCREENSHOT_DIR / "call-three-1280x720.png"))

    # The People panel lists everyone, us first.
    alice.people_button.click()
    people = alice.page.locator("#people-list .person-name")
    expect(people).to_have_text(["Alice (You)", "Bob", "Carol"], timeout=10_000)


def test_microphone_and_camera_toggles_are_seen_by_others(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    bob.wait_for_frames_from("Alice", 10, timeout=MEDIA_TIMEOUT)
    muted_icon = bob.tile("Alice").get_by_role("img", name="Microphone off")
    expect(muted_icon).to_be_hidden()
    # The quality indicator comes from getStats: loopback is a good connection.
    quality = bob.tile("Alice").get_by_role("img", name="Connection: good")
    expect(quality).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
    # With Bob's microphone off, Alice's (beeping fake) microphone makes her the active speaker.
    bob.button("Turn off microphone").click()
    bob_muted = alice.tile("Bob").get_by_role("img", name="Microphone off")
    expect(bob_muted).to_be_visible(timeout=10_000)
    speaking = _contains("tile-speaking")
    expect(bob.tile("Alice")).to_have_class(speaking, timeout=MEDIA_TIMEOUT * 1000)

    alice.button("Turn off microphone").click()
    expect(alice.button("Turn on microphone")).to_be_visible()
    expect(muted_icon).to_be_visible(timeout=10_000)
    # Ctrl+D turns it back on.
    alice.page.keyboard.press("Control+d")
    expect(alice.button("Turn off microphone")).to_be_visible()
    expect(muted_icon).to_be_hidden(timeout=10_000)

    # Camera off: Bob's consumer is paused, so no new frames arrive and the tile shows the initial.
    alice.button("Turn off camera").click()
    expect(alice.button("Turn on camera")).to_be_visible()
    expect(bob.tile("Alice")).to_have_class(_contains("tile-camera-off"), timeout=10_000)

    def frames_stopped() -> bool:
        before = bob.frames_from("Alice")
        bob.page.wait_for_timeout(1500)  # the window over which "no new frames" is judged
        return bob.frames_from("Alice") == before

    poll(frames_stopped, MEDIA_TIMEOUT, "Alice's frames to stop at Bob")
    # Ctrl+E turns it back on and frames flow again.
    alice.page.keyboard.press("Control+e")
    expect(alice.button("Turn off camera")).to_be_visible()
    expect(bob.tile("Alice")).not_to_have_class(_contains("tile-camera-off"), timeout=10_000)
    stopped_at = bob.frames_from("Alice")
    bob.wait_for_frames_from("Alice", stopped_at + 10, timeout=MEDIA_TIMEOUT)


def test_joining_with_camera_off_then_turning_it_on(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    url = meeting_url(alice)
    bob.join(url)
    alice.open(url)
    alice.button("Turn off camera").click()
    alice.button("Turn off microphone").click()
    # Signed in: the name is the account's, shown and not editable.
    expect(alice.page.get_by_label("Your name")).to_have_value("Alice")
    expect(alice.page.get_by_label("Your name")).not_to_be_editable()
    alice.button("Join now").click()
    expect(alice.leave_button).to_be_visible()
    expect(alice.button("Turn on camera")).to_be_visible()
    expect(bob.tile("Alice")).to_have_class(_contains("tile-camera-off"), timeout=10_000)
    expect(bob.tile("Alice").get_by_role("img", name="Microphone off")).to_be_visible()

    alice.button("Turn on camera").click()
    expect(bob.tile("Alice")).not_to_have_class(_contains("tile-camera-off"), timeout=10_000)
    frames = bob.wait_for_frames_from("Alice", 0, timeout=MEDIA_TIMEOUT)
    bob.wait_for_frames_from("Alice", frames + 10, timeout=MEDIA_TIMEOUT)
    expect(bob.tile("Alice").get_by_role("img", name="Microphone off")).to_be_visible()


def test_screen_share_reaches_the_others_and_stops(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    bob.wait_for_frames_from("Alice", 5, timeout=MEDIA_TIMEOUT)

    alice.button("Present now").click()
    # Alice sees a notice with "Stop presenting", not her own screen (a hall of mirrors).
    notice = alice.page.locator("#presentation").get_by_role("group", name="You are presenting")
    expect(notice).to_contain_text("You are presenting to everyone", timeout=10_000)
    expect(notice.locator("video")).to_have_count(0)
    presentation = bob.page.locator("#presentation").get_by_role(
        "group", name="Alice is presenting"
    )
    expect(presentation).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
    # Bob is told, not only shown.
    expect(bob.page.locator("#call-toast")).to_have_text("Alice is presenting")
    screen_track = presentation.locator("video").evaluate("v => v.srcObject.getVideoTracks()[0].id")

    def screen_frames() -> int:
        return int(bob.frames_by_track().get(screen_track, {}).get("frames", 0))

    first = poll(
        lambda: (f := screen_frames()) > 0 and f, MEDIA_TIMEOUT, "Bob to decode the screen"
    )
    poll(lambda: screen_frames() > first, MEDIA_TIMEOUT, "the screen share to keep flowing")
    # The camera still flows beside it: a third producer, not a replacement.
    camera = bob.frames_from("Alice")
    bob.wait_for_frames_from("Alice", camera)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    bob.page.screenshot(path=str(SCREENSHOT_DIR / "call-presenting-1280x720.png"))

    alice.page.screenshot(path=str(SCREENSHOT_DIR / "call-presenter-notice-1280x720.png"))
    notice.get_by_role("button", name="Stop presenting").click()
    expect(alice.button("Present now")).to_be_visible()
    expect(notice).to_have_count(0)
    expect(presentation).to_have_count(0, timeout=MEDIA_TIMEOUT * 1000)


def test_dropped_websocket_is_recovered_with_media_flowing(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice", droppable_websocket=True), participants("Bob")
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    bob.wait_for_frames_from("Alice", 5, timeout=MEDIA_TIMEOUT)
    alice.wait_for_frames_from("Bob", 5, timeout=MEDIA_TIMEOUT)
    assert alice.websocket_count() == 1
    alice_peer_id = alice.page.evaluate("window.meetCall.peerId")

    alice.drop_websocket()

    expect(alice.page.get_by_text("Reconnecting…")).to_be_visible(timeout=5_000)
    poll(lambda: alice.websocket_count() >= 2, MEDIA_TIMEOUT, "Alice's client to reconnect")
    expect(alice.page.locator("#call-banner")).to_be_hidden(timeout=MEDIA_TIMEOUT * 1000)
    # The same participant again (same peerId, one tile each), with media flowing both ways
    # within a few seconds of the reconnect.
    assert alice.page.evaluate("window.meetCall.peerId") == alice_peer_id
    for person, other in ((alice, "Bob"), (bob, "Alice")):
        frames = max(person.frames_from(other), 0)
        person.wait_for_frames_from(other, frames + 10, timeout=MEDIA_TIMEOUT)
        expect(person.tiles()).to_have_count(2)
    expect(bob.tile("Alice")).to_have_count(1)
    expect(bob.page.locator(f'#tile-grid .tile[data-peer-id="{alice_peer_id}"]')).to_have_count(1)


def test_leaving_removes_the_tile_everywhere(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob, carol = participants("Alice"), participants("Bob"), participants("Carol")
    url = meeting_url(alice)
    for person in (alice, bob, carol):
        person.join(url)
    for person in (alice, bob):
        expect(person.tile("Carol")).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)

    carol.leave_button.click()
    expect(carol.page.get_by_role("heading", name="You left the meeting")).to_be_visible()
    expect(carol.button("Rejoin")).to_be_visible()
    for person in (alice, bob):
        expect(person.tile("Carol")).to_have_count(0, timeout=MEDIA_TIMEOUT * 1000)
        expect(person.tiles()).to_have_count(2)
    # Carol's connections are closed: nothing of hers keeps running.
    states = carol.page.evaluate("window.__peerConnections.map(pc => pc.connectionState)")
    assert states
    assert all(state == "closed" for state in states), states

    # "Rejoin" brings her straight back, with media.
    carol.button("Rejoin").click()
    expect(carol.leave_button).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
    expect(alice.tile("Carol")).to_have_count(1, timeout=MEDIA_TIMEOUT * 1000)
    alice.wait_for_frames_from("Carol", 5, timeout=MEDIA_TIMEOUT)


def test_host_mutes_and_removes_from_the_people_panel_and_rejoin_is_refused(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    url = meeting_url(alice)  # Alice hosts
    alice.join(url)
    bob.join(url)
    expect(alice.tile("Bob")).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
    # Only moderators get the tools.
    bob.people_button.click()
    expect(bob.open_person_menu("Alice").get_by_role("menuitem")).to_have_text(["Pin"])
    expect(bob.page.get_by_role("button", name="Lock meeting")).to_be_hidden()

    alice.people_button.click()
    alice.choose_for_person("Bob", "Mute")
    expect(bob.button("Turn on microphone")).to_be_visible(timeout=10_000)
    expect(alice.tile("Bob").get_by_role("img", name="Microphone off")).to_be_visible(
        timeout=10_000
    )

    alice.choose_for_person("Bob", "Remove from call")
    # A permanent failure: a clear message, no endless reconnecting, and no "Rejoin": the
    # removal stands (issue 12.5; tests/e2e/test_end_states.py has the reload).
    removed = bob.page.get_by_role("heading", name="You've been removed from the meeting")
    expect(removed).to_be_visible(timeout=10_000)
    expect(bob.button("Rejoin")).to_be_hidden()
    expect(alice.tile("Bob")).to_have_count(0, timeout=MEDIA_TIMEOUT * 1000)
    expect(bob.leave_button).to_be_hidden()


def test_guest_waits_in_the_lobby_until_the_host_admits_them(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    from rooms.models import Meeting

    alice = participants("Alice")
    url = meeting_url(alice)
    Meeting.objects.filter(code=url.rsplit("/", 1)[-1]).update(access_policy=Meeting.Access.GUESTS)
    alice.join(url)
    gail = participants("Gail", guest=True)
    gail.open(url)
    gail.page.get_by_label("Your name").fill("Gail")
    gail.button("Ask to join").click()
    expect(gail.page.get_by_text("Asking to be let in…")).to_be_visible(timeout=10_000)

    alice.people_button.click()
    alice.button("Admit Gail").click()
    expect(gail.leave_button).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
    # A guest's typed name is marked as such wherever it is shown.
    expect(alice.tile("Gail (guest)")).to_be_visible(timeout=MEDIA_TIMEOUT * 1000)
    alice.wait_for_frames_from("Gail (guest)", 5, timeout=MEDIA_TIMEOUT)
    gail.wait_for_frames_from("Alice", 5, timeout=MEDIA_TIMEOUT)
    expect(alice.page.get_by_role("button", name="Admit Gail")).to_have_count(0)


def test_chat_message_is_confirmed_escaped_and_kept_for_late_joiners(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    hostile = '<img src=x onerror="window.__pwned=1"> hello & <b>bye</b>'

    alice.button("Chat").click()
    alice.page.get_by_role("textbox", name="Send a message").fill(hostile)
    alice.page.get_by_role("textbox", name="Send a message").press("Enter")
    mine = alice.page.locator("#chat-list .chat-message").last
    expect(mine).to_have_attribute("data-state", "sent", timeout=10_000)
    expect(mine.locator(".chat-text")).to_have_text(hostile)

    # Bob's chat panel is closed: the message pops up briefly, as text, and the dot lights.
    expect(bob.page.locator("#call-toast")).to_have_text(f"Alice: {hostile}", timeout=10_000)
    expect(bob.page.locator("#chat-unread")).to_be_visible()
    bob.button("Chat").click()
    theirs = bob.page.locator("#chat-list .chat-message").last
    expect(theirs.locator(".chat-text")).to_have_text(hostile, timeout=10_000)
    expect(theirs.locator(".chat-author")).to_have_text("Alice")
    assert bob.page.locator("#chat-list img").count() == 0
    assert bob.page.evaluate("window.__pwned === undefined")

    # Someone joining later gets the history from join's chat.messages.
    carol = participants("Carol")
    carol.join(url)
    carol.button("Chat").click()
    expect(carol.page.locator("#chat-list .chat-text")).to_have_text([hostile], timeout=10_000)

    # Only moderators may delete; the host's delete reaches everyone as a deleted message.
    expect(bob.page.get_by_role("button", name="Delete message")).to_have_count(0)
    mine.get_by_role("button", name="Delete message").click()
    for someone in (alice, bob, carol):
        shown = someone.page.locator("#chat-list .chat-message").last
        expect(shown.locator(".chat-text")).to_have_text("This message was deleted", timeout=10_000)
        expect(shown.get_by_role("button", name="Delete message")).to_have_count(0)
    assert bob.page.get_by_text("hello & ").count() == 0


def test_chat_message_refused_by_the_server_can_be_retried_without_duplicates(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    """The chat's rate limit (10 messages per 10 s by default) refuses a burst; the refused
    message says so, and Retry (same clientId) stores it once when the window has passed."""
    alice, bob = participants("Alice"), participants("Bob")
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    alice.button("Chat").click()
    textbox = alice.page.get_by_role("textbox", name="Send a message")
    for index in range(25):
        textbox.fill(f"burst {index}")
        textbox.press("Enter")
    failed = alice.page.locator('#chat-list .chat-message[data-state="failed"]').first
    expect(failed).to_be_visible(timeout=10_000)
    expect(failed.get_by_text("Not sent.")).to_be_visible()
    text = failed.locator(".chat-text").inner_text()
    entry = alice.page.locator("#chat-list .chat-message").filter(
        has=alice.page.get_by_text(text, exact=True)
    )

    def retried() -> bool:
        state = entry.get_attribute("data-state")
        if state == "failed":
            entry.get_by_role("button", name="Retry").click()
            alice.page.wait_for_timeout(500)  # let the answer come back before looking again
        return entry.get_attribute("data-state") == "sent"

    poll(retried, 40, f"the retry of {text!r} to be accepted", interval=0.5)
    bob_copies = bob.page.locator("#chat-list .chat-text").filter(
        has_text=re.compile(rf"^{re.escape(text)}$")
    )
    expect(bob_copies).to_have_count(1, timeout=10_000)


def test_prejoin_shows_preview_level_meter_and_devices(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice")
    alice.open(meeting_url(alice))
    page = alice.page
    # The camera is opened at 1280x720 (the top simulcast layer).
    poll(
        lambda: page.locator("#preview-video").evaluate("v => v.videoWidth") == 1280,
        MEDIA_TIMEOUT,
        "the camera preview",
    )
    # The fake microphone beeps: the meter moves off zero at some point.
    poll(
        lambda: (
            int(
                page.get_by_role("meter", name="Microphone level").get_attribute("aria-valuenow")
                or 0
            )
            > 0
        ),
        MEDIA_TIMEOUT,
        "the microphone level meter to move",
    )
    for label in ("Camera", "Microphone"):
        assert page.get_by_label(label, exact=True).locator("option").count() >= 1
    expect(page.get_by_label("Your name")).to_be_visible()
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "prejoin-1280x720.png"))
    alice.button("Turn off camera").click()
    expect(page.get_by_text("Camera is off")).to_be_visible()


def test_phone_viewport_shows_a_usable_call(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    phone = {"width": 360, "height": 740}
    alice, bob = participants("Alice", viewport=phone), participants("Bob")
    url = meeting_url(alice)
    bob.join(url)
    alice.join(url)
    alice.wait_for_frames_from("Bob", 5, timeout=MEDIA_TIMEOUT)
    page = alice.page
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "call-phone-360x740.png"))

    # Nothing sticks out sideways; every control is on screen and big enough to tap.
    assert page.evaluate("document.documentElement.scrollWidth") <= phone["width"]
    for name in (
        "Turn off microphone",
        "Turn off camera",
        "Present now",
        "Leave call",
        "Chat",
        PEOPLE,
        "Settings",
        "Meeting details",
    ):
        box = alice.button(name).bounding_box()
        assert box is not None, name
        assert box["x"] >= 0, (name, box)
        assert box["x"] + box["width"] <= phone["width"], (name, box)
        assert box["y"] + box["height"] <= phone["height"], (name, box)
        assert min(box["width"], box["height"]) >= 36, (name, box)
    for tile in alice.tiles().all():
        box = tile.bounding_box()
        assert box is not None
        assert box["width"] <= phone["width"], box
        assert box["height"] > 100, box

    alice.button("Chat").click()
    textbox = page.get_by_role("textbox", name="Send a message")
    expect(textbox).to_be_visible()
    box = textbox.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= phone["width"]
    page.screenshot(path=str(SCREENSHOT_DIR / "call-phone-360x740-chat.png"))
    # In-call device settings: the pre-join pickers, now in a panel.
    alice.button("Settings").click()
    expect(page.get_by_label("Camera", exact=True)).to_be_visible()
    expect(page.get_by_label("Microphone", exact=True)).to_be_visible()


def _contains(css_class: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(css_class)}(\s|$)")
