"""A simulcast producer forwarded to one viewer: one layer at a time, moves at the target
layer's key frame, the viewer's stream continuous across moves (sequence numbers, timestamps,
VP8 picture ids and TL0PICIDX), key frames asked only of the layer that needs one, and nothing
sent while the video is not shown.

Real Router, Peer, Producer, Consumer and SendSlot; the packets are built here (aiortc cannot
send simulcast) and the slot's datagrams are kept instead of protected and sent.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import HeaderExtensions, RtpPacket

from sfu import vp8
from sfu.consumer import LOSS_RECOVER_SECONDS, Consumer
from sfu.forwarding import fan_out
from sfu.peer import Peer
from sfu.producer import Producer
from sfu.receiving import ReceiverBinding
from sfu.router import Router
from sfu.tests.test_sfu_send_slot import started_slot

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
HEIGHTS = (180, 360, 720)
# Each layer numbers its packets, timestamps and pictures on its own.
SEQUENCE_BASE = (1000, 20000, 60000)
TIMESTAMP_BASE = (5_000, 900_000, 4_000_000_000)
PICTURE_ID_BASE = (10, 5000, 32700)  # the top layer's 15-bit picture id wraps
TL0_BASE = (3, 100, 250)


def vp8_packet(layer: int, frame: int, *, keyframe: bool) -> RtpPacket:
    """One-packet frame `frame` of `layer`, VP8 with a 15-bit picture id and TL0PICIDX."""
    picture_id = (PICTURE_ID_BASE[layer] + frame) & 0x7FFF
    descriptor = bytes(
        [
            0x90,
            0xE0,
            0x80 | (picture_id >> 8),
            picture_id & 0xFF,
            (TL0_BASE[layer] + frame) & 0xFF,
            0,
        ]
    )
    if keyframe:
        height = HEIGHTS[layer]
        body = bytes([0x10, 0x02, 0x00]) + vp8.KEYFRAME_START_CODE
        body += (height * 16 // 9).to_bytes(2, "little") + height.to_bytes(2, "little")
    else:
        body = bytes([0x11, 0x02, 0x00]) + bytes(7)
    packet = RtpPacket(
        payload_type=96,
        marker=1,
        sequence_number=(SEQUENCE_BASE[layer] + frame) & 0xFFFF,
        timestamp=(TIMESTAMP_BASE[layer] + 3000 * frame) & 0xFFFFFFFF,
        ssrc=100 + layer,
        payload=descriptor + body + b"layer" + bytes([layer]),
    )
    packet.extensions = HeaderExtensions(mid="1", abs_send_time=0x10000)
    return packet


async def noop_emit(channel: str, message: dict[str, Any]) -> None:
    return None


@pytest.fixture
async def pcs() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield subscriber, publisher
    await subscriber.close()
    await publisher.close()


class Call:
    def __init__(self, subscriber_pc: RTCPeerConnection, publisher_pc: RTCPeerConnection):
        router = Router("room", noop_emit)
        self.producer = Producer(
            Peer(router, "pub", "chan.pub", "Pub"), "video", "camera", "1", VP8, ["q", "h", "f"]
        )
        # The publisher's receiver, for the producer's key-frame requests (PLI per layer).
        receiver = publisher_pc.addTransceiver("video", direction="recvonly").receiver
        self.producer.attach(ReceiverBinding(receiver, "video"), "1")
        for index, layer in enumerate(self.producer.layers):
            layer.ssrc = 100 + index
        viewer = Peer(router, "sub", "chan.sub", "Sub")
        self.consumer = Consumer(viewer, self.producer)
        self.producer.consumers[self.consumer.id] = self.consumer
        viewer.consumers[self.consumer.id] = self.consumer
        slot, self.output = started_slot(subscriber_pc, "video")
        self.consumer.take_slot(slot)
        self.consumer.negotiated = True
        self.consumer.update()
        self.frame = 0

    async def frames(self, count: int, *, keyframes: tuple[int, ...] = ()) -> None:
        """`count` frame times in which every layer sends one packet."""
        for _ in range(count):
            for layer in range(3):
                packet = vp8_packet(layer, self.frame, keyframe=layer in keyframes)
                await fan_out(self.producer, packet, layer)
            keyframes = ()
            self.frame += 1

    def sent(self) -> list[tuple[RtpPacket, vp8.Descriptor, int]]:
        """What the viewer received: packet, VP8 descriptor, and which layer it came from."""
        out = []
        for data in self.output.datagrams:
            packet = RtpPacket.parse(data, self.output.extensions_map)
            descriptor = vp8.parse(packet.payload)
            assert descriptor is not None
            out.append((packet, descriptor, packet.payload[-1]))
        return out

    def requests(self) -> list[int]:
        return [layer.keyframe_requests for layer in self.producer.layers]


def assert_continuous(sent: list[tuple[RtpPacket, vp8.Descriptor, int]]) -> None:
    for (before, before_vp8, _), (after, after_vp8, _) in itertools.pairwise(sent):
        assert after.ssrc == before.ssrc
        assert after.sequence_number == (before.sequence_number + 1) & 0xFFFF
        assert 0 < (after.timestamp - before.timestamp) & 0xFFFFFFFF < 90000
        assert after_vp8.picture_id == (before_vp8.picture_id + 1) & 0x7FFF
        assert after_vp8.tl0picidx == (before_vp8.tl0picidx + 1) & 0xFF


async def test_the_viewer_gets_one_layer_and_moves_at_the_targets_key_frame_without_a_seam(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    call = Call(*pcs)
    # Nothing said about the view: the top layer, from its first key frame on.
    assert call.consumer.target_layer == 2
    await call.frames(3)
    assert call.output.datagrams == []  # no key frame yet
    await call.frames(5, keyframes=(0, 1, 2))
    assert {layer for _, _, layer in call.sent()} == {2}
    assert call.consumer.layer == 2
    assert (call.producer.layers[2].width, call.producer.layers[2].height) == (1280, 720)
    # Each layer's descriptors carry a temporal layer id (all 0 here): one temporal layer.
    assert [layer.temporal_layers for layer in call.producer.layers] == [1, 1, 1]

    # A 320x180 tile: the lowest layer, asked for a key frame (and only it).
    requests = call.requests()
    call.consumer.set_view(320, 180)
    assert call.consumer.target_layer == 0
    assert call.requests() == [requests[0] + 1, requests[1], requests[2]]
    await call.frames(4)  # no key frame on layer 0 yet: the top layer goes on
    assert {layer for _, _, layer in call.sent()} == {2}
    await call.frames(6, keyframes=(0,))
    sent = call.sent()
    assert [layer for _, _, layer in sent[-6:]] == [0] * 6
    assert call.consumer.layer_switches == 1
    assert_continuous(sent)

    # Larger again (a 640x360 tile): the middle layer, still one stream.
    call.consumer.set_view(640, 360)
    assert call.consumer.target_layer == 1
    await call.frames(3, keyframes=(1,))
    sent = call.sent()
    assert [layer for _, _, layer in sent[-3:]] == [1] * 3
    assert_continuous(sent)
    assert call.consumer.layer_switches == 2


async def test_a_video_not_shown_gets_nothing_and_comes_back_at_a_key_frame(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    call = Call(*pcs)
    await call.frames(2, keyframes=(0, 1, 2))
    shown = len(call.output.datagrams)
    assert shown == 2

    call.consumer.set_view(0, 0)
    assert not call.consumer.forwarding
    await call.frames(5, keyframes=(0, 1, 2))
    assert len(call.output.datagrams) == shown

    call.consumer.set_view(1280, 720)
    assert call.consumer.forwarding
    await call.frames(2)  # delta frames: the viewer waits for a key frame
    assert len(call.output.datagrams) == shown
    await call.frames(2, keyframes=(2,))
    sent = call.sent()
    assert len(sent) == shown + 2
    # The stream continues from what the viewer last had (the skipped pictures are skipped).
    assert sent[shown][0].sequence_number == (sent[shown - 1][0].sequence_number + 1) & 0xFFFF


async def test_a_layer_that_goes_quiet_is_left_for_the_next_one_down(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    call = Call(*pcs)
    await call.frames(2, keyframes=(0, 1, 2))
    assert call.consumer.layer == 2
    # The publisher stops its top layer (short of uplink or CPU): only 0 and 1 keep coming.
    top = call.producer.layers[2]
    top.last_packet -= 5.0
    call.producer.next_layer_check = 0.0
    for frame in range(3):
        for layer in (0, 1):
            keyframe = frame == 1
            await fan_out(call.producer, vp8_packet(layer, 10 + frame, keyframe=keyframe), layer)
    assert call.consumer.target_layer == 1
    assert call.consumer.layer == 1
    assert call.sent()[-1][2] == 1


async def test_a_viewer_that_keeps_losing_gets_a_lower_layer_and_tries_higher_again_later(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    call = Call(*pcs)
    await call.frames(2, keyframes=(0, 1, 2))
    await call.frames(20)
    assert call.consumer.layer == 2
    start = time.monotonic()
    call.producer.check_layers(start)  # a review with nothing lost
    assert (call.consumer.loss_cap, call.consumer.target_layer) == (None, 2)

    # Its link drops a third of what it is sent: it NACKs them (answered or not, each counts).
    await call.frames(30)
    for packet, _, _ in call.sent()[-30::3]:
        await call.output._retransmit(packet.sequence_number)
    requests = call.requests()
    call.producer.check_layers(start + 0.5)
    assert (call.consumer.loss_cap, call.consumer.target_layer) == (1, 1)
    assert call.requests() == [requests[0], requests[1] + 1, requests[2]]  # only layer 1 asked
    await call.frames(3, keyframes=(1,))
    assert call.consumer.layer == 1

    # Clean for a while: still capped before LOSS_RECOVER_SECONDS, then one layer up.
    await call.frames(20)
    call.producer.check_layers(start + 5)
    assert call.consumer.target_layer == 1
    await call.frames(20)
    later = start + 0.5 + LOSS_RECOVER_SECONDS + 1
    for layer in call.producer.layers:
        layer.last_packet = later  # the publisher kept sending all three meanwhile
    call.producer.check_layers(later)
    assert (call.consumer.loss_cap, call.consumer.target_layer) == (None, 2)


async def test_a_step_up_that_fails_at_once_makes_the_next_try_wait_twice_as_long(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    call = Call(*pcs)
    await call.frames(2, keyframes=(0, 1, 2))
    start = time.monotonic()
    clock = [start]

    async def review(*, losing: bool, after: float) -> None:
        """`after` seconds later, a review of 30 packets of which a third were NACKed or none."""
        await call.frames(30)
        if losing:
            for packet, _, _ in call.sent()[-30::3]:
                await call.output._retransmit(packet.sequence_number)
        clock[0] += after
        for layer in call.producer.layers:
            layer.last_packet = clock[0]  # the publisher keeps sending all three
        call.producer.check_layers(clock[0])

    await review(losing=False, after=0.0)
    await review(losing=True, after=0.5)
    assert call.consumer.loss_cap == 1
    await review(losing=False, after=LOSS_RECOVER_SECONDS)
    assert call.consumer.loss_cap is None  # tried the top layer again...
    await review(losing=True, after=1.0)
    assert call.consumer.loss_cap == 1  # ...and it failed at once
    await review(losing=False, after=LOSS_RECOVER_SECONDS)
    assert call.consumer.loss_cap == 1  # so the next try waits 2 x LOSS_RECOVER_SECONDS
    await review(losing=False, after=LOSS_RECOVER_SECONDS + 0.5)
    assert call.consumer.loss_cap is None
