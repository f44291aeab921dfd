"""A viewer's downlink estimate shared among the videos it watches: screen shares and
single-layer streams first, then the active speaker, then larger tiles; moving up needs room
to spare; a tile that needs little wants little; the viewer's feedback is what drives it, and
without feedback nothing is capped; wanting more than the estimate starts a probe whose
padding goes out on the viewer's own transport.

Real Router, Peer, Producer, Consumer, SendSlot and Downlink; packets built here (aiortc
cannot send simulcast) and the slots' datagrams kept instead of protected and sent. The
layers' bitrates are set as a publisher's would be measured, so the shares are exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpParameters
from aiortc.rtp import RtpPacket

from bench.sfu_media import pack_transport_feedback
from sfu import downlink as downlink_module
from sfu import hooks
from sfu.consumer import Consumer
from sfu.downlink import Downlink
from sfu.forwarding import RateMeter, SendSlot, fan_out
from sfu.hooks import SenderOutput
from sfu.peer import Peer
from sfu.producer import Producer
from sfu.receiving import ReceiverBinding
from sfu.router import Router
from sfu.tests.test_sfu_layer_switching import vp8_packet

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
LAYER_BPS = (150_000, 500_000, 1_500_000)


async def noop_emit(channel: str, message: dict[str, Any]) -> None:
    return None


class RecordingOutput(SenderOutput):
    def __init__(self, sender: RTCRtpSender, downlink: Downlink) -> None:
        super().__init__(sender, downlink, hooks.TRANSPORT_CC_EXTENSION.id)
        self.datagrams: list[bytes] = []

    def _send_datagram(self, data: bytes) -> None:
        self.datagrams.append(data)


def measured(meter: RateMeter, bps: int) -> None:
    """The meter as if it had just measured `bps` over its last window."""
    meter.bitrate_bps = bps
    meter._window_start = time.monotonic()


class Viewing:
    """One viewer and the publishers it watches, each over a slot of its receive transport."""

    def __init__(self, subscriber_pc: RTCPeerConnection, publisher_pc: RTCPeerConnection):
        self.events: list[dict[str, Any]] = []

        async def record(channel: str, message: dict[str, Any]) -> None:
            self.events.append(message)

        self.router = Router("room", record)
        self.viewer = Peer(self.router, "viewer", "chan.viewer", "Viewer")
        self.downlink = self.viewer.receive.downlink
        self.subscriber_pc = subscriber_pc
        self.publisher_pc = publisher_pc
        self.outputs: dict[str, RecordingOutput] = {}

    def watch(self, name: str, source: str = "camera", *, rids: bool = True) -> Consumer:
        publisher = Peer(self.router, name, f"chan.{name}", name)
        producer = Producer(
            publisher, "video", source, name, VP8, ["q", "h", "f"] if rids else None
        )
        receiver = self.publisher_pc.addTransceiver("video", direction="recvonly").receiver
        producer.attach(ReceiverBinding(receiver, "video"), name)
        now = time.monotonic()
        producer.first_packet = now
        for index, layer in enumerate(producer.layers):
            layer.ssrc = 100 + index
            layer.last_packet = now
            measured(layer.meter, LAYER_BPS[index] if rids else LAYER_BPS[2])
        consumer = Consumer(self.viewer, producer)
        producer.consumers[consumer.id] = consumer
        self.viewer.consumers[consumer.id] = consumer
        transceiver = self.subscriber_pc.addTransceiver("video", direction="sendonly")
        slot = SendSlot(transceiver, "video", ("video/vp8", "", ""))
        output = RecordingOutput(transceiver.sender, self.downlink)
        extensions = [e for e in HEADER_EXTENSIONS["video"] if e.uri != hooks.TRANSPORT_CC_URI]
        output.extensions_map.configure(
            RTCRtpParameters(headerExtensions=[*extensions, hooks.TRANSPORT_CC_EXTENSION])
        )
        transceiver.sender._RTCRtpSender__rtx_payload_type = 98  # type: ignore[attr-defined]
        slot.start(output, 97, 90000, name)
        self.viewer.receive.slots.append(slot)
        self.outputs[name] = output
        consumer.take_slot(slot)
        consumer.negotiated = True
        consumer.update()
        consumer.set_view(1280, 720)
        if not rids:
            measured(consumer.meter, LAYER_BPS[2])
        return consumer

    def share(self, estimate_bps: int, at: float) -> None:
        """The downlink's share at time `at`, the publishers having sent every layer until
        then."""
        for consumer in self.viewer.consumers.values():
            for layer in consumer.producer.layers:
                layer.last_packet = at
        self.downlink.share(estimate_bps, at)

    async def frames(self, consumer: Consumer, count: int, *, keyframe: bool = False) -> None:
        """`count` frames of every layer of `consumer`'s producer, the first a key frame."""
        producer = consumer.producer
        for frame in range(count):
            for layer in range(len(producer.layers)):
                packet = vp8_packet(layer, frame, keyframe=keyframe and frame == 0)
                await fan_out(producer, packet, layer)


@pytest.fixture
async def viewing() -> AsyncIterator[Viewing]:
    subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield Viewing(subscriber, publisher)
    await subscriber.close()
    await publisher.close()


def caps(*consumers: Consumer) -> list[int | None]:
    return [c.bandwidth_cap for c in consumers]


async def test_the_estimate_goes_to_the_active_speaker_first_and_moving_up_needs_room(
    viewing: Viewing,
) -> None:
    anna = viewing.watch("anna")
    bert = viewing.watch("bert")
    viewing.router.active_speaker = "bert"
    now = time.monotonic()

    # Each layer costs its measured rate and 8 % for headers: 162 k, 540 k, 1.62 M.
    viewing.downlink.share(3_800_000, now)  # two 720p (3.24 M) fit with room to spare
    assert caps(anna, bert) == [2, 2]
    assert (anna.target_layer, bert.target_layer) == (2, 2)

    viewing.downlink.share(1_200_000, now)  # two 360p fit, one 720p does not
    assert caps(anna, bert) == [1, 1]

    requests = [layer.keyframe_requests for layer in anna.producer.layers]
    viewing.downlink.share(800_000, now)  # the speaker keeps 360p, the other gets 180p
    assert caps(anna, bert) == [0, 1]
    assert (anna.target_layer, bert.target_layer) == (0, 1)
    # Anna's move down asks her publisher for a key frame of layer 0 only.
    after = [layer.keyframe_requests for layer in anna.producer.layers]
    assert after == [requests[0] + 1, requests[1], requests[2]]

    # Anna back to 360p: both at 360p need 1.08 M. Not within SPATIAL_UP_HOLD_SECONDS of her
    # move down, whatever the estimate; after it, only with 20 % to spare (a larger picture
    # costs a key frame): 1.25 M is not enough, 1.4 M is.
    viewing.share(5_000_000, now + 1)
    assert caps(anna, bert) == [0, 1]
    later = now + downlink_module.SPATIAL_UP_HOLD_SECONDS + 1
    viewing.share(1_250_000, later)
    assert caps(anna, bert) == [0, 1]
    viewing.share(1_400_000, later)
    assert caps(anna, bert) == [1, 1]
    # Staying needs only the estimate itself: 1.1 M keeps both where they are now.
    viewing.share(1_100_000, later)
    assert caps(anna, bert) == [1, 1]


async def test_single_layer_streams_take_their_share_before_any_camera_is_raised(
    viewing: Viewing,
) -> None:
    screen = viewing.watch("screen", "screen", rids=False)  # sends 1.5 M, one layer
    anna = viewing.watch("anna")
    bert = viewing.watch("bert")
    now = time.monotonic()
    viewing.downlink.share(2_300_000, now)
    # 0.8 M left after the screen: both cameras at 180p (0.32 M), one at 360p (0.7 M).
    assert screen.bandwidth_cap is None
    assert sorted(caps(anna, bert)) == [0, 1]
    viewing.downlink.share(1_600_000, now)  # nothing left: the lowest layer, never nothing
    assert caps(anna, bert) == [0, 0]
    assert anna.forwarding
    assert bert.forwarding


async def test_the_larger_tile_is_raised_first_and_a_small_tile_wants_little(
    viewing: Viewing,
) -> None:
    small = viewing.watch("small")
    large = viewing.watch("large")
    small.set_view(320, 180)
    now = time.monotonic()
    viewing.downlink.share(900_000, now)
    assert caps(small, large) == [0, 1]
    probes = viewing.downlink.probes
    viewing.downlink.share(5_000_000, now)
    # A 180-line tile needs the 180p layer whatever the estimate allows.
    assert caps(small, large) == [0, 2]
    assert small.target_layer == 0
    assert viewing.downlink.probes == probes  # wanting no more than the estimate: no probe


async def test_wanting_more_than_the_estimate_probes_with_padding_on_the_viewers_transport(
    viewing: Viewing,
) -> None:
    anna = viewing.watch("anna")
    await viewing.frames(anna, 3, keyframe=True)  # something to pad with
    output = viewing.outputs["anna"]
    before = len(output.datagrams)
    now = time.monotonic()
    viewing.downlink.share(700_000, now)
    assert anna.bandwidth_cap == 1
    assert viewing.downlink.probes == 1
    assert viewing.downlink.probe_cluster >= 0
    async with asyncio.timeout(5):
        while viewing.downlink.probe_until > time.monotonic():
            await asyncio.sleep(0.02)
    await asyncio.sleep(0)  # let the padding task finish
    padding = output.padding_packets
    assert padding > 0
    assert len(output.datagrams) == before + padding
    padded = sum(len(d) for d in output.datagrams[before:])
    # The probe reached for twice the estimate (1.4 M) over PROBE_SECONDS, in small packets
    # here (as many as the event loop's ticks allowed on a busy machine).
    target_bytes = 2 * 700_000 / 8 * downlink_module.PROBE_SECONDS
    assert 0.3 * target_bytes <= padded <= 1.2 * target_bytes
    # Padding is RTX: the viewer's decoder sees duplicates of a packet it has, nothing new.
    for data in output.datagrams[before:]:
        assert RtpPacket.parse(data, output.extensions_map).payload_type == 98
    # No second probe while the first waits for its verdict.
    downlink = viewing.downlink
    downlink.share(700_000, time.monotonic())
    assert downlink.probes == 1
    # Nothing reported it (no feedback here): a failure after PROBE_RESULT_TIMEOUT_S, and the
    # next probe waits PROBE_BACKOFF_START_S (1 s).
    ended = downlink.probe_until
    downlink.allocate(ended + 0.5)  # no feedback: allocate uncaps and judges nothing
    assert downlink.probes == 1
    downlink._review_probe(ended + 1.1)
    assert downlink.probes_succeeded == 0
    downlink.share(700_000, ended + 1.5)
    assert downlink.probes == 1
    downlink.share(700_000, ended + 2.2)
    assert downlink.probes == 2
    downlink.close()  # its padding would run until that (future) time


async def test_feedback_drives_the_estimate_and_without_it_nothing_is_capped(
    viewing: Viewing,
) -> None:
    anna = viewing.watch("anna")
    downlink = viewing.downlink
    await viewing.frames(anna, 30, keyframe=True)
    output = viewing.outputs["anna"]
    sent = [
        RtpPacket.parse(data, output.extensions_map).extensions.transport_sequence_number
        for data in output.datagrams
    ]
    assert sent == list(range(len(sent)))
    assert not downlink.estimating(time.monotonic())

    # The viewer reports every packet, 2 ms apart: its link keeps up.
    received = [(seq, 1_000_000 + 2_000 * i) for i, seq in enumerate(sent) if seq is not None]
    feedback, reported = pack_transport_feedback(7, 0, 0, received, 0)
    assert reported == len(received)
    downlink.on_feedback(feedback)
    assert downlink.feedback_packets == 1
    assert downlink.estimating(time.monotonic())
    stats = downlink.describe()
    assert stats["estimating"]
    assert stats["estimate_bps"] > 0

    # Malformed feedback from outside is counted and dropped.
    downlink.on_feedback(b"\x8f\xcd\x00\x09" + bytes(8))
    downlink.on_feedback(feedback[:-5])
    assert (downlink.feedback_packets, downlink.bad_feedback) == (1, 2)

    # A small estimate caps Anna; feedback that stops uncaps her at the next allocation.
    downlink.share(700_000, time.monotonic())
    assert anna.bandwidth_cap == 1
    later = time.monotonic() + downlink_module.FEEDBACK_STALE_SECONDS + 1
    downlink.allocate(later)
    assert anna.bandwidth_cap is None
    assert anna.target_layer == 2


async def test_a_viewer_whose_downlink_is_estimated_is_not_held_down_by_the_loss_cap(
    viewing: Viewing,
) -> None:
    anna = viewing.watch("anna")
    output = viewing.outputs["anna"]
    await viewing.frames(anna, 30, keyframe=True)
    # The viewer NACKs a third of what it got: without an estimate, that caps it a layer down.
    for data in output.datagrams[::3]:
        await output._retransmit(RtpPacket.parse(data, output.extensions_map).sequence_number)
    now = time.monotonic()
    anna.review_losses(now, top_layer=2)
    assert anna.loss_cap == 1

    # With its browser's transport-wide feedback coming in, the estimate answers its losses.
    sent = [
        RtpPacket.parse(d, output.extensions_map).extensions.transport_sequence_number
        for d in output.datagrams
    ]
    received = [(seq, 1_000_000 + 2_000 * i) for i, seq in enumerate(sent) if seq is not None]
    feedback, _ = pack_transport_feedback(7, 0, received[0][0], received, 0)
    viewing.downlink.on_feedback(feedback)
    await viewing.frames(anna, 30)
    for data in output.datagrams[-30::3]:
        await output._retransmit(RtpPacket.parse(data, output.extensions_map).sequence_number)
    anna.review_losses(time.monotonic(), top_layer=2)
    assert anna.loss_cap is None


async def test_the_viewer_is_told_when_its_own_downlink_holds_its_videos_back(
    viewing: Viewing,
) -> None:
    anna = viewing.watch("anna")
    downlink = viewing.downlink

    def told() -> list[tuple[bool, int]]:
        return [
            (e["data"]["limited"], e["data"]["estimate_bps"])
            for e in viewing.events
            if e["event"] == "downlinkLimited" and e["peer_id"] == "viewer"
        ]

    now = time.monotonic()
    hold = downlink_module.LIMITED_HOLD_SECONDS

    share = viewing.share
    share(3_800_000, now)
    await asyncio.sleep(0)
    assert told() == []  # nothing held back: nothing said
    # Anna's 720p tile gets 360p: said once it has lasted LIMITED_HOLD_SECONDS (not while an
    # estimate ramps up at the start of a call), and said once.
    share(700_000, now + 1.0)
    share(700_000, now + 0.9 + hold)
    await asyncio.sleep(0)
    assert told() == []
    share(650_000, now + 1.0 + hold)
    share(650_000, now + 1.5 + hold)
    await asyncio.sleep(0)
    assert told() == [(True, 650_000)]
    # Room again, briefly: nothing; for LIMITED_HOLD_SECONDS: said (720p again waits
    # SPATIAL_UP_HOLD_SECONDS after each move down).
    up_hold = downlink_module.SPATIAL_UP_HOLD_SECONDS
    share(3_800_000, now + 1.0 + up_hold)
    share(700_000, now + 1.5 + up_hold)
    share(3_800_000, now + 2.0 + up_hold)
    assert anna.bandwidth_cap == 1  # held down
    again = now + 1.6 + 2 * up_hold
    share(3_800_000, again)
    assert anna.bandwidth_cap == 2
    share(3_800_000, again + hold - 0.1)
    await asyncio.sleep(0)
    assert told() == [(True, 650_000)]
    share(3_800_000, again + hold)
    await asyncio.sleep(0)
    assert told() == [(True, 650_000), (False, 3_800_000)]
    assert anna.bandwidth_cap == 2
    downlink.close()
