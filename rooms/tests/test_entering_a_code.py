""" "Enter a code or link" on the home page: a code typed or pasted as people do leads to the
meeting's join page; anything else says what a code looks like."""

from __future__ import annotations

import pytest
from django.urls import reverse

from rooms.join_codes import parse_join_code
from rooms.tests.meetings_support import make_user, schedule


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("abc-defg-hij", "abc-defg-hij"),
        ("abcdefghij", "abc-defg-hij"),
        ("  ABC-DEFG-HIJ ", "abc-defg-hij"),
        ("abc defg hij", "abc-defg-hij"),
        ("https://meet.example.org/abc-defg-hij", "abc-defg-hij"),
        ("http://127.0.0.1:8000/abc-defg-hij?authuser=0", "abc-defg-hij"),
        ("meet.example.org/abcdefghij", "abc-defg-hij"),
        ("https://meet.example.org/meetings/abc-defg-hij/", "abc-defg-hij"),
        ("https://meet.example.org/abc-defg-hij#details", "abc-defg-hij"),
    ],
)
def test_a_code_is_read_with_or_without_dashes_or_from_a_link(typed: str, code: str) -> None:
    assert parse_join_code(typed) == code


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "abc-defg-hi",  # nine letters
        "abc-defg-hijk",  # eleven
        "abc-defg-hi1",
        "ábc-defg-hij",
        "https://meet.example.org/",
        "https://meet.example.org/meetings/new",
        "<script>alert(1)</script>",
        "a" * 501,
    ],
)
def test_what_is_not_a_code_is_refused(typed: str) -> None:
    assert parse_join_code(typed) is None


@pytest.mark.django_db
def test_a_signed_in_person_entering_a_code_lands_on_the_join_page(client) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host)
    client.force_login(host)

    typed = meeting.code.replace("-", "").upper()
    response = client.get(reverse("rooms:enter"), {"code": typed})

    assert response.status_code == 302
    assert response["Location"] == reverse("rooms:join", kwargs={"code": meeting.code})
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.django_db
def test_a_signed_out_visitor_is_sent_on_to_sign_in_for_the_meeting(client) -> None:
    meeting = schedule(make_user("host@example.org"))
    home = client.get(reverse("home")).content.decode()
    assert 'placeholder="Enter a code or link"' in home

    response = client.get(reverse("rooms:enter"), {"code": f"http://x/{meeting.code}"})
    join_url = reverse("rooms:join", kwargs={"code": meeting.code})
    assert response["Location"] == join_url
    assert client.get(join_url)["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_something_else_is_answered_with_what_a_code_looks_like_and_kept_escaped(client) -> None:
    client.force_login(make_user("me@example.org"))

    response = client.get(reverse("rooms:enter"), {"code": "<b>not a code</b>"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "A code looks like abc-defg-hij." in page
    assert 'value="&lt;b&gt;not a code&lt;/b&gt;"' in page
    assert "<b>not a code</b>" not in page
