"""Polls over the signaling socket (rooms.polls through rooms.signaling.poll_requests), with
several peers: the host starts a poll, two participants vote, live counts reach moderators only,
closing sends the results to everyone; who may create and close; one vote per person; closed,
unknown and removed; bad input; an anonymous poll never names its voters."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms import moderation, polls
from rooms.models import LobbyRequest, Meeting, Poll, PollVote, Removal
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]

LUNCH = {"question": "Lunch?", "options": ["Pizza", "Salad", "Soup"], "anonymous": False}


async def joined(meeting: Meeting, user: User | None, name: str) -> SignalingClient:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, code
    await client.join(name=name)
    return client


async def room_of_three() -> tuple[Meeting, SignalingClient, SignalingClient, SignalingClient]:
    host, pat, sam = await make_user("host"), await make_user("pat"), await make_user("sam")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Polls")
    return (
        meeting,
        await joined(meeting, host, "Host"),
        await joined(meeting, pat, "Pat"),
        await joined(meeting, sam, "Sam"),
    )


async def start(host: SignalingClient, **poll: Any) -> int:
    created = await host.request("createPoll", {**LUNCH, **poll})
    return int(created["poll"]["pollId"])


def latest_results(client: SignalingClient, poll_id: int) -> dict[str, Any] | None:
    """The poll's results as a client keeps them: those of the highest revision."""
    seen = [
        n["poll"]
        for n in client.notified("pollResults") + client.notified("pollClosed")
        if n["poll"]["pollId"] == poll_id
    ]
    if not seen:
        return None
    return dict(max(seen, key=lambda poll: poll["revision"])["results"])


def poll_notifications_of(client: SignalingClient) -> str:
    """Every poll notification the client got, as text (newPeer and the like name people)."""
    return json.dumps([n for n in client.notifications if n["method"].startswith("poll")])


async def test_a_poll_from_start_to_results() -> None:
    _, host, pat, sam = await room_of_three()
    poll_id = await start(host)
    for client in (host, pat, sam):
        await wait_until(lambda c=client: c.notified("pollCreated"), what="pollCreated")
    announced = pat.notified("pollCreated")[0]["poll"]
    assert announced["question"] == "Lunch?"
    assert announced["options"] == ["Pizza", "Salad", "Soup"]
    assert announced["open"] is True
    assert "results" not in announced  # no counts for the room, not even zeros

    assert await pat.request("vote", {"pollId": poll_id, "optionIndex": 0}) == {
        "pollId": poll_id,
        "optionIndex": 0,
    }
    await sam.request("vote", {"pollId": poll_id, "optionIndex": 2})
    expected = {"counts": [1, 0, 1], "total": 2, "voters": [["Pat"], [], ["Sam"]]}
    await wait_until(lambda: latest_results(host, poll_id) == expected, what="live counts")

    # A participant sees their own choice, not the counts, while the poll is open.
    (seen_by_pat,) = (await pat.request("getPolls"))["polls"]
    assert seen_by_pat["myVote"] == 0
    assert "results" not in seen_by_pat
    (seen_by_host,) = (await host.request("getPolls"))["polls"]
    assert seen_by_host["results"] == expected
    assert seen_by_host["myVote"] is None

    closed = await host.request("closePoll", {"pollId": poll_id})
    assert closed["poll"]["open"] is False
    for client in (host, pat, sam):
        await wait_until(lambda c=client: c.notified("pollClosed"), what="pollClosed")
    final = sam.notified("pollClosed")[0]["poll"]
    # Everyone gets the counts; nobody gets the voters in the room's notification.
    assert final["results"] == {"counts": [1, 0, 1], "total": 2}
    # pollClosed went to the whole room after every pollResults: participants heard none.
    assert not pat.notified("pollResults")
    assert not sam.notified("pollResults")
    (after,) = (await sam.request("getPolls"))["polls"]
    assert after["results"] == {"counts": [1, 0, 1], "total": 2}
    assert after["myVote"] == 2
    # Closing again changes nothing and tells nobody.
    await host.request("closePoll", {"pollId": poll_id})
    assert len(host.notified("pollClosed")) == 1


async def test_a_co_host_runs_polls_and_participants_cannot() -> None:
    meeting, host, pat, sam = await room_of_three()
    refused = await pat.request_frame("createPoll", LUNCH)
    assert refused["errorCode"] == "not_moderator"
    poll_id = await start(host)
    assert (await pat.request_frame("closePoll", {"pollId": poll_id}))["errorCode"] == (
        "not_moderator"
    )
    assert await Poll.objects.filter(meeting=meeting).acount() == 1

    # A co-host (given the role before joining: the role is taken at admission) closes it.
    co_host_user = await make_user("cora")
    await sync_to_async(meeting.co_hosts.add)(co_host_user)
    cora = await joined(meeting, co_host_user, "Cora")
    await pat.request("vote", {"pollId": poll_id, "optionIndex": 1})
    await wait_until(lambda: latest_results(cora, poll_id), what="Cora sees live counts")
    await cora.request("closePoll", {"pollId": poll_id})
    await wait_until(lambda: sam.notified("pollClosed"), what="pollClosed")


async def test_one_vote_per_person_which_they_may_change_while_open() -> None:
    meeting, host, pat, _ = await room_of_three()
    poll_id = await start(host)
    await pat.request("vote", {"pollId": poll_id, "optionIndex": 0})
    # Pat's second tab is the same person: it changes Pat's vote rather than adding one.
    pat_user = await User.objects.aget(first_name="Pat")
    second_tab = await joined(meeting, pat_user, "Pat")
    await second_tab.request("vote", {"pollId": poll_id, "optionIndex": 1})
    await wait_until(
        lambda: (
            latest_results(host, poll_id)
            == {"counts": [0, 1, 0], "total": 1, "voters": [[], ["Pat"], []]}
        ),
        what="the changed vote",
    )
    assert await PollVote.objects.filter(poll_id=poll_id).acount() == 1
    # The same choice again is no change and tells nobody.
    before = len(host.notified("pollResults"))
    await pat.request("vote", {"pollId": poll_id, "optionIndex": 1})
    assert len(host.notified("pollResults")) == before


async def test_closed_unknown_and_other_meetings_polls_are_refused() -> None:
    _, host, pat, _ = await room_of_three()
    poll_id = await start(host)
    await host.request("closePoll", {"pollId": poll_id})
    closed = await pat.request_frame("vote", {"pollId": poll_id, "optionIndex": 0})
    assert closed["errorCode"] == "poll_closed"
    unknown = await pat.request_frame("vote", {"pollId": poll_id + 1000, "optionIndex": 0})
    assert unknown["errorCode"] == "unknown_poll"
    # A poll of another meeting is unknown here.
    other_host = await make_user("other")
    other = await sync_to_async(Meeting.objects.create)(host=other_host, title="Other")
    elsewhere = await joined(other, other_host, "Other")
    other_poll = await start(elsewhere)
    refused = await pat.request_frame("vote", {"pollId": other_poll, "optionIndex": 0})
    assert refused["errorCode"] == "unknown_poll"
    assert (await host.request_frame("closePoll", {"pollId": other_poll}))["errorCode"] == (
        "unknown_poll"
    )
    # An option the poll does not have.
    open_id = await start(host)
    assert (await pat.request_frame("vote", {"pollId": open_id, "optionIndex": 3}))[
        "errorCode"
    ] == "unknown_option"


async def test_a_removed_participant_cannot_vote() -> None:
    """The removal is stored before the removed person's socket closes: a vote sent in between
    does not count (here the Removal row alone, without the event that closes the socket)."""
    meeting, host, pat, _ = await room_of_three()
    poll_id = await start(host)
    pat_user = await User.objects.aget(first_name="Pat")
    await Removal.objects.acreate(meeting=meeting, user=pat_user)
    refused = await pat.request_frame("vote", {"pollId": poll_id, "optionIndex": 0})
    assert refused["errorCode"] == "removed"
    assert (await pat.request_frame("getPolls"))["errorCode"] == "removed"
    assert await PollVote.objects.filter(poll_id=poll_id).acount() == 0


async def guest_joined(meeting: Meeting, name: str) -> SignalingClient:
    """A guest's browser knocks, the host admits it, and it joins."""
    guest = SignalingClient(meeting.code, await session_cookie(None))
    assert (await guest.connect())[0]
    peer_id = uuid.uuid4().hex
    knock = await guest.request_frame("join", {"peerId": peer_id, "displayName": name})
    assert knock["errorCode"] == "lobby"
    request = await LobbyRequest.objects.aget(meeting=meeting, peer_id=peer_id)
    await sync_to_async(moderation.admit)(meeting.host, request)
    await wait_until(lambda: guest.notified("lobbyAdmitted"), what="lobbyAdmitted")
    await guest.join(peer_id, name=name)
    return guest


async def test_an_anonymous_poll_never_names_its_voters() -> None:
    meeting, host, pat, sam = await room_of_three()
    await Meeting.objects.filter(pk=meeting.pk).aupdate(access_policy=Meeting.Access.GUESTS)
    meeting = await Meeting.objects.select_related("host").aget(pk=meeting.pk)
    guest = await guest_joined(meeting, "Gwen Guestly")
    poll_id = await start(host, anonymous=True)
    await pat.request("vote", {"pollId": poll_id, "optionIndex": 0})
    await sam.request("vote", {"pollId": poll_id, "optionIndex": 0})
    await guest.request("vote", {"pollId": poll_id, "optionIndex": 1})
    await wait_until(
        lambda: latest_results(host, poll_id) == {"counts": [2, 1, 0], "total": 3},
        what="anonymous counts without voters",
    )
    moderator_view = await host.request("getPolls")
    await host.request("closePoll", {"pollId": poll_id})
    for client in (host, pat, sam, guest):
        await wait_until(lambda c=client: c.notified("pollClosed"), what="pollClosed")
    everything = [poll_notifications_of(client) for client in (host, pat, sam, guest)] + [
        json.dumps(moderator_view),
        json.dumps(await pat.request("getPolls")),
    ]
    for text in everything:
        for name in ("Pat", "Sam", "Gwen Guestly"):
            assert f'"{name}' not in text, (name, text)
        assert "voters" not in text
    # The guest's vote counts once too (by guest key), and can be changed.
    await sync_to_async(Poll.objects.filter(pk=poll_id).update)(closed_at=None)
    await guest.request("vote", {"pollId": poll_id, "optionIndex": 2})
    assert await PollVote.objects.filter(poll_id=poll_id).acount() == 3


async def test_votes_are_rate_limited_per_person() -> None:
    _, host, pat, _ = await room_of_three()
    poll_id = await start(host)
    for change in range(polls.VOTES_PER_WINDOW):
        await pat.request("vote", {"pollId": poll_id, "optionIndex": change % 2})
    refused = await pat.request_frame("vote", {"pollId": poll_id, "optionIndex": 2})
    assert refused["errorCode"] == "too_many_votes"


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("createPoll", {**LUNCH, "question": "x" * 301}),
        ("createPoll", {**LUNCH, "question": "   "}),
        ("createPoll", {**LUNCH, "question": 7}),
        ("createPoll", {"options": ["a", "b"]}),
        ("createPoll", {**LUNCH, "options": ["Only one"]}),
        ("createPoll", {**LUNCH, "options": [f"Option {n}" for n in range(11)]}),
        ("createPoll", {**LUNCH, "options": ["a" * 101, "b"]}),
        ("createPoll", {**LUNCH, "options": ["a", ""]}),
        ("createPoll", {**LUNCH, "options": ["Same", "same"]}),
        ("createPoll", {**LUNCH, "options": ["a", 2]}),
        ("createPoll", {**LUNCH, "options": "a,b"}),
        ("createPoll", {**LUNCH, "options": ["a"] * 10_000}),
        ("createPoll", {**LUNCH, "anonymous": "yes"}),
        ("vote", {"pollId": "1", "optionIndex": 0}),
        ("vote", {"pollId": True, "optionIndex": 0}),
        ("vote", {"pollId": -1, "optionIndex": 0}),
        ("vote", {"pollId": 1}),
        ("vote", {"pollId": 1, "optionIndex": 1.5}),
        ("vote", {"pollId": 1, "optionIndex": 10}),
        ("vote", {"pollId": 1, "optionIndex": False}),
        ("closePoll", {}),
        ("closePoll", {"pollId": [1]}),
    ],
)
async def test_bad_input_is_refused(method: str, data: dict[str, Any]) -> None:
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(host=host_user, title="Bad input")
    host = await joined(meeting, host_user, "Host")
    refused = await host.request_frame(method, data)
    assert refused["ok"] is False
    assert refused["errorCode"] == "invalid_data", refused
    assert refused["errorReason"]
    assert await Poll.objects.filter(meeting=meeting).acount() == 0
    assert not host.notified("pollCreated")


async def test_nothing_before_joining() -> None:
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(host=host_user, title="Early")
    client = SignalingClient(meeting.code, await session_cookie(host_user))
    assert (await client.connect())[0]
    for method, data in [
        ("createPoll", LUNCH),
        ("vote", {"pollId": 1, "optionIndex": 0}),
        ("closePoll", {"pollId": 1}),
        ("getPolls", {}),
    ]:
        assert (await client.request_frame(method, data))["errorCode"] == "not_joined", method
