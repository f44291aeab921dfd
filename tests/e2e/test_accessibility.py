"""axe-core over every page of the product in real Chromium (issue 12, item 12): no violation
on any page a person meets, signed out and in, at 1280x800, and at 360x740 for the main ones
(home, the pre-join page, the call). The admin's own markup (Django's) is left out: /admin/
is not visited. How the check works: tests/e2e/accessibility.py and docs/testing.md.

Each page is checked as it settles (a heading or control it shows, never a fixed wait), and in
the states a person sees: forms with their errors, menus and dialogs open, the call with two
people in it and each of its side panels open, a guest asking to be let in and the host's
notice of it, and the screens after the call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from accounts.models import User
from chat.models import Message
from rooms.emails import rsvp_token
from rooms.models import Invitation, Meeting
from tests.e2e.accessibility import assert_accessible
from tests.e2e.call_page import JOIN_TIMEOUT_MS, PEOPLE, Participant
from tests.e2e.conftest import _log_name
from tests.e2e.netns import LoopbackNamespace
from tests.e2e.stack import (
    SCREENSHOT_DIR,
    Daphne,
    child_env,
    database_url,
    no_wrap,
    session_cookie,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Make = Callable[..., Participant]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
PASSWORD = "a-long-enough-passphrase-42"


def _server(
    loopback_network: LoopbackNamespace | None, request: pytest.FixtureRequest, **env: str
) -> Iterator[Daphne]:
    """The site alone (no SFU node), as a person meets it: DEBUG off (meet's own error pages),
    with this process's SECRET_KEY (the signed-in sessions made here carry a hash made with it)."""
    from django.conf import settings

    environment = child_env(
        database_url(connection.settings_dict),
        DEBUG="false",
        SECRET_KEY=settings.SECRET_KEY,
        **env,
    )
    wrap = loopback_network.wrap if loopback_network else no_wrap
    server = Daphne(environment, _log_name(request, "daphne"), wrap=wrap)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web(
    transactional_db: None,
    loopback_network: LoopbackNamespace | None,
    request: pytest.FixtureRequest,
) -> Iterator[Daphne]:
    yield from _server(loopback_network, request, ACCOUNT_EMAIL_VERIFICATION="optional")


def _context(
    browser: Browser, server: Daphne, user: User | None, viewport: dict[str, int], **kwargs
) -> BrowserContext:
    context = browser.new_context(viewport=viewport, **kwargs)
    if user is not None:
        context.add_cookies([session_cookie(user, server.base_url)])
    return context


def _shot(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    width = (page.viewport_size or {}).get("width")
    page.screenshot(path=str(SCREENSHOT_DIR / f"a11y-{name}-{width}.png"), full_page=True)


def _h1(page: Page, text: str | re.Pattern[str]) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(text)


def _visit(page: Page, url: str, heading: str | re.Pattern[str], what: str) -> None:
    page.goto(url)
    _h1(page, heading)
    assert_accessible(page, what)


def _user(email: str, name: str, **extra) -> User:
    from allauth.account.models import EmailAddress

    user = User.objects.create_user(email, password=PASSWORD, full_name=name, **extra)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    return user


def _scheduled(host: User, title: str, **extra) -> Meeting:
    return Meeting.objects.create(
        host=host,
        title=title,
        starts_at=extra.pop("starts_at", timezone.now() + timedelta(days=1)),
        ends_at=extra.pop("ends_at", timezone.now() + timedelta(days=1, hours=1)),
        time_zone=extra.pop("time_zone", "Europe/Berlin"),
        **extra,
    )


# --- Signed out -------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "360x740"])
def test_home_signed_out(browser: Browser, web: Daphne, viewport: dict[str, int]) -> None:
    context = _context(browser, web, None, viewport)
    page = context.new_page()
    try:
        _visit(page, web.base_url + "/", "Video meetings on your own servers", "home, signed out")
        _shot(page, "home-signed-out")
        # A code that is not one: the home page again, with the error beside the box.
        page.get_by_role("textbox", name=re.compile("code or link", re.I)).fill("not a code")
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("not a meeting code")
        assert_accessible(page, "home with a wrong code, signed out")
    finally:
        context.close()


def test_account_pages_signed_out(browser: Browser, web: Daphne) -> None:
    _user("grace@example.org", "Grace Hopper")
    context = _context(browser, web, None, DESKTOP)
    page = context.new_page()
    base = web.base_url
    try:
        _visit(page, base + "/accounts/signup/", "Create your account", "sign-up")
        page.get_by_label("Full name").fill("Ada Lovelace")
        page.get_by_label("Email").fill("ada@example.org")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password (again)").fill(PASSWORD + "x")  # a typo: an error
        page.get_by_role("button", name="Sign up").click()
        expect(page.get_by_label("Password (again)")).to_have_attribute("aria-invalid", "true")
        assert_accessible(page, "sign-up with errors")

        _visit(page, base + "/accounts/login/", "Sign in", "sign-in")
        page.get_by_label("Email").fill("grace@example.org")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("not correct")
        assert_accessible(page, "sign-in with a wrong password")

        _visit(page, base + "/accounts/password/reset/", re.compile("password", re.I), "reset")
        page.get_by_label("Email").fill("grace@example.org")
        page.get_by_role("button", name=re.compile("reset", re.I)).click()
        expect(page).to_have_url(re.compile(r"/accounts/password/reset/done/$"))
        _h1(page, re.compile(".+"))
        assert_accessible(page, "password reset sent")

        _visit(page, base + "/accounts/password/reset/key/x-bad-key/", re.compile(".+"), "bad key")
        _visit(page, base + "/accounts/confirm-email/", re.compile(".+"), "verification sent")

        # The links in allauth's mails: confirming an address, choosing a new password.
        from allauth.account.forms import default_token_generator
        from allauth.account.models import EmailAddress, EmailConfirmationHMAC
        from allauth.account.utils import user_pk_to_url_str

        newcomer = User.objects.create_user("new@example.org", password=None, full_name="Nia")
        address = EmailAddress.objects.create(user=newcomer, email=newcomer.email, primary=True)
        confirm = f"{base}/accounts/confirm-email/{EmailConfirmationHMAC(address).key}/"
        _visit(page, confirm, re.compile(".+"), "confirm e-mail address")
        _visit(page, base + "/accounts/confirm-email/bad-key/", re.compile(".+"), "bad e-mail key")
        grace = User.objects.get(email="grace@example.org")
        key = f"{user_pk_to_url_str(grace)}-{default_token_generator.make_token(grace)}"
        page.goto(f"{base}/accounts/password/reset/key/{key}/")
        expect(page).to_have_url(re.compile(r"-set-password/$"))
        _h1(page, re.compile(".+"))
        expect(page.get_by_label(re.compile("password", re.I)).first).to_be_visible()
        assert_accessible(page, "choosing a new password")
        _shot(page, "password-reset-key")

        # An unknown page; an unknown meeting code asks a signed-out visitor to sign in.
        _visit(page, base + "/no-such-page", re.compile(".+"), "404")
        page.goto(base + "/abc-defg-hij")
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
        _h1(page, "Sign in")
        assert_accessible(page, "sign-in asked for by a meeting link")
    finally:
        context.close()


def _answer_with(response) -> Callable[[Route], None]:
    def answer(route: Route) -> None:
        route.fulfill(
            status=response.status_code,
            content_type="text/html; charset=utf-8",
            body=response.content,
        )

    return answer


def test_error_pages(browser: Browser, web: Daphne) -> None:
    """403 and 500 as Django renders them (no view of the product answers with them on
    demand), served at the site's address so their styles load."""
    from django.core.exceptions import PermissionDenied
    from django.views import defaults

    request = RequestFactory().get("/")
    pages = {
        "/__403": defaults.permission_denied(request, PermissionDenied()),
        "/__500": defaults.server_error(request),
    }
    context = _context(browser, web, None, DESKTOP)
    page = context.new_page()
    try:
        for path, response in pages.items():
            page.route(web.base_url + path, _answer_with(response))
            _visit(page, web.base_url + path, re.compile(".+"), f"the {response.status_code} page")
            _shot(page, f"error-{response.status_code}")
    finally:
        context.close()


def test_pages_from_a_link_signed_out(browser: Browser, web: Daphne) -> None:
    """The invitation's RSVP pages, and meeting links that no longer work, for someone with
    only the link."""
    host = _user("hana@example.org", "Hana Host")
    meeting = _scheduled(host, "Quarterly review", recurrence="FREQ=WEEKLY")
    invitation = Invitation.objects.create(meeting=meeting, email="guest@example.net")
    cancelled = _scheduled(host, "Offsite", status=Meeting.Status.CANCELLED)
    expired = Meeting.objects.create(
        host=host, title="Old call", kind=Meeting.Kind.INSTANT, status=Meeting.Status.EXPIRED
    )
    context = _context(browser, web, None, DESKTOP)
    page = context.new_page()
    base = web.base_url
    try:
        rsvp = base + reverse("rooms:rsvp", args=[rsvp_token(invitation)]) + "?response=accepted"
        _visit(page, rsvp, re.compile("Quarterly review"), "RSVP")
        page.get_by_role("button", name="Send reply").click()
        expect(page.get_by_role("status")).to_contain_text("your answer is recorded")
        assert_accessible(page, "RSVP result")
        _shot(page, "rsvp-done")

        _visit(page, f"{base}/{cancelled.code}", "This meeting was cancelled", "cancelled, guest")
        _visit(page, f"{base}/{expired.code}", re.compile(".+"), "expired link")
        _shot(page, "expired")
    finally:
        context.close()


def test_too_many_guesses(
    browser: Browser,
    transactional_db: None,
    loopback_network: LoopbackNamespace | None,
    request: pytest.FixtureRequest,
) -> None:
    """After too many unknown codes, the page that says so (a server allowing one miss, with a
    cache of its own so no other test's misses count)."""
    server = _server(
        loopback_network,
        request,
        ROOMS_JOIN_GUESS_RATE="1/h",
        CHANNEL_LAYER_PREFIX=f"a11y-guesses-{request.node.name[-8:]}-{id(request)}",
    )
    web = next(server)
    user = _user("gus@example.org", "Gus Guesser")
    context = _context(browser, web, user, DESKTOP)
    page = context.new_page()
    try:
        response = page.goto(web.base_url + "/abc-defg-hij")
        assert response is not None
        assert response.status == 404
        assert_accessible(page, "unknown code, signed in")
        _shot(page, "unknown-code")
        response = page.goto(web.base_url + "/abc-defg-hik")
        assert response is not None
        assert response.status == 429
        _h1(page, re.compile(".+"))
        assert_accessible(page, "too many guesses")
        _shot(page, "too-many-guesses")
    finally:
        context.close()
        next(server, None)


# --- Signed in --------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "360x740"])
def test_home_signed_in(browser: Browser, web: Daphne, viewport: dict[str, int]) -> None:
    """With an upcoming and a past meeting listed, the time-zone question (the browser's zone
    is not the account's), the New meeting menu open, and the card of a meeting for later."""
    user = _user("hana@example.org", "Hana Host", time_zone="UTC")
    _scheduled(user, "Weekly sync")
    past = _scheduled(
        user,
        "Kick-off",
        starts_at=timezone.now() - timedelta(days=2),
        ends_at=timezone.now() - timedelta(days=2, hours=-1),
        status=Meeting.Status.ENDED,
        ended_at=timezone.now() - timedelta(days=2),
    )
    Message.objects.create(meeting=past, author_user=user, author_name="Hana", text="Hello")
    context = _context(browser, web, user, viewport, timezone_id="Europe/Berlin")
    page = context.new_page()
    try:
        page.goto(web.base_url + "/")
        _h1(page, "Video calls and meetings for everyone")
        expect(page.get_by_role("form", name="Time zone")).to_be_visible()
        assert_accessible(page, "home, signed in, with the time-zone question")
        _shot(page, "home-signed-in")

        page.get_by_role("button", name="New meeting", exact=True).click()
        expect(page.get_by_role("menu", name="New meeting")).to_be_visible()
        assert_accessible(page, "home with the New meeting menu open")
        page.get_by_role("menuitem", name="Create a meeting for later").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible()
        assert_accessible(page, "home with a meeting for later")
        _shot(page, "home-for-later")
        if viewport == DESKTOP:
            # A past meeting, reached from home: its page with the chat kept.
            page.goto(web.base_url + "/")
            page.get_by_role("link", name=re.compile("Kick-off")).click()
            _h1(page, re.compile("Kick-off"))
            expect(page.get_by_role("region", name="Chat")).to_contain_text("Hello")
            assert_accessible(page, "a past meeting's page with its chat")
    finally:
        context.close()


def test_signed_in_pages(browser: Browser, web: Daphne) -> None:
    """Settings, e-mail and password, the New meeting page, scheduling (with errors, then the
    meeting's page with its flash message), editing, cancelling, the chat transcript, the end
    screens the join page shows instead of a call, and signing out."""
    user = _user("hana@example.org", "Hana Host", time_zone="Europe/Berlin", time_zone_chosen=True)
    other = _user("otto@example.org", "Otto Other")
    context = _context(browser, web, user, DESKTOP, timezone_id="Europe/Berlin")
    page = context.new_page()
    base = web.base_url
    try:
        _visit(page, base + "/accounts/preferences/", "Settings", "settings")
        _visit(page, base + "/accounts/email/", "Email addresses", "e-mail addresses")
        _visit(page, base + "/accounts/password/change/", "Change password", "password change")
        page.get_by_label("Current password").fill("not-the-password")
        page.get_by_label("New password", exact=True).fill(PASSWORD + "-2")
        page.get_by_label("New password (again)").fill(PASSWORD + "-2")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
        assert_accessible(page, "password change with errors")
        _visit(page, base + "/meetings/new", re.compile(".+"), "the New meeting page")

        _visit(page, base + "/meetings/schedule", re.compile("Schedule", re.I), "schedule form")
        page.get_by_label("Title").fill("")
        page.get_by_role("button", name="Schedule and send invitations").click()
        expect(page.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
        assert_accessible(page, "schedule form with errors")
        page.get_by_label("Title").fill("Weekly sync")
        page.get_by_label("Repeats").select_option(label="Weekly")
        page.get_by_role("button", name="Schedule and send invitations").click()
        expect(page.locator(".messages")).to_contain_text("Meeting scheduled")
        _h1(page, re.compile("Weekly sync"))
        assert_accessible(page, "meeting page with the scheduled message")
        _shot(page, "meeting-detail")

        meeting = Meeting.objects.get(host=user, title="Weekly sync")
        Message.objects.create(meeting=meeting, author_user=user, author_name="Hana", text="Hi")
        _visit(page, f"{base}/meetings/{meeting.code}/edit", re.compile(".+"), "edit form")
        _visit(page, f"{base}/meetings/{meeting.code}/cancel", re.compile("Cancel"), "cancel")
        _shot(page, "cancel")
        _visit(page, f"{base}/meetings/{meeting.code}/chat/", "Weekly sync", "chat transcript")
        _shot(page, "transcript")

        # The join page's end screens, where the call would refuse: cancelled (the host),
        # ended for good (a one-off meeting), locked (someone else's live meeting).
        cancelled = _scheduled(user, "Offsite", status=Meeting.Status.CANCELLED)
        _visit(page, f"{base}/{cancelled.code}", "This meeting was cancelled", "cancelled")
        ended = _scheduled(
            other,
            "Retro",
            starts_at=timezone.now() - timedelta(hours=2),
            ends_at=timezone.now() - timedelta(hours=1),
            status=Meeting.Status.ENDED,
            ended_at=timezone.now() - timedelta(hours=1),
        )
        Invitation.objects.create(meeting=ended, email=user.email)
        _visit(page, f"{base}/{ended.code}", "This meeting has ended", "ended one-off meeting")
        locked = Meeting.objects.create(
            host=other, title="Locked call", kind=Meeting.Kind.INSTANT, locked=True
        )
        from rooms import services

        services.mark_live(locked)
        _visit(page, f"{base}/{locked.code}", "This meeting is locked", "locked meeting")
        _shot(page, "locked")

        _visit(page, base + "/accounts/logout/", re.compile(".+"), "sign-out")
    finally:
        context.close()


# --- The call ---------------------------------------------------------------------------------


def _join_page_ready(person: Participant, url: str, what: str) -> None:
    person.open(url)
    assert_accessible(person.page, what)
    _shot(person.page, f"prejoin-{person.name.lower()}")


def _panel(person: Participant, button: str | re.Pattern[str], heading: str, what: str) -> None:
    person.button(button).click()
    panel = person.page.get_by_role("complementary", name=re.compile(heading))
    expect(panel).to_be_visible()
    assert_accessible(person.page, what)
    panel.get_by_role("button", name="Close panel").click()
    expect(panel).to_be_hidden()


def _people_button_names_what_it_shows(person: Participant, count: int) -> None:
    """The People button's accessible name contains what it shows (WCAG 2.5.3): the icon and
    the count on its badge, "People 2" (axe's label-content-name-mismatch checks it as well)."""
    button = person.people_button
    badge = button.locator("[data-people-count]")  # (the lobby's count is a badge too)
    expect(badge).to_be_visible()
    expect(badge).to_have_text(str(count))
    expect(button).to_have_accessible_name(f"People {count}")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "360x740"])
def test_the_call(participants: Make, daphne: Daphne, viewport: dict[str, int]) -> None:
    """Pre-join as host and as a guest, the call of two with every panel open, a guest asking
    to be let in and the host's notice, then the screen after leaving."""
    alice = participants("Alice", viewport=viewport)
    bob = participants("Bob", viewport=PHONE if viewport == DESKTOP else DESKTOP)
    from rooms.services import create_instant_meeting

    meeting = create_instant_meeting(alice.user)  # type: ignore[attr-defined]
    Meeting.objects.filter(pk=meeting.pk).update(access_policy=Meeting.Access.GUESTS)
    url = f"{daphne.base_url}/{meeting.code}"

    _join_page_ready(alice, url, "pre-join, host")
    alice.press_join()
    expect(alice.page.get_by_role("dialog", name="Your meeting's ready")).to_be_visible()
    assert_accessible(alice.page, "the call, alone, with the meeting's-ready card")
    alice.page.get_by_role("dialog").get_by_role("button", name="Close").click()

    bob.join(url)
    expect(alice.tile("Bob")).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    expect(bob.tile("Alice")).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    alice.wait_for_frames_from("Bob", 3, timeout=JOIN_TIMEOUT_MS / 1000)  # the picture shown
    assert_accessible(alice.page, "the call of two")
    assert_accessible(bob.page, "the call of two, the other side")
    _shot(alice.page, "call")
    _people_button_names_what_it_shows(alice, 2)

    _panel(alice, PEOPLE, "In the call", "the call with People open")
    # The chat with a message in it (and Bob's pop-up of it while his panel is closed).
    alice.button("Chat").click()
    alice.page.get_by_role("textbox", name="Send a message").fill("Hello, https://example.org")
    alice.page.get_by_role("textbox", name="Send a message").press("Enter")
    expect(bob.page.locator("#call-toast")).to_have_text(
        "Alice: Hello, https://example.org", timeout=10_000
    )
    expect(alice.page.locator("#chat-list .chat-message").last).to_have_attribute(
        "data-state", "sent", timeout=10_000
    )
    assert_accessible(bob.page, "the call with a chat message popping up")
    alice.page.locator("#chat-panel").get_by_role("button", name="Close panel").click()
    _panel(alice, "Chat", "In-call messages", "the call with the chat open")
    _panel(alice, "Meeting details", "Meeting details", "the call with the details open")
    _panel(alice, "Settings", "Audio and video", "the call with the settings open")

    if viewport == DESKTOP:
        # Presenting: the presenter's notice, and the others' presentation with its toast.
        alice.button("Present now").click()
        notice = alice.page.locator("#presentation").get_by_role("group", name=re.compile("You"))
        expect(notice).to_contain_text("You are presenting to everyone", timeout=10_000)
        presentation = bob.page.locator("#presentation").get_by_role(
            "group", name="Alice is presenting"
        )
        expect(presentation).to_be_visible(timeout=JOIN_TIMEOUT_MS)
        assert_accessible(alice.page, "the call, presenting")
        assert_accessible(bob.page, "the call, someone else presenting")
        notice.get_by_role("button", name="Stop presenting").click()
        expect(alice.button("Present now")).to_be_visible()

        # A guest: the pre-join page with the name field, asking to be let in; the host's notice.
        gail = participants("Gail", viewport=viewport, guest=True)
        _join_page_ready(gail, url, "pre-join, guest")
        gail.page.get_by_label("Your name").fill("Gail")
        gail.button("Ask to join").click()
        expect(gail.page.get_by_text(re.compile("Asking to (join|be let in)"))).to_be_visible(
            timeout=10_000
        )
        assert_accessible(gail.page, "a guest asking to be let in")
        assert_accessible(alice.page, "the host, told that someone asks to join")
        alice.people_button.click()
        admit = alice.page.locator("#people-panel").get_by_role("button", name="Admit Gail")
        expect(admit).to_be_visible(timeout=10_000)
        assert_accessible(alice.page, "People with someone asking to join")
        _shot(alice.page, "people-lobby")
        admit.click()
        expect(gail.leave_button).to_be_visible(timeout=JOIN_TIMEOUT_MS)
        _people_button_names_what_it_shows(alice, 3)

    bob.leave_button.click()
    left = bob.page.get_by_role("region", name="You left the meeting")
    expect(left).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    assert_accessible(bob.page, "after leaving the call")
    _shot(bob.page, "left")

    if viewport == DESKTOP:
        # The host ends the call for everyone: both sides' end screens.
        alice.page.once("dialog", lambda dialog: dialog.accept())
        expect(alice.people_button).to_have_attribute("aria-expanded", "true")  # since Admit
        alice.button("End meeting for all").click()
        ended = "You ended the meeting for everyone"
        expect(alice.page.get_by_role("region", name=ended)).to_be_visible(timeout=JOIN_TIMEOUT_MS)
        assert_accessible(alice.page, "after ending the call for everyone")
        told = gail.page.get_by_role("region", name="The host ended the meeting for everyone")
        expect(told).to_be_visible(timeout=JOIN_TIMEOUT_MS)
        assert_accessible(gail.page, "a guest after the host ended the call")


def test_the_check_itself_finds_violations(browser: Browser) -> None:
    """The check is not vacuous: a field without a label and grey-on-white text fail it."""
    page = browser.new_page()
    try:
        page.set_content(
            '<!DOCTYPE html><html lang="en"><head><title>t</title></head><body><main>'
            '<h1>Form</h1><input type="text"><p style="color:#bbb">faint</p></main></body></html>'
        )
        with pytest.raises(AssertionError) as failure:
            assert_accessible(page, "a page made to fail")
        message = str(failure.value)
        assert "label (critical)" in message
        assert "color-contrast (serious)" in message
        assert '["input"]' in message
    finally:
        page.close()
