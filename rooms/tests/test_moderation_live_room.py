"""Moderating from the Django admin reaches a live call: two real signaling peers (through
meet.asgi.application, with a real in-process SFU node) are in the room while a staff user
locks, mutes, removes, ends and deletes a chat message from the admin. Each action is felt in
the room within a few seconds and lands in the admin log."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse

from accounts.models import User
from chat.models import Message
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

# The admin's request sends the room event after its commit, so the room hears of it while
# the request is answered; the bound leaves room for a loaded 2-core CI machine.
PROMPT_SECONDS = 3.0


def _admin_client(staff: User) -> Client:
    client = Client()
    client.force_login(staff)
    return client


class AdminSession:
    """A staff superuser's browser on the admin (the sync test client, run off the loop)."""

    def __init__(self, client: Client):
        self.client = client

    @classmethod
    async def open(cls) -> AdminSession:
        staff = await make_user("staff", is_staff=True, is_superuser=True)
        return cls(await sync_to_async(_admin_client)(staff))

    async def post(self, url: str, data: dict[str, Any]) -> Any:
        return await sync_to_async(self.client.post)(url, data)

    async def meeting_action(self, action: str, meeting: Meeting) -> None:
        response = await self.post(
            reverse("admin:rooms_meeting_changelist"),
            {"action": action, "_selected_action": [meeting.pk]},
        )
        assert response.status_code == 302, action  # back to the list, with a message

    async def participant_action(self, action: str, meeting: Meeting, peer_id: str) -> None:
        participant = await Participant.objects.aget(
            meeting=meeting, peer_id=peer_id, left_at__isnull=True
        )
        response = await self.post(
            reverse("admin:rooms_meeting_participants", args=[meeting.pk]),
            {"action": action, "participant": participant.pk},
        )
        assert response.status_code == 302, action


async def joined(meeting: Meeting, user: User, name: str) -> SignalingClient:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, code
    await client.join(name=name)
    return client


async def live_room() -> tuple[Meeting, SignalingClient, SignalingClient, User]:
    host, pat = await make_user("host"), await make_user("pat")
    meeting = await Meeting.objects.acreate(host=host, title="Live moderation")
    return meeting, await joined(meeting, host, "Host"), await joined(meeting, pat, "Pat"), pat


async def logged(obj: Any) -> list[str]:
    def messages() -> list[str]:
        entries = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
        ).order_by("pk")
        return [entry.get_change_message() for entry in entries]

    return await sync_to_async(messages)()


async def test_lock_from_the_admin_tells_the_room_and_keeps_newcomers_out() -> None:
    meeting, host, pat, _ = await live_room()
    admin = await AdminSession.open()

    await admin.meeting_action("lock_meetings", meeting)

    for peer in (host, pat):
        await wait_until(
            lambda peer=peer: peer.notified("meetingLocked", locked=True),
            PROMPT_SECONDS,
            "meetingLocked",
        )
    newcomer = SignalingClient(meeting.code, await session_cookie(await make_user("sam")))
    assert (await newcomer.connect())[0]
    refused = await newcomer.request_frame("join", {"peerId": "sam-tab", "displayName": "Sam"})
    assert refused["errorCode"] == "meeting_locked"
    assert await logged(meeting) == ["Locked"]


async def test_mute_from_the_admin_reaches_only_the_target() -> None:
    meeting, host, pat, _ = await live_room()
    admin = await AdminSession.open()

    await admin.participant_action("mute", meeting, pat.peer_id)

    await wait_until(lambda: pat.notified("mutedByHost"), PROMPT_SECONDS, "mutedByHost")
    assert not host.notified("mutedByHost")
    assert await logged(meeting) == ["Muted Pat"]


async def test_remove_from_the_admin_closes_the_target_and_keeps_them_out() -> None:
    meeting, host, pat, pat_user = await live_room()
    admin = await AdminSession.open()

    await admin.participant_action("remove", meeting, pat.peer_id)

    assert await pat.wait_closed(PROMPT_SECONDS) == protocol.CLOSE_REMOVED
    assert pat.notified("removed") == [{}]
    await wait_until(
        lambda: host.notified("peerClosed", peerId=pat.peer_id), PROMPT_SECONDS, "peerClosed"
    )
    again = SignalingClient(meeting.code, await session_cookie(pat_user))
    assert (await again.connect())[0]
    refused = await again.request_frame("join", {"peerId": pat.peer_id, "displayName": "Pat"})
    assert refused["errorCode"] == "removed"
    assert host.closed_with is None
    assert await logged(meeting) == ["Removed Pat"]


async def test_end_for_everyone_from_the_admin_closes_every_socket() -> None:
    meeting, host, pat, _ = await live_room()
    admin = await AdminSession.open()

    await admin.meeting_action("end_meetings_for_everyone", meeting)

    for peer in (host, pat):
        assert await peer.wait_closed(PROMPT_SECONDS) == protocol.CLOSE_ENDED
        assert peer.notified("meetingEnded") == [{}]
    assert (await Meeting.objects.aget(pk=meeting.pk)).status == Meeting.Status.ENDED
    assert await logged(meeting) == ["Ended for everyone"]


async def test_deleting_a_chat_message_from_the_admin_tells_everyone() -> None:
    _, host, pat, _ = await live_room()
    admin = await AdminSession.open()
    sent = await pat.request("chatMessage", {"clientId": uuid.uuid4().hex, "text": "oops"})
    message_id = sent["message"]["id"]
    await wait_until(lambda: host.notified("chatMessage"), PROMPT_SECONDS, "chatMessage")

    response = await admin.post(
        reverse("admin:chat_message_changelist"),
        {"action": "delete_for_everyone", "_selected_action": [message_id]},
    )

    assert response.status_code == 302
    for peer in (host, pat):
        await wait_until(
            lambda peer=peer: peer.notified("chatMessageDeleted", messageId=message_id),
            PROMPT_SECONDS,
            "chatMessageDeleted",
        )
    history = await host.request("chatHistory", {"sinceId": 0})
    assert [(m["id"], m["deleted"], m["text"]) for m in history["messages"]] == [
        (message_id, True, "")
    ]
    assert await logged(await Message.objects.aget(pk=message_id)) == ["Deleted for everyone"]
