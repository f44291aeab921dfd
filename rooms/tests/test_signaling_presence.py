"""Presence: reconnects within the grace period resume the participant, half-open sockets are
replaced, the grace period's end is a real departure, and the meeting's status follows who is
present."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms.models import Meeting, Participant
from rooms.signaling import protocol
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]


async def make_meeting(host: User) -> Meeting:
    return await sync_to_async(Meeting.objects.create)(host=host, title="Planning")


async def connected(meeting: Meeting, cookie: bytes) -> SignalingClient:
    client = SignalingClient(meeting.code, cookie)
    ok, code = await client.connect()
    assert ok, f"connection refused with {code}"
    return client


async def present_peer_ids(meeting: Meeting) -> list[str]:
    rows = Participant.objects.filter(meeting=meeting, left_at__isnull=True)
    return [p.peer_id async for p in rows.order_by("pk")]


async def test_reconnect_within_grace_resumes_the_participant_without_peerclosed(
    settings: Any,
) -> None:
    settings.SIGNALING_RECONNECT_GRACE_SECONDS = 20.0
    host, other = await make_user("host"), await make_user("kim")
    meeting = await make_meeting(host)
    first = await connected(meeting, await session_cookie(host))
    await first.join(name="Host")
    kim_cookie = await session_cookie(other)
    second = await connected(meeting, kim_cookie)
    await second.join(name="Kim")
    await wait_until(lambda: first.notified("newPeer", peerId=second.peer_id))

    await second.drop()
    await wait_until(lambda: _disconnected(meeting, second.peer_id), what="disconnect noted")
    again = await connected(meeting, kim_cookie)
    data = await again.join(second.peer_id, name="Kim")

    assert data["reconnected"] is True
    assert [p["peerId"] for p in data["peers"]] == [first.peer_id]
    assert await present_peer_ids(meeting) == [first.peer_id, second.peer_id]
    # The others saw nothing: no peerClosed, no second newPeer (no duplicate tile).
    probe = await first.request("getStats")  # a round trip, so pending events have arrived
    assert probe is not None
    assert not first.notified("peerClosed")
    assert len(first.notified("newPeer", peerId=second.peer_id)) == 1
    # And the resumed peer is fully usable.
    assert await again.request("getStats") is not None


async def test_the_grace_period_ending_without_reconnect_is_a_departure(settings: Any) -> None:
    settings.SIGNALING_RECONNECT_GRACE_SECONDS = 0.5
    host, other = await make_user("host"), await make_user("lou")
    meeting = await make_meeting(host)
    first = await connected(meeting, await session_cookie(host))
    await first.join(name="Host")
    second = await connected(meeting, await session_cookie(other))
    await second.join(name="Lou")
    await second.drop()
    await wait_until(lambda: first.notified("peerClosed", peerId=second.peer_id), what="peerClosed")
    assert await present_peer_ids(meeting) == [first.peer_id]
    row = await Participant.objects.aget(peer_id=second.peer_id)
    assert row.left_at is not None


async def test_a_second_socket_for_the_same_peer_replaces_the_first_with_4409() -> None:
    host, other = await make_user("host"), await make_user("mo")
    meeting = await make_meeting(host)
    first = await connected(meeting, await session_cookie(host))
    await first.join(name="Host")
    cookie = await session_cookie(other)
    old = await connected(meeting, cookie)
    await old.join(name="Mo")
    new = await connected(meeting, cookie)
    data = await new.join(old.peer_id, name="Mo")
    assert data["reconnected"] is True
    assert await old.wait_closed() == protocol.CLOSE_REPLACED
    # The old socket closing is not a departure.
    assert await new.request("getStats") is not None
    assert await present_peer_ids(meeting) == [first.peer_id, old.peer_id]
    assert not first.notified("peerClosed")


async def test_a_guest_knocks_is_admitted_then_resumes_by_session(settings: Any) -> None:
    from rooms import moderation
    from rooms.models import LobbyRequest

    settings.SIGNALING_RECONNECT_GRACE_SECONDS = 20.0
    host = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(
        host=host, title="Open house", access_policy=Meeting.Access.GUESTS
    )
    moderator = await connected(meeting, await session_cookie(host))
    await moderator.join(name="Host")
    guest_cookie = await session_cookie(None)
    guest = await connected(meeting, guest_cookie)
    peer_id = uuid.uuid4().hex
    knock = await guest.request_frame("join", {"peerId": peer_id, "displayName": "Visitor"})
    assert knock["errorCode"] == "lobby"
    await wait_until(lambda: moderator.notified("lobbyKnock"), what="the knock reaches the host")
    request = await LobbyRequest.objects.aget(meeting=meeting, peer_id=peer_id)
    await sync_to_async(moderation.admit)(host, request)
    await wait_until(lambda: guest.notified("lobbyAdmitted"), what="lobbyAdmitted")

    data = await guest.join(peer_id, name="Visitor")
    assert data["role"] == "guest"
    row = await Participant.objects.aget(peer_id=peer_id)
    assert row.is_guest
    assert row.user_id is None
    assert row.guest_key
    await guest.drop()
    await wait_until(lambda: _disconnected(meeting, peer_id))
    # Another guest (another browser session) cannot take the peer over...
    intruder = await connected(meeting, await session_cookie(None))
    refused = await intruder.request_frame("join", {"peerId": peer_id, "displayName": "X"})
    assert refused["errorCode"] == "peer_id_taken"
    # ...but the same browser resumes it.
    back = await connected(meeting, guest_cookie)
    assert (await back.join(peer_id, name="Visitor"))["reconnected"] is True


async def test_the_meeting_is_live_while_anyone_is_present_and_ends_with_the_last() -> None:
    host, other = await make_user("host"), await make_user("nia")
    meeting = await make_meeting(host)
    first = await connected(meeting, await session_cookie(host))
    await first.join(name="Host")
    assert await _status(meeting) == "live"
    second = await connected(meeting, await session_cookie(other))
    await second.join(name="Nia")
    await first.request("leave")
    assert await _status(meeting) == "live"
    await second.request("leave")
    assert await _status(meeting) == "ended"


async def _disconnected(meeting: Meeting, peer_id: str) -> bool:
    return await Participant.objects.filter(
        meeting=meeting, peer_id=peer_id, left_at__isnull=True, disconnected_at__isnull=False
    ).aexists()


async def _status(meeting: Meeting) -> str:
    return str((await Meeting.objects.aget(pk=meeting.pk)).status)
