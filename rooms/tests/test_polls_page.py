"""The meeting page's Polls section (templates/rooms/_polls.html, rooms.polls.page_context):
shown to whoever may read the meeting's chat afterwards; results of an open poll and voters'
names (named polls only) to the host and co-hosts only; everything people typed escaped."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from rooms.models import Invitation, Meeting, Poll, PollOption, PollVote, Removal
from rooms.tests.meetings_support import make_user

pytestmark = pytest.mark.django_db

XSS_QUESTION = "<script>alert('q')</script> Best <b>day</b>?"


def _poll(
    meeting: Meeting, question: str, options: list[str], *, anonymous: bool, closed: bool
) -> tuple[Poll, list[PollOption]]:
    poll = Poll.objects.create(
        meeting=meeting,
        created_by=meeting.host,
        question=question,
        anonymous=anonymous,
        closed_at=timezone.now() if closed else None,
    )
    made = [PollOption.objects.create(poll=poll, position=i, text=t) for i, t in enumerate(options)]
    return poll, made


@pytest.fixture
def meeting_with_polls() -> dict[str, Any]:
    host = make_user("host@example.org", first_name="Hana")
    cohost = make_user("cohost@example.org", first_name="Cora")
    invitee = make_user("invitee@example.org", first_name="Ivo")
    removed = make_user("removed@example.org", first_name="Remy")
    voter = make_user("voter@example.org", first_name="Vera")
    meeting = Meeting.objects.create(host=host, title="Planning")
    meeting.co_hosts.add(cohost)
    for person in (invitee, removed):
        Invitation.objects.create(meeting=meeting, email=person.email)
    Removal.objects.create(meeting=meeting, user=removed)

    named, named_options = _poll(
        meeting,
        XSS_QUESTION,
        ["Monday", "<img src=x onerror=alert(1)>"],
        anonymous=False,
        closed=True,
    )
    PollVote.objects.create(
        poll=named, option=named_options[1], voter_user=voter, voter_name="Vera <i>V</i>"
    )
    PollVote.objects.create(
        poll=named, option=named_options[0], voter_guest_key="g1", voter_name="Gus"
    )
    anonymous, anonymous_options = _poll(
        meeting, "Secret ballot?", ["Yes", "No"], anonymous=True, closed=True
    )
    PollVote.objects.create(
        poll=anonymous, option=anonymous_options[0], voter_user=voter, voter_name="Anna Nym"
    )
    still_open, open_options = _poll(
        meeting, "Still open?", ["Aye", "Nay"], anonymous=False, closed=False
    )
    PollVote.objects.create(
        poll=still_open, option=open_options[1], voter_user=voter, voter_name="Olga Open"
    )
    return {
        "meeting": meeting,
        "host": host,
        "cohost": cohost,
        "invitee": invitee,
        "removed": removed,
    }


def _page(user: Any, meeting: Meeting) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(meeting.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("who", ["host", "cohost"])
def test_hosts_see_results_and_the_voters_of_named_polls(
    meeting_with_polls: dict[str, Any], who: str
) -> None:
    page = _page(meeting_with_polls[who], meeting_with_polls["meeting"])
    assert 'id="polls-title"' in page
    assert "Vera &lt;i&gt;V&lt;/i&gt;" in page  # a named poll's voter, escaped
    assert "Gus (guest)" in page
    assert "1 vote · 50%" in page
    # The open poll's live results, as in the call.
    assert "Olga Open" in page
    assert "Still open?" in page
    # The anonymous poll: its counts, never its voters.
    assert "Secret ballot?" in page
    assert "Anna Nym" not in page


def test_others_who_may_read_the_chat_see_closed_results_without_voters(
    meeting_with_polls: dict[str, Any],
) -> None:
    page = _page(meeting_with_polls["invitee"], meeting_with_polls["meeting"])
    assert 'id="polls-title"' in page
    assert "Secret ballot?" in page
    assert "1 vote · 100%" in page
    for name in ("Vera", "Gus", "Anna Nym", "Olga Open"):
        assert name not in page, name
    # The open poll: its options, no counts yet.
    assert "Still open?" in page
    assert "The results show here once the poll is closed." in page


def test_everything_typed_is_escaped(meeting_with_polls: dict[str, Any]) -> None:
    page = _page(meeting_with_polls["host"], meeting_with_polls["meeting"])
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt; Best &lt;b&gt;day&lt;/b&gt;?" in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_no_polls_for_the_removed_nor_on_a_meeting_without_polls(
    meeting_with_polls: dict[str, Any],
) -> None:
    meeting = meeting_with_polls["meeting"]
    # Removed: may still open the page as an invitee, but not read the chat, nor the polls.
    client = Client()
    client.force_login(meeting_with_polls["removed"])
    response = client.get(meeting.get_absolute_url())
    assert response.status_code == 200
    assert 'id="polls-title"' not in response.content.decode()
    assert "Secret ballot?" not in response.content.decode()
    empty = Meeting.objects.create(host=meeting_with_polls["host"], title="No polls")
    assert 'id="polls-title"' not in _page(meeting_with_polls["host"], empty)
