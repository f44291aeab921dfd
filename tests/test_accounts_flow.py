"""Accounts through django-allauth: sign-up, verification, sign-in, and bad sign-up input."""

from __future__ import annotations

import re
from typing import Any as SettingsWrapper

import pytest
from django.core import mail
from django.test import Client

from accounts.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _mandatory_verification(settings: SettingsWrapper) -> None:
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"


def sign_up(client: Client, email: str, password1: str, password2: str | None = None):
    return client.post(
        "/accounts/signup/",
        {
            "full_name": "Ada Lovelace",
            "email": email,
            "password1": password1,
            "password2": password2 or password1,
        },
    )


def test_sign_up_verify_sign_in_reaches_home_page(client: Client, password: str) -> None:
    response = sign_up(client, "ada@example.org", password)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.org"]
    link = re.search(r"http://[^/\s]+(/accounts/confirm-email/[^\s]+/)", message.body)
    assert link is not None, message.body

    # Unverified: signing in is refused until the link is used.
    client.logout()
    refused = client.post("/accounts/login/", {"login": "ada@example.org", "password": password})
    assert refused.status_code == 302
    assert refused["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session

    confirm_page = client.get(link.group(1))
    assert confirm_page.status_code == 200
    confirmed = client.post(link.group(1))
    assert confirmed.status_code == 302
    client.logout()

    signed_in = client.post(
        "/accounts/login/", {"login": "ada@example.org", "password": password}, follow=True
    )
    assert signed_in.redirect_chain[-1][0] == "/"
    assert signed_in.context["user"].email == "ada@example.org"
    page = signed_in.content.decode()
    assert "Upcoming meetings" in page
    assert "ada@example.org" in page


def test_sign_up_with_taken_email_shows_form_error(client: Client, password: str) -> None:
    User.objects.create_user("taken@example.org", password)
    response = sign_up(client, "taken@example.org", password)
    assert response.status_code == 200
    assert response.context["form"].errors["email"]
    assert User.objects.filter(email="taken@example.org").count() == 1


@pytest.mark.parametrize("weak", ["123", "password", "12345678901"])
def test_sign_up_with_weak_password_shows_form_error(client: Client, weak: str) -> None:
    response = sign_up(client, "weak@example.org", weak)
    assert response.status_code == 200
    assert response.context["form"].errors["password1"]
    assert not User.objects.filter(email="weak@example.org").exists()


def test_sign_up_with_mismatched_passwords_shows_form_error(client: Client, password: str) -> None:
    response = sign_up(client, "typo@example.org", password, password + "x")
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    assert not User.objects.filter(email="typo@example.org").exists()


def test_sign_up_with_malformed_email_shows_form_error(client: Client, password: str) -> None:
    response = sign_up(client, "not-an-email", password)
    assert response.status_code == 200
    assert response.context["form"].errors["email"]


def test_password_reset_sends_a_working_link(client: Client, password: str) -> None:
    User.objects.create_user("reset@example.org", password)
    response = client.post("/accounts/password/reset/", {"email": "reset@example.org"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://[^/\s]+(/accounts/password/reset/key/[^\s]+/)", mail.outbox[0].body)
    assert link is not None
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    new_password = "another-long-passphrase-77"
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"password1": new_password, "password2": new_password},
    )
    assert done.status_code == 302
    assert User.objects.get(email="reset@example.org").check_password(new_password)


def test_signed_out_home_page_offers_sign_in(client: Client) -> None:
    page = client.get("/").content.decode()
    assert 'href="/accounts/login/"' in page
    assert "Upcoming meetings" not in page


def test_password_change_needs_the_old_password(client: Client, password: str) -> None:
    user = User.objects.create_user("change@example.org", password)
    client.force_login(user)
    wrong = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": "not-it",
            "password1": "fresh-passphrase-99",
            "password2": "fresh-passphrase-99",
        },
    )
    assert wrong.status_code == 200
    assert wrong.context["form"].errors["oldpassword"]
    done = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": password,
            "password1": "fresh-passphrase-99",
            "password2": "fresh-passphrase-99",
        },
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("fresh-passphrase-99")


def test_social_provider_appears_when_configured(client: Client, settings: SettingsWrapper) -> None:
    assert "Google" not in client.get("/accounts/login/").content.decode()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {"APPS": [{"client_id": "id-from-config", "secret": "secret-from-config"}]}
    }
    page = client.get("/accounts/login/").content.decode()
    assert "Google" in page
    assert "/accounts/google/login/" in page


def test_sign_out_ends_the_session(client: Client, password: str) -> None:
    client.force_login(User.objects.create_user("bye@example.org", password))
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
