"""Moderators' requests over the signaling socket reach rooms.moderation and come back as
room events: mute, remove, lock, end; everyone else is refused."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms.models import Meeting
from rooms.signaling import protocol
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]


async def joined(meeting: Meeting, user: User, name: str) -> SignalingClient:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, code
    await client.join(name=name)
    return client


async def room_of_two() -> tuple[Meeting, SignalingClient, SignalingClient, User]:
    host, other = await make_user("host"), await make_user("pat")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Moderated")
    return meeting, await joined(meeting, host, "Host"), await joined(meeting, other, "Pat"), other


async def test_only_moderators_may_moderate() -> None:
    _, host, participant, _ = await room_of_two()
    for method, data in [
        ("muteParticipant", {"peerId": host.peer_id}),
        ("removeParticipant", {"peerId": host.peer_id}),
        ("lockMeeting", {"locked": True}),
        ("endMeeting", {}),
        ("lobbyRequests", {}),
    ]:
        response = await participant.request_frame(method, data)
        assert response["errorCode"] == "not_moderator", method
    assert host.closed_with is None


async def test_mute_request_reaches_only_the_target() -> None:
    _, host, participant, _ = await room_of_two()
    assert await host.request("muteParticipant", {"peerId": participant.peer_id}) == {}
    await wait_until(lambda: participant.notified("mutedByHost"), what="mutedByHost")
    assert not host.notified("mutedByHost")


async def test_removal_closes_the_target_and_keeps_them_out() -> None:
    meeting, host, participant, other = await room_of_two()
    assert await host.request("removeParticipant", {"peerId": participant.peer_id}) == {}
    assert await participant.wait_closed() == protocol.CLOSE_REMOVED
    await wait_until(lambda: host.notified("peerClosed", peerId=participant.peer_id))
    again = SignalingClient(meeting.code, await session_cookie(other))
    assert (await again.connect())[0]
    refused = await again.request_frame("join", {"peerId": "back", "displayName": "Pat"})
    assert refused["errorCode"] == "removed"
    unknown = await host.request_frame("removeParticipant", {"peerId": "nobody"})
    assert unknown["errorCode"] == "not_in_call"


async def test_lock_and_end_reach_everyone() -> None:
    meeting, host, participant, _ = await room_of_two()
    assert await host.request("lockMeeting", {"locked": True}) == {"locked": True}
    await wait_until(lambda: participant.notified("meetingLocked", locked=True))
    assert (await host.request_frame("lockMeeting", {"locked": "yes"}))["errorCode"] == (
        "invalid_data"
    )
    await host.send_text(
        '{"request":true,"id":"end","method":"endMeeting","data":{}}'
    )  # the host's own socket closes too, maybe before the response
    assert await participant.wait_closed() == protocol.CLOSE_ENDED
    assert await host.wait_closed() == protocol.CLOSE_ENDED
    assert participant.notified("meetingEnded") == [{}]
    assert (await Meeting.objects.aget(pk=meeting.pk)).status == Meeting.Status.ENDED
