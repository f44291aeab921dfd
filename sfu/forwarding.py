"""The per-packet path: a producer's incoming RTP, rewritten per consumer and sent on.

No jitter buffer, no depayloading, no decoding. Per consumer the forwarder rewrites SSRC,
payload type, sequence number and timestamp (offsets recomputed whenever the stream restarts:
resume, new slot, publisher reconnect), header extensions (the subscriber's ids; mid,
abs-send-time, audio level kept), and starts video only at a key frame.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiortc import clock as aiortc_clock
from aiortc.rtp import HeaderExtensions, RtpPacket
from aiortc.utils import uint16_gt

from sfu.hooks import SenderOutput

if TYPE_CHECKING:
    from aiortc import RTCRtpTransceiver


class RateMeter:
    """Packets, bytes and a bitrate over the last second or so."""

    __slots__ = ("_window_bytes", "_window_start", "bitrate_bps", "bytes", "packets")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.bitrate_bps = 0
        self._window_start = time.monotonic()
        self._window_bytes = 0

    def add(self, size: int) -> None:
        self.packets += 1
        self.bytes += size
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed >= 1.0:
            self.bitrate_bps = int((self.bytes - self._window_bytes) * 8 / elapsed)
            self._window_start = now
            self._window_bytes = self.bytes

    def current_bitrate(self) -> int:
        # A stream that stopped has no packets to close its window: report it as idle.
        return 0 if time.monotonic() - self._window_start > 2.0 else self.bitrate_bps


class SendSlot:
    """One sendonly m-line of a subscriber's receive transport, reused by successive consumers.

    Sequence numbers and timestamps continue across the consumers that use the slot, so the
    subscriber sees one continuous RTP stream per SSRC.
    """

    def __init__(self, transceiver: RTCRtpTransceiver, kind: str, key: tuple[str, str, str]):
        self.transceiver = transceiver
        self.kind = kind
        self.key = key
        self.consumer_id: str | None = None
        self.output: SenderOutput | None = None
        self.payload_type: int | None = None
        self.clock_rate = 90000 if kind == "video" else 48000
        self.mid: str | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq: int | None = None
        self._last_ts: int | None = None
        self._last_time = 0.0
        self._needs_sync = True
        self.waiting_keyframe = kind == "video"

    @property
    def started(self) -> bool:
        return self.output is not None

    def start(self, payload_type: int, clock_rate: int, mid: str | None) -> None:
        self.output = SenderOutput(self.transceiver.sender)
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.mid = mid

    def restart_stream(self) -> None:
        """The next packet starts a new run: recompute offsets, wait for a key frame."""
        self._needs_sync = True
        self.waiting_keyframe = self.kind == "video"

    async def send(self, packet: RtpPacket, keyframe_start: bool) -> int:
        """Rewrite and send; returns bytes sent, 0 when dropped, -1 when a key frame is needed."""
        if self.waiting_keyframe:
            if not keyframe_start:
                return -1
            self.waiting_keyframe = False
        now = time.monotonic()
        if self._needs_sync:
            self._needs_sync = False
            next_seq = random.randint(0, 32767) if self._last_seq is None else (self._last_seq + 1)
            self._seq_offset = (next_seq - packet.sequence_number) & 0xFFFF
            if self._last_ts is None:
                next_ts = random.getrandbits(32)
            else:
                elapsed = max(now - self._last_time, 0.001)
                next_ts = self._last_ts + int(elapsed * self.clock_rate)
            self._ts_offset = (next_ts - packet.timestamp) & 0xFFFFFFFF
        seq = (packet.sequence_number + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        out = RtpPacket(
            payload_type=self.payload_type or 0,
            marker=packet.marker,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=self.output.ssrc if self.output else 0,
            payload=packet.payload,
        )
        extensions = HeaderExtensions()
        extensions.mid = self.mid
        if self.kind == "video":
            extensions.abs_send_time = (aiortc_clock.current_ntp_time() >> 14) & 0x00FFFFFF
        else:
            extensions.audio_level = packet.extensions.audio_level
        out.extensions = extensions
        if self._last_seq is None or uint16_gt(seq, self._last_seq):
            self._last_seq = seq
            self._last_ts = timestamp
            self._last_time = now
        assert self.output is not None
        return await self.output.send(out)


KeyframeDetector = Callable[[bytes], bool]
