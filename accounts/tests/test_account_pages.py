"""The account pages in the product's look (issue 12.10): allauth's sign-in, sign-up, e-mail
and password pages with labels in meet's words (no colons, no "Remember Me"), errors beside the
field they are about, a link each way between sign-in and sign-up; Settings linking to the
e-mail and password pages; flash messages that can be dismissed and are announced."""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.base import Message
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from rooms.tests.meetings_support import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-passphrase-42"
GOOGLE = {"google": {"APPS": [{"client_id": "id-from-config", "secret": "secret-from-config"}]}}


def _labels(html: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", label)).strip()
        for label in re.findall(r"<label\b[^>]*>(.*?)</label>", html, re.S)
    ]


def _user_with_password():
    user = make_user("me@example.org")
    user.set_password(PASSWORD)
    user.save()
    return user


def _main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


@pytest.mark.parametrize(
    ("url", "signed_in"),
    [
        ("/accounts/login/", False),
        ("/accounts/signup/", False),
        ("/accounts/password/reset/", False),
        ("/accounts/email/", True),
        ("/accounts/password/change/", True),
    ],
)
def test_account_pages_label_fields_without_colons_or_stock_wording(
    client, url: str, signed_in: bool
) -> None:
    if signed_in:
        client.force_login(_user_with_password())
    html = client.get(url).content.decode()
    labels = _labels(_main(html))
    assert labels, url
    assert not [label for label in labels if label.endswith(":")], labels
    assert "Remember Me" not in html
    assert "Sign Up" not in html
    assert "Sign In" not in html
    # Fields in the product's style: a .field wrapper, no allauth <p> rendering.
    assert 'class="field' in html


def test_sign_in_page_offers_keep_me_signed_in_and_a_link_to_sign_up(client) -> None:
    html = _main(client.get(reverse("account_login")).content.decode())
    assert _labels(html) == ["Email", "Password", "Keep me signed in"]
    assert "<h1>Sign in</h1>" in html
    assert f'href="{reverse("account_signup")}"' in html
    assert "Create an account" in html
    assert f'href="{reverse("account_reset_password")}"' in html  # "Forgot your password?"
    assert 'class="button button-primary"' in html
    assert "placeholder=" not in html  # the visible label says it


def test_sign_up_page_asks_for_name_first_and_links_to_sign_in(client) -> None:
    html = _main(client.get(reverse("account_signup")).content.decode())
    assert _labels(html) == ["Full name", "Email", "Password", "Password (again)"]
    assert f'href="{reverse("account_login")}"' in html
    assert "Already have an account?" in html


def test_sign_up_errors_are_shown_under_their_field_and_tied_to_it(client) -> None:
    response = client.post(
        reverse("account_signup"),
        {
            "full_name": "Ada",
            "email": "ada@example.org",
            "password1": PASSWORD,
            "password2": PASSWORD + "x",
        },
    )
    html = _main(response.content.decode())
    field = re.search(
        r'<div class="field field-invalid">(.*?)</div>\s*(?=<div class="field|$)', html, re.S
    )
    assert field is not None, html
    block = field.group(1)
    assert 'id="id_password2"' in block
    assert 'aria-invalid="true"' in block
    assert 'aria-describedby="id_password2-errors"' in block
    assert 'id="id_password2-errors"' in block
    assert "You must type the same password each time." in block


def test_a_failed_sign_in_is_announced_above_the_form(client) -> None:
    _user_with_password()
    response = client.post(
        reverse("account_login"), {"login": "me@example.org", "password": "not-it"}
    )
    html = _main(response.content.decode())
    assert re.search(r'class="form-errors form-errors-block" role="alert"><p>The email', html)


def test_email_page_offers_no_primary_or_remove_for_the_only_address(client) -> None:
    user = make_user("me@example.org")  # its address primary and confirmed
    client.force_login(user)
    html = _main(client.get(reverse("account_email")).content.decode())
    assert "me@example.org" in html
    assert "Primary" in html
    assert "Confirmed" in html
    for action in ("action_primary", "action_remove", "action_send"):
        assert f'name="{action}"' not in html
    assert 'name="action_add"' in html  # adding one is offered
    # The account pages lead back to Settings (not "Preferences").
    assert f'<a href="{reverse("accounts:preferences")}">Settings</a>' in html
    assert 'aria-current="page">Email addresses</a>' in html


def test_email_page_offers_each_address_what_fits_it(client) -> None:
    user = make_user("me@example.org")  # its address primary and confirmed
    EmailAddress.objects.create(user=user, email="other@example.org", verified=True)
    EmailAddress.objects.create(user=user, email="new@example.org", verified=False)
    client.force_login(user)
    html = _main(client.get(reverse("account_email")).content.decode())
    rows = dict(re.findall(r'class="email-value">([^<]+)</span>(.*?)</li>', html, re.S))
    assert "name=" not in rows["me@example.org"]
    assert 'name="action_primary"' in rows["other@example.org"]
    assert 'name="action_remove"' in rows["other@example.org"]
    assert 'name="action_send"' not in rows["other@example.org"]
    assert 'name="action_send"' in rows["new@example.org"]
    assert 'name="action_primary"' not in rows["new@example.org"]
    # Each row posts its own address, so allauth acts on that one.
    client.post(reverse("account_email"), {"email": "other@example.org", "action_primary": ""})
    assert EmailAddress.objects.get(email="other@example.org").primary


def test_settings_links_to_the_email_and_password_pages(client, settings) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {}
    client.force_login(_user_with_password())
    html = client.get(reverse("accounts:preferences")).content.decode()
    assert f'href="{reverse("account_email")}">Email addresses</a>' in html
    assert f'href="{reverse("account_change_password")}">Change password</a>' in html
    assert reverse("socialaccount_connections") not in html


def test_settings_offers_set_password_to_an_account_without_one(client) -> None:
    user = make_user("me@example.org")
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    html = client.get(reverse("accounts:preferences")).content.decode()
    assert f'href="{reverse("account_set_password")}">Set a password</a>' in html


def test_settings_links_to_connected_accounts_when_social_login_is_configured(
    client, settings
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = GOOGLE
    client.force_login(make_user("me@example.org"))
    html = client.get(reverse("accounts:preferences")).content.decode()
    assert f'href="{reverse("socialaccount_connections")}">Connected accounts</a>' in html
    assert client.get(reverse("socialaccount_connections")).status_code == 200


def test_a_flash_message_is_announced_politely_with_a_dismiss_button(client) -> None:
    client.force_login(make_user("me@example.org"))
    response = client.post(
        reverse("accounts:preferences"),
        {"full_name": "Me", "time_zone": "UTC", "reminder_minutes": "10"},
        follow=True,
    )
    html = response.content.decode()
    message = re.search(r'<div class="message message-success"[^>]*>.*?</div>', html, re.S)
    assert message is not None, html
    markup = message.group(0)
    assert 'role="status"' in markup
    assert "data-message-fades" in markup
    assert "Preferences saved." in markup
    button = re.search(r"<button[^>]*data-message-dismiss[^>]*>", markup)
    assert button is not None
    assert 'aria-label="Dismiss message"' in button.group(0)
    assert 'type="button"' in button.group(0)
    # Shown by the script; without it the message simply stays.
    assert " hidden" in button.group(0)
    assert "js/messages.js" in html
    # Shown once.
    assert "Preferences saved." not in client.get(reverse("home")).content.decode()


def test_an_error_message_is_an_alert_that_does_not_fade() -> None:
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    html = render_to_string(
        "base.html",
        {
            "messages": [
                Message(messages.ERROR, "That did not work."),
                Message(messages.INFO, "For your information."),
            ]
        },
        request=request,
    )
    error = re.search(r'<div class="message message-error"[^>]*>', html)
    info = re.search(r'<div class="message message-info"[^>]*>', html)
    assert error is not None
    assert info is not None
    assert 'role="alert"' in error.group(0)
    assert "data-message-fades" not in error.group(0)
    assert 'role="status"' in info.group(0)
    assert "data-message-fades" in info.group(0)
    assert html.count('aria-label="Dismiss message"') == 2


def test_pages_without_messages_load_no_message_script(client) -> None:
    assert "js/messages.js" not in client.get(reverse("home")).content.decode()
