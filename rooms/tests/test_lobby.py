"""The lobby over the signaling protocol (issue 12, item 3): asking to join, cancelling,
admitted, denied, timed out, the meeting ended for all while someone asks, a host's reload,
the host control that lets guests ask to join an instant meeting, who may do what, and bad
input answered with protocol errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms import services
from rooms.models import LobbyRequest, Meeting
from rooms.signaling import protocol
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]


async def guest_meeting(host: User) -> Meeting:
    return await sync_to_async(Meeting.objects.create)(
        host=host, title="Open house", access_policy=Meeting.Access.GUESTS
    )


async def connected(meeting: Meeting, cookie: bytes) -> SignalingClient:
    client = SignalingClient(meeting.code, cookie)
    ok, code = await client.connect()
    assert ok, f"connection refused with {code}"
    return client


async def host_in_call(meeting: Meeting, host: User) -> SignalingClient:
    client = await connected(meeting, await session_cookie(host))
    await client.join(name="Host")
    return client


async def knocking(meeting: Meeting, name: str = "Visitor") -> SignalingClient:
    """A guest's tab that asked to join and waits."""
    guest = await connected(meeting, await session_cookie(None))
    guest.peer_id = uuid.uuid4().hex
    answer = await guest.request_frame("join", {"peerId": guest.peer_id, "displayName": name})
    assert answer["errorCode"] == "lobby", answer
    return guest


async def request_of(guest: SignalingClient) -> LobbyRequest:
    return await LobbyRequest.objects.aget(peer_id=guest.peer_id)


async def state_of(guest: SignalingClient) -> str:
    return (await request_of(guest)).state


def resolved(host: SignalingClient, request_id: int, state: str) -> bool:
    return any(
        n["request"]["requestId"] == request_id and n["request"]["state"] == state
        for n in host.notified("lobbyResolved")
    )


async def test_a_guest_cancels_and_the_hosts_notice_goes(settings: Any) -> None:
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    guest = await knocking(meeting)
    await wait_until(lambda: host.notified("lobbyKnock"), what="the knock reaches the host")
    request = await request_of(guest)

    assert await guest.request("cancelKnock") == {}

    assert await state_of(guest) == LobbyRequest.State.CANCELLED
    await wait_until(lambda: resolved(host, request.pk, "cancelled"), what="lobbyResolved")
    assert (await host.request("lobbyRequests"))["requests"] == []
    # Nothing more to cancel; the socket stays open and may ask again (a new request).
    again = await guest.request_frame("cancelKnock")
    assert again["errorCode"] == "not_waiting"
    assert guest.closed_with is None
    answer = await guest.request_frame("join", {"peerId": guest.peer_id, "displayName": "V"})
    assert answer["errorCode"] == "lobby"
    (waiting,) = (await host.request("lobbyRequests"))["requests"]
    assert waiting["requestId"] != request.pk
    assert waiting["displayName"] == "V"
    await guest.request("cancelKnock")  # nothing left waiting when the test's loop closes


async def test_admitted_from_the_lobby_the_guest_joins_the_call() -> None:
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    guest = await knocking(meeting, "Gail")
    await wait_until(lambda: host.notified("lobbyKnock"), what="lobbyKnock")
    (knock,) = host.notified("lobbyKnock")
    assert knock["request"]["displayName"] == "Gail"
    assert knock["request"]["isGuest"] is True

    assert await host.request("admitEntry", {"requestId": knock["request"]["requestId"]}) == {}

    await wait_until(lambda: guest.notified("lobbyAdmitted"), what="lobbyAdmitted")
    data = await guest.join(guest.peer_id, name="Gail")
    assert data["role"] == "guest"
    await wait_until(lambda: host.notified("newPeer", peerId=guest.peer_id), what="newPeer")
    await wait_until(
        lambda: resolved(host, knock["request"]["requestId"], "admitted"), what="lobbyResolved"
    )
    # Admitted and in: leaving does not withdraw anything (the request stays admitted).
    await guest.drop()
    assert await state_of(guest) == LobbyRequest.State.ADMITTED


async def test_denied_the_guest_is_told_and_may_ask_again() -> None:
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    guest = await knocking(meeting)
    request = await request_of(guest)

    await host.request("denyEntry", {"requestId": request.pk})

    await wait_until(
        lambda: guest.notified("lobbyDenied", requestId=request.pk), what="lobbyDenied"
    )
    assert await state_of(guest) == LobbyRequest.State.DENIED
    await wait_until(lambda: resolved(host, request.pk, "denied"), what="lobbyResolved")
    assert guest.closed_with is None
    # "Ask again": a new knock.
    answer = await guest.request_frame("join", {"peerId": guest.peer_id, "displayName": "V"})
    assert answer["errorCode"] == "lobby"
    await wait_until(lambda: len(host.notified("lobbyKnock")) == 2, what="the second knock")
    await guest.request("cancelKnock")  # nothing left waiting when the test's loop closes


async def test_a_knock_nobody_answers_times_out(settings: Any) -> None:
    settings.ROOMS_LOBBY_WAIT_SECONDS = 0.5
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    guest = await knocking(meeting)
    request = await request_of(guest)

    await wait_until(
        lambda: guest.notified("lobbyTimedOut", requestId=request.pk), what="lobbyTimedOut"
    )
    assert await state_of(guest) == LobbyRequest.State.EXPIRED
    await wait_until(lambda: resolved(host, request.pk, "expired"), what="lobbyResolved")
    # Too late to admit: the host's answer says so.
    late = await host.request_frame("admitEntry", {"requestId": request.pk})
    assert late["errorCode"] == "already_decided"


async def test_a_knock_left_behind_by_a_dead_process_is_not_shown(settings: Any) -> None:
    """A waiting request whose connection never withdrew it (its web process died) is not
    shown to hosts once it is older than the wait."""
    from datetime import timedelta

    from django.utils import timezone

    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    await LobbyRequest.objects.acreate(
        meeting=meeting,
        guest_key="gone",
        display_name="Ghost",
        peer_id="ghost",
        requested_at=timezone.now() - timedelta(hours=1),
    )
    host = await host_in_call(meeting, host_user)
    assert (await host.request("lobbyRequests"))["requests"] == []
    ghost = await LobbyRequest.objects.aget(peer_id="ghost")
    assert ghost.state == LobbyRequest.State.EXPIRED


async def test_a_waiting_tab_that_closes_withdraws_its_knock() -> None:
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    guest = await knocking(meeting)
    request = await request_of(guest)

    await guest.drop()

    await wait_until(lambda: resolved(host, request.pk, "cancelled"), what="lobbyResolved")
    assert await state_of(guest) == LobbyRequest.State.CANCELLED


async def test_end_for_all_tells_those_asking_to_join() -> None:
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    guest = await knocking(meeting)
    await wait_until(lambda: host.notified("lobbyKnock"), what="lobbyKnock")

    await host.request_frame("endMeeting")

    assert await guest.wait_closed() == protocol.CLOSE_ENDED
    assert guest.notified("meetingEnded")
    assert await state_of(guest) == LobbyRequest.State.DENIED


async def test_a_knock_survives_the_hosts_reload() -> None:
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    guest = await knocking(meeting, "Gail")
    request = await request_of(guest)
    await wait_until(lambda: host.notified("lobbyKnock"), what="lobbyKnock")

    await host.drop()  # the host's page reloads: a new socket, a new tab id
    again = await host_in_call(meeting, host_user)

    (waiting,) = (await again.request("lobbyRequests"))["requests"]
    assert waiting["requestId"] == request.pk
    assert waiting["displayName"] == "Gail"
    await again.request("admitEntry", {"requestId": request.pk})
    await wait_until(lambda: guest.notified("lobbyAdmitted"), what="lobbyAdmitted")
    assert (await guest.join(guest.peer_id, name="Gail"))["role"] == "guest"


async def test_only_moderators_admit_deny_or_change_guest_access() -> None:
    host_user, nia = await make_user("host"), await make_user("nia")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    participant = await connected(meeting, await session_cookie(nia))
    await participant.join(name="Nia")
    guest = await knocking(meeting)
    request = await request_of(guest)

    for method, data in [
        ("admitEntry", {"requestId": request.pk}),
        ("denyEntry", {"requestId": request.pk}),
        ("lobbyRequests", {}),
        ("setGuestAccess", {"allowed": False}),
    ]:
        refused = await participant.request_frame(method, data)
        assert refused["errorCode"] == "not_moderator", (method, refused)
    # The waiting guest is not in the call: nothing but join and cancelKnock.
    for method, data in [
        ("admitEntry", {"requestId": request.pk}),
        ("setGuestAccess", {"allowed": True}),
    ]:
        refused = await guest.request_frame(method, data)
        assert refused["errorCode"] == "not_joined", (method, refused)
    assert await state_of(guest) == LobbyRequest.State.WAITING

    # Admitted and in the call, a guest still cannot change who may join.
    await host.request("admitEntry", {"requestId": request.pk})
    await wait_until(lambda: guest.notified("lobbyAdmitted"), what="lobbyAdmitted")
    await guest.join(guest.peer_id, name="Visitor")
    refused = await guest.request_frame("setGuestAccess", {"allowed": False})
    assert refused["errorCode"] == "not_moderator"
    assert (await Meeting.objects.aget(pk=meeting.pk)).access_policy == Meeting.Access.GUESTS


async def test_bad_lobby_requests_get_protocol_errors() -> None:
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    other = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    stranger_request = await LobbyRequest.objects.acreate(
        meeting=other, guest_key="g", display_name="Elsewhere", peer_id="p"
    )

    cases: list[tuple[str, dict[str, Any], str]] = [
        ("admitEntry", {}, "invalid_data"),
        ("admitEntry", {"requestId": "7"}, "invalid_request_id"),
        ("admitEntry", {"requestId": True}, "invalid_request_id"),
        ("denyEntry", {"requestId": 10**12}, "request_not_found"),
        ("admitEntry", {"requestId": stranger_request.pk}, "request_not_found"),
        ("setGuestAccess", {}, "invalid_data"),
        ("setGuestAccess", {"allowed": "yes"}, "invalid_data"),
        ("cancelKnock", {}, "already_joined"),
    ]
    for method, data, code in cases:
        answer = await host.request_frame(method, data)
        assert answer["ok"] is False, (method, data, answer)
        assert answer["errorCode"] == code, (method, data, answer)
    # A connection that never asked to join has nothing to cancel.
    guest = await connected(meeting, await session_cookie(None))
    assert (await guest.request_frame("cancelKnock"))["errorCode"] == "not_waiting"
    assert host.closed_with is None
    assert guest.closed_with is None


async def test_the_host_lets_guests_ask_to_join_an_instant_meeting() -> None:
    host_user, nia = await make_user("host"), await make_user("nia")
    meeting = await sync_to_async(services.create_instant_meeting)(host_user)
    assert meeting.access_policy == Meeting.Access.SIGNED_IN
    host = await connected(meeting, await session_cookie(host_user))
    joined = await host.join(name="Host")
    assert joined["meeting"] == {
        "locked": False,
        "accessPolicy": "signed_in",
        "guestsMayAsk": False,
    }
    participant = await connected(meeting, await session_cookie(nia))
    await participant.join(name="Nia")
    # A guest is sent to sign in.
    early = SignalingClient(meeting.code, await session_cookie(None))
    await early.connect()
    assert await early.wait_closed() == protocol.CLOSE_UNAUTHENTICATED

    assert await host.request("setGuestAccess", {"allowed": True}) == {"allowed": True}

    # Everyone in the call is told; the meeting now takes guests, who ask to join.
    await wait_until(
        lambda: participant.notified("guestAccessChanged", allowed=True), what="announced"
    )
    assert (await Meeting.objects.aget(pk=meeting.pk)).access_policy == Meeting.Access.GUESTS
    guest = await knocking(meeting, "Gail")
    await wait_until(lambda: host.notified("lobbyKnock"), what="lobbyKnock")
    # Saying it again changes nothing and tells nobody again.
    await host.request("setGuestAccess", {"allowed": True})

    # Turned off again: the guest waiting is turned away, and new guests are sent to sign in.
    await host.request("setGuestAccess", {"allowed": False})
    request = await request_of(guest)
    await wait_until(
        lambda: guest.notified("lobbyDenied", requestId=request.pk), what="lobbyDenied"
    )
    await wait_until(
        lambda: participant.notified("guestAccessChanged", allowed=False), what="announced"
    )
    assert len(participant.notified("guestAccessChanged")) == 2
    late = SignalingClient(meeting.code, await session_cookie(None))
    await late.connect()
    assert await late.wait_closed() == protocol.CLOSE_UNAUTHENTICATED


async def test_a_meeting_for_invitees_only_keeps_its_policy() -> None:
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(
        host=host_user, title="Board", access_policy=Meeting.Access.INVITEES
    )
    host = await host_in_call(meeting, host_user)
    refused = await host.request_frame("setGuestAccess", {"allowed": True})
    assert refused["errorCode"] == "invitees_only"
    assert (await Meeting.objects.aget(pk=meeting.pk)).access_policy == Meeting.Access.INVITEES


async def test_a_locked_meeting_takes_no_new_knocks_but_answers_those_waiting() -> None:
    """The documented choice (docs/meetings.md, "The lobby"): locking is "nobody new", so a
    knock after the lock is refused with meeting_locked (the page shows "This meeting is
    locked"); someone who asked before the lock may still be let in."""
    host_user = await make_user("host")
    meeting = await guest_meeting(host_user)
    host = await host_in_call(meeting, host_user)
    early = await knocking(meeting, "Early")
    request = await request_of(early)
    await host.request("lockMeeting", {"locked": True})

    late = await connected(meeting, await session_cookie(None))
    refused = await late.request_frame("join", {"peerId": uuid.uuid4().hex, "displayName": "L"})
    assert refused["errorCode"] == "meeting_locked"
    assert await LobbyRequest.objects.filter(display_name="L").acount() == 0

    await host.request("admitEntry", {"requestId": request.pk})
    await wait_until(lambda: early.notified("lobbyAdmitted"), what="lobbyAdmitted")
    assert (await early.join(early.peer_id, name="Early"))["role"] == "guest"
