"""Media through the signaling server: real aiortc peers, the real consumer stack, a real SFU
node. A publisher's frames reach a subscriber via produce -> negotiate -> newConsumer ->
receiveAnswer, and a moderator's mute pauses the microphone at the SFU."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from accounts.models import User
from rooms.models import Meeting
from rooms.tests.signaling_support import (
    SignalingClient,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("sfu_node"),
    pytest.mark.slow,
]


def new_pc() -> RTCPeerConnection:
    # An explicit, empty ICE server list: nothing outside 127.0.0.1 is ever contacted.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class Browser:
    """A participant with aiortc peer connections, like the browser client."""

    def __init__(self, client: SignalingClient) -> None:
        self.client = client
        self.send_pc: RTCPeerConnection | None = None
        self.recv_pc: RTCPeerConnection | None = None
        self.consumers: dict[str, dict[str, Any]] = {}
        self.frames: dict[str, int] = {}  # by track kind
        self._tasks: list[asyncio.Task[None]] = []
        client.on_server_request = self._on_server_request

    async def publish(self, tracks: dict[str, MediaStreamTrack]) -> dict[str, Any]:
        """Send these tracks ({source: track}) with one offer, as the client's produce."""
        pc = self.send_pc = new_pc()
        transceivers = {
            source: pc.addTransceiver(track, direction="sendonly")
            for source, track in tracks.items()
        }
        await pc.setLocalDescription(await pc.createOffer())  # gathers ICE fully
        sources = {t.mid: source for source, t in transceivers.items()}
        data = await self.client.request(
            "produce", {"sdp": pc.localDescription.sdp, "sources": sources}
        )
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="answer"))
        return data

    async def _on_server_request(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        assert method == "newConsumer"
        if self.recv_pc is None:
            self.recv_pc = new_pc()
            self.recv_pc.on("track", self._on_track)
        await self.recv_pc.setRemoteDescription(
            RTCSessionDescription(sdp=data["sdp"], type="offer")
        )
        for consumer in data["consumers"]:
            self.consumers[consumer["consumerId"]] = consumer
        await self.recv_pc.setLocalDescription(await self.recv_pc.createAnswer())
        return {"sdp": self.recv_pc.localDescription.sdp}

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.create_task(self._count(track)))

    async def _count(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except Exception:
                return
            self.frames[track.kind] = self.frames.get(track.kind, 0) + 1

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for pc in (self.send_pc, self.recv_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()


async def participant(meeting: Meeting, user: User, name: str) -> Browser:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, code
    browser = Browser(client)
    await client.join(name=name)
    return browser


async def test_a_subscriber_receives_the_publishers_video_through_newconsumer() -> None:
    host = await User.objects.acreate(email=f"pub-{uuid.uuid4().hex[:6]}@example.org")
    viewer = await User.objects.acreate(email=f"sub-{uuid.uuid4().hex[:6]}@example.org")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Demo")
    publisher = await participant(meeting, host, "Publisher")
    subscriber = await participant(meeting, viewer, "Subscriber")
    try:
        produced = await publisher.publish({"camera": VideoStreamTrack()})
        [producer] = produced["producers"]
        assert producer["kind"] == "video"
        assert producer["source"] == "camera"
        assert producer["mid"] == "0"
        await wait_until(lambda: subscriber.consumers, what="newConsumer")
        [consumer] = subscriber.consumers.values()
        assert consumer["producerId"] == producer["producerId"]
        assert consumer["peerId"] == publisher.client.peer_id
        assert consumer["source"] == "camera"
        await wait_until(lambda: subscriber.frames.get("video", 0) >= 10, 40, "decoded frames")

        # A late joiner sees the publisher's producer in the join response.
        late = SignalingClient(meeting.code, await session_cookie(viewer))
        assert (await late.connect())[0]
        data = await late.join(name="Late")
        by_peer = {p["peerId"]: p for p in data["peers"]}
        assert [p["producerId"] for p in by_peer[publisher.client.peer_id]["producers"]] == [
            producer["producerId"]
        ]

        stats = await subscriber.client.request("getStats")
        assert stats is not None
        await publisher.client.request("closeProducer", {"producerId": producer["producerId"]})
        await wait_until(
            lambda: subscriber.client.notified("consumerClosed"), what="consumerClosed"
        )
        assert subscriber.client.notified("consumerClosed")[0]["consumerId"] in subscriber.consumers
    finally:
        await publisher.close()
        await subscriber.close()


async def test_muterequested_pauses_the_microphone_and_tells_the_participant() -> None:
    host = await User.objects.acreate(email=f"host-{uuid.uuid4().hex[:6]}@example.org")
    talker = await User.objects.acreate(email=f"talk-{uuid.uuid4().hex[:6]}@example.org")
    meeting = await sync_to_async(Meeting.objects.create)(host=host, title="Demo")
    moderator = await participant(meeting, host, "Host")
    speaker = await participant(meeting, talker, "Talker")
    try:
        produced = await speaker.publish({"mic": AudioStreamTrack(), "camera": VideoStreamTrack()})
        mic = next(p for p in produced["producers"] if p["source"] == "mic")
        await wait_until(lambda: len(moderator.consumers) == 2, what="two consumers")
        mic_consumer = next(c for c in moderator.consumers.values() if c["source"] == "mic")
        await get_channel_layer().group_send(
            f"room.{meeting.code}",
            {
                "type": "room.event",
                "event": "muteRequested",
                "data": {},
                "target_peer_id": speaker.client.peer_id,
            },
        )
        await wait_until(lambda: speaker.client.notified("mutedByHost"), what="mutedByHost")
        await wait_until(
            lambda: moderator.client.notified(
                "consumerPaused", consumerId=mic_consumer["consumerId"]
            ),
            what="the mic consumer paused",
        )
        assert not moderator.client.notified("mutedByHost")
        # The participant may unmute themselves.
        await speaker.client.request("resumeProducer", {"producerId": mic["producerId"]})
        await wait_until(
            lambda: moderator.client.notified(
                "consumerResumed", consumerId=mic_consumer["consumerId"]
            )
        )
    finally:
        await moderator.close()
        await speaker.close()
