"""Transport-wide congestion control feedback (RTCP RTPFB FMT 15,
draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1), read.

A browser that negotiated transport-cc reports, every 50 to 250 ms, which of the packets it was
sent (numbered per transport in a header extension) arrived and when. That report is what a
per-viewer downlink estimate is computed from (issue 13: not wired into the forwarder yet).
aiortc parses every RTPFB packet as a generic NACK and drops this content, so the bytes are
read here: `parse_transport_feedback` turns one feedback packet into the sequence numbers it
covers with each one's arrival time, or raises ValueError for anything malformed (the packet
comes from outside: a truncated, oversized or inconsistent report must never raise anything
else).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTCP_RTPFB = 205
FMT_TRANSPORT_CC = 15
# Receive deltas count 250 µs; the reference time counts 64 ms.
DELTA_TICK_US = 250
REFERENCE_TICK_US = 64_000
NOT_RECEIVED, SMALL_DELTA, LARGE_DELTA = 0, 1, 2

_FIXED = struct.Struct("!BBHIIHHI")


@dataclass(frozen=True)
class TransportFeedback:
    sender_ssrc: int
    media_ssrc: int
    base_sequence: int
    feedback_count: int
    reference_time_us: int  # the first arrival's 64 ms slot, signed (the draft's 24 bits)
    # (sequence number modulo 2**16, arrival in µs on the receiver's clock or None: lost)
    packets: tuple[tuple[int, int | None], ...]

    @property
    def received(self) -> list[tuple[int, int]]:
        return [(seq, at) for seq, at in self.packets if at is not None]


def parse_transport_feedback(data: bytes) -> TransportFeedback:
    """One RTCP transport-wide feedback packet (the whole packet, header included)."""
    if len(data) < _FIXED.size:
        raise ValueError("transport feedback shorter than its fixed part")
    first, packet_type, length_words, sender, media, base, count, reference = _FIXED.unpack_from(
        data
    )
    if first >> 6 != 2:
        raise ValueError("not RTCP version 2")
    if packet_type != RTCP_RTPFB or first & 0x1F != FMT_TRANSPORT_CC:
        raise ValueError("not a transport-wide feedback packet")
    end = 4 * (length_words + 1)
    if end > len(data):
        raise ValueError("transport feedback longer than the data")
    if first & 0x20:  # padding: its length is the last byte
        padding = data[end - 1]
        if padding == 0 or padding > end - _FIXED.size:
            raise ValueError("bad transport feedback padding")
        end -= padding
    symbols, position = _status_symbols(data, _FIXED.size, end, count)
    reference_ticks = reference >> 8
    if reference_ticks & 0x800000:
        reference_ticks -= 1 << 24
    arrival = reference_ticks * REFERENCE_TICK_US
    packets: list[tuple[int, int | None]] = []
    for index, symbol in enumerate(symbols):
        sequence = (base + index) & 0xFFFF
        if symbol == NOT_RECEIVED:
            packets.append((sequence, None))
            continue
        if symbol == SMALL_DELTA:
            if position + 1 > end:
                raise ValueError("transport feedback deltas cut short")
            ticks = data[position]
            position += 1
        else:
            if position + 2 > end:
                raise ValueError("transport feedback deltas cut short")
            ticks = int.from_bytes(data[position : position + 2], "big", signed=True)
            position += 2
        arrival += ticks * DELTA_TICK_US
        packets.append((sequence, arrival))
    return TransportFeedback(
        sender_ssrc=sender,
        media_ssrc=media,
        base_sequence=base,
        feedback_count=reference & 0xFF,
        reference_time_us=reference_ticks * REFERENCE_TICK_US,
        packets=tuple(packets),
    )


def _status_symbols(data: bytes, position: int, end: int, count: int) -> tuple[list[int], int]:
    """`count` packet status symbols from the chunks at `position`; where the deltas start."""
    symbols: list[int] = []
    while len(symbols) < count:
        if position + 2 > end:
            raise ValueError("transport feedback status chunks cut short")
        chunk = (data[position] << 8) | data[position + 1]
        position += 2
        left = count - len(symbols)
        if not chunk & 0x8000:  # run length: a symbol repeated
            symbol, run = (chunk >> 13) & 0x03, chunk & 0x1FFF
            if symbol == 3:
                raise ValueError("reserved status symbol")
            if run == 0:
                raise ValueError("empty run-length chunk")
            symbols.extend([symbol] * min(run, left))
        elif not chunk & 0x4000:  # status vector of 14 one-bit symbols
            symbols.extend((chunk >> (13 - i)) & 0x01 for i in range(min(14, left)))
        else:  # status vector of 7 two-bit symbols
            for i in range(min(7, left)):
                symbol = (chunk >> (12 - 2 * i)) & 0x03
                if symbol == 3:
                    raise ValueError("reserved status symbol")
                symbols.append(symbol)
    return symbols, position
