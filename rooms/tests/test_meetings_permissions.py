"""Who may see and do what on every meetings page; unknown codes and forbidden ones alike."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from rooms import access
from rooms.models import Meeting
from rooms.tests.meetings_support import make_user, schedule

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    host = make_user("host@example.org")
    return {
        "host": host,
        "cohost": make_user("co@example.org"),
        "invitee": make_user("Ana@Example.org"),  # matched to the invitation case-insensitively
        "outsider": make_user("out@example.org"),
        "staff": make_user("staff@example.org", is_staff=True),
    }


def _meeting(people, policy: str) -> Meeting:
    return schedule(
        people["host"],
        invitees=["ana@example.org"],
        co_hosts=[people["cohost"]],
        access_policy=policy,
    )


def _status(client, user, url: str, method: str = "get") -> int:
    client.logout()
    if user is not None:
        client.force_login(user)
    return getattr(client, method)(url).status_code


PAGES = ["detail", "ics"]


@pytest.mark.parametrize("page", PAGES)
def test_detail_pages_are_for_host_cohosts_invitees_and_staff_only(client, people, page) -> None:
    meeting = _meeting(people, Meeting.Access.SIGNED_IN)
    url = reverse(f"rooms:{page}", args=[meeting.code])
    for role in ("host", "cohost", "invitee", "staff"):
        assert _status(client, people[role], url) == 200, role
    assert _status(client, people["outsider"], url) == 404
    unknown = reverse(f"rooms:{page}", args=["zzz-zzzz-zzz"])
    assert _status(client, people["outsider"], unknown) == 404
    response_anonymous = (client.logout(), client.get(url))[1]
    assert response_anonymous.status_code == 302
    assert response_anonymous["Location"].startswith(reverse("account_login"))


def test_only_the_host_may_edit_or_cancel(client, people) -> None:
    meeting = _meeting(people, Meeting.Access.INVITEES)
    edit = reverse("rooms:edit", args=[meeting.code])
    cancel = reverse("rooms:cancel", args=[meeting.code])
    assert _status(client, people["host"], edit) == 200
    for role in ("cohost", "invitee", "staff"):
        assert _status(client, people[role], edit) == 403, role
        assert _status(client, people[role], edit, "post") == 403, role
        assert _status(client, people[role], cancel, "post") == 403, role
    assert _status(client, people["outsider"], edit) == 404
    assert _status(client, people["outsider"], cancel, "post") == 404
    # GET asks for confirmation (rooms/cancel.html); only its POST cancels.
    assert _status(client, people["host"], cancel) == 200
    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.SCHEDULED
    assert meeting.sequence == 0


def _without_csrf_tokens(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", content)


def test_invite_only_meeting_is_invisible_to_a_non_invitee(client, people) -> None:
    meeting = _meeting(people, Meeting.Access.INVITEES)
    join = reverse("rooms:join", args=[meeting.code])
    for role in ("host", "cohost", "invitee", "staff"):
        assert _status(client, people[role], join) == 200, role
    client.force_login(people["outsider"])
    forbidden = client.get(join)
    unknown = client.get("/qqq-qqqq-qqq")
    assert forbidden.status_code == unknown.status_code == 404
    # The same page for both (the sign-out form's CSRF token is masked anew in every response).
    assert _without_csrf_tokens(forbidden.content) == _without_csrf_tokens(unknown.content)
    assert meeting.title.encode() not in forbidden.content


def test_signed_in_policy_lets_anyone_signed_in_with_the_link_join(client, people) -> None:
    meeting = _meeting(people, Meeting.Access.SIGNED_IN)
    join = reverse("rooms:join", args=[meeting.code])
    assert _status(client, people["outsider"], join) == 200
    assert _status(client, people["outsider"], reverse("rooms:detail", args=[meeting.code])) == 404


def test_signed_out_visitors_sign_in_first_unless_guests_are_allowed(client, people) -> None:
    for policy in (Meeting.Access.INVITEES, Meeting.Access.SIGNED_IN):
        meeting = _meeting(people, policy)
        client.logout()
        response = client.get(f"/{meeting.code}")
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('account_login')}?next=/{meeting.code}"
    # An unknown code answers a signed-out visitor the same way.
    unknown = client.get("/qqq-qqqq-qqq")
    assert unknown.status_code == 302
    assert unknown["Location"] == f"{reverse('account_login')}?next=/qqq-qqqq-qqq"
    guests = _meeting(people, Meeting.Access.GUESTS)
    page = client.get(f"/{guests.code}")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="guest_name"' in body
    assert 'data-needs-lobby="true"' in body
    assert f'data-meeting-code="{guests.code}"' in body


def test_join_decision_is_the_policy_the_call_uses(people) -> None:
    invite_only = _meeting(people, Meeting.Access.INVITEES)
    guests = _meeting(people, Meeting.Access.GUESTS)
    host_says = access.join_decision(people["host"], invite_only)
    assert (host_says.allowed, host_says.needs_lobby, host_says.role) == (True, False, "host")
    assert access.join_decision(people["cohost"], invite_only).role == "cohost"
    assert access.join_decision(people["invitee"], invite_only).allowed
    refused = access.join_decision(people["outsider"], invite_only)
    assert (refused.allowed, refused.reason) == (False, "not_invited")
    assert access.join_decision(None, invite_only).reason == "sign_in"
    guest = access.join_decision(None, guests)
    assert (guest.allowed, guest.needs_lobby, guest.role) == (True, True, "guest")
    assert access.join_decision(people["outsider"], guests).needs_lobby is False
    guests.status = Meeting.Status.CANCELLED
    assert access.join_decision(people["host"], guests).allowed is False


def test_cancelled_meeting_join_link_is_gone(client, people) -> None:
    """Gone, and said so in words (issue 12.5): no call to join, for anyone."""
    meeting = _meeting(people, Meeting.Access.SIGNED_IN)
    meeting.status = Meeting.Status.CANCELLED
    meeting.save()
    assert _status(client, people["invitee"], f"/{meeting.code}") == 410
    assert _status(client, people["host"], f"/{meeting.code}") == 410
    body = client.get(f"/{meeting.code}").content.decode()
    assert "This meeting was cancelled" in body
    assert "Join now" not in body


def test_schedule_and_new_need_sign_in(client) -> None:
    for name, method in (
        ("rooms:schedule", "get"),
        ("rooms:new", "post"),
        ("rooms:new", "get"),
        ("rooms:later", "post"),
    ):
        response = getattr(client, method)(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    assert not Meeting.objects.exists()
    client.force_login(make_user("someone@example.org"))
    # Creating is a POST: GET shows the choices (the menu's page without script).
    assert client.get(reverse("rooms:new")).status_code == 200
    assert client.get(reverse("rooms:later")).status_code == 405
    assert not Meeting.objects.exists()


def _code(n: int) -> str:
    """A well-formed code per number (digits spelled as letters)."""
    letters = "".join("abcdefghij"[int(digit)] for digit in f"{n:03d}")
    return f"xyz-wvut-{letters}"


def test_join_code_guessing_is_rate_limited(client, settings) -> None:
    settings.ROOMS_JOIN_GUESS_RATE = "5/10m"
    client.force_login(make_user("guesser@example.org"))
    statuses = [client.get(f"/{_code(n)}").status_code for n in range(7)]
    assert statuses == [404] * 5 + [429] * 2
    # Now blocked even for a real meeting; someone else is not.
    meeting = schedule(make_user("h2@example.org"))
    assert client.get(f"/{meeting.code}").status_code == 429
    assert client.get(reverse("rooms:detail", args=[meeting.code])).status_code == 429
    client.force_login(make_user("other@example.org"))
    assert client.get(f"/{meeting.code}").status_code == 200


def test_join_route_only_matches_the_code_shape(client, people) -> None:
    client.force_login(people["host"])
    assert client.get("/ABC-DEFG-HIJ").status_code == 404
    assert client.get("/abc-defg-hij/extra").status_code == 404
    assert client.get(reverse("healthz")).status_code in (200, 503)


def test_upcoming_meetings_on_the_home_page(client, people) -> None:
    mine = schedule(people["host"], title="Hosted by me", starts_in=timedelta(hours=3))
    invited = schedule(people["outsider"], title="Invited", invitees=["host@example.org"])
    schedule(people["outsider"], title="Not mine")
    client.force_login(people["host"])
    body = client.get(reverse("home")).content.decode()
    assert "Hosted by me" in body
    assert "Invited" in body
    assert "Not mine" not in body
    assert body.index("Hosted by me") < body.index("Invited")
    assert f"/{mine.code}" in body
    assert f"/{invited.code}" in body
