"""The pre-join page's "who is in this call" (rooms/in_call.py): the sentence, one name per
person, never the viewer, only for people who may enter directly, and its JSON refresh."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from rooms import in_call, presence, services
from rooms.models import Meeting
from rooms.tests.meetings_support import make_user

pytestmark = pytest.mark.django_db


def _enter(meeting: Meeting, peer_id: str, name: str, *, user: Any = None, guest: str = "") -> None:
    presence.enter(
        meeting,
        peer_id=peer_id,
        user=user,
        guest_key=guest,
        display_name=name,
        role="guest" if user is None else "participant",
        channel_name=f"chan-{peer_id}",
    )


def _summary_url(meeting: Meeting) -> str:
    return reverse("rooms:in_call_summary", args=[meeting.code])


@pytest.mark.parametrize(
    ("names", "sentence"),
    [
        ([], "No one else is here."),
        (["Ana"], "Ana is in this call."),
        (["Ana", "Bo"], "Ana and Bo are in this call."),
        (["Ana", "Bo", "Cy"], "Ana, Bo and Cy are in this call."),
        (["Ana", "Bo", "Cy", "Di"], "Ana, Bo and 2 more are in this call."),
    ],
)
def test_the_sentence_names_two_then_counts_the_rest(names: list[str], sentence: str) -> None:
    assert in_call.summary(names).summary == sentence


def test_each_person_is_named_once_in_join_order_and_never_to_themselves() -> None:
    host = make_user("host@example.org", full_name="Hana Host")
    bo = make_user("bo@example.org", full_name="Bo")
    meeting = services.create_instant_meeting(host)
    _enter(meeting, "bo-tab-1", "Bo", user=bo)
    _enter(meeting, "guest-tab", "Gail", guest="g-key")
    _enter(meeting, "bo-tab-2", "Bo", user=bo)  # the same person in a second tab
    _enter(meeting, "host-tab", "Hana Host", user=host)
    meeting.refresh_from_db()

    assert in_call.names_in_call(meeting, viewer=host) == ["Bo", "Gail"]
    assert in_call.names_in_call(meeting, viewer=bo) == ["Gail", "Hana Host"]
    presence.leave(meeting, "guest-tab")
    assert in_call.names_in_call(meeting, viewer=host) == ["Bo"]


def test_the_join_page_says_who_is_in_the_call(client: Client) -> None:
    host = make_user("host@example.org", full_name="Hana <b>Host</b>")
    viewer = make_user("vi@example.org", full_name="Vi")
    meeting = services.create_instant_meeting(host)
    _enter(meeting, "host-tab", "Hana <b>Host</b>", user=host)
    client.force_login(viewer)

    page = client.get(reverse("rooms:join", args=[meeting.code])).content.decode()

    assert "Hana &lt;b&gt;Host&lt;/b&gt; is in this call." in page
    assert "<b>Host</b>" not in page
    assert "in-call-summary.js" in page


def test_the_refresh_follows_the_call_as_people_come_and_go(client: Client) -> None:
    host = make_user("host@example.org", full_name="Hana")
    viewer = make_user("vi@example.org", full_name="Vi")
    meeting = services.create_instant_meeting(host)
    _enter(meeting, "host-tab", "Hana", user=host)
    client.force_login(viewer)

    first = client.get(_summary_url(meeting))
    assert first.status_code == 200
    assert first["Cache-Control"] == "private, no-store"
    assert first.json() == {"names": ["Hana"], "others": 0, "summary": "Hana is in this call."}

    _enter(meeting, "guest-tab", "Gail", guest="g-key")
    assert client.get(_summary_url(meeting)).json()["summary"] == (
        "Hana and Gail are in this call."
    )


def test_a_guest_who_must_ask_to_join_learns_nobodys_name(client: Client) -> None:
    host = make_user("host@example.org", full_name="Hana")
    meeting = services.create_instant_meeting(host)
    meeting.access_policy = Meeting.Access.GUESTS
    meeting.save(update_fields=["access_policy"])
    _enter(meeting, "host-tab", "Hana", user=host)

    page = client.get(reverse("rooms:join", args=[meeting.code])).content.decode()
    assert "is in this call" not in page
    assert "Hana is" not in page
    assert client.get(_summary_url(meeting)).json() == {"summary": None}


def test_people_who_may_not_enter_get_404_from_the_refresh(client: Client) -> None:
    host = make_user("host@example.org", full_name="Hana")
    outsider = make_user("out@example.org")
    meeting = services.create_instant_meeting(host)
    meeting.access_policy = Meeting.Access.INVITEES
    meeting.save(update_fields=["access_policy"])
    _enter(meeting, "host-tab", "Hana", user=host)

    assert client.get(_summary_url(meeting)).status_code == 404  # signed out
    client.force_login(outsider)
    assert client.get(_summary_url(meeting)).status_code == 404  # not invited
    assert client.get("/abc-defg-hij/in-call").status_code == 404  # no such meeting
    assert client.post(_summary_url(meeting)).status_code in (404, 405)
