"""The signaling protocol over a real WebSocket stack and a real SFU node: joining, the peer
list, refusals of bad input with clear codes, the flood guard, authorization."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms.models import Invitation, Meeting, Participant
from rooms.signaling import protocol
from rooms.signaling.protocol import ProtocolError
from rooms.signaling.rate_limit import TokenBucket
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]

VALID_LOOKING_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 00:11\r\na=rtpmap:111 opus/48000/2\r\n"
)


async def make_meeting(host: User, **extra: Any) -> Meeting:
    return await sync_to_async(Meeting.objects.create)(host=host, title="Standup", **extra)


async def connected(meeting: Meeting, user: User | None) -> SignalingClient:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, f"connection refused with {code}"
    return client


async def test_join_answers_with_version_role_peers_ice_servers_and_chat() -> None:
    host = await make_user("host")
    meeting = await make_meeting(host)
    client = await connected(meeting, host)
    data = await client.join(name="Host")
    assert data["protocolVersion"] == protocol.PROTOCOL_VERSION == 1
    assert data["peerId"] == client.peer_id
    assert data["role"] == "host"
    assert data["canModerate"] is True
    assert data["peers"] == []
    assert data["iceServers"] == []  # nothing configured: nothing outside is contacted
    assert data["chat"] == {"messages": []}
    assert data["reconnected"] is False


async def test_second_participant_sees_the_first_and_the_first_hears_newpeer() -> None:
    host = await make_user("host")
    guest_user = await make_user("bob")
    meeting = await make_meeting(host)
    first = await connected(meeting, host)
    await first.join(name="Host")
    second = await connected(meeting, guest_user)
    data = await second.join(name="Bob")
    assert [p["peerId"] for p in data["peers"]] == [first.peer_id]
    assert data["peers"][0]["displayName"] == "Host"
    assert data["peers"][0]["producers"] == []
    await wait_until(lambda: first.notified("newPeer", peerId=second.peer_id), what="newPeer")
    assert first.notified("newPeer")[0]["displayName"] == "Bob"
    assert not second.notified("newPeer"), "nobody is told about themselves"


async def test_leave_sends_peerclosed_to_the_others_and_allows_joining_again() -> None:
    host = await make_user("host")
    other = await make_user("ann")
    meeting = await make_meeting(host)
    first = await connected(meeting, host)
    await first.join(name="Host")
    second = await connected(meeting, other)
    await second.join(name="Ann")
    assert await second.request("leave") == {}
    await wait_until(lambda: first.notified("peerClosed", peerId=second.peer_id), what="peerClosed")
    refused = await second.request_frame("getStats")
    assert refused["errorCode"] == "not_joined"
    again = await second.join(second.peer_id, name="Ann")
    assert again["reconnected"] is False
    await wait_until(lambda: len(first.notified("newPeer", peerId=second.peer_id)) == 2)


async def admitted_guest(meeting: Meeting, host: User, moderator: SignalingClient, name: str):
    """A guest (no account) through the lobby, joined as `name`."""
    from rooms import moderation
    from rooms.models import LobbyRequest

    guest = await connected(meeting, None)
    peer_id = uuid.uuid4().hex
    knock = await guest.request_frame("join", {"peerId": peer_id, "displayName": name})
    assert knock["errorCode"] == "lobby"
    await wait_until(lambda: moderator.notified("lobbyKnock"), what="the knock")
    request = await LobbyRequest.objects.aget(meeting=meeting, peer_id=peer_id)
    await sync_to_async(moderation.admit)(host, request)
    await wait_until(lambda: guest.notified("lobbyAdmitted"), what="lobbyAdmitted")
    await guest.join(peer_id, name=name)
    return guest


async def test_a_guest_renames_and_everyone_sees_the_new_name_marked_as_a_guests() -> None:
    host = await make_user("host")
    meeting = await make_meeting(host, access_policy=Meeting.Access.GUESTS)
    first = await connected(meeting, host)
    await first.join(name="Host")
    second = await admitted_guest(meeting, host, first, "Cy")
    await wait_until(lambda: first.notified("newPeer", peerId=second.peer_id), what="newPeer")
    (joined,) = first.notified("newPeer", peerId=second.peer_id)
    assert (joined["displayName"], joined["isGuest"]) == ("Cy", True)
    await second.request("changeDisplayName", {"displayName": "  Cyrus  "})
    await wait_until(
        lambda: first.notified("peerDisplayNameChanged", peerId=second.peer_id, displayName="Cyrus")
    )
    stored = await Participant.objects.aget(peer_id=second.peer_id, left_at__isnull=True)
    assert stored.display_name == "Cyrus"


async def test_a_signed_in_person_goes_by_their_accounts_name_whatever_they_type() -> None:
    """Nobody can take the host's name: a signed-in person's name in the call is their
    account's (rooms.access.call_name), in the join, the peer list, newPeer and chat."""
    host = await make_user("host", last_name="Hopper")
    mallory = await make_user("mallory")
    meeting = await make_meeting(host)
    first = await connected(meeting, host)
    joined = await first.join(name="Whatever")
    assert (joined["displayName"], joined["isGuest"]) == ("Host Hopper", False)
    second = await connected(meeting, mallory)
    data = await second.join(name="Host Hopper")
    await wait_until(lambda: first.notified("newPeer", peerId=second.peer_id), what="newPeer")
    assert data["displayName"] == "Mallory"
    assert [(p["displayName"], p["isGuest"]) for p in data["peers"]] == [("Host Hopper", False)]
    (announced,) = first.notified("newPeer", peerId=second.peer_id)
    assert (announced["displayName"], announced["isGuest"]) == ("Mallory", False)

    refused = await second.request_frame("changeDisplayName", {"displayName": "Host Hopper"})
    assert (refused["ok"], refused["errorCode"]) == (False, "name_from_account")
    await second.request("chatMessage", {"clientId": "c1", "text": "I am the host"})
    await wait_until(lambda: first.notified("chatMessage"), what="the chat message")
    (chat,) = first.notified("chatMessage")
    assert (chat["message"]["authorName"], chat["message"]["authorIsGuest"]) == (
        "Mallory",
        False,
    )
    stored = await Participant.objects.aget(peer_id=second.peer_id, left_at__isnull=True)
    assert stored.display_name == "Mallory"


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("produce", {"sdp": VALID_LOOKING_OFFER, "sources": {"0": "mic"}}),
        ("closeProducer", {"producerId": "p1"}),
        ("pauseConsumer", {"consumerId": "c1"}),
        ("restartIce", {}),
        ("getStats", {}),
        ("leave", {}),
        ("chatMessage", {"clientId": "x", "text": "hi"}),
    ],
)
async def test_requests_before_join_are_refused_in_order(method: str, data: dict) -> None:
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    response = await client.request_frame(method, data)
    assert response["ok"] is False
    assert response["errorCode"] == "not_joined"


async def test_a_lone_surrogate_is_refused_as_invalid_data_not_an_internal_error() -> None:
    """JSON may escape half of a surrogate pair ("\\ud800"); Python decodes it into a string
    that no database or channel layer can store. Found by bench/fuzz_signaling.py."""
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    joined = await client.request_frame("join", {"peerId": "p1", "displayName": "a\udc00b"})
    assert (joined["ok"], joined["errorCode"]) == (False, "invalid_data")
    await client.join(name="Host")
    for method, data in [
        ("changeDisplayName", {"displayName": "\ud800"}),
        ("chatMessage", {"clientId": "c1", "text": "hi \udfff"}),
        ("pauseProducer", {"producerId": "\ud800x"}),
    ]:
        frame = await client.request_frame(method, data)
        assert (frame["ok"], frame["errorCode"]) == (False, "invalid_data"), method
    # A well-formed pair is one character, and welcome.
    assert await client.request("chatMessage", {"clientId": "c2", "text": "hi \ud83d\ude00"})
    assert client.closed_with is None


async def test_unknown_method_malformed_json_and_odd_frames_get_errors_not_a_close() -> None:
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    response = await client.request_frame("becomeAdmin", {})
    assert response["errorCode"] == "unknown_method"
    await client.send_text("{not json")
    await client.send_text("[1, 2, 3]")
    await client.send_text(json.dumps({"request": True, "method": "join"}))  # no id
    await client.send_text(json.dumps({"request": True, "id": 7, "method": "join", "data": []}))
    await client.communicator.send_to(bytes_data=b"\x00\x01")
    await wait_until(lambda: len(client.unmatched) >= 5, what="five error responses")
    codes = [frame["errorCode"] for frame in client.unmatched[:5]]
    assert codes == [
        "malformed_json",
        "invalid_frame",
        "invalid_frame",
        "invalid_data",
        "invalid_frame",
    ]
    assert client.unmatched[3]["id"] == 7
    assert client.closed_with is None
    await client.join()  # still perfectly usable


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({}, "invalid_data"),
        ({"peerId": "has spaces", "displayName": "A"}, "invalid_data"),
        ({"peerId": "x" * 65, "displayName": "A"}, "invalid_data"),
        ({"peerId": "abc", "displayName": "   "}, "invalid_data"),
        ({"peerId": "abc", "displayName": "A" * 101}, "invalid_data"),
        ({"peerId": 42, "displayName": "A"}, "invalid_data"),
    ],
)
async def test_join_with_invalid_data_is_refused(data: dict, code: str) -> None:
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    response = await client.request_frame("join", data)
    assert response["errorCode"] == code
    assert await Participant.objects.acount() == 0


@pytest.mark.parametrize(
    "sdp",
    [
        "",
        "hello",
        "v=0\r\ns=-\r\n",  # no media
        VALID_LOOKING_OFFER.replace("a=fingerprint:sha-256 00:11\r\n", ""),
        VALID_LOOKING_OFFER.replace("a=ice-ufrag:abcd\r\n", ""),
        VALID_LOOKING_OFFER + "not an sdp line\r\n",
        42,
    ],
)
async def test_produce_with_invalid_sdp_is_refused_before_the_sfu(sdp: object) -> None:
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    await client.join()
    response = await client.request_frame("produce", {"sdp": sdp, "sources": {"0": "mic"}})
    assert response["errorCode"] == "invalid_sdp"


async def test_produce_with_sources_not_in_the_offer_is_refused() -> None:
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    await client.join()
    for sources in ({"7": "mic"}, {"0": "webcam"}, {}, ["mic"]):
        response = await client.request_frame(
            "produce", {"sdp": VALID_LOOKING_OFFER, "sources": sources}
        )
        assert response["errorCode"] == "invalid_data", sources


async def test_sfu_errors_come_back_as_error_responses() -> None:
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    await client.join()
    response = await client.request_frame("closeProducer", {"producerId": "no-such-producer"})
    assert response["ok"] is False
    assert response["errorCode"] == "unknown_producer"
    assert (await client.request("getStats")) is not None


async def test_an_oversized_frame_closes_the_socket_with_4413() -> None:
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    await client.send_text(
        json.dumps(
            {
                "request": True,
                "id": 1,
                "method": "join",
                "data": {"peerId": "a", "displayName": "x" * (protocol.MAX_FRAME_BYTES + 1)},
            }
        )
    )
    assert await client.wait_closed() == protocol.CLOSE_FRAME_TOO_BIG


async def test_a_flood_is_answered_rate_limited_then_closed(settings: Any) -> None:
    settings.SIGNALING_RATE_PER_SECOND = 5.0
    settings.SIGNALING_RATE_BURST = 10
    settings.SIGNALING_RATE_CLOSE_AFTER = 50
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    frame = json.dumps({"request": True, "id": "f", "method": "noSuchMethod", "data": {}})
    for _ in range(40):
        await client.send_text(frame)
    await wait_until(lambda: len(client.unmatched) >= 40, what="40 answers")
    codes = {f["errorCode"] for f in client.unmatched}
    assert codes == {"unknown_method", "rate_limited"}
    assert client.closed_with is None
    for _ in range(100):
        if client.closed_with is not None:
            break
        await client.send_text(frame)
    assert await client.wait_closed() == protocol.CLOSE_RATE_LIMITED


async def test_binary_frames_count_against_the_flood_guard(settings: Any) -> None:
    settings.SIGNALING_RATE_PER_SECOND = 5.0
    settings.SIGNALING_RATE_BURST = 10
    settings.SIGNALING_RATE_CLOSE_AFTER = 50
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    for _ in range(40):
        await client.communicator.send_to(bytes_data=b"\x00\x01")
    await wait_until(lambda: len(client.unmatched) >= 40, what="40 answers")
    assert {f["errorCode"] for f in client.unmatched} == {"invalid_frame", "rate_limited"}
    for _ in range(100):
        if client.closed_with is not None:
            break
        await client.communicator.send_to(bytes_data=b"\x00\x01")
    assert await client.wait_closed() == protocol.CLOSE_RATE_LIMITED


async def test_an_oversized_binary_frame_closes_the_socket() -> None:
    host = await make_user("host")
    client = await connected(await make_meeting(host), host)
    await client.communicator.send_to(bytes_data=b"\x00" * (protocol.MAX_FRAME_BYTES + 1))
    assert await client.wait_closed() == protocol.CLOSE_FRAME_TOO_BIG


def test_a_sustained_flood_above_the_rate_is_closed_even_though_tokens_trickle_in() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=30.0, burst=60, clock=lambda: now[0])
    # Twice the allowed rate for ten seconds: half the frames get through as tokens refill,
    # the other half are refused; the refusals must add up rather than restart at each token.
    most_overdrawn = 0
    for _ in range(600):
        now[0] += 1 / 60
        bucket.take()
        most_overdrawn = max(most_overdrawn, bucket.overdrawn)
    assert most_overdrawn >= 200


def test_a_client_that_calms_down_is_forgiven() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=30.0, burst=60, clock=lambda: now[0])
    for _ in range(100):
        bucket.take()
    assert bucket.overdrawn == 40
    now[0] += 60 / 30  # long enough under the rate for the bucket to fill again
    assert bucket.take()
    assert bucket.overdrawn == 0


# --- authorization ------------------------------------------------------------------------


async def test_unknown_meeting_and_forbidden_meeting_close_the_same_way() -> None:
    host = await make_user("host")
    outsider = await make_user("eve")
    invitee = await make_user("ivy")
    meeting = await make_meeting(host, access_policy=Meeting.Access.INVITEES)
    await Invitation.objects.acreate(meeting=meeting, email=invitee.email.upper())
    forbidden = SignalingClient(meeting.code, await session_cookie(outsider))
    unknown = SignalingClient("zzz-zzzz-zzz", await session_cookie(outsider))
    # Accepted, then closed with the code: a close before accepting reaches a browser as a
    # bare HTTP 403 (tests/e2e/test_close_codes.py checks it through daphne).
    assert await forbidden.connect() == (True, None)
    assert await forbidden.wait_closed() == protocol.CLOSE_NOT_FOUND
    assert await unknown.connect() == (True, None)
    assert await unknown.wait_closed() == protocol.CLOSE_NOT_FOUND
    # Someone not signed in is asked to sign in, whether the meeting exists or not.
    anonymous = SignalingClient(meeting.code, None)
    assert await anonymous.connect() == (True, None)
    assert await anonymous.wait_closed() == protocol.CLOSE_UNAUTHENTICATED
    # The host and the invitee get in.
    await (await connected(meeting, host)).join(name="Host")
    ivy = await (await connected(meeting, invitee)).join(name="Ivy")
    assert (ivy["role"], ivy["canModerate"]) == ("participant", False)


async def test_staff_may_moderate_a_meeting_they_do_not_host() -> None:
    host = await make_user("host")
    staff = await make_user("staff")
    staff.is_staff = True
    await staff.asave(update_fields=["is_staff"])
    meeting = await make_meeting(host)
    data = await (await connected(meeting, staff)).join(name="Sam")
    assert (data["role"], data["canModerate"]) == ("participant", True)


async def test_a_cancelled_meeting_refuses_everyone() -> None:
    host = await make_user("host")
    meeting = await make_meeting(host, status=Meeting.Status.CANCELLED)
    client = SignalingClient(meeting.code, await session_cookie(host))
    assert await client.connect() == (True, None)
    assert await client.wait_closed() == protocol.CLOSE_NOT_FOUND


async def test_a_removed_participant_cannot_join_again() -> None:
    from rooms import moderation

    host = await make_user("host")
    other = await make_user("rod")
    meeting = await make_meeting(host)
    await sync_to_async(moderation.remove_participant)(host, meeting, user=other)
    client = await connected(meeting, other)
    response = await client.request_frame("join", {"peerId": "p1", "displayName": "Rod"})
    assert response["errorCode"] == "removed"


async def test_a_locked_meeting_lets_moderators_in_and_sends_others_to_knock() -> None:
    from rooms import moderation

    host = await make_user("host")
    other = await make_user("lin")
    meeting = await make_meeting(host)
    await sync_to_async(moderation.set_locked)(host, meeting, True)
    await (await connected(meeting, host)).join(name="Host")
    client = await connected(meeting, other)
    response = await client.request_frame("join", {"peerId": "p2", "displayName": "Lin"})
    assert response["errorCode"] == "meeting_locked"


async def test_a_foreign_origin_is_refused() -> None:
    host = await make_user("host")
    meeting = await make_meeting(host)
    client = SignalingClient(meeting.code, await session_cookie(host), origin=b"https://evil.test")
    connected_, _ = await client.connect()
    assert connected_ is False


async def test_someone_elses_peer_id_is_refused() -> None:
    host = await make_user("host")
    other = await make_user("mallory")
    meeting = await make_meeting(host)
    first = await connected(meeting, host)
    await first.join(name="Host")
    second = await connected(meeting, other)
    response = await second.request_frame(
        "join", {"peerId": first.peer_id, "displayName": "Mallory"}
    )
    assert response["errorCode"] == "peer_id_taken"
    assert first.closed_with is None
    assert not first.notified("peerClosed")


# --- room events (contract 3) -------------------------------------------------------------


async def test_room_events_reach_participants_and_targeted_ones_only_their_target() -> None:
    from channels.layers import get_channel_layer

    host = await make_user("host")
    other = await make_user("dee")
    meeting = await make_meeting(host)
    first = await connected(meeting, host)
    await first.join(name="Host")
    second = await connected(meeting, other)
    await second.join(name="Dee")
    layer = get_channel_layer()
    group = f"room.{meeting.code}"
    await layer.group_send(
        group, {"type": "room.event", "event": "meetingLocked", "data": {"locked": True}}
    )
    await layer.group_send(
        group,
        {
            "type": "room.event",
            "event": "handRaised",
            "data": {"n": 1},
            "target_peer_id": second.peer_id,
        },
    )
    await wait_until(lambda: first.notified("meetingLocked") and second.notified("meetingLocked"))
    await wait_until(lambda: second.notified("handRaised"))
    assert not first.notified("handRaised")


async def test_removed_participant_is_told_then_closed_with_4403_and_leaves() -> None:
    from channels.layers import get_channel_layer

    host = await make_user("host")
    other = await make_user("rex")
    meeting = await make_meeting(host)
    first = await connected(meeting, host)
    await first.join(name="Host")
    second = await connected(meeting, other)
    await second.join(name="Rex")
    await get_channel_layer().group_send(
        f"room.{meeting.code}",
        {"type": "room.event", "event": "removed", "data": {}, "target_peer_id": second.peer_id},
    )
    assert await second.wait_closed() == protocol.CLOSE_REMOVED
    assert second.notified("removed") == [{}]
    # Removal does not wait for a reconnect grace period.
    await wait_until(lambda: first.notified("peerClosed", peerId=second.peer_id))
    assert first.closed_with is None


async def test_meeting_ended_closes_everyone_with_4410() -> None:
    from channels.layers import get_channel_layer

    host = await make_user("host")
    meeting = await make_meeting(host)
    first = await connected(meeting, host)
    await first.join(name="Host")
    await get_channel_layer().group_send(
        f"room.{meeting.code}", {"type": "room.event", "event": "meetingEnded", "data": {}}
    )
    assert await first.wait_closed() == protocol.CLOSE_ENDED
    assert first.notified("meetingEnded") == [{}]


# --- chat through the signaling socket ----------------------------------------------------


async def test_chat_message_is_stored_broadcast_and_in_history() -> None:
    host = await make_user("host")
    other = await make_user("fay")
    meeting = await make_meeting(host)
    first = await connected(meeting, host)
    await first.join(name="Host")
    second = await connected(meeting, other)
    await second.join(name="Fay")
    sent = await second.request("chatMessage", {"clientId": "c-1", "text": "hello <b>all</b>"})
    message = sent["message"]
    assert message["text"] == "hello <b>all</b>"
    assert message["authorPeerId"] == second.peer_id
    await wait_until(lambda: first.notified("chatMessage"), what="chatMessage broadcast")
    assert first.notified("chatMessage")[0]["message"]["id"] == message["id"]
    history = await first.request("chatHistory", {})
    assert [m["id"] for m in history["messages"]] == [message["id"]]
    late = await connected(meeting, host)
    joined = await late.join(name="Host again")
    assert [m["id"] for m in joined["chat"]["messages"]] == [message["id"]]
    refused = await second.request_frame("chatMessage", {"clientId": "c-2", "text": "   "})
    assert refused["errorCode"] == "empty_message"


def test_a_request_as_large_as_an_awaited_answer_may_be_is_refused_by_its_size() -> None:
    large = "x" * (protocol.MAX_FRAME_BYTES + 1)
    request = json.dumps({"request": True, "id": 7, "method": "chat", "data": {"text": large}})
    response = json.dumps({"response": True, "id": 3, "ok": True, "data": {"sdp": large}})
    # While an answer is awaited a response that size is read; a request never is.
    parsed = protocol.parse_frame(response, protocol.MAX_ANSWER_FRAME_BYTES)
    assert isinstance(parsed, protocol.Response)
    with pytest.raises(ProtocolError) as refused:
        protocol.parse_frame(request, protocol.MAX_ANSWER_FRAME_BYTES)
    assert (refused.value.code, refused.value.request_id) == ("frame_too_big", 7)
    with pytest.raises(ProtocolError):
        protocol.parse_frame(response)  # no answer awaited: the ordinary limit
    with pytest.raises(ProtocolError):
        protocol.parse_frame(
            json.dumps(
                {
                    "response": True,
                    "id": 3,
                    "ok": True,
                    "data": {"sdp": "x" * protocol.MAX_ANSWER_FRAME_BYTES},
                }
            ),
            protocol.MAX_ANSWER_FRAME_BYTES,
        )
