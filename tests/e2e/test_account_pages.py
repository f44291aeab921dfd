"""The account pages in a real browser (issue 12, item 10), at 1280x800 and 360x740: a person
signs up and signs in through the styled pages (labels without colons, no "Remember Me:",
errors beside their field, a link each way between sign-in and sign-up), dismisses flash
messages with their button (and sees another fade on its own), and finds the e-mail and
password pages from Settings. Screenshots under var/screenshots/account-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.db import connection
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from tests.e2e.netns import LoopbackNamespace
from tests.e2e.stack import (
    LOG_DIR,
    SCREENSHOT_DIR,
    Daphne,
    child_env,
    database_url,
    no_wrap,
    session_cookie,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIZES = {"1280": {"width": 1280, "height": 800}, "360": {"width": 360, "height": 740}}
PASSWORD = "a-long-enough-passphrase-42"


@pytest.fixture
def server(
    transactional_db: None,
    loopback_network: LoopbackNamespace | None,
    request: pytest.FixtureRequest,
) -> Iterator[Daphne]:
    """The site alone (no SFU node: no call here), in the browser's network. A new account is
    let in without confirming its address first (the development default), so sign-up leads
    straight in."""
    env = child_env(database_url(connection.settings_dict), ACCOUNT_EMAIL_VERIFICATION="optional")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
    wrap = loopback_network.wrap if loopback_network else no_wrap
    daphne = Daphne(env, LOG_DIR / f"{name}-daphne.log", wrap=wrap)
    daphne.start()
    yield daphne
    daphne.stop()


def _shot(page: Page, name: str, size: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"account-{name}-{size}.png"), full_page=True)


def _check_labels(page: Page) -> None:
    """Every label in the product's words: none ends with a colon, no stray "Remember Me:"."""
    labels = page.eval_on_selector_all("main label", "els => els.map(e => e.innerText.trim())")
    assert labels, "no labels"
    assert [label for label in labels if label.endswith(":")] == [], labels
    text = page.inner_text("body")
    assert "Remember Me" not in text
    assert not re.search(r"\w:\s*$", text, re.M), "a line of text ends with a colon"


def _check_layout(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for box in page.eval_on_selector_all(
        "main input:not([type=hidden]), main button, main .button",
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })",
    ):
        assert box[0] >= 0, box
        assert box[1] <= width, box


def _dismiss_messages(page: Page) -> None:
    """Each message dismissed with its button from the keyboard; focus moves on to the next
    message's button, and after the last one to the main content (not back to the page's start)."""
    messages = page.locator(".messages .message")
    count = messages.count()
    assert count > 0
    messages.first.get_by_role("button", name="Dismiss message").focus()
    for left in range(count, 0, -1):
        message = messages.first
        expect(message).to_have_attribute("role", "status")
        dismiss = message.get_by_role("button", name="Dismiss message")
        expect(dismiss).to_be_visible()
        expect(dismiss).to_be_focused()
        page.keyboard.press("Enter")
        expect(messages).to_have_count(left - 1)
    assert page.evaluate("document.activeElement.id") == "main"


@pytest.mark.parametrize("size", list(SIZES))
def test_sign_up_and_sign_in_through_the_styled_pages(
    browser: Browser, server: Daphne, size: str
) -> None:
    viewport = SIZES[size]
    email = f"grace-{size}@example.org"
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    try:
        # Sign-up: the product's form, a link to sign-in.
        page.goto(server.base_url + "/accounts/signup/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Create your account")
        expect(page.locator("main").get_by_role("link", name="Sign in")).to_have_attribute(
            "href", re.compile(r"^/accounts/login/")
        )
        _check_labels(page)
        _check_layout(page, viewport["width"])
        _shot(page, "signup", size)

        # A typo in the second password: the error right under that field, tied to it.
        page.get_by_label("Full name").fill("Grace Hopper")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password (again)").fill(PASSWORD + "x")
        page.get_by_role("button", name="Sign up").click()
        again = page.get_by_label("Password (again)")
        expect(again).to_have_attribute("aria-invalid", "true")
        error = page.locator("#id_password2-errors")
        expect(error).to_have_text("You must type the same password each time.")
        expect(again).to_have_accessible_description(re.compile("same password each time"))
        field_box, error_box = again.bounding_box(), error.bounding_box()
        assert field_box is not None
        assert error_box is not None
        assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 16
        _check_labels(page)
        _check_layout(page, viewport["width"])
        _shot(page, "signup-error", size)

        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password (again)").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page).to_have_url(server.base_url + "/")
        assert User.objects.filter(email=email).exists()
        # The welcome message, dismissed with its button.
        expect(page.locator(".messages")).to_contain_text("Successfully signed in as Grace Hopper")
        _shot(page, "signed-up-message", size)
        _dismiss_messages(page)

        # Signing out, then in through the sign-in page.
        page.get_by_role("button", name="Sign out").click()
        page.goto(server.base_url + "/accounts/login/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        expect(page.get_by_label("Keep me signed in")).to_be_visible()
        expect(
            page.locator("main").get_by_role("link", name="Create an account")
        ).to_have_attribute("href", re.compile(r"^/accounts/signup/"))
        _check_labels(page)
        _check_layout(page, viewport["width"])
        _shot(page, "login", size)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("not correct")
        _shot(page, "login-error", size)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(server.base_url + "/")
        message = page.locator(".messages .message")
        expect(message).to_contain_text("Successfully signed in")
        if size == "1280":
            # Left alone, a message that is not an error fades away after a few seconds.
            expect(message).to_have_count(0, timeout=10_000)
        else:
            _dismiss_messages(page)

        # Settings leads to the e-mail and password pages, which lead back.
        page.get_by_role("link", name="Settings").click()
        signing_in = page.get_by_role("region", name="Signing in")
        expect(signing_in.get_by_role("link", name="Email addresses")).to_be_visible()
        expect(signing_in.get_by_role("link", name="Change password")).to_be_visible()
        _shot(page, "settings", size)
        signing_in.get_by_role("link", name="Email addresses").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Email addresses")
        expect(page.get_by_role("button", name="Remove")).to_have_count(0)
        expect(page.get_by_role("button", name="Make primary")).to_have_count(0)
        _check_labels(page)
        _check_layout(page, viewport["width"])
        _shot(page, "email", size)
        page.get_by_role("navigation", name="Account settings").get_by_role(
            "link", name="Password"
        ).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Change password")
        _check_labels(page)
        _check_layout(page, viewport["width"])
        _shot(page, "password-change", size)
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password", exact=True).fill(PASSWORD + "-2")
        page.get_by_label("New password (again)").fill(PASSWORD + "-2")
        page.get_by_role("button", name="Change password").click()
        expect(page.locator(".messages")).to_contain_text("Password successfully changed.")
        _shot(page, "password-changed-message", size)
        _dismiss_messages(page)
    finally:
        context.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_admin_shows_live_now_and_keeps_technical_tables_apart(
    browser: Browser, server: Daphne, size: str
) -> None:
    from chat.tests.support import make_meeting, make_user, present

    boss = make_user("boss", is_staff=True, is_superuser=True, full_name="Bo Boss")
    ann = make_user("ann", full_name="Ann Lee")
    meeting = make_meeting(ann, title="Standup")
    present(meeting, ann, peer_id="p-ann", display_name="Ann Lee")
    present(meeting, None, peer_id="p-guest", display_name="Visiting Vera")
    context = browser.new_context(viewport=SIZES[size])
    context.add_cookies([session_cookie(boss, server.base_url)])
    page = context.new_page()
    try:
        page.goto(server.base_url + "/admin/")
        expect(page.get_by_role("heading", name="Technical")).to_be_visible()
        _shot(page, "admin-index", size)
        page.get_by_role("link", name="Live now").first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Live now")
        call = page.get_by_role("region", name=re.compile("Standup"))
        expect(call).to_contain_text("hosted by Ann Lee")
        expect(call.get_by_role("row")).to_have_count(3)  # the header and two people
        expect(call).to_contain_text("Visiting Vera")
        _shot(page, "admin-live-now", size)
    finally:
        context.close()
