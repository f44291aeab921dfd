"""Temporal layers of a simulcast VP8 producer: a viewer whose share of its downlink is small
gets its layer at a lower frame rate rather than a smaller picture (the temporal layers above
its target are left out, its stream renumbered so the decoder sees no loss), moves down at the
next picture and up only at a sync frame of the layer above; the downlink's share spreads the
room round by round.

Real Router, Peer, Producer, Consumer, SendSlot and Downlink; packets built here in
libwebrtc's three-layer pattern (temporal ids 0, 2, 1, 2, ...), the slots' datagrams kept
instead of protected and sent.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import HeaderExtensions, RtpPacket

from sfu import vp8
from sfu.downlink import SPATIAL_UP_HOLD_SECONDS, choice_cost, stream_choices
from sfu.forwarding import fan_out
from sfu.tests.test_sfu_downlink import LAYER_BPS, Viewing, measured
from sfu.tests.test_sfu_layer_switching import Call

PATTERN = (0, 2, 1, 2)


def temporal_packet(layer: int, frame: int, *, keyframe: bool = False) -> RtpPacket:
    """Frame `frame` of `layer` as one packet: picture id and TL0PICIDX counting as a
    publisher's do, the temporal id from the pattern, a sync flag on the first TL1 and TL2
    frame after each TL0 frame (they refer to the TL0 frame only)."""
    temporal_id = PATTERN[frame % 4]
    tl0picidx = (frame // 4) & 0xFF
    sync = frame % 4 in (1, 2)
    picture_id = (1000 * layer + frame) & 0x7FFF
    descriptor = bytes(
        [
            0x90,  # X, S, partition 0
            0xE0,  # I, L, T
            0x80 | (picture_id >> 8),
            picture_id & 0xFF,
            tl0picidx,
            (temporal_id << 6) | (0x20 if sync else 0),
        ]
    )
    if keyframe:
        height = (180, 360, 720)[layer]
        body = bytes([0x10, 0x02, 0x00]) + vp8.KEYFRAME_START_CODE
        body += (height * 16 // 9).to_bytes(2, "little") + height.to_bytes(2, "little")
    else:
        body = bytes([0x11, 0x02, 0x00]) + bytes(7)
    packet = RtpPacket(
        payload_type=96,
        marker=1,
        sequence_number=(100 * layer + frame) & 0xFFFF,
        timestamp=(3000 * frame) & 0xFFFFFFFF,
        ssrc=100 + layer,
        payload=descriptor + body + bytes([frame & 0xFF]),
    )
    packet.extensions = HeaderExtensions(mid="1", abs_send_time=0x10000)
    return packet


async def frames(call: Call, first: int, count: int, *, keyframe_at: int = -1) -> None:
    """Frames first..first+count of layer 2 (the one the viewer is on)."""
    for frame in range(first, first + count):
        await fan_out(call.producer, temporal_packet(2, frame, keyframe=frame == keyframe_at), 2)


def received(call: Call) -> list[tuple[int, int, int, int]]:
    """(sequence number, picture id, temporal id, publisher's frame) of what the viewer got."""
    out = []
    for data in call.output.datagrams:
        packet = RtpPacket.parse(data, call.output.extensions_map)
        descriptor = vp8.parse(packet.payload)
        assert descriptor is not None
        out.append(
            (
                packet.sequence_number,
                descriptor.picture_id,
                descriptor.temporal_id,
                packet.payload[-1],
            )
        )
    return out


def assert_no_gaps(got: list[tuple[int, int, int, int]]) -> None:
    for before, after in itertools.pairwise(got):
        assert after[0] == (before[0] + 1) & 0xFFFF, (before, after)
        assert after[1] == (before[1] + 1) & 0x7FFF, (before, after)


@pytest.fixture
async def pcs() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield subscriber, publisher
    await subscriber.close()
    await publisher.close()


@pytest.fixture
async def call(pcs: tuple[RTCPeerConnection, RTCPeerConnection]) -> Call:
    call = Call(*pcs)
    await frames(call, 0, 8, keyframe_at=0)
    assert call.consumer.layer == 2
    assert call.producer.layers[2].temporal_layers == 3
    return call


@pytest.fixture
def viewing(pcs: tuple[RTCPeerConnection, RTCPeerConnection]) -> Viewing:
    return Viewing(*pcs)


async def test_a_lower_temporal_target_leaves_frames_out_without_gaps(call: Call) -> None:
    assert [frame for *_, frame in received(call)] == list(range(8))
    call.consumer.temporal_target = 0
    await frames(call, 8, 12)
    got = received(call)
    # From the next picture on, only the base layer: every fourth frame.
    assert [frame for *_, frame in got[8:]] == [8, 12, 16]
    assert_no_gaps(got)

    call.consumer.temporal_target = 1  # half the frame rate: TL0 and TL1
    await frames(call, 20, 8)
    got = received(call)
    # Up at the first TL1 sync frame (22), then TL0 and TL1 only.
    assert [frame for *_, frame in got[11:]] == [20, 22, 24, 26]
    assert_no_gaps(got)


async def test_moving_up_waits_for_a_sync_frame_of_the_layer_above(call: Call) -> None:
    call.consumer.temporal_target = 0
    await frames(call, 8, 5)  # 8 (TL0) is sent; 9..11 left out; 12 (TL0) sent
    call.consumer.temporal_target = 2
    # 13 is TL2 with sync: up to TL2 at once (frame 14, TL1 with sync, up to TL1... both fine).
    await frames(call, 13, 7)
    got = received(call)
    assert [frame for *_, frame in got[8:]] == [8, 12, 13, 14, 15, 16, 17, 18, 19]
    assert call.consumer.temporal_layer == 2
    assert_no_gaps(got)
    # A TL2 frame without the sync flag does not move a viewer at TL0 up.
    call.consumer.temporal_target = 0
    await frames(call, 20, 1)  # TL0: moves down at this picture
    call.consumer.temporal_target = 2
    await frames(call, 23, 1)  # frame 23: TL2, no sync
    assert call.consumer.temporal_layer == 0
    assert [frame for *_, frame in received(call)[-1:]] == [20]


async def test_the_share_spreads_the_room_and_prefers_frame_rate_cuts_above_180p(
    viewing: Viewing,
) -> None:
    anna = viewing.watch("anna")
    bert = viewing.watch("bert")
    viewing.router.active_speaker = "bert"
    for consumer in (anna, bert):
        for index, layer in enumerate(consumer.producer.layers):
            layer.temporal_layers = 3
            for temporal, share in enumerate((0.4, 0.2, 0.4)):
                measured(layer.temporal_meters[temporal], int(LAYER_BPS[index] * share))
    choices = stream_choices(anna, time.monotonic())
    assert choices == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]
    # Costs follow the measured temporal layers: 360p at 15 fps is 60 % of 360p.
    assert choice_cost(anna, (1, 1)) == pytest.approx(0.6 * 500_000 * 1.08)
    now = time.monotonic()
    viewing.downlink.share(5_000_000, now)
    assert [(c.bandwidth_cap, c.temporal_target) for c in (anna, bert)] == [(2, 2), (2, 2)]
    # 700 k from there: both 360p at 15 fps (648 k), not one at 720p and one left behind.
    viewing.downlink.share(700_000, now)
    assert [(c.bandwidth_cap, c.temporal_target) for c in (anna, bert)] == [(1, 1), (1, 1)]
    # 400 k: both 180p at full rate (324 k) — a smaller picture before fewer frames.
    viewing.downlink.share(400_000, now)
    assert [(c.bandwidth_cap, c.temporal_target) for c in (anna, bert)] == [(0, 2), (0, 2)]
    # 700 k again: not at once (a larger picture waits SPATIAL_UP_HOLD_SECONDS after a move
    # down), then with 20 % to spare: only the speaker moves up.
    viewing.share(700_000, now + 1)
    assert [(c.bandwidth_cap, c.temporal_target) for c in (anna, bert)] == [(0, 2), (0, 2)]
    later = now + SPATIAL_UP_HOLD_SECONDS + 1
    viewing.share(700_000, later)
    assert (bert.bandwidth_cap, bert.temporal_target) == (1, 1)
    assert (anna.bandwidth_cap, anna.temporal_target) == (0, 2)
    viewing.share(850_000, later)
    assert [(c.bandwidth_cap, c.temporal_target) for c in (anna, bert)] == [(1, 1), (1, 1)]
