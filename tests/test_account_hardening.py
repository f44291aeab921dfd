"""Account hardening (issue 11, item 7): third-party sign-in only where configured, the admin's
sign-in page throttled, password reset that does not tell which addresses have accounts, and
invitations that count only for confirmed addresses."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any as SettingsWrapper

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts import admin_login
from accounts.models import User
from rooms.models import Meeting
from rooms.tests.meetings_support import make_user, schedule

pytestmark = pytest.mark.django_db

GOOGLE = {"google": {"APPS": [{"client_id": "id-from-config", "secret": "secret-from-config"}]}}


def _unique(name: str) -> str:
    # Rate-limit counts live in the shared cache: fresh names keep tests from counting together.
    return f"{name}-{uuid.uuid4().hex[:8]}@example.org"


def _client(address: str = "198.51.100.7") -> Client:
    client = Client(REMOTE_ADDR=address)
    client.raise_request_exception = False  # see a 500 as a 500
    return client


# --- a. third-party sign-in only where configured -------------------------------------------

THIRD_PARTY_PAGES = [
    f"/accounts/{provider}/login/{tail}"
    for provider in ("google", "github", "microsoft")
    for tail in ("", "callback/")
] + [
    "/accounts/3rdparty/",
    "/accounts/3rdparty/signup/",
    "/accounts/3rdparty/login/cancelled/",
    "/accounts/3rdparty/login/error/",
]


@pytest.mark.parametrize("url", THIRD_PARTY_PAGES)
def test_third_party_pages_are_not_found_when_no_provider_is_configured(
    settings: SettingsWrapper, url: str
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}
    client = _client()
    assert client.get(url).status_code == 404
    assert client.post(url).status_code in (404, 405)
    client.force_login(make_user(_unique("someone")))
    assert client.get(url).status_code == 404


def test_a_configured_provider_has_its_pages_and_its_button_only(
    settings: SettingsWrapper,
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = GOOGLE
    client = _client()
    assert client.get("/accounts/google/login/").status_code == 200
    assert client.get("/accounts/github/login/").status_code == 404
    assert client.get("/accounts/3rdparty/login/cancelled/").status_code == 200
    page = client.get("/accounts/login/").content.decode()
    assert "/accounts/google/login/" in page
    assert "/accounts/github/login/" not in page


def test_sign_in_and_settings_pages_offer_no_third_party_links_when_none_is_configured(
    settings: SettingsWrapper,
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}
    client = _client()
    for url in ("/accounts/login/", "/accounts/signup/"):
        page = client.get(url).content.decode()
        assert "/login/?process=" not in page, url
        assert "3rdparty" not in page, url
    client.force_login(make_user(_unique("someone")))
    settings_page = client.get(reverse("account_email")).content.decode()
    assert "/accounts/3rdparty/" not in settings_page
    settings.SOCIALACCOUNT_PROVIDERS = GOOGLE
    assert "/accounts/3rdparty/" in client.get(reverse("account_email")).content.decode()


# --- b. the admin's sign-in page is throttled ------------------------------------------------


@pytest.fixture
def one_rate_window() -> Iterator[None]:
    """The clock held still: django-ratelimit counts in fixed windows (10 minutes, each key's
    boundary at its own offset), and a run of attempts that straddles a boundary starts
    counting afresh halfway (this test failed so in CI once)."""
    with time_machine.travel(time.time(), tick=False):
        yield


def _admin_login(client: Client, email: str, password: str) -> int:
    response = client.post("/admin/login/", {"username": email, "password": password})
    return response.status_code


@pytest.mark.usefixtures("one_rate_window")
def test_admin_sign_in_stops_checking_passwords_after_repeated_failures_for_an_account(
    password: str,
) -> None:
    email = _unique("admin")
    User.objects.create_user(email, password, is_staff=True, is_superuser=True)
    limit = int(admin_login.ACCOUNT_RATE.split("/")[0])
    # From several addresses, so that only the per-account count is at work.
    for attempt in range(limit):
        assert _admin_login(_client(f"203.0.113.{attempt + 1}"), email, "wrong") == 200
    # Over the limit: the right password is not even looked at (nor in another letter case).
    client = _client("203.0.113.200")
    response = client.post("/admin/login/", {"username": email.upper(), "password": password})
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session


@pytest.mark.usefixtures("one_rate_window")
def test_admin_sign_in_is_throttled_per_client_address(password: str) -> None:
    address = "198.51.100.99"
    limit = int(admin_login.ADDRESS_RATE.split("/")[0])
    # A different account each time, so that only the per-address count is at work.
    for _ in range(limit):
        assert _admin_login(_client(address), _unique("guess"), "wrong") == 200
    email = _unique("admin")
    User.objects.create_user(email, password, is_staff=True)
    assert _admin_login(_client(address), email, password) == 429
    # Another address still signs in.
    other = _client("198.51.100.100")
    assert _admin_login(other, email, password) == 302
    assert "_auth_user_id" in other.session


# --- c. password reset does not tell which addresses have accounts -------------------------


def _reset(email: str) -> tuple[int, str, str]:
    client = _client(f"192.0.2.{uuid.uuid4().int % 250 + 1}")
    response = client.post("/accounts/password/reset/", {"email": email})
    location = response.get("Location", "")
    page = client.get(location).content.decode() if location else response.content.decode()
    return response.status_code, location, page.replace(email, "EMAIL")


def test_password_reset_answers_alike_for_known_and_unknown_addresses(password: str) -> None:
    known, unknown = _unique("known"), _unique("nobody")
    User.objects.create_user(known, password)
    for_known, for_unknown = _reset(known), _reset(unknown)
    assert for_known[:2] == for_unknown[:2] == (302, reverse("account_reset_password_done"))
    assert for_known[2] == for_unknown[2]
    # The known address gets a reset link; the unknown one a mail with no link into any account.
    to_known = [message for message in mail.outbox if message.to == [known]]
    to_unknown = [message for message in mail.outbox if message.to == [unknown]]
    assert len(to_known) == len(to_unknown) == 1
    assert "/accounts/password/reset/key/" in to_known[0].body
    assert "/accounts/password/reset/key/" not in to_unknown[0].body
    assert known not in to_unknown[0].body


def test_password_reset_still_refuses_a_malformed_address() -> None:
    response = _client().post("/accounts/password/reset/", {"email": "not-an-email"})
    assert response.status_code == 200
    assert response.context["form"].errors["email"]


# --- d. only a confirmed address makes its owner an invitee ------------------------------


def test_an_unconfirmed_invited_address_grants_nothing_until_confirmed(
    settings: SettingsWrapper, password: str
) -> None:
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"  # the development default
    invited = _unique("invitee")
    meeting = schedule(
        make_user(_unique("host")),
        invitees=[invited],
        access_policy=Meeting.Access.INVITEES,
        title="Board only",
    )
    client = _client()
    signed_up = client.post(
        "/accounts/signup/",
        {"full_name": "Ivy", "email": invited, "password1": password, "password2": password},
    )
    assert signed_up.status_code == 302
    assert "_auth_user_id" in client.session  # optional verification: signed in at once
    assert not EmailAddress.objects.get(email=invited).verified

    join, detail = reverse("rooms:join", args=[meeting.code]), meeting.get_absolute_url()
    assert client.get(join).status_code == 404
    assert client.get(detail).status_code == 404
    assert "Board only" not in client.get("/").content.decode()

    link = re.search(
        r"http://[^/\s]+(/accounts/confirm-email/[^\s]+/)",
        next(message.body for message in mail.outbox if message.to == [invited]),
    )
    assert link is not None
    assert client.post(link.group(1)).status_code == 302
    assert EmailAddress.objects.get(email=invited).verified

    assert client.get(join).status_code == 200
    assert client.get(detail).status_code == 200
    assert "Board only" in client.get("/").content.decode()
