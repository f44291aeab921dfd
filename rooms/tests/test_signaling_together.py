"""Raised hands and reactions over the signaling socket (rooms.together through
rooms.signaling.together_requests), with several peers: the queue in the order raised, who may
lower whose hand, the queue across a reconnect and a removal, reactions to everyone, the rate
limit, the host's switch, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms import together
from rooms.models import Meeting, Removal
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]


async def joined(
    meeting: Meeting, user: User, name: str, peer_id: str | None = None
) -> SignalingClient:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, code
    client.join_response = await client.join(peer_id=peer_id, name=name)  # type: ignore[attr-defined]
    return client


async def room_of_three() -> tuple[Meeting, SignalingClient, SignalingClient, SignalingClient]:
    host, pat, sam = await make_user("host"), await make_user("pat"), await make_user("sam")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Together")
    return (
        meeting,
        await joined(meeting, host, "Host"),
        await joined(meeting, pat, "Pat"),
        await joined(meeting, sam, "Sam"),
    )


def queue_of(state: dict[str, Any]) -> list[str]:
    return [hand["peerId"] for hand in state["queue"]]


def latest_queue(client: SignalingClient) -> list[str] | None:
    """The queue as a client keeps it: the handsChanged with the highest revision."""
    changes = client.notified("handsChanged")
    if not changes:
        return None
    return queue_of(max(changes, key=lambda change: change["revision"]))


async def wait_for_queue(clients: list[SignalingClient], expected: list[str]) -> None:
    for client in clients:
        await wait_until(lambda c=client: latest_queue(c) == expected, what=f"the queue {expected}")


async def test_hands_queue_in_the_order_raised() -> None:
    meeting, host, pat, sam = await room_of_three()
    everyone = [host, pat, sam]
    assert host.join_response["hands"]["queue"] == []  # type: ignore[attr-defined]
    assert host.join_response["hands"]["lowerAfterSpeakingSeconds"] == 3  # type: ignore[attr-defined]

    assert queue_of(await pat.request("raiseHand")) == [pat.peer_id]
    await wait_for_queue(everyone, [pat.peer_id])
    assert host.notified("handsChanged")[-1]["raised"] == [pat.peer_id]
    await sam.request("raiseHand")
    await host.request("raiseHand")
    order = [pat.peer_id, sam.peer_id, host.peer_id]
    await wait_for_queue(everyone, order)

    # Raising again keeps one's place; lowering one's own hand moves the others up.
    assert queue_of(await pat.request("raiseHand")) == order
    assert queue_of(await sam.request("lowerHand")) == [pat.peer_id, host.peer_id]
    await wait_for_queue(everyone, [pat.peer_id, host.peer_id])
    last = pat.notified("handsChanged")[-1]
    assert (last["lowered"], last["by"]) == ([sam.peer_id], sam.peer_id)
    # Lowering a hand that is down changes nothing (and tells nobody).
    before = len(pat.notified("handsChanged"))
    assert queue_of(await sam.request("lowerHand", {"peerId": sam.peer_id})) == [
        pat.peer_id,
        host.peer_id,
    ]
    # Raised again: at the end of the queue.
    await sam.request("raiseHand")
    await wait_for_queue(everyone, [pat.peer_id, host.peer_id, sam.peer_id])
    assert len(pat.notified("handsChanged")) == before + 1
    # A newcomer is given the queue with the join.
    late = await joined(meeting, await make_user("lee"), "Lee")
    assert queue_of(late.join_response["hands"]) == [pat.peer_id, host.peer_id, sam.peer_id]  # type: ignore[attr-defined]


async def test_only_moderators_lower_others_hands() -> None:
    _, host, pat, sam = await room_of_three()
    await pat.request("raiseHand")
    await sam.request("raiseHand")
    refused = await sam.request_frame("lowerHand", {"peerId": pat.peer_id})
    assert refused["errorCode"] == "not_moderator"
    assert (await sam.request_frame("lowerAllHands"))["errorCode"] == "not_moderator"

    state = await host.request("lowerHand", {"peerId": pat.peer_id})
    assert queue_of(state) == [sam.peer_id]
    await wait_for_queue([host, pat, sam], [sam.peer_id])
    told = pat.notified("handsChanged", by=host.peer_id)
    assert told[-1]["lowered"] == [pat.peer_id]

    await pat.request("raiseHand")
    await wait_for_queue([host], [sam.peer_id, pat.peer_id])
    assert (await host.request("lowerAllHands"))["queue"] == []
    await wait_for_queue([host, pat, sam], [])
    assert sorted(host.notified("handsChanged")[-1]["lowered"]) == sorted(
        [sam.peer_id, pat.peer_id]
    )
    # Nothing raised: nothing to say.
    before = len(pat.notified("handsChanged"))
    assert (await host.request("lowerAllHands"))["queue"] == []
    assert len(pat.notified("handsChanged")) == before


async def test_a_hand_survives_a_reconnect_and_goes_with_a_removal() -> None:
    meeting, host, pat, sam = await room_of_three()
    await pat.request("raiseHand")
    await sam.request("raiseHand")
    await wait_for_queue([host], [pat.peer_id, sam.peer_id])

    # Pat's socket drops; within the grace period the same peer comes back: same place.
    await pat.drop()
    pat_user = await User.objects.aget(first_name="Pat")
    back = await joined(meeting, pat_user, "Pat", peer_id=pat.peer_id)
    assert back.join_response["reconnected"] is True  # type: ignore[attr-defined]
    assert queue_of(back.join_response["hands"]) == [pat.peer_id, sam.peer_id]  # type: ignore[attr-defined]

    # Removed: Pat's hand is no longer in anyone's queue.
    await host.request("removeParticipant", {"peerId": pat.peer_id})
    await back.wait_closed()
    await wait_until(lambda: host.notified("peerClosed", peerId=pat.peer_id), what="peerClosed")
    state = await host.request("raiseHand")
    assert queue_of(state) == [sam.peer_id, host.peer_id]


async def test_removed_participant_cannot_raise_a_hand_or_react() -> None:
    """The removal is stored before the removed person's socket closes: nothing they send in
    between counts (here the Removal row alone, without the event that closes the socket)."""
    meeting, host, pat, _ = await room_of_three()
    pat_user = await User.objects.aget(first_name="Pat")
    await Removal.objects.acreate(meeting=meeting, user=pat_user)
    assert (await pat.request_frame("raiseHand"))["errorCode"] == "removed"
    assert (await pat.request_frame("sendReaction", {"emoji": "👍"}))["errorCode"] == "removed"
    assert (await pat.request_frame("lowerHand"))["errorCode"] == "removed"
    assert not host.notified("reaction")
    assert not host.notified("handsChanged")


async def test_reactions_reach_everyone() -> None:
    _, host, pat, sam = await room_of_three()
    reactions = host.join_response["reactions"]  # type: ignore[attr-defined]
    assert reactions["enabled"] is True
    assert [r["emoji"] for r in reactions["emoji"]] == list(together.REACTIONS)
    assert await pat.request("sendReaction", {"emoji": "🎉"}) == {
        "peerId": pat.peer_id,
        "emoji": "🎉",
    }
    for client in (host, pat, sam):  # the sender too: it shows on their own tile
        await wait_until(
            lambda c=client: c.notified("reaction", peerId=pat.peer_id, emoji="🎉"),
            what="the reaction",
        )


async def test_reactions_are_rate_limited_per_person_on_the_server() -> None:
    meeting, host, pat, _ = await room_of_three()
    limit = together.REACTIONS_PER_WINDOW
    for _ in range(limit):
        await pat.request("sendReaction", {"emoji": "👏"})
    refused = await pat.request_frame("sendReaction", {"emoji": "👏"})
    assert refused["errorCode"] == "too_many_reactions"
    # Per person, not per tab: a second tab of Pat's shares the budget.
    pat_user = await User.objects.aget(first_name="Pat")
    second_tab = await joined(meeting, pat_user, "Pat")
    assert (await second_tab.request_frame("sendReaction", {"emoji": "👏"}))["errorCode"] == (
        "too_many_reactions"
    )
    # Others have budgets of their own.
    await host.request("sendReaction", {"emoji": "💖"})
    await wait_until(lambda: host.notified("reaction", emoji="💖"), what="the host's reaction")
    assert len(host.notified("reaction", peerId=pat.peer_id)) == limit


async def test_the_host_turns_reactions_off() -> None:
    meeting, host, pat, sam = await room_of_three()
    refused = await pat.request_frame("setReactionsEnabled", {"enabled": False})
    assert refused["errorCode"] == "not_moderator"
    bad = await host.request_frame("setReactionsEnabled", {"enabled": "no"})
    assert bad["errorCode"] == "invalid_data"

    assert await host.request("setReactionsEnabled", {"enabled": False}) == {"enabled": False}
    for client in (host, pat, sam):
        await wait_until(
            lambda c=client: c.notified("reactionsEnabled", enabled=False), what="reactions off"
        )
    assert (await pat.request_frame("sendReaction", {"emoji": "👍"}))["errorCode"] == (
        "reactions_off"
    )
    assert (await Meeting.objects.aget(pk=meeting.pk)).reactions_enabled is False
    late = await joined(meeting, await make_user("lee"), "Lee")
    assert late.join_response["reactions"]["enabled"] is False  # type: ignore[attr-defined]

    await host.request("setReactionsEnabled", {"enabled": True})
    await wait_until(lambda: pat.notified("reactionsEnabled", enabled=True), what="reactions on")
    await pat.request("sendReaction", {"emoji": "👍"})
    await wait_until(lambda: host.notified("reaction", emoji="👍"), what="a reaction again")


@pytest.mark.parametrize(
    ("method", "data", "code"),
    [
        ("sendReaction", {"emoji": "🦄"}, "unknown_emoji"),
        ("sendReaction", {"emoji": "👍👍"}, "unknown_emoji"),
        ("sendReaction", {"emoji": 1}, "invalid_data"),
        ("sendReaction", {"emoji": ""}, "invalid_data"),
        ("sendReaction", {"emoji": "👍" * 1000}, "invalid_data"),
        ("sendReaction", {}, "invalid_data"),
        ("lowerHand", {"peerId": "not a peer id!"}, "invalid_data"),
        ("lowerHand", {"peerId": 7}, "invalid_data"),
        ("lowerHand", {"peerId": "x" * 65}, "invalid_data"),
        ("lowerHand", {"peerId": "nobody-here"}, "not_in_call"),
        ("setReactionsEnabled", {}, "invalid_data"),
    ],
)
async def test_bad_input_is_refused(method: str, data: dict[str, Any], code: str) -> None:
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(host=host_user, title="Bad input")
    host = await joined(meeting, host_user, "Host")
    refused = await host.request_frame(method, data)
    assert refused["ok"] is False
    assert refused["errorCode"] == code, refused
    assert not host.notified("reaction")
    assert not host.notified("handsChanged")


async def test_nothing_before_joining() -> None:
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(host=host_user, title="Early")
    client = SignalingClient(meeting.code, await session_cookie(host_user))
    assert (await client.connect())[0]
    for method, data in [
        ("raiseHand", {}),
        ("lowerHand", {}),
        ("lowerAllHands", {}),
        ("sendReaction", {"emoji": "👍"}),
        ("setReactionsEnabled", {"enabled": False}),
    ]:
        assert (await client.request_frame(method, data))["errorCode"] == "not_joined", method
