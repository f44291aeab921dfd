"""Transport-wide congestion control between the SFU and its subscribers: offered on the SFU's
own offers (video) and never in its answers to publishers, every packet sent to a subscriber
numbered transport-wide (across its slots, retransmissions and probe padding included), and
the subscriber's feedback taken out of its RTCP before aiortc's parser, the rest left intact.

The negotiation runs through a real node with aiortc peers; the numbering on real slots over
real aiortc senders whose last step (SRTP and sendto) is replaced by a list.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.rtcrtpparameters import RTCRtpParameters
from aiortc.rtp import (
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSourceInfo,
    RtpPacket,
    unwrap_rtx,
)

from bench.sfu_media import pack_transport_feedback
from sfu import hooks
from sfu.forwarding import SendSlot, extension_value
from sfu.hooks import SenderOutput
from sfu.tests.helpers import Participant, SizedVideoTrack, ToneTrack, start_node, stop_node
from sfu.tests.test_sfu_send_slot import NTP_TIME, rtp

TRANSPORT_CC_EXTMAP = re.compile(r"^a=extmap:(\d+) " + re.escape(hooks.TRANSPORT_CC_URI), re.M)
TRANSPORT_CC_FEEDBACK = re.compile(r"^a=rtcp-fb:\d+ transport-cc", re.M)


class NumberingRecorder:
    """The downlink's side of SenderOutput (hooks.TransportSequence): numbers, and what was
    sent with each."""

    def __init__(self) -> None:
        self.sequence = 0
        self.sent_packets: list[tuple[int, int, float]] = []

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence - 1

    def sent(self, sequence: int, size: int, now: float) -> None:
        self.sent_packets.append((sequence, size, now))


class RecordingOutput(SenderOutput):
    def __init__(self, sender: RTCRtpSender, downlink: NumberingRecorder) -> None:
        super().__init__(sender, downlink, hooks.TRANSPORT_CC_EXTENSION.id)
        self.datagrams: list[bytes] = []

    def _send_datagram(self, data: bytes) -> None:
        self.datagrams.append(data)


@pytest.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield pc
    await pc.close()


def numbered_slot(
    pc: RTCPeerConnection, downlink: NumberingRecorder, mid: str
) -> tuple[SendSlot, RecordingOutput]:
    """A video slot of a subscriber that negotiated transport-cc (and RTX)."""
    transceiver = pc.addTransceiver("video", direction="sendonly")
    slot = SendSlot(transceiver, "video", ("video/vp8", "", ""))
    output = RecordingOutput(transceiver.sender, downlink)
    extensions = [e for e in HEADER_EXTENSIONS["video"] if e.uri != hooks.TRANSPORT_CC_URI]
    output.extensions_map.configure(
        RTCRtpParameters(headerExtensions=[*extensions, hooks.TRANSPORT_CC_EXTENSION])
    )
    transceiver.sender._RTCRtpSender__rtx_payload_type = 98  # type: ignore[attr-defined]
    slot.start(output, 97, 90000, mid)
    return slot, output


def transport_sequences(output: RecordingOutput) -> list[int]:
    numbers = []
    for data in output.datagrams:
        packet = RtpPacket.parse(data, output.extensions_map)
        if packet.payload_type == 98:
            packet = unwrap_rtx(packet, payload_type=97, ssrc=output.ssrc)
        assert packet.extensions.transport_sequence_number is not None
        numbers.append(packet.extensions.transport_sequence_number)
    return numbers


async def test_every_packet_to_a_subscriber_is_numbered_once_across_its_slots(
    pc: RTCPeerConnection,
) -> None:
    downlink = NumberingRecorder()
    camera, camera_out = numbered_slot(pc, downlink, "1")
    screen, screen_out = numbered_slot(pc, downlink, "2")
    for index in range(3):
        for slot in (camera, screen):
            packet = rtp("video", 500 + index, 9000 + 3000 * index)
            value = extension_value(packet, "video", NTP_TIME)
            assert slot.send(packet, True, value, NTP_TIME, 10.0 + index) > 0
    assert transport_sequences(camera_out) == [0, 2, 4]
    assert transport_sequences(screen_out) == [1, 3, 5]
    # Each numbered packet reaches the downlink with its size on the wire and its send time.
    assert [(seq, now) for seq, _, now in downlink.sent_packets] == [
        (0, 10.0),
        (1, 10.0),
        (2, 11.0),
        (3, 11.0),
        (4, 12.0),
        (5, 12.0),
    ]
    assert [size for _, size, _ in downlink.sent_packets[:2]] == [
        len(camera_out.datagrams[0]),
        len(screen_out.datagrams[0]),
    ]

    # A retransmission (RTX) and a probe's padding are packets on the link too: new numbers.
    first = RtpPacket.parse(camera_out.datagrams[0], camera_out.extensions_map)
    await camera_out._retransmit(first.sequence_number)
    assert camera_out.send_padding(13.0) > 0
    assert transport_sequences(camera_out) == [0, 2, 4, 6, 7]
    assert [seq for seq, _, _ in downlink.sent_packets[-2:]] == [6, 7]
    # The RTX carries the original packet, only its transport-wide number changed.
    resent = unwrap_rtx(
        RtpPacket.parse(camera_out.datagrams[3], camera_out.extensions_map),
        payload_type=97,
        ssrc=camera_out.ssrc,
    )
    assert (resent.sequence_number, resent.payload) == (first.sequence_number, first.payload)
    assert camera_out.retransmissions == 1
    assert camera_out.padding_packets == 1


def test_with_transport_sequence_rewrites_only_the_number() -> None:
    packet = RtpPacket(payload_type=96, sequence_number=7, timestamp=1, ssrc=9, payload=b"x")
    extensions = [*HEADER_EXTENSIONS["video"]]
    if hooks.TRANSPORT_CC_EXTENSION not in extensions:
        extensions.append(hooks.TRANSPORT_CC_EXTENSION)
    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(RTCRtpParameters(headerExtensions=extensions))
    packet.extensions.mid = "4"
    packet.extensions.abs_send_time = 0x0A0B0C
    packet.extensions.transport_sequence_number = 1
    data = packet.serialize(extensions_map)
    changed = hooks.with_transport_sequence(data, hooks.TRANSPORT_CC_EXTENSION.id, 0xFFFE)
    parsed = RtpPacket.parse(changed, extensions_map)
    assert parsed.extensions.transport_sequence_number == 0xFFFE
    assert (parsed.extensions.mid, parsed.extensions.abs_send_time) == ("4", 0x0A0B0C)
    assert len(changed) == len(data)
    # A packet without the extension, or without extensions at all, is left as it is.
    assert hooks.with_transport_sequence(data, 13, 5) == data
    bare = RtpPacket(payload_type=96, sequence_number=7, timestamp=1, ssrc=9, payload=b"x")
    assert hooks.with_transport_sequence(bare.serialize(), 6, 5) == bare.serialize()


def receiver_report() -> bytes:
    return RtcpRrPacket(
        ssrc=1,
        reports=[
            RtcpReceiverInfo(
                ssrc=2,
                fraction_lost=0,
                packets_lost=0,
                highest_sequence=10,
                jitter=0,
                lsr=0,
                dlsr=0,
            )
        ],
    ).__bytes__()


def source_description() -> bytes:
    return RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=1, items=[(1, b"cname")])]).__bytes__()


def test_transport_feedback_is_taken_out_of_compound_rtcp_and_the_rest_kept() -> None:
    feedback, _ = pack_transport_feedback(1, 2, 100, [(100, 5_000), (102, 9_000)], 0)
    taken: list[bytes] = []
    rest = hooks.split_transport_feedback(
        receiver_report() + feedback + source_description(), taken.append
    )
    assert taken == [feedback]
    assert rest == receiver_report() + source_description()
    kinds = [type(p).__name__ for p in RtcpPacket.parse(rest)]
    assert kinds == ["RtcpRrPacket", "RtcpSdesPacket"]
    # Feedback alone leaves nothing for aiortc; RTCP without feedback is passed on as it is.
    assert hooks.split_transport_feedback(feedback, taken.append) == b""
    plain = receiver_report() + source_description()
    assert hooks.split_transport_feedback(plain, taken.append) is plain
    # A truncated length stops the walk; what it could not read stays for aiortc to refuse.
    cut = receiver_report() + feedback[:-4]
    assert hooks.split_transport_feedback(cut, taken.append) is cut
    assert len(taken) == 2


@pytest.mark.django_db(transaction=True)
async def test_the_sfu_offers_transport_cc_to_subscribers_and_answers_publishers_without_it() -> (
    None
):
    node, task = await start_node()
    alice = Participant(node.channel, "room-twcc", "alice")
    bob = Participant(node.channel, "room-twcc", "bob")
    try:
        await alice.join()
        await bob.join()
        assert alice.send_pc is None
        await alice.publish([(SizedVideoTrack(320, 240), "camera"), (ToneTrack(), "mic")])
        assert alice.send_pc is not None
        # aiortc's own offer now has both, as Chrome's has: the SFU's answer has neither.
        offer = alice.send_pc.localDescription.sdp
        answer = alice.send_pc.remoteDescription.sdp
        assert TRANSPORT_CC_EXTMAP.search(offer)
        assert TRANSPORT_CC_FEEDBACK.search(offer)
        assert not TRANSPORT_CC_EXTMAP.search(answer)
        assert not TRANSPORT_CC_FEEDBACK.search(answer)

        async with asyncio.timeout(20):
            while not any(e["event"] == "negotiate" for e in bob.events):
                await asyncio.sleep(0.05)
        sdp = next(e for e in bob.events if e["event"] == "negotiate")["data"]["sdp"]
        sections = sdp.split("\r\nm=")[1:]
        video = [s for s in sections if s.startswith("video")]
        audio = [s for s in sections if s.startswith("audio")]
        assert video
        assert audio
        for section in video:
            assert TRANSPORT_CC_EXTMAP.search(section)
            assert TRANSPORT_CC_FEEDBACK.search(section)
        for section in audio:
            assert not TRANSPORT_CC_EXTMAP.search(section)
            assert not TRANSPORT_CC_FEEDBACK.search(section)
    finally:
        await alice.close()
        await bob.close()
        await stop_node(node, task)


def test_a_lone_feedback_packet_is_told_apart_by_its_clear_header() -> None:
    feedback, _ = pack_transport_feedback(1, 2, 100, [(100, 5_000), (102, 9_000)], 0)
    for trailer in hooks.SRTCP_TRAILER_LENGTHS:
        assert hooks.is_lone_transport_feedback(feedback + bytes(trailer))
        # Anything after it (here a receiver report) makes it a compound packet for aiortc.
        assert not hooks.is_lone_transport_feedback(feedback + receiver_report() + bytes(trailer))
        assert not hooks.is_lone_transport_feedback(receiver_report() + feedback + bytes(trailer))
    assert not hooks.is_lone_transport_feedback(feedback)  # no SRTCP trailer: not SRTCP
    assert not hooks.is_lone_transport_feedback(feedback[:4])


async def connected_pair() -> tuple[RTCPeerConnection, RTCPeerConnection]:
    """Two aiortc peers on this machine, connected (ICE and DTLS) to each other."""
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender.addTransceiver("video", direction="sendrecv")
    await sender.setLocalDescription(await sender.createOffer())
    await viewer.setRemoteDescription(sender.localDescription)
    await viewer.setLocalDescription(await viewer.createAnswer())
    await sender.setRemoteDescription(viewer.localDescription)
    async with asyncio.timeout(20):
        while not (sender.connectionState == viewer.connectionState == "connected"):
            await asyncio.sleep(0.02)
    return sender, viewer


async def test_lone_feedback_is_read_as_it_arrives_and_compound_rtcp_keeps_aiortcs_path() -> None:
    """libwebrtc sends each transport-wide report alone: the node reads it in aioice's
    datagram callback (no task: not through aiortc's receive queue); feedback inside a
    compound packet still reaches the callback, the rest of that packet reaches aiortc."""
    browser, node = await connected_pair()
    try:
        node_dtls = node.getTransceivers()[0].sender.transport
        browser_dtls = browser.getTransceivers()[0].sender.transport
        # (feedback, read at arrival as the hook says, read inside an asyncio task)
        taken: list[tuple[bytes, bool, bool]] = []
        handed_to_aiortc: list[bytes] = []
        aiortc_rtcp = node_dtls._handle_rtcp_data

        async def recording_rtcp(data: bytes) -> None:
            handed_to_aiortc.append(data)
            await aiortc_rtcp(data)

        node_dtls._handle_rtcp_data = recording_rtcp  # type: ignore[method-assign]
        hooks.on_transport_feedback(
            node_dtls,
            lambda data, at_arrival: taken.append(
                (data, at_arrival, asyncio.current_task() is not None)
            ),
        )
        received_before = node_dtls._RTCDtlsTransport__rx_packets  # type: ignore[attr-defined]

        lone, _ = pack_transport_feedback(1, 2, 100, [(100, 5_000), (101, 6_000)], 0)
        await browser_dtls._send_rtp(lone)  # aiortc protects RTCP as SRTCP
        async with asyncio.timeout(5):
            while not taken:
                await asyncio.sleep(0.01)
        assert taken == [(lone, True, False)]
        assert handed_to_aiortc == []
        assert node_dtls._RTCDtlsTransport__rx_packets == received_before + 1  # type: ignore[attr-defined]

        compound, _ = pack_transport_feedback(1, 2, 102, [(102, 7_000)], 1)
        await browser_dtls._send_rtp(receiver_report() + compound)
        async with asyncio.timeout(5):
            while len(taken) < 2:
                await asyncio.sleep(0.01)
        assert taken[1] == (compound, False, True)  # through aiortc's queue and DTLS task
        assert handed_to_aiortc == [receiver_report()]  # the feedback taken out first

        # A forged lone report (wrong authentication tag) is dropped, as aiortc drops it.
        forged = bytearray(lone + bytes(14))
        node_dtls.transport._connection.data_received(bytes(forged), 1)
        assert len(taken) == 2
    finally:
        await browser.close()
        await node.close()
