"""The receive half: a retransmission (RTX) that repairs a loss is forwarded, and one of a
packet already received — a browser's bandwidth probe or padding — is dropped, so viewers
do not get the publisher's probes as duplicates.

A real ReceiverBinding over a real aiortc receiver, a real Producer and Consumer on a slot
whose datagrams are kept instead of protected and sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket, wrap_rtx

from sfu.consumer import Consumer
from sfu.peer import Peer
from sfu.producer import Producer
from sfu.receiving import ReceiverBinding
from sfu.router import Router
from sfu.tests.test_sfu_send_slot import RecordingOutput, started_slot

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
)
MEDIA_SSRC, RTX_SSRC = 1000, 2000


async def noop_emit(channel: str, message: dict[str, Any]) -> None:
    return None


@pytest.fixture
async def pcs() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection]]:
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield publisher, subscriber
    await publisher.close()
    await subscriber.close()


def media(sequence_number: int) -> RtpPacket:
    # A VP8 key frame's first packet (S bit, P bit clear) for the first, then delta packets.
    keyframe = sequence_number == 1
    payload = (b"\x10\x00\x9d\x01\x2a" if keyframe else b"\x00\x01") + bytes([sequence_number])
    return RtpPacket(
        payload_type=96,
        sequence_number=sequence_number,
        timestamp=3000 * sequence_number,
        ssrc=MEDIA_SSRC,
        payload=payload,
    )


def rtx(sequence_number: int, rtx_sequence_number: int) -> RtpPacket:
    return wrap_rtx(
        media(sequence_number), payload_type=97, sequence_number=rtx_sequence_number, ssrc=RTX_SSRC
    )


def forwarded(output: RecordingOutput) -> list[int]:
    """The original packets the viewer got, by the last payload byte (their number here)."""
    return [RtpPacket.parse(data, output.extensions_map).payload[-1] for data in output.datagrams]


async def test_a_retransmission_is_forwarded_only_when_it_repairs_a_loss(
    pcs: tuple[RTCPeerConnection, RTCPeerConnection],
) -> None:
    publisher_pc, subscriber_pc = pcs
    router = Router("room", noop_emit)
    receiver = publisher_pc.addTransceiver("video", direction="recvonly").receiver
    binding = ReceiverBinding(receiver, "video")
    binding.codecs = {96: VP8, 97: RTX}
    binding.rtx_ssrc = {RTX_SSRC: MEDIA_SSRC}
    producer = Producer(Peer(router, "pub", "chan.pub", "Pub"), "video", "camera", "0", VP8)
    producer.attach(binding, "0")
    consumer = Consumer(Peer(router, "sub", "chan.sub", "Sub"), producer)
    producer.consumers[consumer.id] = consumer
    slot, output = started_slot(subscriber_pc, "video")
    consumer.take_slot(slot)
    consumer.negotiated = True
    consumer.update()

    for sequence_number in (1, 2, 3, 5):  # 4 is lost on the publisher's leg
        await binding.on_packet(media(sequence_number), 0)
    assert forwarded(output) == [1, 2, 3, 5]

    await binding.on_packet(rtx(2, 100), 0)  # a probe: a copy of a packet already here
    assert forwarded(output) == [1, 2, 3, 5]
    await binding.on_packet(rtx(4, 101), 0)  # the NACKed packet: it repairs the loss
    assert forwarded(output) == [1, 2, 3, 5, 4]
    await binding.on_packet(rtx(4, 102), 0)  # and again: now a duplicate
    await binding.on_packet(rtx(5, 103), 0)
    assert forwarded(output) == [1, 2, 3, 5, 4]
    assert binding.retransmissions == 4
    assert binding.duplicates_dropped == 3
    # A retransmission of a packet newer than any received (its original was lost) repairs.
    await binding.on_packet(rtx(6, 104), 0)
    assert forwarded(output) == [1, 2, 3, 5, 4, 6]
