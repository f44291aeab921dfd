"""SendSlot's per-packet rewriting, on a real slot over a real aiortc sender.

The slot's output is a real `SenderOutput` on an unconnected RTCPeerConnection's sender; only
its last step (SRTP protect and sendto on the ICE pair) is replaced by a list, so the tests
see the plaintext bytes the subscriber would get.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, RtpPacket

from sfu import hooks
from sfu.forwarding import SendSlot, extension_value
from sfu.hooks import SenderOutput

MID = "3"
SUBSCRIBER_PAYLOAD_TYPE = {"video": 97, "audio": 111}
PUBLISHER_PAYLOAD_TYPE = {"video": 120, "audio": 109}
CLOCK_RATE = {"video": 90000, "audio": 48000}
NTP_TIME = 0xE5A1_2B3C_4D5E_6F70
ABS_SEND_TIME = (NTP_TIME >> 14) & 0xFFFFFF
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


class RecordingOutput(SenderOutput):
    """A SenderOutput whose datagrams are kept instead of protected and sent."""

    def __init__(self, sender: RTCRtpSender) -> None:
        super().__init__(sender)
        self.datagrams: list[bytes] = []

    def _send_datagram(self, data: bytes) -> None:
        self.datagrams.append(data)


@pytest.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield pc
    await pc.close()


def started_slot(
    pc: RTCPeerConnection,
    kind: str,
    extensions: list[RTCRtpHeaderExtensionParameters] | None = None,
) -> tuple[SendSlot, RecordingOutput]:
    """A slot started the way the receive transport starts one once aiortc's sender runs,
    with the header extensions the subscriber negotiated (by default aiortc's own, without
    the transport-wide sequence number that sfu/tests/test_sfu_transport_cc.py covers: a node
    started earlier in the process adds it to aiortc's table)."""
    transceiver = pc.addTransceiver(kind, direction="sendonly")
    key = ("video/vp8", "", "") if kind == "video" else ("audio/opus", "", "")
    slot = SendSlot(transceiver, kind, key)
    output = RecordingOutput(transceiver.sender)
    # What aiortc's sender.send(parameters) does with the negotiated extensions.
    output.extensions_map.configure(
        RTCRtpParameters(
            headerExtensions=[e for e in HEADER_EXTENSIONS[kind] if e.uri != hooks.TRANSPORT_CC_URI]
            if extensions is None
            else extensions
        )
    )
    slot.start(output, SUBSCRIBER_PAYLOAD_TYPE[kind], CLOCK_RATE[kind], MID)
    return slot, output


def rtp(
    kind: str,
    sequence_number: int,
    timestamp: int,
    *,
    ssrc: int = 1111,
    marker: int = 0,
    audio_level: tuple[bool, int] | None = None,
) -> RtpPacket:
    """A publisher's packet as the receive half hands it on (the publisher's own extension
    values parsed, the payload as sent)."""
    packet = RtpPacket(
        payload_type=PUBLISHER_PAYLOAD_TYPE[kind],
        marker=marker,
        sequence_number=sequence_number,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=b"\x90\x80\x12" + sequence_number.to_bytes(2, "big") + b"payload",
    )
    packet.extensions = HeaderExtensions(
        mid="0", abs_send_time=0x123456, transport_sequence_number=77, audio_level=audio_level
    )
    return packet


def send(slot: SendSlot, packet: RtpPacket, *, now: float, keyframe_start: bool = False) -> int:
    """What forwarding.fan_out does for one copy."""
    value = extension_value(packet, slot.kind, NTP_TIME)
    return slot.send(packet, keyframe_start, value, NTP_TIME, now)


def sent(output: RecordingOutput, index: int = -1) -> RtpPacket:
    return RtpPacket.parse(output.datagrams[index], output.extensions_map)


def all_sent(output: RecordingOutput) -> list[RtpPacket]:
    return [RtpPacket.parse(data, output.extensions_map) for data in output.datagrams]


# --- key frames ------------------------------------------------------------------------------
async def test_video_sends_nothing_and_returns_minus_one_until_a_key_frame_starts(
    pc: RTCPeerConnection,
) -> None:
    slot, output = started_slot(pc, "video")
    assert send(slot, rtp("video", 100, 9000), now=1.0) == -1
    assert send(slot, rtp("video", 101, 9000), now=1.0) == -1
    assert output.datagrams == []

    size = send(slot, rtp("video", 102, 12000), now=1.0, keyframe_start=True)
    assert size == len(output.datagrams[0]) > 0
    # Once started, the rest of the key frame and the frames after it need no key frame.
    assert send(slot, rtp("video", 103, 12000), now=1.0) > 0
    assert send(slot, rtp("video", 104, 15000), now=1.03) > 0
    assert len(output.datagrams) == 3


async def test_video_waits_for_a_key_frame_again_after_a_restart(pc: RTCPeerConnection) -> None:
    slot, output = started_slot(pc, "video")
    send(slot, rtp("video", 100, 9000), now=1.0, keyframe_start=True)
    slot.restart_stream()
    assert send(slot, rtp("video", 101, 12000), now=1.1) == -1
    assert len(output.datagrams) == 1
    assert send(slot, rtp("video", 102, 15000), now=1.2, keyframe_start=True) > 0
    assert len(output.datagrams) == 2


async def test_audio_starts_with_any_packet(pc: RTCPeerConnection) -> None:
    slot, output = started_slot(pc, "audio")
    assert send(slot, rtp("audio", 5, 960), now=1.0) > 0
    slot.restart_stream()
    assert send(slot, rtp("audio", 6, 1920), now=1.5) > 0
    assert len(output.datagrams) == 2


# --- sequence numbers and timestamps ---------------------------------------------------------
async def test_within_a_run_sequence_numbers_and_timestamps_keep_the_publishers_spacing(
    pc: RTCPeerConnection,
) -> None:
    slot, output = started_slot(pc, "video")
    for seq, ts in ((500, 90000), (501, 90000), (503, 93000), (502, 93000)):
        send(slot, rtp("video", seq, ts), now=2.0, keyframe_start=True)
    packets = all_sent(output)
    first = packets[0]
    assert [(p.sequence_number - first.sequence_number) & 0xFFFF for p in packets] == [0, 1, 3, 2]
    assert [(p.timestamp - first.timestamp) & 0xFFFFFFFF for p in packets] == [0, 0, 3000, 3000]
    assert {p.ssrc for p in packets} == {output.ssrc}
    assert {p.payload_type for p in packets} == {SUBSCRIBER_PAYLOAD_TYPE["video"]}


@pytest.mark.parametrize(
    ("next_ssrc", "next_seq", "next_ts"),
    [
        (1111, 260, 3_000_000 + 2 * 90000),  # pause and resume: the same stream, packets skipped
        (2222, 40000, 7_777_777),  # a new consumer on a reused slot: another publisher stream
        (3333, 3, 12),  # the publisher restarted (ICE restart): its numbering starts over
    ],
    ids=["pause and resume", "new consumer on a reused slot", "publisher restart"],
)
async def test_sequence_numbers_and_timestamps_continue_across_a_restarted_stream(
    pc: RTCPeerConnection, next_ssrc: int, next_seq: int, next_ts: int
) -> None:
    slot, output = started_slot(pc, "video")
    # Times are binary fractions, so the expected timestamps are exact.
    send(slot, rtp("video", 200, 3_000_000), now=10.0, keyframe_start=True)
    send(slot, rtp("video", 201, 3_003_000), now=10.03125)
    last = sent(output)

    slot.restart_stream()
    send(slot, rtp("video", next_seq, next_ts, ssrc=next_ssrc), now=12.03125, keyframe_start=True)
    send(slot, rtp("video", next_seq + 1, next_ts + 3000, ssrc=next_ssrc), now=12.0625)

    resumed, after = sent(output, 2), sent(output, 3)
    assert resumed.sequence_number == (last.sequence_number + 1) & 0xFFFF
    assert resumed.timestamp == (last.timestamp + 2 * 90000) & 0xFFFFFFFF
    assert after.sequence_number == (resumed.sequence_number + 1) & 0xFFFF
    assert after.timestamp == (resumed.timestamp + 3000) & 0xFFFFFFFF
    assert resumed.ssrc == after.ssrc == last.ssrc == output.ssrc


@pytest.mark.parametrize(
    ("kind", "gap", "advance"),
    [("video", 2.5, 225000), ("audio", 0.25, 12000), ("video", 0.0, 90)],
    ids=["video 2.5 s", "audio 0.25 s", "no gap: 1 ms"],
)
async def test_the_timestamp_advances_by_the_wall_clock_gap_times_the_clock_rate(
    pc: RTCPeerConnection, kind: str, gap: float, advance: int
) -> None:
    slot, output = started_slot(pc, kind)
    send(slot, rtp(kind, 10, 4_000_000), now=100.0, keyframe_start=True)
    slot.restart_stream()
    # The publisher's own timestamps say nothing about the gap (another stream may follow).
    send(slot, rtp(kind, 11, 50), now=100.0 + gap, keyframe_start=True)
    assert (sent(output, 1).timestamp - sent(output, 0).timestamp) & 0xFFFFFFFF == advance


async def test_sequence_numbers_and_timestamps_wrap_around(pc: RTCPeerConnection) -> None:
    slot, output = started_slot(pc, "video")
    send(slot, rtp("video", 1000, 0), now=1.0, keyframe_start=True)
    first = sent(output)
    seq_offset = (first.sequence_number - 1000) & 0xFFFF
    ts_offset = first.timestamp
    # Walk up to the last sequence number before the wrap in steps under half the sequence
    # space (a larger jump reads as an old packet), landing on the last timestamp too.
    out_seq = first.sequence_number
    while out_seq < 65535:
        out_seq = min(out_seq + 16000, 65535)
        seq = (out_seq - seq_offset) & 0xFFFF
        ts = (0xFFFFFFFF - ts_offset) & 0xFFFFFFFF
        send(slot, rtp("video", seq, ts), now=1.0)
    send(slot, rtp("video", (seq + 1) & 0xFFFF, (ts + 3000) & 0xFFFFFFFF), now=1.25)
    before, wrapped = sent(output, -2), sent(output, -1)
    assert (before.sequence_number, wrapped.sequence_number) == (65535, 0)
    assert (before.timestamp, wrapped.timestamp) == (0xFFFFFFFF, 2999)

    # The next run continues after the wrapped number, not after 65535.
    slot.restart_stream()
    send(slot, rtp("video", 7, 100), now=2.25, keyframe_start=True)
    assert sent(output).sequence_number == 1
    assert sent(output).timestamp == 2999 + 90000


async def test_a_late_packet_does_not_move_where_the_next_run_continues(
    pc: RTCPeerConnection,
) -> None:
    slot, output = started_slot(pc, "video")
    for seq in (10, 11, 12):
        send(slot, rtp("video", seq, 3000 * seq), now=1.0, keyframe_start=True)
    newest = sent(output)
    send(slot, rtp("video", 9, 27000), now=1.125)  # a retransmission arriving late
    slot.restart_stream()
    send(slot, rtp("video", 500, 0), now=1.25, keyframe_start=True)
    assert sent(output).sequence_number == (newest.sequence_number + 1) & 0xFFFF
    # The gap counts from when the newest packet was sent (0.25 s), not the late one.
    assert sent(output).timestamp == (newest.timestamp + 22500) & 0xFFFFFFFF


# --- header extensions -----------------------------------------------------------------------
def aiortc_bytes(
    output: RecordingOutput, like: RtpPacket, payload: bytes, extensions: HeaderExtensions
) -> bytes:
    """aiortc's serialization of the packet the slot should have sent."""
    packet = RtpPacket(
        payload_type=like.payload_type,
        marker=like.marker,
        sequence_number=like.sequence_number,
        timestamp=like.timestamp,
        ssrc=output.ssrc,
        payload=payload,
    )
    packet.extensions = extensions
    return packet.serialize(output.extensions_map)


async def test_video_carries_the_subscribers_mid_and_the_send_time_as_aiortc_lays_them_out(
    pc: RTCPeerConnection,
) -> None:
    slot, output = started_slot(pc, "video")
    packet = rtp("video", 42, 90000, marker=1)
    send(slot, packet, now=1.0, keyframe_start=True)
    out = sent(output)
    assert out.marker == 1
    assert out.payload_type == SUBSCRIBER_PAYLOAD_TYPE["video"]
    expected = HeaderExtensions(mid=MID, abs_send_time=ABS_SEND_TIME)
    assert output.datagrams[0] == aiortc_bytes(output, out, packet.payload, expected)


@pytest.mark.parametrize(
    ("audio_level", "expected"),
    [
        ((True, 42), HeaderExtensions(mid=MID, audio_level=(True, 42))),
        ((False, 127), HeaderExtensions(mid=MID, audio_level=(False, 127))),
        (None, HeaderExtensions(mid=MID)),
    ],
    ids=["speech", "silence", "no level"],
)
async def test_audio_carries_the_subscribers_mid_and_the_publishers_level_as_aiortc_lays_them_out(
    pc: RTCPeerConnection, audio_level: tuple[bool, int] | None, expected: HeaderExtensions
) -> None:
    slot, output = started_slot(pc, "audio")
    packet = rtp("audio", 42, 960, audio_level=audio_level)
    send(slot, packet, now=1.0)
    assert output.datagrams[0] == aiortc_bytes(output, sent(output), packet.payload, expected)


@pytest.mark.parametrize(
    ("kind", "extensions"),
    [
        ("video", [RTCRtpHeaderExtensionParameters(id=4, uri=MID_URI)]),
        ("audio", [RTCRtpHeaderExtensionParameters(id=9, uri=MID_URI)]),
        ("video", []),
    ],
    ids=["video, mid only", "audio, mid only", "no extensions"],
)
async def test_only_the_extensions_the_subscriber_negotiated_are_sent(
    pc: RTCPeerConnection, kind: str, extensions: list[RTCRtpHeaderExtensionParameters]
) -> None:
    slot, output = started_slot(pc, kind, extensions)
    packet = rtp(kind, 42, 960, audio_level=(True, 30))
    send(slot, packet, now=1.0, keyframe_start=True)
    expected = HeaderExtensions(mid=MID, abs_send_time=ABS_SEND_TIME, audio_level=(True, 30))
    assert output.datagrams[0] == aiortc_bytes(output, sent(output), packet.payload, expected)
    if not extensions:
        assert not output.datagrams[0][0] & 0x10  # no extension bit, no block


# --- retransmission restraint ----------------------------------------------------------------
class SteppedClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def big_rtp(sequence_number: int) -> RtpPacket:
    packet = rtp("video", sequence_number, 90000 + sequence_number * 3000)
    packet.payload = b"\x90\x80\x12" + bytes(1000)
    return packet


async def test_a_nacked_packet_is_sent_again_at_most_once_per_round_trip(
    pc: RTCPeerConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SteppedClock()
    monkeypatch.setattr(hooks, "monotonic", clock)
    slot, output = started_slot(pc, "video")
    for seq in range(1, 6):
        send(slot, rtp("video", seq, seq * 3000), now=1.0, keyframe_start=True)
    wire_seq = sent(output, 2).sequence_number
    output.sender._RTCRtpSender__rtt = 0.05  # type: ignore[attr-defined]  (from its reports)
    sent_before = len(output.datagrams)

    await output._retransmit(wire_seq)
    await output._retransmit(wire_seq)  # the same NACK again, same instant: a repeat
    clock.now += 0.03
    await output._retransmit(wire_seq)  # still within the round trip
    assert len(output.datagrams) == sent_before + 1
    assert sent(output).sequence_number == wire_seq
    clock.now += 0.03  # 60 ms after the first: a round trip has passed
    await output._retransmit(wire_seq)
    assert len(output.datagrams) == sent_before + 2
    assert (output.retransmissions, output.retransmissions_skipped) == (2, 2)
    assert (slot.retransmissions, slot.retransmissions_skipped) == (2, 2)


async def test_retransmissions_stop_when_their_share_of_what_was_sent_is_spent(
    pc: RTCPeerConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SteppedClock()
    monkeypatch.setattr(hooks, "monotonic", clock)
    slot, output = started_slot(pc, "video")
    send(slot, big_rtp(0), now=1.0, keyframe_start=True)
    for seq in range(1, 200):
        send(slot, big_rtp(seq), now=1.0)
    size = len(output.datagrams[-1])
    history = [sent(output, index).sequence_number for index in range(-128, 0)]
    before = len(output.datagrams)
    for wire_seq in history:  # a viewer that lost everything NACKs everything, once
        await output._retransmit(wire_seq)
    resent = len(output.datagrams) - before
    # The bucket holds at most RETRANSMIT_BUDGET_BYTES: far fewer than 128 packets of ~1 kB.
    assert resent * size <= hooks.RETRANSMIT_BUDGET_BYTES
    assert resent >= hooks.RETRANSMIT_BUDGET_BYTES // size - 1
    assert output.retransmissions_skipped == 128 - resent
    # Media refills it by RETRANSMIT_SHARE of what is sent: 20 more packets, 10 more repairs.
    for seq in range(200, 220):
        send(slot, big_rtp(seq), now=1.1)
    clock.now += 1.0
    before = len(output.datagrams)
    for wire_seq in history[-100:]:
        await output._retransmit(wire_seq)
    assert len(output.datagrams) - before in (9, 10)
