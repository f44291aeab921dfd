"""Errors a visitor can meet by following a normal link get meet's own pages (never Django's
debug page): a way home and "Enter a code or link"."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.views import defaults

pytestmark = pytest.mark.django_db


def assert_branded(page: str) -> None:
    assert 'href="/"' in page
    assert 'placeholder="Enter a code or link"' in page
    assert 'action="/enter"' in page


def test_an_unknown_address_or_meeting_code_gets_the_branded_404(client, settings) -> None:
    settings.DEBUG = False
    for path in ("/no-such-page", "/abc-defg-hij"):
        response = client.get(path, follow=True)
        if response.redirect_chain:  # signed out: an unknown code asks to sign in first
            assert "/accounts/login/" in response.redirect_chain[-1][0]
            continue
        assert response.status_code == 404
        page = response.content.decode()
        assert_branded(page)
        assert "This page isn't here" in page


def test_a_signed_in_person_following_a_dead_meeting_link_is_told_in_words(
    client, settings, django_user_model
) -> None:
    settings.DEBUG = False
    client.force_login(django_user_model.objects.create_user("me@example.org"))
    response = client.get("/abc-defg-hij")
    assert response.status_code == 404
    page = response.content.decode()
    assert_branded(page)
    assert "doesn't exist or isn't open to you" in page


def test_403_and_500_are_branded_too() -> None:
    request = RequestFactory().get("/")
    forbidden = defaults.permission_denied(request, PermissionDenied())
    assert forbidden.status_code == 403
    assert_branded(forbidden.content.decode())
    error = defaults.server_error(request)
    assert error.status_code == 500
    page = error.content.decode()
    assert_branded(page)
    assert "Something went wrong" in page
