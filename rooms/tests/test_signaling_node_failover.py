"""A call outlives its SFU node: two real `runsfu` processes, one of them killed (SIGKILL) in
the middle of a call. The web side notices (heartbeat silence, or a request timeout and an
unanswered ping), places the room on the live node, moves everyone's media there and says
`mediaReset`; the participants (aiortc, doing what the browser client does) publish again and
see each other's media within seconds. A newcomer meanwhile is placed on the live node."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from asgiref.sync import sync_to_async
from django.db import connection

from rooms.models import Meeting
from rooms.tests.media_support import Browser, participant
from rooms.tests.signaling_support import (
    SignalingClient,
    drop_open_clients,
    make_user,
    session_cookie,
    wait_until,
)
from sfu import ice, registry
from tests.e2e.stack import LOG_DIR, SfuNodeProcess, child_env, database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NODE_HEARTBEAT_SECONDS = "0.3"
# What the issue asks of the client: media back within 5 s of being told.
MEDIA_BACK_WITHIN_SECONDS = 5.0


@pytest.fixture
async def two_nodes(transactional_db: None) -> AsyncIterator[dict[str, SfuNodeProcess]]:
    """Two SFU node processes sharing this test's database and channel layer."""
    env = child_env(
        database_url(connection.settings_dict), SFU_HEARTBEAT_SECONDS=NODE_HEARTBEAT_SECONDS
    )
    tag = uuid.uuid4().hex[:6]
    # One on each event loop the node can run (SFU_EVENT_LOOP): the call lives on both in turn.
    loops = {f"failover-a-{tag}": "asyncio", f"failover-b-{tag}": "uvloop"}
    nodes = {
        name: SfuNodeProcess(
            {**env, "SFU_EVENT_LOOP": loop}, LOG_DIR / f"failover-{name}.log", node_name=name
        )
        for name, loop in loops.items()
    }
    for node in nodes.values():
        await sync_to_async(node.start)(
            is_live=lambda name: registry.live_nodes().filter(name=name).exists()
        )
    # The aiortc participants in this process gather on loopback only, like the nodes.
    ice.install_listen_ips(["127.0.0.1"])
    try:
        yield nodes
    finally:
        # The sockets first (their consumers leave or start their grace), then the nodes.
        await drop_open_clients()
        for node in nodes.values():
            await sync_to_async(node.stop)()


def tracks() -> dict[str, VideoStreamTrack | AudioStreamTrack]:
    return {"mic": AudioStreamTrack(), "camera": VideoStreamTrack()}


async def placed_on(code: str) -> str | None:
    node = await sync_to_async(registry.node_for_room)(code)
    return node.name if node is not None else None


def kill(node: SfuNodeProcess) -> None:
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGKILL)
    node.process.wait(10)


async def media_back(viewer: Browser, since: float, what: str) -> float:
    """Seconds from `since` until the viewer decodes video and audio again."""
    await wait_until(
        lambda: viewer.frames_since("video", since) >= 5 and viewer.frames_since("audio", since),
        30,
        what,
    )
    first_video = min(t for t in viewer.frame_times["video"] if t > since)
    return first_video - since


async def test_when_the_rooms_node_is_killed_the_call_moves_to_a_live_node_and_media_returns(
    two_nodes: dict[str, SfuNodeProcess],
    settings: Any,
) -> None:
    settings.SFU_NODE_TIMEOUT_SECONDS = 1.5
    settings.FAILOVER_CHECK_SECONDS = 0.2
    host = await make_user("host")
    guest = await make_user("guest")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Failover")
    ada = await participant(meeting, host, "Ada")
    bob = await participant(meeting, guest, "Bob")
    try:
        await ada.publish_tracks(tracks)
        await bob.publish_tracks(tracks)
        await media_back(bob, 0.0, "Bob decoding Ada before the kill")
        await media_back(ada, 0.0, "Ada decoding Bob before the kill")
        first = await placed_on(meeting.code)
        assert first in two_nodes
        (survivor,) = set(two_nodes) - {first}

        killed_at = time.monotonic()
        kill(two_nodes[first])

        for person in (ada, bob):
            await wait_until(
                lambda person=person: person.client.notified("mediaReset"), 20, "mediaReset"
            )
        told_after = time.monotonic() - killed_at
        assert await placed_on(meeting.code) == survivor
        assert ada.client.notified("mediaReset") == [{"reason": "serverMoved"}]
        # Nobody left the call: no peerClosed/newPeer, the same peer ids.
        assert not ada.client.notified("peerClosed")
        assert not bob.client.notified("peerClosed")

        told = time.monotonic()
        bob_back = await media_back(bob, told, "Bob decoding Ada on the live node")
        ada_back = await media_back(ada, told, "Ada decoding Bob on the live node")
        assert bob_back < MEDIA_BACK_WITHIN_SECONDS, bob_back
        assert ada_back < MEDIA_BACK_WITHIN_SECONDS, ada_back
        # Heartbeat silence (1.5 s here) + the watch: told within a few seconds of the kill.
        assert told_after < 10, told_after

        # The participants are whole on the new node: requests about their peers work.
        stats = await ada.client.request("getStats")
        assert stats is not None
    finally:
        await ada.close()
        await bob.close()


async def test_a_newcomer_joining_after_the_node_died_is_placed_on_a_live_node(
    two_nodes: dict[str, SfuNodeProcess],
    settings: Any,
) -> None:
    # Heartbeat silence alone would take two minutes here: the newcomer's own join notices.
    settings.SFU_NODE_TIMEOUT_SECONDS = 120
    settings.SFU_REQUEST_TIMEOUT_SECONDS = 1.0
    settings.FAILOVER_CHECK_SECONDS = 0.2
    host = await make_user("host")
    late = await make_user("late")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Failover")
    ada = await participant(meeting, host, "Ada")
    try:
        await ada.publish_tracks(tracks)
        first = await placed_on(meeting.code)
        assert first in two_nodes
        (survivor,) = set(two_nodes) - {first}
        kill(two_nodes[first])

        newcomer = SignalingClient(meeting.code, await session_cookie(late))
        assert (await newcomer.connect())[0]
        started = time.monotonic()
        frame = await newcomer.request_frame(
            "join", {"peerId": uuid.uuid4().hex, "displayName": "Late"}
        )
        assert frame["ok"], frame
        # One timed-out attempt, a ping, then the live node: not sfu_timeout after two.
        assert time.monotonic() - started < 4
        assert await placed_on(meeting.code) == survivor
        # The room moved, so the one already in the call follows it.
        await wait_until(lambda: ada.client.notified("mediaReset"), 20, "mediaReset for Ada")
        dead = await sync_to_async(registry.live_nodes().filter(name=first).exists)()
        assert not dead
    finally:
        await ada.close()
