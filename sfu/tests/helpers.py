"""Real aiortc participants for the SFU tests, talking to a real node over the channel layer."""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtp import is_rtcp
from channels.layers import get_channel_layer

from sfu import client
from sfu.channel_api import request
from sfu.contract import JoinReply, OpenProducer, Source
from sfu.node import SfuNodeServer

POLL = 0.05


async def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or condition}")
        await asyncio.sleep(POLL)


class SizedVideoTrack(VideoStreamTrack):
    """A synthetic camera of a given size (aiortc's VideoStreamTrack timing, 30 fps)."""

    POSITIONS = 16

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.width = width
        self.height = height
        # A bar moving across a grey picture, so frames differ and inter frames are real.
        self._luma = []
        for position in range(self.POSITIONS):
            row = bytearray([100]) * width
            start = position * width // self.POSITIONS
            row[start : start + width // self.POSITIONS] = bytes([230]) * (width // self.POSITIONS)
            self._luma.append(bytes(row) * height)
        self._chroma = bytes([128]) * ((width // 2) * (height // 2))
        self._counter = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._counter += 1
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(self._luma[self._counter % self.POSITIONS])
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A microphone that plays a loud tone while `speaking`, silence otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.speaking = True
        self._phase = 0

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        if not self.speaking:
            return frame
        samples = frame.samples
        rate = frame.sample_rate
        tone = array.array(
            "h",
            (
                int(math.sin(2 * math.pi * 440 * (i + self._phase) / rate) * 16000)
                for i in range(samples)
            ),
        )
        self._phase += samples
        loud = av.AudioFrame(format="s16", layout="mono", samples=samples)
        loud.planes[0].update(tone.tobytes())
        loud.sample_rate = rate
        loud.pts = frame.pts
        loud.time_base = fractions.Fraction(1, rate)
        return loud


def register_rtx_ssrcs(pc: RTCPeerConnection) -> None:
    """Give this aiortc client what browsers do right: route RTX by its SSRC.

    aiortc's RTCDtlsTransport._register_rtp_receiver registers only the media SSRC, so a PC
    receiving two video m-lines (camera + screen) drops every retransmission (the RTX payload
    type is shared). The SFU fixes this for itself in sfu/hooks.py; the test subscriber needs
    the same fix, or it would measure aiortc's client bug instead of the SFU.
    """
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        if getattr(transport, "_test_rtx_fixed", False):
            continue
        original = transport._register_rtp_receiver

        def register(receiver, parameters, original=original, transport=transport) -> None:  # type: ignore[no-untyped-def]
            original(receiver, parameters)
            rtx = [e.rtx.ssrc for e in parameters.encodings if e.rtx]
            if rtx:
                transport._rtp_router.register_receiver(receiver, ssrcs=rtx, payload_types=[])

        transport._register_rtp_receiver = register
        transport._test_rtx_fixed = True


def drop_outgoing_rtp(pc: RTCPeerConnection, loss: float) -> None:
    """Lose `loss` of the RTP packets this PC sends (RTCP goes through)."""
    transport = pc.getTransceivers()[0].sender.transport
    original = transport._send_rtp

    async def lossy_send(data: bytes) -> None:
        if not is_rtcp(data) and random.random() < loss:
            return
        await original(data)

    transport._send_rtp = lossy_send


def drop_incoming_rtp(pc: RTCPeerConnection, loss: float) -> None:
    """Lose `loss` of the RTP packets this PC receives, after decryption."""
    transport = pc.getTransceivers()[0].receiver.transport
    if getattr(transport, "_test_lossy", False):
        return
    original = transport._handle_rtp_data

    async def lossy_handle(data: bytes, arrival_time_ms: int) -> None:
        if random.random() < loss:
            return
        await original(data, arrival_time_ms)

    transport._handle_rtp_data = lossy_handle
    transport._test_lossy = True


@dataclass
class ReceivedTrack:
    track: MediaStreamTrack
    mid: str | None
    frames: list[tuple[float, int, int]] = field(default_factory=list)  # (time, width, height)
    audio_frames: int = 0

    def frames_since(self, since: float) -> int:
        return sum(1 for t, _, _ in self.frames if t >= since)


class Participant:
    """One meeting participant: a send PC (it offers), a receive PC (the SFU offers)."""

    def __init__(self, node_channel: str, room: str, name: str) -> None:
        self.node_channel = node_channel
        self.room = room
        self.peer_id = f"{name}-{uuid.uuid4().hex[:6]}"
        self.sfu = client.NodeClient(node_channel, room)
        self.events: list[dict[str, Any]] = []
        self.send_pc: RTCPeerConnection | None = None
        self.recv_pc: RTCPeerConnection | None = None
        self.received: dict[str, ReceivedTrack] = {}  # by mid
        self.consumers: dict[str, dict[str, Any]] = {}  # by consumer id
        self.producers: dict[str, OpenProducer] = {}  # by producer id
        self.incoming_loss = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self._channel = ""

    async def call(self, method: str, **data: Any) -> dict[str, Any]:
        """Any request as this peer, untyped: for probing the API with data of one's choosing."""
        return await request(
            self.node_channel, method, {"room": self.room, "peer_id": self.peer_id, **data}
        )

    async def join(self) -> JoinReply:
        # A plain channel (no "!"): channels_redis reads it directly, outside the shared
        # receive lock of process-local channels, so cancelling this reader at the end of a
        # test cannot wedge the layer for the request/reply channels.
        self._channel = f"test-peer.{uuid.uuid4().hex}"
        self._tasks.append(asyncio.create_task(self._receive_events()))
        return await self.sfu.join(self.peer_id, self._channel, self.peer_id)

    async def _receive_events(self) -> None:
        layer = get_channel_layer()
        while True:
            message = await layer.receive(self._channel)
            self.events.append(message)
            if message["event"] == "negotiate":
                await self._answer(message["data"])

    async def _answer(self, data: dict[str, Any]) -> None:
        if self.recv_pc is None:
            self.recv_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            self.recv_pc.on("track", self._on_track)
        pc = self.recv_pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="offer"))
        register_rtx_ssrcs(pc)
        if self.incoming_loss:
            drop_incoming_rtp(pc, self.incoming_loss)
        for consumer in data["consumers"]:
            self.consumers[consumer["consumer_id"]] = consumer
        await pc.setLocalDescription(await pc.createAnswer())
        await self.sfu.receive_answer(self.peer_id, data["negotiation_id"], pc.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.recv_pc is not None
        mid = next(
            (t.mid for t in self.recv_pc.getTransceivers() if t.receiver.track is track), None
        )
        received = ReceivedTrack(track=track, mid=mid)
        self.received[mid or track.id] = received
        self._tasks.append(asyncio.create_task(self._count_frames(received)))

    async def _count_frames(self, received: ReceivedTrack) -> None:
        while True:
            try:
                frame = await received.track.recv()
            except Exception:
                return
            if isinstance(frame, av.VideoFrame):
                received.frames.append((time.monotonic(), frame.width, frame.height))
            else:
                received.audio_frames += 1

    def received_for(self, consumer_id: str) -> ReceivedTrack | None:
        mid = self.consumers.get(consumer_id, {}).get("mid")
        return self.received.get(mid) if mid else None

    def consumer_of(self, producer_id: str) -> str | None:
        for consumer_id, consumer in self.consumers.items():
            if consumer["producer_id"] == producer_id and not self.saw(
                "consumerClosed", consumer_id=consumer_id
            ):
                return consumer_id
        return None

    def saw(self, event: str, **match: Any) -> bool:
        return any(
            e["event"] == event and all(e["data"].get(k) == v for k, v in match.items())
            for e in self.events
        )

    async def publish(
        self,
        tracks: list[tuple[MediaStreamTrack, Source]],
        outgoing_loss: float = 0.0,
        video_codec: str | None = None,
    ) -> list[OpenProducer]:
        if self.send_pc is None:
            self.send_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc = self.send_pc
        sources: dict[RTCRtpTransceiver, Source] = {}
        for track, source in tracks:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            if video_codec and track.kind == "video":
                transceiver.setCodecPreferences(
                    [
                        c
                        for c in RTCRtpSender.getCapabilities("video").codecs
                        if c.mimeType.lower() == video_codec.lower()
                    ]
                )
            sources[transceiver] = source
        await pc.setLocalDescription(await pc.createOffer())
        by_mid = {t.mid: s for t, s in sources.items() if t.mid is not None}
        reply = await self.sfu.produce(self.peer_id, pc.localDescription.sdp, by_mid)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        if outgoing_loss:
            drop_outgoing_rtp(pc, outgoing_loss)
        for producer in reply["producers"]:
            self.producers[producer["producer_id"]] = producer
        return [p for p in reply["producers"] if p["mid"] in by_mid]

    async def stop_sending(self, producer_id: str) -> list[OpenProducer]:
        """Turn the producer's m-line inactive and re-offer, as a browser removing a track."""
        assert self.send_pc is not None
        mid = self.producers[producer_id]["mid"]
        transceiver = next(t for t in self.send_pc.getTransceivers() if t.mid == mid)
        transceiver.direction = "inactive"
        pc = self.send_pc
        await pc.setLocalDescription(await pc.createOffer())
        reply = await self.sfu.produce(self.peer_id, pc.localDescription.sdp, {})
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        return reply["producers"]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for pc in (self.send_pc, self.recv_pc):
            if pc is not None:
                await pc.close()


async def start_node(name: str | None = None) -> tuple[SfuNodeServer, asyncio.Task[None]]:
    node = SfuNodeServer(name or f"test-{uuid.uuid4().hex[:8]}")
    task = asyncio.create_task(node.run())
    async with asyncio.timeout(30):  # generous: the suite runs on 2 busy cores
        while True:
            try:
                await client.ping(node.channel, timeout=1.0)
                break
            except Exception:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    return node, task


async def stop_node(node: SfuNodeServer, task: asyncio.Task[None]) -> None:
    node.stop()
    await asyncio.wait_for(task, 30)
