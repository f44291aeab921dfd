"""Through the call's real WebSocket: an instant meeting's link lets people back in after the
last one left, or after the host ended it for everyone, as in Meet; a one-off scheduled
meeting that ended does not."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms import services
from rooms.models import Meeting
from rooms.signaling import protocol
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]


async def connected(meeting: Meeting, user: User) -> SignalingClient:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, f"connection refused with {code}"
    return client


async def status(meeting: Meeting) -> str:
    return str((await Meeting.objects.aget(pk=meeting.pk)).status)


async def test_someone_else_starts_the_next_call_of_an_instant_meeting_everyone_left() -> None:
    host, nia = await make_user("host"), await make_user("nia")
    meeting = await sync_to_async(services.create_instant_meeting)(host)
    first = await connected(meeting, host)
    await first.join(name="Host")
    await first.request("leave")
    assert await status(meeting) == "ended"

    # Nia was never in it and is not invited: the link still lets her in, and her call is on.
    second = await connected(meeting, nia)
    data = await second.join(name="Nia")
    assert data["role"] == "participant"
    assert await status(meeting) == "live"


async def test_after_end_for_everyone_an_instant_meetings_link_works_again() -> None:
    host, nia = await make_user("host"), await make_user("nia")
    meeting = await sync_to_async(services.create_instant_meeting)(host)
    hosting = await connected(meeting, host)
    await hosting.join(name="Host")
    joining = await connected(meeting, nia)
    await joining.join(name="Nia")
    await hosting.request("endMeeting")
    assert await joining.wait_closed() == protocol.CLOSE_ENDED
    assert await status(meeting) == "ended"

    again = await connected(meeting, nia)
    await again.join(name="Nia")
    assert await status(meeting) == "live"


async def test_a_one_off_scheduled_meeting_that_ended_still_refuses_everyone_but_hosts() -> None:
    host, nia = await make_user("host"), await make_user("nia")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Planning")
    first = await connected(meeting, host)
    await first.join(name="Host")
    await first.request("leave")
    assert await status(meeting) == "ended"
    second = await connected(meeting, nia)
    refused = await second.request_frame("join", {"peerId": "nia-1", "displayName": "Nia"})
    assert refused["errorCode"] == "meeting_ended"
