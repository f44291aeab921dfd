"""The host's spotlight for everyone over the signaling socket (rooms.spotlight through
rooms.signaling.together_requests): moderators only (host and co-hosts), someone not in the
call refused, everyone told with `spotlightChanged`, a late joiner given it in the join
response, kept across a reconnect and gone when the spotlit person leaves."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms.models import Meeting
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


def spotlight_in(client: SignalingClient) -> Any:
    return client.join_response["spotlight"]["peerId"]  # type: ignore[attr-defined]


async def room_of_three() -> tuple[Meeting, SignalingClient, SignalingClient, SignalingClient]:
    host, pat, sam = await make_user("host"), await make_user("pat"), await make_user("sam")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Spotlight")
    return (
        meeting,
        await joined(meeting, host, "Host"),
        await joined(meeting, pat, "Pat"),
        await joined(meeting, sam, "Sam"),
    )


async def test_the_host_spotlights_someone_for_everyone_and_a_late_joiner_learns_it() -> None:
    meeting, host, pat, sam = await room_of_three()
    assert spotlight_in(host) is None

    assert await host.request("spotlight", {"peerId": pat.peer_id}) == {"peerId": pat.peer_id}
    for client in (host, pat, sam):
        await wait_until(
            lambda c=client: c.notified("spotlightChanged", peerId=pat.peer_id, by=host.peer_id),
            what="spotlightChanged",
        )
    late = await joined(meeting, await make_user("lee"), "Lee")
    assert spotlight_in(late) == pat.peer_id

    # The same again changes nothing and tells nobody.
    before = len(sam.notified("spotlightChanged"))
    assert await host.request("spotlight", {"peerId": pat.peer_id}) == {"peerId": pat.peer_id}
    # Another person: the spotlight moves; null removes it.
    await host.request("spotlight", {"peerId": sam.peer_id})
    await wait_until(lambda: pat.notified("spotlightChanged", peerId=sam.peer_id), what="moved")
    assert len(sam.notified("spotlightChanged")) >= before + 1
    assert await host.request("spotlight", {"peerId": None}) == {"peerId": None}
    await wait_until(lambda: pat.notified("spotlightChanged", peerId=None), what="removed")
    later = await joined(meeting, await make_user("max"), "Max")
    assert spotlight_in(later) is None


async def test_only_moderators_spotlight_and_a_cohost_may() -> None:
    meeting, host, pat, sam = await room_of_three()
    refused = await pat.request_frame("spotlight", {"peerId": pat.peer_id})
    assert refused["errorCode"] == "not_moderator"
    assert (await pat.request_frame("spotlight", {"peerId": None}))["errorCode"] == "not_moderator"
    assert not sam.notified("spotlightChanged")

    cohost = await make_user("cora")
    await sync_to_async(meeting.co_hosts.add)(cohost)
    cora = await joined(meeting, cohost, "Cora")
    assert await cora.request("spotlight", {"peerId": sam.peer_id}) == {"peerId": sam.peer_id}
    await wait_until(
        lambda: host.notified("spotlightChanged", peerId=sam.peer_id, by=cora.peer_id),
        what="the co-host's spotlight",
    )


async def test_the_spotlight_stays_over_a_reconnect_and_goes_when_the_person_leaves() -> None:
    meeting, host, pat, sam = await room_of_three()
    await host.request("spotlight", {"peerId": pat.peer_id})

    # Pat's socket drops and the same peer comes back within the grace period: still spotlit.
    await pat.drop()
    pat_user = await User.objects.aget(first_name="Pat")
    back = await joined(meeting, pat_user, "Pat", peer_id=pat.peer_id)
    assert back.join_response["reconnected"] is True  # type: ignore[attr-defined]
    assert spotlight_in(back) == pat.peer_id

    # Pat leaves: everyone gets peerClosed (clients drop the spotlight with it) and nobody
    # joining later is told of it, not even Pat coming back with the same tab.
    await back.request("leave")
    await wait_until(lambda: sam.notified("peerClosed", peerId=pat.peer_id), what="peerClosed")
    late = await joined(meeting, await make_user("lee"), "Lee")
    assert spotlight_in(late) is None
    again = await joined(meeting, pat_user, "Pat", peer_id=pat.peer_id)
    assert spotlight_in(again) is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"peerId": "nobody-here"}, "not_in_call"),
        ({"peerId": "not a peer id!"}, "invalid_data"),
        ({"peerId": 7}, "invalid_data"),
        ({}, "invalid_data"),
    ],
)
async def test_bad_spotlight_requests_are_refused(data: dict[str, Any], code: str) -> None:
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(host=host_user, title="Bad input")
    host = await joined(meeting, host_user, "Host")
    refused = await host.request_frame("spotlight", data)
    assert refused["ok"] is False
    assert refused["errorCode"] == code, refused
    assert not host.notified("spotlightChanged")


async def test_no_spotlight_before_joining() -> None:
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(host=host_user, title="Early")
    client = SignalingClient(meeting.code, await session_cookie(host_user))
    assert (await client.connect())[0]
    assert (await client.request_frame("spotlight", {"peerId": None}))["errorCode"] == "not_joined"
