"""The load clients' browser-like RTCP feedback (bench/sfu_media.py BrowserFeedback).

    .venv/bin/python -m pytest bench/test_sfu_feedback.py -q

Unit tests drive BrowserFeedback by hand (synthetic RTP, a clock passed in) and parse every
compound packet it builds with aiortc's own RTCP parser, and every transport-wide feedback
packet with a decoder written here from draft-holmer-rmcat-transport-wide-cc-extensions-01
(aiortc has none: its parser reads FMT 15 as NACK items and rejects libwebrtc's padding). The
serializer is checked against packets assembled by hand from the draft's chunk examples and
round-trips through that decoder. The node test runs a real SFU node in-process, an aiortc
publisher and a bench load-client Subscriber in "browser" mode, and checks at the node that the
RTCP arrives and is acted on: Receiver Reports become the consumer's remote statistics (with an
RTT, so LSR/DLSR echo the node's Sender Reports), REMB arrives, a dropped packet is NACKed and
retransmitted (as RTX), and an unrecoverable loss ends in a PLI. The Janus test (skipped
without `janus`) runs Janus's VideoRoom through bench/sfu_janus.py: a browser-mode subscriber
answers with transport-wide-cc, gets transport-wide sequence numbers, sends transport-wide
feedback instead of REMB, and Janus's own parser (its log at debug level 7) reads every field
of it as sent.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import shutil
import signal
import struct
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpHeaderExtensionParameters,
    RTCRtpParameters,
)
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

from bench import sfu_clients
from sfu import client as sfu_client
from sfu.tests.helpers import Participant, SizedVideoTrack, start_node, stop_node, wait_until

sfu_media = sfu_clients.sfu_media  # the module the load client uses (imported as top-level)

REPO = Path(__file__).resolve().parents[1]
VP8_KEY = b"\x10\x00" + bytes(1000)  # descriptor S=1, partition 0; frame tag P=0 (key)
VP8_DELTA = b"\x10\x01" + bytes(1000)  # P=1: an inter frame (~720 kbps at 90 packets/s)
TWCC_URI = sfu_media.TRANSPORT_WIDE_CC_URI


# --- transport-wide feedback, decoded from the draft ---------------------------------------
@dataclass
class TransportFeedback:
    """An RTPFB FMT 15 packet as draft-holmer-rmcat-transport-wide-cc-extensions-01 section
    3.1 lays it out; `packets`: (sequence number, status symbol, receive delta in 250 us ticks
    or None); `arrivals`: sequence number -> arrival in us, from the reference time (64 ms
    units) plus the deltas so far (modulo the 24-bit reference time's wrap)."""

    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    status_count: int
    reference: int
    feedback_count: int
    chunks: list[int]
    packets: list[tuple[int, int, int | None]]
    arrivals: dict[int, int]
    padded: bool


def decode_transport_feedback(data: bytes) -> TransportFeedback:
    first, packet_type, length = struct.unpack("!BBH", data[:4])
    assert first >> 6 == 2, "version 2"
    assert first & 0x1F == 15, "FMT 15"
    assert packet_type == RTCP_RTPFB
    end = 4 * (length + 1)
    assert end == len(data), "one packet, its length in 32-bit words minus one"
    padded = bool(first & 0x20)
    if padded:  # P: the last octet counts the padding octets (RFC 3550 6.4.1)
        assert 0 < data[end - 1] <= end - 20
        end -= data[end - 1]
    sender, media, base, count, reference_and_count = struct.unpack("!IIHHI", data[4:20])
    assert count > 0
    position = 20
    symbols: list[int] = []
    chunks: list[int] = []
    while len(symbols) < count:  # 3.1.2: chunks until every status is described
        assert position + 2 <= end, "a chunk past the end"
        (chunk,) = struct.unpack("!H", data[position : position + 2])
        chunks.append(chunk)
        position += 2
        if not chunk & 0x8000:  # 3.1.3 run length: T=0, S (2 bits), length (13 bits)
            symbols += [(chunk >> 13) & 0x03] * (chunk & 0x1FFF)
        elif not chunk & 0x4000:  # 3.1.4 vector, S=0: 14 one-bit symbols
            symbols += [(chunk >> (13 - i)) & 0x01 for i in range(14)]
        else:  # S=1: 7 two-bit symbols
            symbols += [(chunk >> (12 - 2 * i)) & 0x03 for i in range(7)]
    reference = reference_and_count >> 8
    time_us = reference * 64_000
    packets: list[tuple[int, int, int | None]] = []
    arrivals: dict[int, int] = {}
    for index, symbol in enumerate(symbols[:count]):
        seq = (base + index) & 0xFFFF
        assert symbol != 3, "reserved symbol"
        delta: int | None = None
        if symbol == 1:  # 3.1.5: small delta, 8 bits unsigned
            delta = data[position]
            position += 1
        elif symbol == 2:  # large or negative delta, 16 bits signed
            (delta,) = struct.unpack("!h", data[position : position + 2])
            position += 2
        packets.append((seq, symbol, delta))
        if delta is not None:
            time_us += delta * 250
            arrivals[seq] = time_us
    assert position <= end, "receive deltas past the end"
    assert not any(data[position:end]), "zero padding after the deltas"
    return TransportFeedback(
        sender, media, base, count, reference, reference_and_count & 0xFF, chunks, packets,
        arrivals, padded,
    )  # fmt: skip


def is_transport_feedback(data: bytes) -> bool:
    return len(data) >= 4 and data[1] == RTCP_RTPFB and data[0] & 0x1F == 15


# --- unit: BrowserFeedback by hand ---------------------------------------------------------
class Wire:
    """Stands in for SRTCP + the socket: keeps what would have been sent (`packets`: each
    compound parsed by aiortc, `transport_feedback`: each transport-wide feedback decoded, and
    `sent_at`: the clock of each send, when the test sets `now`)."""

    def __init__(self) -> None:
        self.packets: list[list[Any]] = []
        self.transport_feedback: list[TransportFeedback] = []
        self.now = 0.0
        self.transport_feedback_at: list[float] = []

    def send(self, data: bytes) -> int:
        if is_transport_feedback(data):
            # libwebrtc sends it on its own, never in a compound packet.
            self.transport_feedback.append(decode_transport_feedback(data))
            self.transport_feedback_at.append(self.now)
        else:
            self.packets.append(RtcpPacket.parse(data))  # aiortc's parser must accept these
        return len(data) + 14  # + SRTCP index and auth tag

    def of_type(self, kind: type, fmt: int | None = None) -> list[Any]:
        return [
            p
            for compound in self.packets
            for p in compound
            if isinstance(p, kind) and (fmt is None or p.fmt == fmt)
        ]


JANUS_TWCC_ID = 5  # Janus numbers its own extmaps (3 in Janus 1.1.2); any free id will do


def janus_like(offer: str) -> str:
    """An aiortc offer with what Janus adds on video: the transport-wide-cc extension and
    rtcp-fb transport-cc (Janus's VideoRoom subscriber offer has both, see the Janus test)."""
    description = aiortc_sdp.SessionDescription.parse(offer)
    for media in description.media:
        if media.kind == "video":
            media.rtp.headerExtensions.append(
                RTCRtpHeaderExtensionParameters(id=JANUS_TWCC_ID, uri=TWCC_URI)
            )
            for codec in media.rtp.codecs:
                if codec.name.lower() != "rtx":
                    codec.rtcpFeedback.append(RTCRtcpFeedback(type="transport-cc"))
    return str(description)


async def negotiated_sdps(
    twcc: bool = False,
) -> tuple[str, str, dict[str, int], dict[str, int]]:
    """An aiortc offer (video + audio, sendonly) and its aiortc answer, as the SFU and a load
    client negotiate them; the answerer's RTCP SSRC per mid; the offer's SSRCs and types.
    `twcc`: the offer as Janus makes it (janus_like) and the answer as a browser-mode load
    client gives it (browser_answer)."""
    sfu_media.loopback_only()
    offerer = sfu_media.new_peer_connection()
    answerer = sfu_media.new_peer_connection()
    try:
        video = offerer.addTransceiver("video", direction="sendonly")
        offerer.addTransceiver("audio", direction="sendonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        offer = offerer.localDescription
        if twcc:
            offer = RTCSessionDescription(sdp=janus_like(offer.sdp), type="offer")
        await answerer.setRemoteDescription(offer)
        answer = await answerer.createAnswer()
        if twcc:
            answer = RTCSessionDescription(
                sdp=sfu_media.browser_answer(offer.sdp, answer.sdp), type="answer"
            )
        await answerer.setLocalDescription(answer)
        rtcp_ssrcs = {
            t.mid: t.receiver._RTCRtpReceiver__rtcp_ssrc for t in answerer.getTransceivers()
        }
        kinds = sfu_media.payload_kinds(answerer.localDescription.sdp)
        ids = {
            "media": video.sender._ssrc,
            "rtx": video.sender._rtx_ssrc,
            "vp8": min(pt for pt, kind in kinds.items() if kind == "video"),
            "rtx_pt": min(pt for pt, kind in kinds.items() if kind == "rtx"),
            "mid": int(video.mid or 0),
        }
        return offer.sdp, answerer.localDescription.sdp, rtcp_ssrcs, ids
    finally:
        await offerer.close()
        await answerer.close()


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
    return RtpPacket(
        payload_type=pt, sequence_number=seq & 0xFFFF, timestamp=ts, ssrc=ssrc, payload=payload
    ).serialize()


@pytest.fixture
async def sdps() -> tuple[str, str, dict[str, int], dict[str, int]]:
    return await negotiated_sdps()


def new_feedback(sdps: tuple[str, str, dict[str, int], dict[str, int]]) -> tuple[Any, Wire]:
    offer, answer, rtcp_ssrcs, _ = sdps
    wire = Wire()
    counter = sfu_media.StreamCounter()
    counter.open_window(0.0, float("inf"), 7)
    feedback = sfu_media.BrowserFeedback(counter, b"cname-test", wire.send, timer=False)
    feedback.configure(offer, answer, rtcp_ssrcs)
    return feedback, wire


def test_the_sdp_this_sfu_negotiates_gives_nack_pli_remb_and_no_transport_cc(
    sdps: tuple[str, str, dict[str, int], dict[str, int]],
) -> None:
    feedback, _ = new_feedback(sdps)
    by_kind = {g.kind: g for g in feedback.groups.values()}
    video, audio = by_kind["video"], by_kind["audio"]
    assert (video.nack, video.pli, video.remb) == (True, True, True)
    assert (audio.nack, audio.pli, audio.remb) == (False, False, False)
    assert not feedback.twcc_negotiated
    answer = aiortc_sdp.SessionDescription.parse(sdps[1])
    assert all(
        "fir" not in str(f.parameter)
        for m in answer.media
        for c in m.rtp.codecs
        for f in c.rtcpFeedback
    )


def test_reports_nacks_rtx_recovery_remb_and_pli_parse_with_aiortc(
    sdps: tuple[str, str, dict[str, int], dict[str, int]],
) -> None:
    feedback, wire = new_feedback(sdps)
    ids = sdps[3]
    media, rtx, vp8, rtx_pt = ids["media"], ids["rtx"], ids["vp8"], ids["rtx_pt"]
    video_ssrc = feedback.groups[str(ids["mid"])].rtcp_ssrc
    t0 = 1000.0
    seq, ts = 65500, 3_000_000
    now = t0

    def feed(count: int, *, skip: set[int] | frozenset[int] = frozenset(), late: float = 0) -> None:
        """`count` packets, 3 per frame, each frame's packets together, 30 frames/s."""
        nonlocal seq, ts, now
        for index in range(count):
            if index % 3 == 0:
                ts += 3000
                now += 1 / 30
            if seq & 0xFFFF not in skip:
                payload = VP8_KEY if seq == 65500 else VP8_DELTA
                feedback.on_rtp(rtp(vp8, seq, ts, media, payload), now + late)
            seq += 1

    # A Sender Report from the SFU, then media: LSR/DLSR come from it.
    sr_ntp = 0x0123456789ABCDEF
    sr = RtcpSrPacket(ssrc=media, sender_info=RtcpSenderInfo(sr_ntp, 0, 0, 0), reports=[])
    feedback.on_rtcp(bytes(sr), t0)
    feed(34)
    assert seq == 65534
    assert not feedback.groups[str(ids["mid"])].waiting_keyframe  # it started with a key frame

    # A gap across the 16-bit wrap: one NACK request per missing number, straight away, in
    # two NACK packets (aiortc's PID/BLP packing needs increasing numbers).
    lost = {(seq + 1) & 0xFFFF, (seq + 2) & 0xFFFF}
    feed(5, skip=lost)
    nacks = wire.of_type(RtcpRtpfbPacket, RTCP_RTPFB_NACK)
    assert sorted(s for n in nacks for s in n.lost) == sorted(lost)
    assert {(n.ssrc, n.media_ssrc) for n in nacks} == {(video_ssrc, media)}
    # Every compound starts RR + SDES CNAME (libwebrtc's compound mode).
    for compound in wire.packets:
        assert isinstance(compound[0], RtcpRrPacket)
        assert compound[0].ssrc == video_ssrc
        assert isinstance(compound[1], RtcpSdesPacket)
        assert compound[1].chunks[0].items == [(1, b"cname-test")]

    # Re-requested after the RTT (100 ms), not before.
    feedback.process(now + 0.05)
    assert len(wire.of_type(RtcpRtpfbPacket, RTCP_RTPFB_NACK)) == 2
    feedback.process(now + 0.11)
    assert len(wire.of_type(RtcpRtpfbPacket, RTCP_RTPFB_NACK)) == 4
    # The retransmissions arrive as RTX (original sequence number first): requests stop.
    for index, original in enumerate(sorted(lost)):
        payload = original.to_bytes(2, "big") + VP8_DELTA
        feedback.on_rtp(rtp(rtx_pt, 7 + index, ts, rtx, payload), now + 0.12)
    assert feedback.totals["rtx_recovered"] == 2
    feedback.process(now + 0.3)
    assert len(wire.of_type(RtcpRtpfbPacket, RTCP_RTPFB_NACK)) == 4

    # The periodic report: one block per SSRC (media and RTX), RFC 3550 fields.
    feed(9)  # 0.3 s more of media
    feedback.groups[str(ids["mid"])].next_report = now
    feedback.process(now)
    report = wire.packets[-1][0]
    blocks = {b.ssrc: b for b in report.reports}
    assert set(blocks) == {media, rtx}
    block = blocks[media]
    assert block.highest_sequence == (1 << 16) | ((seq - 1) & 0xFFFF)  # one wrap
    assert block.packets_lost == 2  # on the media SSRC: RTX does not refill it
    assert block.lsr == (sr_ntp >> 16) & 0xFFFFFFFF
    assert block.dlsr == pytest.approx((now - t0) * 65536, abs=2)
    assert block.jitter == 0  # frames arrive exactly as their timestamps say
    # One frame 10 ms late: |D| = 900 twice (late, then back on time), J += (|D| - J) / 16.
    feed(3, late=0.01)
    feed(3)
    expected_jitter = 900 / 16
    expected_jitter += (900 - expected_jitter) / 16
    feedback.groups[str(ids["mid"])].next_report = now
    feedback.process(now)
    block = {b.ssrc: b for b in wire.packets[-1][0].reports}[media]
    assert block.jitter == int(expected_jitter)

    # REMB: valid 5 s after the first packet (AimdRateControl), then every ~200 ms.
    feed(3 * 30 * 5)  # 5 s of media, no timer: the estimate is valid from here on
    for _ in range(60):  # 2 s more, the timer running
        feed(3)
        feedback.process(now)
    rembs = wire.of_type(RtcpPsfbPacket, RTCP_PSFB_APP)
    assert 8 <= len(rembs) <= 11, len(rembs)
    bitrate, ssrcs = unpack_remb_fci(rembs[-1].fci)
    assert media in ssrcs
    assert rembs[-1].media_ssrc == 0
    assert rembs[-1].ssrc == video_ssrc
    # 90 packets of 1014 bytes a second (730 kbps): the estimate starts there and grows
    # 8 %/s, never past 1.5 x + 10 kbps.
    assert 720_000 <= bitrate <= 1.5 * 730_000 + 10_000

    # An unrecoverable loss: 10 requests, then a PLI kMaxWaitForFrameMs after the loss.
    gap = (seq + 1) & 0xFFFF
    feed(3, skip={gap})
    lost_at = now
    while now < lost_at + 3.5:
        feedback.process(now)
        now += 0.02
        feed(2)
    requests = [s for n in wire.of_type(RtcpRtpfbPacket, RTCP_RTPFB_NACK) for s in n.lost]
    assert requests.count(gap) == sfu_media.NACK_MAX_RETRIES
    assert feedback.totals["nack_abandoned"] == 1
    plis = wire.of_type(RtcpPsfbPacket, RTCP_PSFB_PLI)
    assert plis
    assert all(p.media_ssrc == media for p in plis)
    # Repeated every 200 ms until a key frame comes, then no more.
    assert 2 <= len(plis) <= 4
    feedback.on_rtp(rtp(vp8, seq, ts + 3000, media, VP8_KEY), now)
    seq += 1
    count = len(plis)
    for _ in range(30):
        now += 0.02
        feedback.process(now)
    assert len(wire.of_type(RtcpPsfbPacket, RTCP_PSFB_PLI)) == count
    assert feedback.counter.feedback["pli"] == count
    assert feedback.counter.feedback["rr"] == len(wire.packets)


def test_a_stream_that_starts_without_a_key_frame_asks_for_one(
    sdps: tuple[str, str, dict[str, int], dict[str, int]],
) -> None:
    feedback, wire = new_feedback(sdps)
    ids = sdps[3]
    now = 50.0
    for seq in range(20):
        feedback.on_rtp(rtp(ids["vp8"], seq, 9000 * (seq // 3), ids["media"], VP8_DELTA), now)
        now += 0.015
        feedback.process(now)
    assert len(wire.of_type(RtcpPsfbPacket, RTCP_PSFB_PLI)) == 1  # after 200 ms, at ~0.3 s


# --- unit: transport-wide feedback -----------------------------------------------------------
SENDER, MEDIA = 0x11223344, 0x55667788
TWCC_WRAP_US = 64_000 << 24  # the 24-bit reference time in 64 ms units


def test_transport_feedback_matches_packets_built_by_hand_from_the_draft() -> None:
    pack = sfu_media.pack_transport_feedback
    # 1. Section 3.1.4, example 1: a 1-bit status vector "1x not received, 5x received, 3x not
    # received, 3x received" (+ 2 unused symbols), across the 16-bit wrap. The reference time
    # is the first arrival in 64 ms units; each delta is from the previous arrival, 250 us.
    reference = 0x123456 * 64_000
    received = [
        (65531, reference + 1_000),  # 4 ticks after the reference time
        (65532, reference + 1_000),  # 0
        (65533, reference + 3_500),  # 10
        (65534, reference + 67_250),  # 255: still a small delta
        (65535, reference + 67_500),  # 1
        (65539, reference + 72_500),  # 20
        (65540, reference + 73_000),  # 2
        (65541, reference + 73_750),  # 3
    ]
    packet, used = pack(SENDER, MEDIA, 65530, received, 7)
    assert used == len(received)
    assert packet == bytes.fromhex(
        "af cd 0007"  # V=2 P=1 FMT=15, PT=205 (RTPFB), length 7 (32 octets)
        "11223344 55667788"  # SSRC of packet sender, of media source
        "fffa 000c"  # base sequence number 65530, packet status count 12
        "123456 07"  # reference time, feedback packet count
        "9f1c"  # |1|0|0 1 1 1 1 1 0 0 0 1 1 1 0 0|
        "04 00 0a ff 01 14 02 03"  # receive deltas, one octet each
        "00 02"  # padding, its length in the last octet (libwebrtc pads so, with P)
    )
    # 2. Section 3.1.3, example 1: a run of 221 "not received" (0x00DD), then a small delta, a
    # large one (+100 ms: 400 ticks) and a negative one (-1 ms) in a 2-bit vector. (The first
    # delta is always under 64 ms: the reference time is the first arrival, rounded down.)
    reference = 0x000400 * 64_000
    received = [(321, reference + 30_000), (322, reference + 130_000), (323, reference + 129_000)]
    packet, used = pack(SENDER, MEDIA, 100, received, 255)
    assert used == 3
    assert packet == bytes.fromhex(
        "af cd 0007 11223344 55667788"
        "0064 00e0"  # base 100, 224 statuses
        "000400 ff"
        "00dd"  # |0|0 0|0 0 0 0 0 1 1 0 1 1 1 0 1|: 221 x not received
        "da00"  # |1|1|0 1|1 0|1 0|0 0|0 0|0 0|0 0|: small, large, large (+ 4 unused)
        "78 0190 fffc"  # 120, then 400 and -4 in 16 bits, signed
        "0000 03"
    )
    # 3. No padding needed: P clear. Two received, a run of 2 small deltas.
    packet, _ = pack(SENDER, MEDIA, 0, [(0, 0), (1, 250)], 0)
    assert packet == bytes.fromhex("8f cd 0005 11223344 55667788 0000 0002 000000 00 2002 00 01")
    # 4. libwebrtc's chunk choice: not received + 8 small, then a large delta that no 1-bit
    # vector can hold: the first 7 go out as a 2-bit vector, the other 2 join the large one.
    received = [(seq, 1_000 * seq) for seq in range(11, 19)] + [(19, 90_000)]
    feedback = decode_transport_feedback(pack(SENDER, MEDIA, 10, received, 1)[0])
    assert feedback.chunks == [0xC555, 0xD600]
    assert [symbol for _, symbol, _ in feedback.packets] == [0] + [1] * 8 + [2]
    # Base 5 before the one packet: 6 symbols fit one 2-bit vector, which libwebrtc prefers to
    # two run lengths: |1|1|0 0|0 0|0 0|0 0|0 0|0 1|0 0|.
    feedback = decode_transport_feedback(pack(SENDER, MEDIA, 6, received[:1], 9)[0])
    assert feedback.chunks == [0xC004]
    assert feedback.arrivals == {11: 11_000}


def test_transport_feedback_round_trips_through_a_decoder_written_from_the_draft() -> None:
    """Random losses (some long), reordering (negative deltas), gaps past 64 ms and past the
    16-bit delta range (which need a new packet), sequence and reference-time wrap, small size
    limits: every packet is reported once, as received or not, at its arrival within the
    250 us rounding, in consecutive packets that start where the previous one stopped."""
    rng = random.Random(20261204)
    for trial in range(400):
        start = rng.randrange(0x10000)
        arrival = rng.randrange(TWCC_WRAP_US - 10_000_000, TWCC_WRAP_US + 10_000_000)
        received: list[tuple[int, int]] = []
        seq = start - 1
        for _ in range(rng.randrange(1, 150)):
            seq += 1 + (rng.choice([1, 2, 5, 300, 9000]) if rng.random() < 0.1 else 0)
            roll = rng.random()
            if roll < 0.1:
                arrival -= rng.randrange(20_000)  # reordered: arrived before the previous one
            elif roll < 0.15:
                arrival += rng.randrange(64_000, 2_000_000)  # a pause
            elif roll < 0.16:
                arrival += rng.randrange(8_200_000, 20_000_000)  # past 16-bit deltas
            else:
                arrival += rng.randrange(64_000)
            received.append((seq, arrival))
        max_bytes = rng.choice([sfu_media.TWCC_MAX_BYTES, 64, 40])
        base, rest, count, seen = start, received, trial, 0
        while rest:
            packet, used = sfu_media.pack_transport_feedback(
                SENDER, MEDIA, base, rest, count, max_bytes
            )
            assert used >= 1
            feedback = decode_transport_feedback(packet)
            batch, rest = rest[:used], rest[used:]
            assert (feedback.sender_ssrc, feedback.media_ssrc) == (SENDER, MEDIA)
            assert feedback.base_seq == base & 0xFFFF
            assert feedback.feedback_count == count & 0xFF
            assert feedback.reference == (batch[0][1] // 64_000) & 0xFFFFFF
            assert feedback.status_count == batch[-1][0] - base + 1
            arrivals = dict(batch)
            for offset, (seq16, symbol, _) in enumerate(feedback.packets):
                assert seq16 == (base + offset) & 0xFFFF
                assert (symbol != 0) == (base + offset in arrivals), (trial, offset)
            for seq, when in batch:
                error = (feedback.arrivals[seq & 0xFFFF] - when) % TWCC_WRAP_US
                assert min(error, TWCC_WRAP_US - error) <= 125, (trial, seq, error)
            if len(packet) > max_bytes:
                assert used == 1  # only a single packet may exceed the limit
            seen += used
            base, count = batch[-1][0] + 1, count + 1
        assert seen == len(received)


def test_transport_sequence_numbers_are_read_from_one_and_two_byte_extensions() -> None:
    read = sfu_media.transport_sequence_number
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=2, uri=sfu_media.ABS_SEND_TIME_URI),
                RTCRtpHeaderExtensionParameters(id=JANUS_TWCC_ID, uri=TWCC_URI),
                RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
            ]
        )
    )
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x")
    packet.extensions.abs_send_time = 0x123456
    packet.extensions.transport_sequence_number = 0xBEEF
    packet.extensions.mid = "0"
    one_byte = packet.serialize(extensions)
    assert one_byte[12:14] == b"\xbe\xde"
    assert read(one_byte, JANUS_TWCC_ID) == 0xBEEF
    assert read(one_byte, 2) is None  # abs-send-time: 3 octets, not a sequence number
    assert read(one_byte, 7) is None
    assert read(rtp(96, 1, 2, 3, b"x"), JANUS_TWCC_ID) is None  # no extension at all
    # RFC 8285 two-byte form (what a=extmap-allow-mixed permits): padding, mid, the number.
    header = bytes([0x90, 96]) + bytes(10)
    elements = b"\x00" + b"\x04\x01x" + bytes([JANUS_TWCC_ID, 2, 0x12, 0x34]) + b"\x00"
    two_byte = header + b"\x10\x00\x00\x02" + elements + b"payload"
    assert read(two_byte, JANUS_TWCC_ID) == 0x1234
    assert read(two_byte[:20], JANUS_TWCC_ID) is None  # truncated


@pytest.fixture
async def twcc_sdps() -> tuple[str, str, dict[str, int], dict[str, int]]:
    return await negotiated_sdps(twcc=True)


def rtp_with_transport_seq(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, transport_seq: int
) -> bytes:
    """A video packet as Janus sends it: abs-send-time, then the transport-wide number."""
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=3, uri=sfu_media.ABS_SEND_TIME_URI),
                RTCRtpHeaderExtensionParameters(id=JANUS_TWCC_ID, uri=TWCC_URI),
            ]
        )
    )
    packet = RtpPacket(
        payload_type=pt, sequence_number=seq & 0xFFFF, timestamp=ts, ssrc=ssrc, payload=payload
    )
    packet.extensions.abs_send_time = 0
    packet.extensions.transport_sequence_number = transport_seq & 0xFFFF
    return packet.serialize(extensions)


def test_where_transport_cc_is_negotiated_its_feedback_replaces_remb(
    twcc_sdps: tuple[str, str, dict[str, int], dict[str, int]],
    sdps: tuple[str, str, dict[str, int], dict[str, int]],
) -> None:
    _, answer, _, ids = twcc_sdps
    # The answer as Chrome gives it: the extension with the offer's id and rtcp-fb
    # transport-cc on video; audio, offered neither, gets neither.
    media_of = {m.kind: m for m in aiortc_sdp.SessionDescription.parse(answer).media}
    video_answer, audio_answer = media_of["video"], media_of["audio"]
    assert video_answer.rtp.headerExtensions[-1] == RTCRtpHeaderExtensionParameters(
        id=JANUS_TWCC_ID, uri=TWCC_URI
    )
    assert all(
        RTCRtcpFeedback(type="transport-cc") in codec.rtcpFeedback
        for codec in video_answer.rtp.codecs
        if codec.name.lower() != "rtx"
    )
    assert TWCC_URI not in {e.uri for e in audio_answer.rtp.headerExtensions}
    # This SFU's own offer is left alone.
    assert sfu_media.browser_answer(sdps[0], sdps[1]) == sdps[1]

    feedback, wire = new_feedback(twcc_sdps)
    by_kind = {g.kind: g for g in feedback.groups.values()}
    video, audio = by_kind["video"], by_kind["audio"]
    assert feedback.twcc_negotiated
    assert (video.twcc_id, video.remb, video.nack, video.pli) == (JANUS_TWCC_ID, False, True, True)
    assert audio.twcc_id == 0
    assert feedback.twcc_interval == pytest.approx(0.05)  # 5 % of 300 kbps, clamped to 50 ms

    media, vp8 = ids["media"], ids["vp8"]
    t0 = 1000.0
    arrivals: dict[int, int] = {}  # transport sequence number (16 bits) -> arrival (us)
    # The lost packet comes back 30 packets (333 ms) later: still within kBackWindow (500 ms)
    # of the packets after it, so they are reported again with it.
    lost_index, late_index = 200, 230
    lost: tuple[int, int] = (0, 0)  # its (RTP sequence number, transport sequence number)
    for index in range(90 * 7):  # 7 s of 90 packets/s: REMB would be on after 5 s
        now = t0 + index / 90
        seq, transport_seq = 100 + index, (65000 + index) & 0xFFFF  # wraps at index 536
        if index == lost_index:
            lost = (seq, transport_seq)
        else:
            payload = VP8_KEY if index == 0 else VP8_DELTA
            data = rtp_with_transport_seq(
                vp8, seq, 3000 * (index // 3), media, payload, transport_seq
            )
            feedback.on_rtp(data, now)
            arrivals.setdefault(transport_seq, int(now * 1_000_000))
        if index == late_index:
            data = rtp_with_transport_seq(
                vp8, lost[0], 3000 * (lost_index // 3), media, VP8_DELTA, lost[1]
            )
            feedback.on_rtp(data, now)
            arrivals[lost[1]] = int(now * 1_000_000)
        wire.now = now
        feedback.process(now)
    wire.now = now = now + 0.1
    feedback.process(now)

    reports = wire.transport_feedback
    # Every 50 ms while packets arrive (the timer here only runs at packet times: +-11 ms;
    # the last one comes with the process() call 100 ms after the last packet).
    gaps = [b - a for a, b in itertools.pairwise(wire.transport_feedback_at[:-1])]
    assert 7 / 0.05 - 3 <= len(reports) <= 7 / 0.05 + 2, len(reports)
    assert all(0.05 - 0.012 <= gap <= 0.05 + 0.012 for gap in gaps), gaps
    assert [r.feedback_count for r in reports] == [i & 0xFF for i in range(len(reports))]
    assert {(r.sender_ssrc, r.media_ssrc) for r in reports} == {(video.rtcp_ssrc, media)}
    # Each report starts where the previous one stopped, except after the late packet, which
    # moves the start back: everything from it on is reported again (libwebrtc keeps them).
    first_report: dict[int, tuple[int, int | None]] = {}  # seq -> (symbol, arrival)
    for previous, report in zip([None, *reports], reports, strict=False):
        if previous is not None and report.base_seq != (previous.packets[-1][0] + 1) & 0xFFFF:
            assert report.base_seq == lost[1]
            assert report.arrivals[lost[1]] == pytest.approx(arrivals[lost[1]], abs=125)
            assert report.packets[1][1] == 2  # the next one arrived earlier: a negative delta
        for seq, symbol, _ in report.packets:
            first_report.setdefault(seq, (symbol, report.arrivals.get(seq)))
    assert first_report[lost[1]] == (0, None)  # reported missing when its window closed
    assert set(first_report) == set(arrivals)
    for seq, when in arrivals.items():
        if seq != lost[1]:
            assert first_report[seq][1] == pytest.approx(when % TWCC_WRAP_US, abs=125), seq

    # No REMB (the send-side estimator has the packets), the rest of the feedback as before.
    assert not wire.of_type(RtcpPsfbPacket, RTCP_PSFB_APP)
    assert all(isinstance(compound[0], RtcpRrPacket) for compound in wire.packets)
    assert wire.packets
    assert lost[0] in {s for n in wire.of_type(RtcpRtpfbPacket, RTCP_RTPFB_NACK) for s in n.lost}
    counts = feedback.counter.feedback
    assert counts["twcc"] == len(reports)
    assert counts["twcc_packets_reported"] == sum(len(r.arrivals) for r in reports)
    assert counts.get("remb", 0) == 0
    assert counts["rr"] == len(wire.packets)


def test_transport_feedback_reports_a_packet_older_than_the_first_across_the_wrap(
    twcc_sdps: tuple[str, str, dict[str, int], dict[str, int]],
) -> None:
    feedback, wire = new_feedback(twcc_sdps)
    ids = twcc_sdps[3]
    for index, (transport_seq, at) in enumerate([(3, 10.0), (65534, 10.002), (4, 10.004)]):
        data = rtp_with_transport_seq(ids["vp8"], index, 0, ids["media"], VP8_KEY, transport_seq)
        feedback.on_rtp(data, at)
    feedback.process(10.1)
    (report,) = wire.transport_feedback
    assert report.base_seq == 65534
    assert [(seq, symbol) for seq, symbol, _ in report.packets] == [
        (65534, 1), (65535, 0), (0, 0), (1, 0), (2, 0), (3, 2), (4, 1),
    ]  # fmt: skip
    assert report.arrivals[3] - report.arrivals[65534] == -2_000  # arrived 2 ms earlier


# --- against a real node -------------------------------------------------------------------
def node_rtcp_counter(node: Any, room: str, peer_id: str) -> Counter[str]:
    """Count, at the node, the RTCP it parses on the subscriber's receive transport."""
    peer = node.engine.routers[room].peers[peer_id]
    dtls = peer.receive.pc.getTransceivers()[0].sender.transport
    original = dtls._handle_rtcp_data
    seen: Counter[str] = Counter()

    async def counting(data: bytes) -> None:
        for packet in RtcpPacket.parse(data):
            fmt = getattr(packet, "fmt", None)
            seen[type(packet).__name__ + ("" if fmt is None else f"/{fmt}")] += 1
        seen["compound"] += 1
        await original(data)

    dtls._handle_rtcp_data = counting
    return seen


def drop_datagrams(pc: RTCPeerConnection, should_drop: Any) -> None:
    """Drop SRTP datagrams before the load client's callback sees them (the RTP header is not
    encrypted: SSRC and sequence number are readable)."""
    connection = pc.getTransceivers()[0].receiver.transport.transport._connection
    original = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        if 127 < data[0] < 192 and not 192 <= data[1] <= 223 and should_drop(data):
            return
        original(data, component)

    connection.data_received = data_received


async def consumer_stats(node_channel: str, room: str, peer_id: str) -> dict[str, Any]:
    stats = await Participant(node_channel, room, "probe").sfu.get_stats(peer_id)
    return stats["consumers"][0]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_browser_mode_subscriber_feeds_rtcp_back_to_the_node() -> None:
    """The node's getStats shows what it did with the feedback (RR: the consumer's remote
    loss and RTT; NACK: retransmissions_sent; PLI: keyframe_requests); it has no count of
    RTCP received, so a hook on the subscriber's transport at the node counts what it parsed
    (REMB is only logged by aiortc)."""
    sfu_media.loopback_only()
    node, node_task = await start_node()
    room = f"room-{uuid.uuid4().hex[:8]}"
    publisher = Participant(node.channel, room, "pub")
    subscriber = sfu_clients.Subscriber(node.channel, room, "sub-browser", False, "browser")
    try:
        await publisher.join()
        await publisher.publish([(SizedVideoTrack(320, 240), "camera")])
        await subscriber.join()
        await wait_until(lambda: subscriber.counter.total_packets > 0, what="forwarded media")
        started = time.monotonic()
        assert subscriber.pc is not None
        transport = subscriber.pc.getTransceivers()[0].receiver.transport
        feedback = transport._bench_feedback
        seen = node_rtcp_counter(node, room, subscriber.peer_id)
        subscriber.counter.open_window(started, float("inf"), 7)
        group = next(iter(feedback.groups.values()))
        media_ssrc = group.media_ssrc

        # Drop one media packet, 30 packets from now: NACKed, retransmitted as RTX, recovered.
        target: list[int] = []

        def drop_one(data: bytes) -> bool:
            if int.from_bytes(data[8:12], "big") != media_ssrc:
                return False
            seq = int.from_bytes(data[2:4], "big")
            if not target:
                target.append((seq + 30) & 0xFFFF)
            return seq == target[0]

        drop_datagrams(subscriber.pc, drop_one)
        await wait_until(
            lambda: feedback.totals["rtx_recovered"] >= 1,
            timeout=10,
            what="the dropped packet to come back as RTX",
        )
        assert feedback.totals["nack_seqs"] >= 1
        stats = await consumer_stats(node.channel, room, subscriber.peer_id)
        assert stats["retransmissions_sent"] >= 1
        assert seen["RtcpRtpfbPacket/1"] >= 1

        # Receiver Reports reach the sender: remote stats with an RTT, which aiortc computes
        # only from a report block echoing its latest Sender Report (LSR) with a DLSR.
        deadline = time.monotonic() + 10
        while (stats := await consumer_stats(node.channel, room, subscriber.peer_id))[
            "rtt_ms"
        ] is None:
            assert time.monotonic() < deadline, (stats, dict(seen), feedback.totals)
            await asyncio.sleep(0.2)
        assert 0 <= stats["rtt_ms"] < 100, stats
        assert stats["packets_lost"] >= 1  # the dropped packet, lost on the media SSRC

        # An unrecoverable loss (its retransmissions dropped too) ends in a PLI at the node.
        requests_before = stats["keyframe_requests"]
        rtx_ssrc = next(s.ssrc for s in group.streams if s.rtx)
        lost: list[int] = []

        def drop_for_good(data: bytes) -> bool:
            ssrc = int.from_bytes(data[8:12], "big")
            if ssrc == rtx_ssrc:
                return True
            if ssrc == media_ssrc and not lost:
                lost.append(int.from_bytes(data[2:4], "big"))
                return True
            return False

        drop_datagrams(subscriber.pc, drop_for_good)
        # aiortc's publisher makes a key frame by itself whenever the node's REMB moves its
        # target bitrate by 10 %, which (rightly) makes a PLI unnecessary: so that the test
        # does not depend on that timing, the client sees no key frame until it has asked.
        detect = group.detect_keyframe
        group.detect_keyframe = lambda payload: False
        await wait_until(lambda: feedback.totals["pli"] >= 1, timeout=8, what="a PLI")
        group.detect_keyframe = detect
        await wait_until(lambda: seen["RtcpPsfbPacket/1"] >= 1, timeout=2, what="PLI at node")
        stats = await consumer_stats(node.channel, room, subscriber.peer_id)
        assert stats["keyframe_requests"] > requests_before
        assert feedback.totals["nack_abandoned"] >= 1

        # REMB, once the estimate is valid (5 s after the first packet).
        await wait_until(lambda: seen["RtcpPsfbPacket/15"] >= 3, timeout=10, what="REMBs")
        elapsed = time.monotonic() - started
        report = subscriber.counter.report()
        assert report["feedback_mode"] == "browser"
        rates = {k: round(v / elapsed, 2) for k, v in report["feedback"].items()}
        print(f"\nfeedback over {elapsed:.1f} s, per second: {rates}; at the node: {dict(seen)}")
        assert seen["compound"] >= report["feedback"]["rr"] - 2  # all sent, all parsed
        assert seen["RtcpSdesPacket"] == seen["RtcpRrPacket"]
    finally:
        await subscriber.close()
        await publisher.close()
        await stop_node(node, node_task)


# --- against Janus --------------------------------------------------------------------------
JANUS_TWCC_HEADER = re.compile(r"\[TWCC\] seq=(\d+), psc=(\d+), ref=(\d+), fbpc=(\d+)$")
JANUS_TWCC_DELTA = re.compile(r"\]\s+\[\d+\]\[(\d+)\] (\w+) \((\d+)us\)$")
JANUS_STATUS_NAMES = ("notreceived", "smalldelta", "largeornegativedelta", "reserved")
# What Janus 1.1.2 logs when it refuses an RTCP packet (src/ice.c, src/rtcp.c).
JANUS_RTCP_COMPLAINTS = (
    "SRTCP unprotect error",
    "to contain RTCP",
    "Invalid RTCP packet",
    "to contain at least one",
    "Unknown RTCP",
    "Unknown SSRC, dropping RTCP",
)


def janus_transport_feedback(log: str) -> dict[tuple[int, ...], list[tuple[int, str, int]]]:
    """What Janus's own parser read in each transport-wide feedback (janus_rtcp_incoming_
    transport_cc logs it at debug level 7, LOG_HUGE): (base, status count, reference time,
    feedback count) -> [(sequence number, status, delta in us as Janus prints it)]."""
    parsed: dict[tuple[int, ...], list[tuple[int, str, int]]] = {}
    current: list[tuple[int, str, int]] | None = None
    for line in log.splitlines():
        if header := JANUS_TWCC_HEADER.search(line):
            current = parsed.setdefault(tuple(int(v) for v in header.groups()), [])
        elif current is not None and (delta := JANUS_TWCC_DELTA.search(line)):
            current.append((int(delta.group(1)), delta.group(2), int(delta.group(3))))
    return parsed


def as_janus_reads_it(feedback: TransportFeedback) -> list[tuple[int, str, int]]:
    """Janus prints each delta as an unsigned 16-bit number x 250 us."""
    return [
        (seq, JANUS_STATUS_NAMES[symbol], ((delta or 0) & 0xFFFF) * 250)
        for seq, symbol, delta in feedback.packets
    ]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("janus") is None, reason="janus is not installed")
@pytest.mark.timeout(90)
async def test_janus_gets_transport_wide_feedback_from_a_browser_mode_subscriber(
    tmp_path: Path,
) -> None:
    """Janus's VideoRoom offers its subscribers transport-wide-cc; a browser-mode load client
    keeps it (as Chrome does), so Janus stamps transport-wide sequence numbers and the client
    sends transport-wide feedback every 50 ms and no REMB; Janus parses every one of them to
    the same fields, and complains about no RTCP packet."""
    sfu_media.loopback_only()
    channel = f"sfu.test-janus-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "janus.log"
    with (tmp_path / "adapter.log").open("wb") as adapter_log:
        adapter = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "bench" / "sfu_janus.py"), channel, "--event-loops", "1",
            "--log", str(log), "--debug-level", "7",
            cwd=REPO, stdout=adapter_log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    room = f"room-{uuid.uuid4().hex[:8]}"
    publisher = Participant(channel, room, "pub")
    subscriber = sfu_clients.Subscriber(channel, room, "sub-browser", False, "browser")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert adapter.returncode is None, (tmp_path / "adapter.log").read_text()
            try:
                await sfu_client.ping(channel, timeout=1.0)
                break
            except Exception:
                assert time.monotonic() < deadline, "the Janus adapter did not answer"
                await asyncio.sleep(0.1)
        await publisher.join()
        await publisher.publish([(SizedVideoTrack(320, 240), "camera")])
        await subscriber.join()
        await wait_until(lambda: subscriber.counter.total_packets > 0, what="media from Janus")
        assert subscriber.pc is not None
        feedback = subscriber.pc.getTransceivers()[0].receiver.transport._bench_feedback
        started = time.monotonic()
        subscriber.counter.open_window(started, float("inf"), 7)
        await wait_until(lambda: feedback.totals["twcc"] >= 40, timeout=10, what="feedback")
        elapsed = time.monotonic() - started

        # Janus offers both; the client answered with both; no a=rtcp-rsize from Janus, which
        # libwebrtc's transport feedback does not depend on (it never goes in a compound).
        offer, answer = subscriber.pc.remoteDescription.sdp, subscriber.pc.localDescription.sdp
        for sdp in (offer, answer):
            assert TWCC_URI in sdp
            assert re.search(r"^a=rtcp-fb:\d+ transport-cc", sdp, re.MULTILINE)
        assert "a=rtcp-rsize" not in offer
        assert feedback.twcc_negotiated
        report = subscriber.counter.report()["feedback"]
        print(f"\nfeedback over {elapsed:.1f} s: {report}")
        assert report["twcc"] / elapsed > 10  # every 50 ms: 20/s, less on a busy machine
        assert report["twcc_packets_reported"] > 0
        assert report["remb"] == feedback.totals["remb"] == 0
        assert report["rr"] >= 1

        # Janus's parser read what was sent (the client keeps its last 16 packets).
        sent_count = feedback.totals["twcc"]
        sent = [decode_transport_feedback(p) for p in feedback.sent if is_transport_feedback(p)]
        assert sent
        keys = [(f.base_seq, f.status_count, f.reference, f.feedback_count) for f in sent]
        parsed: dict[tuple[int, ...], list[tuple[int, str, int]]] = {}
        deadline = time.monotonic() + 5  # Janus writes its log from a thread of its own
        while not all(len(parsed.get(k, [])) == k[1] for k in keys):
            assert time.monotonic() < deadline, (keys, list(parsed)[-20:])
            await asyncio.sleep(0.2)
            parsed = janus_transport_feedback(log.read_text(errors="replace"))
        for key, packet in zip(keys, sent, strict=True):
            assert parsed[key] == as_janus_reads_it(packet), key
        assert len(parsed) >= sent_count  # every one reached Janus's parser
        complaints = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if any(complaint in line for complaint in JANUS_RTCP_COMPLAINTS)
        ]
        assert not complaints, complaints[:5]
    finally:
        await subscriber.close()
        await publisher.close()
        if adapter.returncode is None:
            adapter.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(adapter.wait(), 20)
        except TimeoutError:
            adapter.kill()
            await adapter.wait()


async def test_none_mode_sends_no_rtcp_and_refuses_unknown_modes() -> None:
    with pytest.raises(ValueError, match="feedback"):
        sfu_clients.Subscriber("n", "r", "p", False, "chrome")
    counter = sfu_media.StreamCounter()
    offer, _, _, _ = await negotiated_sdps()
    pc = sfu_media.new_peer_connection()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        sfu_media.hook_received(pc, counter, decode=False, feedback="none")
        assert counter.report()["feedback_mode"] == "none"
        assert all(
            not hasattr(t.receiver.transport, "_bench_feedback") for t in pc.getTransceivers()
        )
        with pytest.raises(ValueError, match="feedback"):
            sfu_media.hook_received(pc, counter, decode=False, feedback="chrome")
    finally:
        await pc.close()
