"""How a call ends, in real Chromium (issue 12.5): one clear screen per way out, with only the
actions that can work, at desktop and phone sizes.

Each end screen is a region landmark named by its heading, and the heading has the focus.
Whether the page opened the camera is read from getUserMedia itself (wrapped by an init script
that counts calls and keeps the tracks), not from the client's bookkeeping.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import User
from rooms.models import Invitation, Meeting
from tests.e2e.call_page import JOIN_TIMEOUT_MS, Participant
from tests.e2e.stack import SCREENSHOT_DIR, Daphne

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
SIZES = [pytest.param(DESKTOP, id="1280x800"), pytest.param(PHONE, id="360x740")]

CAMERA_RECORDER = """
(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia) return;
  const original = devices.getUserMedia.bind(devices);
  window.__cameraCalls = 0;
  window.__cameraTracks = [];
  devices.getUserMedia = async (constraints) => {
    window.__cameraCalls += 1;
    const stream = await original(constraints);
    window.__cameraTracks.push(...stream.getTracks());
    return stream;
  };
})();
"""
LIVE_VIDEO_JS = (
    "(window.__cameraTracks || []).filter(t => t.kind === 'video' && t.readyState === 'live')"
    ".length"
)


def _person(participants: Make, name: str, viewport: dict[str, int], **kwargs) -> Participant:
    person = participants(name, viewport=viewport, **kwargs)
    person.context.add_init_script(CAMERA_RECORDER)
    return person


def _shot(page: Page, name: str, viewport: dict[str, int]) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"end-{name}-{viewport['width']}.png"))


def _expect_end_screen(page: Page, title: str) -> None:
    """One end screen: a landmark named by its heading, the heading focused and said once, the
    live pre-join lines gone, and a way home."""
    screen = page.get_by_role("region", name=title)
    expect(screen).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    expect(screen.get_by_role("heading", name=title)).to_be_focused()
    expect(page.get_by_text(title, exact=True)).to_have_count(1)
    expect(page.get_by_text("The meeting is on now")).to_be_hidden()
    expect(page.locator("#in-call-summary")).to_be_hidden()  # "Ana is in this call"
    expect(page.get_by_role("button", name="Join now")).to_be_hidden()
    expect(screen.get_by_role("link", name="Return to home screen")).to_be_visible()
    # Nothing sticks out sideways on a phone.
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _no_camera(page: Page) -> None:
    assert page.evaluate(LIVE_VIDEO_JS) == 0
    assert page.locator("#preview-video").count() == 0 or page.locator("#preview-video").evaluate(
        "v => !v.srcObject"
    )


def _meeting_of(url: str) -> Meeting:
    return Meeting.objects.get(code=url.rstrip("/").rsplit("/", 1)[-1])


def test_leaving_offers_rejoin_which_works(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = _person(participants, "Alice", DESKTOP)
    url = meeting_url(alice)
    alice.join(url)
    assert alice.page.evaluate(LIVE_VIDEO_JS) == 1

    alice.leave_button.click()
    _expect_end_screen(alice.page, "You left the meeting")
    expect(alice.button("Rejoin")).to_be_visible()
    expect(alice.button("Ask again")).to_be_hidden()
    _no_camera(alice.page)  # the camera is off once out of the call
    _shot(alice.page, "left", DESKTOP)

    alice.button("Rejoin").click()
    expect(alice.leave_button).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    expect(alice.page.get_by_role("region", name="You left the meeting")).to_be_hidden()
    assert alice.page.evaluate(LIVE_VIDEO_JS) == 1


def test_a_removed_person_gets_no_rejoin_and_a_reload_says_the_same(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice")
    bob = _person(participants, "Bob", PHONE)
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    expect(alice.tile("Bob")).to_be_visible(timeout=JOIN_TIMEOUT_MS)

    alice.people_button.click()
    alice.choose_for_person("Bob", "Remove from call")
    title = "You've been removed from the meeting"
    _expect_end_screen(bob.page, title)
    expect(bob.button("Rejoin")).to_be_hidden()
    _no_camera(bob.page)
    _shot(bob.page, "removed", PHONE)

    bob.page.reload()
    _expect_end_screen(bob.page, title)
    expect(bob.page.get_by_role("button", name="Rejoin")).to_have_count(0)
    assert bob.page.evaluate("window.__cameraCalls") == 0  # no pre-join: the camera never opened
    _shot(bob.page, "removed-reload", PHONE)


def test_ending_for_everyone_tells_each_side_once(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice", viewport=DESKTOP)
    bob = _person(participants, "Bob", PHONE)
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    expect(alice.tile("Bob")).to_be_visible(timeout=JOIN_TIMEOUT_MS)

    alice.page.once("dialog", lambda dialog: dialog.accept())
    alice.people_button.click()
    alice.button("End meeting for all").click()
    _expect_end_screen(alice.page, "You ended the meeting for everyone")
    _expect_end_screen(bob.page, "The host ended the meeting for everyone")
    expect(bob.page.locator("main")).not_to_contain_text("has ended")
    _no_camera(bob.page)
    _shot(bob.page, "ended-for-all", PHONE)
    _shot(alice.page, "you-ended", DESKTOP)
    # An instant meeting's link works after its call ended: Rejoin starts the next call.
    bob.button("Rejoin").click()
    expect(bob.leave_button).to_be_visible(timeout=JOIN_TIMEOUT_MS)


@pytest.mark.parametrize("viewport", SIZES)
def test_an_ended_one_off_meeting_opens_no_camera_and_offers_no_join(
    participants: Make, daphne: Daphne, viewport: dict[str, int]
) -> None:
    host = User.objects.create_user("hana@example.org", password=None, full_name="Hana")
    invitee = User.objects.create_user("ivan@example.org", password=None, full_name="Ivan")
    now = timezone.now()
    meeting = Meeting.objects.create(
        host=host,
        title="Quarterly review",
        starts_at=now - timedelta(hours=2),
        ends_at=now - timedelta(hours=1),
        status=Meeting.Status.ENDED,
        ended_at=now - timedelta(hours=1),
    )
    Invitation.objects.create(meeting=meeting, email=invitee.email)
    ivan = _person(participants, "Ivan", viewport, user=invitee)
    ivan.page.goto(f"{daphne.base_url}/{meeting.code}")
    _expect_end_screen(ivan.page, "This meeting has ended")
    expect(ivan.page.locator("main")).to_contain_text("Quarterly review")
    expect(ivan.page.get_by_role("button", name="Rejoin")).to_have_count(0)
    expect(ivan.page.locator("video")).to_have_count(0)
    ivan.page.wait_for_timeout(500)  # a late getUserMedia would show up here
    assert ivan.page.evaluate("window.__cameraCalls") == 0
    assert ivan.page.evaluate(LIVE_VIDEO_JS) == 0
    expect(ivan.page.get_by_text(re.compile("locked|on now"))).to_have_count(0)
    _shot(ivan.page, "ended-one-off", viewport)


@pytest.mark.parametrize("viewport", SIZES)
def test_a_cancelled_meeting_says_so_to_members_and_guests(
    participants: Make, daphne: Daphne, viewport: dict[str, int]
) -> None:
    host = User.objects.create_user("hana@example.org", password=None, full_name="Hana")
    meeting = Meeting.objects.create(
        host=host,
        title="Offsite planning",
        starts_at=timezone.now() + timedelta(days=1),
        status=Meeting.Status.CANCELLED,
        access_policy=Meeting.Access.INVITEES,
    )
    Invitation.objects.create(meeting=meeting, email="ivan@example.org")
    hana = _person(participants, "Hana", viewport, user=host)
    base = daphne.base_url
    response = hana.page.goto(f"{base}/{meeting.code}")
    assert response is not None
    assert response.status == 410
    _expect_end_screen(hana.page, "This meeting was cancelled")
    expect(hana.page.locator("main")).to_contain_text("Offsite planning")
    assert hana.page.evaluate("window.__cameraCalls") == 0
    _shot(hana.page, "cancelled", viewport)

    # Someone with only the link, not signed in: told the same, not sent to sign in.
    gail = _person(participants, "Gail", viewport, guest=True)
    gail.page.goto(f"{base}/{meeting.code}")
    _expect_end_screen(gail.page, "This meeting was cancelled")
    expect(gail.page.locator("main")).not_to_contain_text("Offsite planning")
    assert gail.page.evaluate("window.__cameraCalls") == 0
    _shot(gail.page, "cancelled-guest", viewport)


def test_a_locked_meeting_says_so_once_to_someone_who_never_joined(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice")
    url = meeting_url(alice)
    Meeting.objects.filter(pk=_meeting_of(url).pk).update(locked=True)
    bob = _person(participants, "Bob", PHONE)
    bob.page.goto(url)
    _expect_end_screen(bob.page, "This meeting is locked")
    expect(bob.page.locator("main")).to_contain_text("locked", use_inner_text=True)
    assert bob.page.locator("main").inner_text().count("locked") == 1
    expect(bob.page.get_by_role("button", name=re.compile("Rejoin|Ask"))).to_have_count(0)
    assert bob.page.evaluate("window.__cameraCalls") == 0
    _shot(bob.page, "locked", PHONE)


def test_a_guest_turned_away_at_the_lobby_may_ask_again(
    participants: Make, meeting_url: Callable[[Participant], str]
) -> None:
    alice = participants("Alice")
    url = meeting_url(alice)
    Meeting.objects.filter(pk=_meeting_of(url).pk).update(access_policy=Meeting.Access.GUESTS)
    alice.join(url)
    gail = _person(participants, "Gail", DESKTOP, guest=True)
    gail.open(url)
    gail.page.get_by_label("Your name").fill("Gail")
    gail.button("Ask to join").click()
    expect(gail.page.get_by_text("Asking to be let in…")).to_be_visible(timeout=10_000)

    alice.people_button.click()
    alice.button("Deny Gail").click()
    _expect_end_screen(gail.page, "You can't join this call")
    denied = "Someone in the call denied your request to join."
    expect(gail.page.get_by_text(denied)).to_be_visible()
    expect(gail.button("Rejoin")).to_be_hidden()
    _no_camera(gail.page)
    _shot(gail.page, "denied", DESKTOP)

    # The server takes a new knock after a no: "Ask again" asks again.
    gail.button("Ask again").click()
    expect(gail.page.get_by_text("Asking to be let in…")).to_be_visible(timeout=10_000)
    expect(alice.page.get_by_role("button", name="Admit Gail")).to_be_visible(timeout=10_000)
