"""Transport-wide feedback as browsers send it, read back: every reported packet with its
arrival time; anything malformed is a ValueError and nothing else (fuzzed).

The packets are built by bench/sfu_media.py's `pack_transport_feedback`, written after
libwebrtc's rtcp::TransportFeedback (run-length, one-bit and two-bit chunks, small and large
deltas, padding): the load clients send exactly these to Janus in bench/sfu.py.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.sfu_media import pack_transport_feedback
from sfu.twcc import DELTA_TICK_US, TransportFeedback, parse_transport_feedback


@st.composite
def receptions(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """A base sequence number and increasing (sequence, arrival µs) with gaps and jitter."""
    base = draw(st.integers(min_value=0, max_value=200_000))
    count = draw(st.integers(min_value=1, max_value=300))
    seq = base + draw(st.integers(min_value=0, max_value=50))
    # The reference time is 24 signed bits of 64 ms: arrivals repeat every ≈ 6.2 days, and the
    # estimator only ever compares them with the previous report's.
    arrival = draw(st.integers(min_value=0, max_value=500_000_000_000))
    received = []
    for _ in range(count):
        received.append((seq, arrival))
        seq += draw(st.sampled_from([1, 1, 1, 1, 2, 3, 20, 9000]))
        arrival += draw(st.sampled_from([0, 100, 900, 5_000, 40_000, 200_000, -3_000, -60_000]))
        arrival = max(arrival, 0)
    return base, received


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(receptions(), st.integers(min_value=0, max_value=255))
def test_every_reported_packet_comes_back_with_its_arrival_time(
    case: tuple[int, list[tuple[int, int]]], feedback_count: int
) -> None:
    base, received = case
    data, used = pack_transport_feedback(0x1234, 0x5678, base, received, feedback_count)
    feedback = parse_transport_feedback(data)
    assert (feedback.sender_ssrc, feedback.media_ssrc) == (0x1234, 0x5678)
    assert feedback.base_sequence == base & 0xFFFF
    assert feedback.feedback_count == feedback_count
    reported = received[:used]
    assert [seq for seq, _ in feedback.received] == [seq & 0xFFFF for seq, _ in reported]
    # Each delta is rounded to 250 µs from the previous rounded arrival: never more than half
    # a tick off.
    for (_, parsed), (_, sent) in zip(feedback.received, reported, strict=True):
        assert abs(parsed - sent) <= DELTA_TICK_US // 2
    # Everything between the first and the last reported is there, lost or received.
    assert len(feedback.packets) == reported[-1][0] - base + 1


def test_a_lost_packet_is_reported_without_an_arrival() -> None:
    data, _ = pack_transport_feedback(1, 2, 100, [(100, 64_000), (103, 65_000)], 7)
    feedback = parse_transport_feedback(data)
    assert feedback.packets == (
        (100, 64_000),
        (101, None),
        (102, None),
        (103, 65_000),
    )


VALID, _ = pack_transport_feedback(1, 2, 65_530, [(65_530, 1_000_000), (65_540, 1_300_000)], 1)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        VALID[:19],
        VALID[:-4],  # deltas cut off
        bytes([0x4F]) + VALID[1:],  # version 1
        bytes([0x81]) + VALID[1:],  # FMT 1: a NACK
        VALID[:1] + bytes([206]) + VALID[2:],  # PSFB
        VALID[:2] + b"\x00\x40" + VALID[4:],  # longer than the data
    ],
)
def test_malformed_feedback_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"transport|RTCP|status|run-length"):
        parse_transport_feedback(data)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=len(VALID) - 1), st.binary())
def test_any_bytes_are_parsed_or_refused_with_a_value_error(
    noise: bytes, at: int, splice: bytes
) -> None:
    for data in (noise, VALID[:at] + splice + VALID[at + len(splice) :], b"\x8f\xcd" + noise):
        try:
            feedback = parse_transport_feedback(data)
        except ValueError:
            continue
        assert isinstance(feedback, TransportFeedback)
        assert len(feedback.packets) <= 0xFFFF
