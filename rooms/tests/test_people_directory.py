"""The invitee box's completion (issue 12.9): GET /meetings/people?q= answers the active users
of this instance whose name (a word of it) or address starts with q, as JSON, to signed-in
people only (rooms/people_directory.py, rooms.views.people_search)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import User
from rooms import people_directory
from rooms.tests.meetings_support import make_user

pytestmark = pytest.mark.django_db

URL = reverse("rooms:people_search")


@pytest.fixture
def requester(client) -> User:
    user = make_user("hana.host@example.org", full_name="Hana Host")
    client.force_login(user)
    return user


def _search(client, q: str) -> list[dict[str, str]]:
    response = client.get(URL, {"q": q})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()


def test_signed_out_visitors_are_sent_to_sign_in(client) -> None:
    make_user("ana@example.org", full_name="Ana Lopes")
    response = client.get(URL, {"q": "ana"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a_query_under_two_characters_or_over_a_hundred_is_refused(client, requester) -> None:
    make_user("ana@example.org", full_name="Ana Lopes")
    for q in ("", "a", "  a  "):
        response = client.get(URL, {"q": q})
        assert response.status_code == 400
        assert response.json() == {"error": "Type at least 2 characters."}
    assert client.get(URL).status_code == 400
    assert client.get(URL, {"q": "a" * 101}).status_code == 400
    # Trimmed before counting: two letters among spaces are a query.
    assert [person["email"] for person in _search(client, "  an ")] == ["ana@example.org"]


def test_matches_the_start_of_a_word_of_the_name_case_insensitively(client, requester) -> None:
    make_user("ana@example.org", full_name="Ana Lopes")
    make_user("mlopez@example.org", full_name="María Lopez-Ruiz")
    make_user("maria@example.org", full_name="Maria Ana Silva")
    make_user("ria@example.org", full_name="Oria Blanco")
    assert _search(client, "LOP") == [
        {"name": "Ana Lopes", "email": "ana@example.org"},
        {"name": "María Lopez-Ruiz", "email": "mlopez@example.org"},
    ]
    # A word inside the name, not a piece inside a word ("ria" is in "Maria" and "Oria").
    assert [person["email"] for person in _search(client, "ana")] == [
        "ana@example.org",
        "maria@example.org",
    ]
    assert [person["email"] for person in _search(client, "ria")] == ["ria@example.org"]
    assert [person["email"] for person in _search(client, "maria ana")] == ["maria@example.org"]


def test_matches_the_start_of_the_address_and_names_people_without_a_name(
    client, requester
) -> None:
    make_user("bob.builder@example.org")
    make_user("rob@bobcorp.example", full_name="Rob Stone")
    assert _search(client, "Bob.b") == [{"name": "bob.builder", "email": "bob.builder@example.org"}]
    # The address's start only: "bob" inside the domain is not a match.
    assert [person["email"] for person in _search(client, "bob")] == ["bob.builder@example.org"]


def test_inactive_users_and_the_requester_are_left_out(client, requester) -> None:
    make_user("hana.other@example.org", full_name="Hana Other")
    make_user("hana.gone@example.org", full_name="Hana Gone", is_active=False)
    assert [person["email"] for person in _search(client, "hana")] == ["hana.other@example.org"]


def test_at_most_eight_people(client, requester) -> None:
    for n in range(12):
        make_user(f"sam{n:02d}@example.org", full_name=f"Sam Number {n}")
    found = _search(client, "sam")
    assert len(found) == people_directory.MAX_MATCHES == 8
    assert [person["email"] for person in found] == [f"sam{n:02d}@example.org" for n in range(8)]


def test_names_are_data_in_json_never_markup(client, requester) -> None:
    make_user("eve@example.org", full_name='Eve <img src=x onerror="alert(1)"> & co')
    response = client.get(URL, {"q": "eve"})
    assert response.json() == [
        {"name": 'Eve <img src=x onerror="alert(1)"> & co', "email": "eve@example.org"}
    ]
    # Served as JSON that browsers may not sniff as HTML: the name is text for the page's
    # script, which puts it in with textContent.
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_answers_are_not_cached(client, requester) -> None:
    response = client.get(URL, {"q": "an"})
    assert response["Cache-Control"] == "private, no-store"
    assert client.get(URL, {"q": "a"})["Cache-Control"] == "private, no-store"


def test_only_get(client, requester) -> None:
    assert client.post(URL, {"q": "ana"}).status_code == 405


def test_searching_is_rate_limited_per_user(client, settings) -> None:
    settings.ROOMS_PEOPLE_SEARCH_RATE = "3/m"
    client.force_login(make_user("walker@example.org"))
    statuses = [client.get(URL, {"q": f"p{n}"}).status_code for n in range(5)]
    assert statuses == [200] * 3 + [429] * 2
    client.force_login(make_user("someone.else@example.org"))
    assert client.get(URL, {"q": "pq"}).status_code == 200


def test_the_edit_form_names_invitees_who_have_an_account(client, requester) -> None:
    from rooms.tests.meetings_support import schedule

    make_user("Ana@Example.org", full_name="Ana <Lopes>")
    make_user("gone@example.org", full_name="Gone", is_active=False)
    meeting = schedule(requester, invitees=["ana@example.org", "gone@example.org", "x@y.example"])
    response = client.get(reverse("rooms:edit", args=[meeting.code]))
    assert response.status_code == 200
    # json_script: the name as data, "<" escaped, for static/js/invitee-chips.js.
    assert (
        '<script id="invitee-names" type="application/json">'
        '{"ana@example.org": "Ana \\u003CLopes\\u003E"}</script>'
    ) in response.content.decode()
    assert 'data-invitee-chips=""' in response.content.decode()
