"""Access that ends while a socket is open (issue 11): a socket opened while its user was
allowed must not join once the meeting is cancelled, the invitation withdrawn or the user
signed out, and signing out takes the user's sockets out of the call."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY, user_logged_out
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from accounts.models import User
from rooms import presence, services
from rooms.models import Invitation, Meeting
from rooms.signaling import protocol
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]


async def make_meeting(host: User, **extra: Any) -> Meeting:
    return await sync_to_async(Meeting.objects.create)(host=host, title="Review", **extra)


async def opened(meeting: Meeting, user: User) -> tuple[SignalingClient, str]:
    """An accepted socket of `user`, and its Django session key."""
    cookie = await session_cookie(user)
    client = SignalingClient(meeting.code, cookie)
    assert await client.connect() == (True, None)
    return client, cookie.decode().split("=", 1)[1]


async def refused_join(client: SignalingClient) -> dict[str, Any]:
    frame = await client.request_frame("join", {"peerId": uuid.uuid4().hex, "displayName": "Eve"})
    assert frame["ok"] is False, frame
    return frame


async def test_a_socket_opened_before_the_meeting_was_cancelled_cannot_join() -> None:
    host = await make_user("host")
    guest_of_honour = await make_user("pat")
    meeting = await make_meeting(host)
    client, _ = await opened(meeting, guest_of_honour)
    meeting.status = Meeting.Status.CANCELLED
    await meeting.asave(update_fields=["status"])

    frame = await refused_join(client)

    assert frame["errorCode"] == "not_allowed"
    # Nothing this socket can do would help: it is closed as a new one would be.
    assert await client.wait_closed() == protocol.CLOSE_NOT_FOUND
    assert not await sync_to_async(presence.present_participants)(meeting.pk)


async def test_a_socket_opened_before_the_invitation_was_withdrawn_cannot_join() -> None:
    host = await make_user("host")
    invitee = await make_user("ivy")
    meeting = await make_meeting(host, access_policy=Meeting.Access.INVITEES)
    invitation = await Invitation.objects.acreate(meeting=meeting, email=invitee.email)
    client, _ = await opened(meeting, invitee)
    await invitation.adelete()

    frame = await refused_join(client)

    assert frame["errorCode"] == "not_allowed"
    assert await client.wait_closed() == protocol.CLOSE_NOT_FOUND


async def test_a_socket_whose_session_was_signed_out_cannot_join() -> None:
    """Signed out in another tab of the same browser: the session no longer names the user."""
    host = await make_user("host")
    member = await make_user("sam")
    meeting = await make_meeting(host)
    client, session_key = await opened(meeting, member)

    def sign_out_elsewhere() -> None:
        # What logout() leaves behind without telling anyone: a session without the user.
        session = SessionStore(session_key)
        session.pop(SESSION_KEY)
        session.save()

    await sync_to_async(sign_out_elsewhere)()

    frame = await refused_join(client)

    assert frame["errorCode"] == "signed_out"
    assert await client.wait_closed() == protocol.CLOSE_UNAUTHENTICATED


async def test_signing_out_takes_the_user_out_of_the_call() -> None:
    host = await make_user("host")
    member = await make_user("sam")
    meeting = await make_meeting(host)
    host_client, _ = await opened(meeting, host)
    await host_client.join(name="Host")
    client, session_key = await opened(meeting, member)
    joined = await client.join(name="Sam")
    peer_id = joined["peerId"]

    def sign_out() -> None:
        # django.contrib.auth.logout (and allauth's) sends this before flushing the session.
        request = RequestFactory().post("/accounts/logout/")
        request.session = SessionStore(session_key)
        request.user = member
        user_logged_out.send(sender=User, request=request, user=member)

    await sync_to_async(sign_out)()

    assert await client.wait_closed() == protocol.CLOSE_UNAUTHENTICATED
    # It left as a removal does, at once: the others see it go, presence no longer has it.
    await wait_until(lambda: host_client.notified("peerClosed", peerId=peer_id), what="peerClosed")
    present = await sync_to_async(presence.present_participants)(meeting.pk)
    assert [p.peer_id for p in present] == [host_client.peer_id]
    # The host, signed in elsewhere, stays.
    assert host_client.closed_with is None


async def test_cancelling_a_live_meeting_ends_the_call_for_everyone() -> None:
    host, pat = await make_user("host"), await make_user("pat")
    meeting = await make_meeting(host)
    in_call = []
    for user, name in ((host, "Host"), (pat, "Pat")):
        client, _ = await opened(meeting, user)
        await client.join(name=name)
        in_call.append(client)

    await sync_to_async(services.cancel_meeting)(host, meeting)

    for client in in_call:
        assert await client.wait_closed() == protocol.CLOSE_ENDED
        assert client.notified("meetingEnded") == [{"reason": "cancelled"}]
    assert not await sync_to_async(presence.present_participants)(meeting.pk)
    assert (await Meeting.objects.aget(pk=meeting.pk)).status == Meeting.Status.CANCELLED
