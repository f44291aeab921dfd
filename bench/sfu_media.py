"""Media and measurement helpers shared by the SFU benchmark's processes.

- Pre-encoded clips: a synthetic moving 640x480@30 VP8 clip (~1 Mbps) and an Opus clip, each
  encoded once (cached under bench/results/clip-cache/) and then sent without re-encoding:
  PacketSource paces the encoded packets in real time and hands every one to each of its tracks,
  whose recv() returns av.Packet, so aiortc's RTCRtpSender only packs them (no encoder runs).
- Probes below the decoder: `hook_sent` wraps a publisher's DTLS transport `_send_rtp` and
  `hook_received` replaces a subscriber's `_handle_rtp_data` (decrypted RTP, before parsing,
  routing, jitter buffer and decoder). Both key packets by a CRC of the payload's last bytes,
  which a forwarder does not change (it may rewrite the RTP header and the VP8 descriptor at the
  start of the payload), so the same packet is recognised on both sides of the SFU.
- Receive times: each received sample carries two clocks, the kernel's arrival time of the
  datagram at the subscriber's socket (SIOCGSTAMPNS, read in aioice's datagram callback right
  after the datagram was read) and the time the load client's Python code processed it. The
  first is what the SFU is measured by; the second adds the load clients' own queueing.
- Pacing: `Pacer` spreads a publisher's RTP like a browser's pacer (libwebrtc PacingController:
  2.5 x the target bitrate, 5 ms bursts) instead of aiortc's whole-frame bursts.
- Feedback: with hook_received(..., feedback="browser") a counting subscriber sends the RTCP a
  browser's libwebrtc sends on that connection (`BrowserFeedback`: Receiver Reports + SDES,
  REMB or, where negotiated (Janus), transport-wide congestion control feedback, NACK, PLI, at
  libwebrtc's intervals), so the SFU pays for feedback as with browsers; such a subscriber
  answers as a browser would (`browser_answer`: it keeps the transport-wide-cc extension).
- Loopback only: aioice gathers host candidates on 127.0.0.1 only, no ICE servers.
"""

from __future__ import annotations

import array
import asyncio
import collections
import fcntl
import fractions
import logging
import math
import pickle
import random
import re
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from aiortc import RTCConfiguration, RTCPeerConnection, clock
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB,
    RTCP_RTPFB_NACK,
    RTCP_SR,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSourceInfo,
    clamp_packets_lost,
    pack_remb_fci,
)

from sfu import hooks
from sfu.codecs import KeyframeDetector, is_vp8_keyframe_start, keyframe_detector

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / "results" / "clip-cache"

VIDEO_FPS = 30
VIDEO_SIZE = (640, 480)
VIDEO_BITRATE = 1_000_000
VIDEO_FRAMES = 300  # a 10 s loop
VIDEO_GOP = 60  # a keyframe every 2 s: late subscribers wait at most that long
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.02
AUDIO_PACKETS = 500  # a 10 s loop
TAIL_BYTES = 24
SAMPLE_MASK = 7  # probe 1 packet in 8 (chosen by key, so the same packets on both sides)


# --- loopback ------------------------------------------------------------------------------
def loopback_only() -> None:
    """aioice: gather host candidates on 127.0.0.1 only (it skips loopback by default)."""
    hooks.gather_host_candidates_on(["127.0.0.1"])


def new_peer_connection() -> RTCPeerConnection:
    # An explicit empty server list: aiortc would otherwise contact a public STUN server.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


# --- clips -----------------------------------------------------------------------------------
@dataclass
class Clip:
    kind: str  # "video" | "audio"
    packets: list[bytes]
    keyframes: list[bool]
    time_base: fractions.Fraction
    duration: int  # of one packet, in time_base units

    @property
    def interval(self) -> float:
        return float(self.duration * self.time_base)

    @property
    def bitrate(self) -> float:
        return sum(len(p) for p in self.packets) * 8 / (len(self.packets) * self.interval)


def _synthetic_picture(index: int, texture: list[bytes], chroma: list[bytes]) -> bytes:
    """yuv420p: a scrolling textured background and a moving bright box (~1 Mbps in VP8)."""
    width, height = VIDEO_SIZE
    shift = (index * 4) % width
    box_x = int((width - 128) * (0.5 + 0.5 * math.sin(index / 20))) & ~1
    box_y = int((height - 128) * (0.5 + 0.5 * math.cos(index / 27))) & ~1
    box_row = bytes([235 - (index % 60)]) * 128
    luma = []
    for y in range(height):
        row = texture[y][shift : shift + width]
        if box_y <= y < box_y + 128:
            row = row[:box_x] + box_row + row[box_x + 128 :]
        luma.append(row)
    half_shift = shift // 2
    planes = [b"".join(luma)]
    for plane in range(2):
        rows = chroma[plane::2][: height // 2]
        planes.append(b"".join(r[half_shift : half_shift + width // 2] for r in rows))
    return b"".join(planes)


def encode_video_clip() -> Clip:
    rng = random.Random(7)
    width, height = VIDEO_SIZE

    def textured_rows(count: int, row_width: int, block: int) -> list[bytes]:
        rows = []
        for _ in range(count // block):
            coarse = [rng.randrange(40, 216) for _ in range(2 * row_width // block)]
            base = bytes(value for value in coarse for _ in range(block))
            for _ in range(block):
                fine = rng.randbytes(2 * row_width)
                rows.append(bytes((b + (f & 15)) & 0xFF for b, f in zip(base, fine, strict=True)))
        return rows

    texture = textured_rows(height, width, 8)
    chroma = textured_rows(height, width // 2, 4)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = VIDEO_SIZE
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, VIDEO_FPS)
    codec.framerate = fractions.Fraction(VIDEO_FPS, 1)
    codec.bit_rate = VIDEO_BITRATE
    codec.gop_size = VIDEO_GOP
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(VIDEO_BITRATE),
        "maxrate": str(VIDEO_BITRATE),
        "bufsize": str(VIDEO_BITRATE),
        "kf_max_dist": str(VIDEO_GOP),
        "kf_min_dist": str(VIDEO_GOP),
    }
    packets: list[bytes] = []
    keyframes: list[bool] = []

    def collect(encoded: list[av.Packet]) -> None:
        for packet in encoded:
            packets.append(bytes(packet))
            keyframes.append(bool(packet.is_keyframe))

    for index in range(VIDEO_FRAMES):
        picture = _synthetic_picture(index, texture, chroma)
        frame = av.VideoFrame(width, height, "yuv420p")
        luma_size, chroma_size = width * height, width * height // 4
        frame.planes[0].update(picture[:luma_size])
        frame.planes[1].update(picture[luma_size : luma_size + chroma_size])
        frame.planes[2].update(picture[luma_size + chroma_size :])
        frame.pts = index
        frame.time_base = codec.time_base
        collect(codec.encode(frame))
    collect(codec.encode(None))
    assert keyframes[0], "the clip must start with a keyframe"
    return Clip("video", packets, keyframes, fractions.Fraction(1, 90_000), 90_000 // VIDEO_FPS)


def encode_audio_clip() -> Clip:
    samples_per_packet = int(AUDIO_RATE * AUDIO_PTIME)
    total = samples_per_packet * AUDIO_PACKETS
    rng = random.Random(11)
    # A sweep plus a little noise: every 20 ms packet differs from every other one.
    interleaved = array.array("h")
    for n in range(total):
        t = n / AUDIO_RATE
        value = int(
            (0.3 * math.sin(2 * math.pi * (200 + 300 * t) * t) + rng.gauss(0, 0.02)) * 32767
        )
        value = max(-32768, min(32767, value))
        interleaved.append(value)
        interleaved.append(value)
    pcm = interleaved.tobytes()
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 64_000
    codec.time_base = fractions.Fraction(1, AUDIO_RATE)
    packets: list[bytes] = []
    chunk_bytes = samples_per_packet * 4
    for index in range(AUDIO_PACKETS + 4):
        start = (index % AUDIO_PACKETS) * chunk_bytes
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples_per_packet)
        frame.planes[0].update(pcm[start : start + chunk_bytes])
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * samples_per_packet
        frame.time_base = codec.time_base
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets = packets[:AUDIO_PACKETS]
    return Clip(
        "audio",
        packets,
        [True] * len(packets),
        fractions.Fraction(1, AUDIO_RATE),
        samples_per_packet,
    )


def load_clip(kind: str) -> Clip:
    """Encode once; later runs read the cache (delete the folder to re-encode)."""
    path = CACHE / f"{kind}-v1.pickle"
    if path.exists():
        clip: Clip = pickle.loads(path.read_bytes())
        return clip
    clip = encode_video_clip() if kind == "video" else encode_audio_clip()
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(clip))
    return clip


# --- sending pre-encoded packets ---------------------------------------------------------
class PacketTrack(MediaStreamTrack):
    """A track whose recv() returns av.Packet: RTCRtpSender packs it without encoding."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[av.Packet] = asyncio.Queue(maxsize=100)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        return await self.queue.get()


class PacketSource:
    """Paces a clip in real time (looping) and gives every packet to each of its tracks."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self.tracks: list[PacketTrack] = []
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def track(self) -> PacketTrack:
        track = PacketTrack(self.clip.kind)
        self.tracks.append(track)
        return track

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        clip = self.clip
        start = time.monotonic()
        index = 0
        while True:
            delay = start + index * clip.interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            data = clip.packets[index % len(clip.packets)]
            for track in self.tracks:
                packet = av.Packet(data)
                packet.pts = index * clip.duration
                packet.time_base = clip.time_base
                if track.queue.full():  # a stalled sender must not grow memory
                    track.queue.get_nowait()
                track.queue.put_nowait(packet)
            self.sent += 1
            index += 1


# --- probes --------------------------------------------------------------------------------
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([A-Za-z0-9-]+)/", re.MULTILINE)
_ABS_SEND_TIME = re.compile(
    r"^a=extmap:(\d+)(?:/\w+)? http://www\.webrtc\.org/experiments/rtp-hdrext/abs-send-time",
    re.MULTILINE,
)


def payload_kinds(sdp: str) -> dict[int, str]:
    """Payload type -> "video" | "audio" | "rtx" | "other", from an SDP."""
    kinds: dict[int, str] = {}
    for pt, name in _RTPMAP.findall(sdp):
        lowered = name.lower()
        if lowered == "rtx":
            kinds[int(pt)] = "rtx"
        elif lowered in ("vp8", "vp9", "h264", "av1"):
            kinds[int(pt)] = "video"
        elif lowered in ("opus", "pcmu", "pcma", "g722"):
            kinds[int(pt)] = "audio"
        else:
            kinds[int(pt)] = "other"
    return kinds


def vp8_payload_types(sdp: str) -> set[int]:
    return {int(pt) for pt, name in _RTPMAP.findall(sdp) if name.lower() == "vp8"}


def _payload_bounds(data: bytes) -> tuple[int, int]:
    """Start and end of a plaintext RTP packet's payload (after the header, before padding)."""
    first = data[0]
    position = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        position += 4 + 4 * int.from_bytes(data[position + 2 : position + 4], "big")
    end = len(data)
    if first & 0x20:
        end -= data[-1]
    return position, end


def packet_key(data: bytes) -> tuple[int, int, int]:
    """(payload type, marker, CRC of the payload's last bytes) of a plaintext RTP packet."""
    position, end = _payload_bounds(data)
    tail = data[max(position, end - TAIL_BYTES) : end]
    return data[1] & 0x7F, data[1] >> 7, zlib.crc32(tail)


# --- kernel receive timestamps -------------------------------------------------------------
SIOCGSTAMPNS = 0x8907  # linux/sockios.h: struct timespec of the last packet passed to the user
_TIMESPEC = struct.Struct("@qq")
_TIMESPEC_BUFFER = bytes(_TIMESPEC.size)


def kernel_arrival(fd: int) -> float | None:
    """When the datagram last read from socket `fd` reached it, in CLOCK_MONOTONIC seconds.

    SIOCGSTAMPNS gives the kernel's receive timestamp (CLOCK_REALTIME) of the last datagram
    handed to user space on that socket, so it must be read right after that read, before the
    next one: aioice's datagram callback runs synchronously after asyncio's recvfrom(). The
    first call enables timestamping on the socket (it fails with ENOENT if nothing was received
    yet; a datagram that arrived before reads as "now"). SO_TIMESTAMP(NS) must NOT be set: with
    it the kernel puts the stamp in a control message only and this ioctl fails with ENOENT
    (checked on Linux 6.18). Converted with the REALTIME -> MONOTONIC offset of this moment,
    because the publisher records CLOCK_MONOTONIC.
    """
    try:
        raw = fcntl.ioctl(fd, SIOCGSTAMPNS, _TIMESPEC_BUFFER)
    except OSError:
        return None
    seconds, nanoseconds = _TIMESPEC.unpack(raw)
    offset_ns = time.monotonic_ns() - time.time_ns()
    return (seconds * 1_000_000_000 + nanoseconds + offset_ns) / 1e9


def _nominated_socket_fd(connection: Any) -> int:
    """The fd of aioice's socket for the nominated pair (-1 before ICE nominates one).

    With loopback_only() a connection has one host candidate, so one socket: every datagram
    of the connection arrives on it.
    """
    pair = connection._nominated.get(1)
    if pair is None:
        return -1
    sock = pair.protocol.transport.get_extra_info("socket")
    return -1 if sock is None else int(sock.fileno())


# A sample: (kind, key, app time, kernel arrival time, keyframe packet), CLOCK_MONOTONIC.
# On the sending side both times are when the packet left; keyframe is known only there.
Sample = tuple[str, int, float, float, bool]


@dataclass
class StreamCounter:
    """What one peer connection sent or received, reset at the start of each window."""

    kinds: dict[int, str] = field(default_factory=dict)
    packets: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    last_packet: float = 0.0
    total_packets: int = 0
    # Receive samples whose kernel timestamp could not be read (their app time stands in).
    kernel_missing: int = 0
    # Only packets inside [window_start, window_end) count: every process of the benchmark
    # gets the same CLOCK_MONOTONIC bounds, so their windows line up exactly.
    window_start: float = float("inf")
    window_end: float = float("inf")
    sample_mask: int = SAMPLE_MASK
    # Sending side only: VP8 payload types whose keyframes are tracked (a keyframe's packets
    # share the RTP timestamp of its first packet, the one is_vp8_keyframe_start recognises).
    vp8_payload_types: set[int] = field(default_factory=set)
    _keyframe_timestamp: bytes = b""
    # Receiving side: the RTCP feedback this connection sends ("none" | "browser", see
    # BrowserFeedback) and, inside the window, how many of each kind it sent.
    feedback_mode: str = "none"
    feedback: dict[str, int] = field(default_factory=dict)

    def record(
        self,
        data: bytes,
        fd: int = -1,
        arrived: float | None = None,
        kernel_expected: bool = False,
        now: float | None = None,
    ) -> None:
        """Count a plaintext RTP packet; `fd`: read its kernel arrival time from that socket
        (only for sampled packets: the read must happen before the socket's next datagram);
        `arrived`: a kernel arrival time read earlier (`kernel_expected`: it should be there).
        Without either (the sending side) the sample's two times are both "now". `now`: the
        caller's time.monotonic() of this packet, when it already read one."""
        if now is None:
            now = time.monotonic()
        self.last_packet = now
        self.total_packets += 1
        pt = data[1] & 0x7F
        keyframe = False
        if pt in self.vp8_payload_types:
            position, end = _payload_bounds(data)
            if is_vp8_keyframe_start(data[position : min(end, position + 8)]):
                self._keyframe_timestamp = data[4:8]
            keyframe = data[4:8] == self._keyframe_timestamp
        if not self.window_start <= now < self.window_end:
            return
        pt, marker, key = packet_key(data)
        kind = self.kinds.get(pt, "other")
        self.packets[kind] = self.packets.get(kind, 0) + 1
        if marker:
            self.frames[kind] = self.frames.get(kind, 0) + 1
        if key & self.sample_mask == 0 and kind in ("video", "audio"):
            if arrived is None and fd >= 0:
                arrived = kernel_arrival(fd)
            if arrived is None:
                arrived = now
                self.kernel_missing += fd >= 0 or kernel_expected
            self.samples.append((kind, key, now, arrived, keyframe))

    def open_window(self, start: float, end: float, sample_mask: int) -> None:
        self.packets = {}
        self.frames = {}
        self.samples = []
        self.kernel_missing = 0
        self.feedback = {}
        self.window_start, self.window_end, self.sample_mask = start, end, sample_mask

    def count_feedback(self, name: str, now: float, count: int = 1) -> None:
        """Count `count` RTCP items of kind `name` sent at `now`, if inside the window."""
        if self.window_start <= now < self.window_end:
            self.feedback[name] = self.feedback.get(name, 0) + count

    def report(self) -> dict[str, Any]:
        return {
            "packets": dict(self.packets),
            "frames": dict(self.frames),
            "kernel_stamp_missing": self.kernel_missing,
            "feedback_mode": self.feedback_mode,
            # Every count present (zeros too) when this client sends browser-like feedback.
            "feedback": {
                **(dict.fromkeys(FEEDBACK_COUNTS, 0) if self.feedback_mode == "browser" else {}),
                **self.feedback,
            },
        }


def _is_rtcp(data: bytes) -> bool:
    return len(data) >= 2 and 192 <= data[1] <= 223


# --- pacing --------------------------------------------------------------------------------
# libwebrtc's pacer (modules/pacing/pacing_controller.cc): PacingController::
# kDefaultPaceMultiplier = 2.5 (pacing rate = 2.5 x the target bitrate) and
# kDefaultMinPacketLimit = 5 ms ("time limit between packet bursts": the process interval,
# each burst spends the media budget of the time elapsed, IntervalBudget without build-up of
# unused budget, a packet may overdraw it and the debt is paid by the next bursts).
PACE_MULTIPLIER = 2.5
PACE_INTERVAL = 0.005


class Pacer:
    """A FIFO leaky bucket in front of a DTLS transport's `_send_rtp` (RTP only).

    Packets wait in order; every PACE_INTERVAL the budget grows by rate x elapsed time (at most
    one interval's worth when it is not in debt) and packets leave while it is positive. A
    packet reaching an empty queue with budget left goes at once. Each packet is recorded and
    its abs-send-time stamped when it actually leaves, as a browser's pacer does, so pacing
    delay is not counted as network/SFU latency and the SFU's bandwidth estimator sees real
    send times.
    """

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        rate_bps: float,
        counter: StreamCounter,
        abs_send_time_id: int | None,
    ) -> None:
        self._send = send
        self._bytes_per_second = rate_bps / 8
        self._counter = counter
        self._abs_send_time_id = abs_send_time_id
        self._queue: collections.deque[bytes] = collections.deque()
        self._budget = 0.0
        self._last_process = time.monotonic()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.max_queue = 0

    async def enqueue(self, data: bytes) -> None:
        self._queue.append(data)
        self.max_queue = max(self.max_queue, len(self._queue))
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._queue.clear()

    def _grow_budget(self, now: float) -> None:
        elapsed = min(now - self._last_process, 0.030)  # libwebrtc: kMaxProcessingInterval
        self._last_process = now
        interval_bytes = self._bytes_per_second * PACE_INTERVAL
        if self._budget < 0:
            self._budget = min(self._budget + elapsed * self._bytes_per_second, interval_bytes)
        else:
            self._budget = min(elapsed * self._bytes_per_second, interval_bytes)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            self._grow_budget(time.monotonic())
            while self._queue and self._budget > 0:
                data = self._queue.popleft()
                self._budget -= len(data)
                if self._abs_send_time_id is not None:
                    data = _stamp_abs_send_time(data, self._abs_send_time_id)
                self._counter.record(data)
                try:
                    await self._send(data)
                except ConnectionError:  # closing: drop what is queued
                    self._queue.clear()
            if self._queue:
                await asyncio.sleep(PACE_INTERVAL)


def _stamp_abs_send_time(data: bytes, extension_id: int) -> bytes:
    """Rewrite the abs-send-time one-byte header extension (6.18 fixed point, 24 bits)."""
    first = data[0]
    if not first & 0x10:
        return data
    start = 12 + 4 * (first & 0x0F)
    if data[start : start + 2] != b"\xbe\xde":
        return data
    end = start + 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    position = start + 4
    while position < end:
        header = data[position]
        if header == 0:  # padding
            position += 1
            continue
        element_id, length = header >> 4, (header & 0x0F) + 1
        if element_id == 15:
            break
        if element_id == extension_id and length == 3:
            stamp = ((clock.current_ntp_time() >> 14) & 0xFFFFFF).to_bytes(3, "big")
            return data[: position + 1] + stamp + data[position + 4 :]
        position += 1 + length
    return data


def hook_sent(
    pc: RTCPeerConnection, counter: StreamCounter, pacing_rate_bps: float | None = None
) -> list[Pacer]:
    """Record every RTP packet a publisher connection sends (call after setRemoteDescription).

    With pacing_rate_bps, RTP goes through a Pacer at that rate (RTCP does not: a browser's
    pacer only queues media) and is recorded when it leaves; the pacers are returned so the
    caller can stop them.
    """
    counter.vp8_payload_types = vp8_payload_types(pc.localDescription.sdp)
    abs_send_time = _ABS_SEND_TIME.search(pc.remoteDescription.sdp)
    abs_send_time_id = int(abs_send_time.group(1)) if abs_send_time else None
    pacers: list[Pacer] = []
    for transport in {t.sender.transport for t in pc.getTransceivers()}:
        original: Callable[[bytes], Awaitable[None]] = transport._send_rtp

        if pacing_rate_bps:
            pacer = Pacer(original, pacing_rate_bps, counter, abs_send_time_id)
            pacers.append(pacer)

            async def pace(
                data: bytes,
                original: Callable[[bytes], Awaitable[None]] = original,
                pacer: Pacer = pacer,
            ) -> None:
                if _is_rtcp(data):
                    await original(data)
                else:
                    await pacer.enqueue(data)

            transport._send_rtp = pace  # type: ignore[method-assign]
        else:

            async def send_and_record(
                data: bytes, original: Callable[[bytes], Awaitable[None]] = original
            ) -> None:
                if not _is_rtcp(data):
                    counter.record(data)
                await original(data)

            transport._send_rtp = send_and_record  # type: ignore[method-assign]
    return pacers


def _is_srtp(data: bytes) -> bool:
    return 127 < data[0] < 192 and not 192 <= data[1] <= 223


def hook_received(
    pc: RTCPeerConnection, counter: StreamCounter, *, decode: bool, feedback: str = "none"
) -> None:
    """Record every RTP packet a subscriber connection receives, after SRTP, before parsing.

    With decode=False the packet stops here: no jitter buffer, no decoder (a cheap load
    client); with decode=True it goes on to aiortc's receiver and decoder as usual. Either
    way the kernel arrival time is read in aioice's datagram callback.

    `feedback` (decode=False only): "none" sends no RTCP at all (the cheapest client, but the
    SFU then never receives, decrypts or parses feedback); "browser" sends what Chrome's
    libwebrtc sends on such a connection (BrowserFeedback: RR + SDES, REMB or transport-wide
    feedback, NACK, PLI), from what the descriptions negotiated: for a browser's negotiation,
    set as local description browser_answer(offer, aiortc's answer). A decoding subscriber
    always sends aiortc's own feedback (its RTCRtpReceiver runs).
    Call after every setLocalDescription: a renegotiation's new m-lines are picked up.
    """
    if feedback not in FEEDBACK_MODES:
        raise ValueError(f"feedback must be one of {FEEDBACK_MODES}, not {feedback!r}")
    counter.feedback_mode = "aiortc" if decode else feedback
    for transport in {t.receiver.transport for t in pc.getTransceivers()}:
        if getattr(transport, "_bench_hooked", False):
            existing: BrowserFeedback | None = getattr(transport, "_bench_feedback", None)
            if existing is not None:
                existing.configure_from(pc, transport)
            continue
        transport._bench_hooked = True  # type: ignore[attr-defined]
        original = transport._handle_rtp_data

        if decode:
            arrivals = _stash_kernel_arrivals(transport)

            async def record_and_pass(
                data: bytes,
                arrival_time_ms: int,
                original: Any = original,
                arrivals: dict[bytes, float] = arrivals,
            ) -> None:
                # The RTP header is not encrypted: SSRC + sequence number find the datagram.
                arrived = arrivals.pop(data[8:12] + data[2:4], None)
                counter.record(data, arrived=arrived, kernel_expected=True)
                await original(data, arrival_time_ms)

            transport._handle_rtp_data = record_and_pass  # type: ignore[method-assign]
        else:

            async def record_only(data: bytes, arrival_time_ms: int) -> None:
                counter.record(data)

            transport._handle_rtp_data = record_only  # type: ignore[method-assign]
            browser: BrowserFeedback | None = None
            if feedback == "browser":
                browser = BrowserFeedback.for_transport(pc, transport, counter)
                transport._bench_feedback = browser  # type: ignore[attr-defined]
            _shortcut_srtp(transport, counter, browser)


def _stash_kernel_arrivals(dtls: Any) -> dict[bytes, float]:
    """Kernel arrival time of each SRTP datagram, by SSRC + sequence number (decode path).

    The decoding subscriber's packets reach _handle_rtp_data later, through aioice's queue and
    aiortc's receive coroutine; the timestamp must be read in the datagram callback.
    """
    connection = dtls.transport._connection
    original = connection.data_received
    arrivals: dict[bytes, float] = {}
    socket_fd = -1

    def data_received(data: bytes, component: int) -> None:
        nonlocal socket_fd
        if _is_srtp(data):
            if socket_fd < 0:
                socket_fd = _nominated_socket_fd(connection)
            arrived = kernel_arrival(socket_fd) if socket_fd >= 0 else None
            if arrived is not None:
                if len(arrivals) > 4096:  # dropped by SRTP (replays): do not grow
                    arrivals.clear()
                arrivals[data[8:12] + data[2:4]] = arrived
        original(data, component)

    connection.data_received = data_received
    return arrivals


def _shortcut_srtp(dtls: Any, counter: StreamCounter, feedback: BrowserFeedback | None) -> None:
    """Count SRTP straight from aioice's datagram callback (the cheap load client).

    aioice queues every datagram for RTCDtlsTransport's receive coroutine; for a client that
    only counts, that queue and coroutine cost as much as the SFU's forwarding. Once SRTP is
    up, RTP is decrypted and counted right here (with the socket, for its kernel arrival
    time); DTLS and STUN take the usual path. Without `feedback` so does incoming RTCP (aiortc's
    receivers read the Sender Reports, and send nothing: they never see an RTP packet). With
    it, incoming SRTCP is decrypted here too and its Sender Reports go to `feedback` (for LSR
    and DLSR), and every RTP packet goes to `feedback` after it is counted.
    """
    connection = dtls.transport._connection
    original = connection.data_received
    socket_fd = -1

    def data_received(data: bytes, component: int) -> None:
        nonlocal socket_fd
        srtp = dtls._rx_srtp
        if srtp is not None and 127 < data[0] < 192:
            if 192 <= data[1] <= 223:  # RTCP (RFC 5761 demultiplexing)
                if feedback is None:
                    original(data, component)
                    return
                try:
                    plain = srtp.unprotect_rtcp(data)
                except Exception:  # replayed or corrupt: aiortc would drop it too
                    return
                feedback.on_rtcp(plain, time.monotonic())
                return
            try:
                plain = srtp.unprotect(data)
            except Exception:  # replayed or corrupt: aiortc would drop it too
                return
            if socket_fd < 0:
                socket_fd = _nominated_socket_fd(connection)
            if feedback is None:
                counter.record(plain, socket_fd)
            else:
                now = time.monotonic()
                counter.record(plain, socket_fd, now=now)
                feedback.on_rtp(plain, now)
            return
        original(data, component)

    connection.data_received = data_received


# --- RTCP feedback like a browser's --------------------------------------------------------
# What Chrome (libwebrtc) sends back on a connection on which it only receives. Toward this SFU
# (aiortc's defaults, sfu/negotiation.py: video VP8/H264 + RTX with rtcp-fb "nack", "nack pli"
# and "goog-remb" and the abs-send-time header extension; audio Opus without rtcp-fb; no
# "transport-cc", no transport-wide-cc extension, no a=rtcp-rsize): compound RTCP packets
# (RR + SDES + PLI/NACK/REMB). Toward Janus, whose offer also has the transport-wide-cc
# extension and rtcp-fb "transport-cc" on video (and "ccm fir", which Chrome never uses while
# "nack pli" is there): Chrome keeps both in its answer (browser_answer), Janus then stamps a
# transport-wide sequence number on every video packet, and Chrome reports their arrival in
# transport-wide feedback (RTPFB FMT 15) instead of running its REMB estimator. BrowserFeedback
# checks the negotiated SDP rather than assuming either, and sends only what was negotiated.
FEEDBACK_MODES = ("none", "browser")

# libwebrtc's numbers, named as there.
# modules/rtp_rtcp/source/rtcp_sender.cc: kDefaultVideoReportInterval = 1000 ms and
# kDefaultAudioReportInterval = 5000 ms; each next report after a random 0.5-1.5 x that
# (RTCPSender::ComputeTimeUntilNextReport), the first after half of it (SetRTCPStatus).
VIDEO_REPORT_INTERVAL = 1.0
AUDIO_REPORT_INTERVAL = 5.0
# receive_statistics_impl.cc kStatisticsTimeout: a source silent for 8 s gets no report block.
STATISTICS_TIMEOUT = 8.0
# modules/congestion_controller/remb_throttler.cc: a new estimate goes out if kRembSendInterval
# (200 ms) passed since the last REMB, or at once if it dropped by more than 3 %
# (kSendThresholdPercent = 103).
REMB_SEND_INTERVAL = 0.2
REMB_SEND_THRESHOLD = 1.03
# remote_bitrate_estimator_abs_send_time.cc + aimd_rate_control.cc: the receive-side estimate
# (there is no transport-cc, so Chrome runs the abs-send-time estimator). It is not valid until
# kInitializationTime (5 s) after the first throughput measurement (then: the throughput); it
# is re-evaluated every GetFeedbackInterval() (an 80-byte RTCP packet at 5 % of the estimate,
# clamped to 200 ms..1 s: 200 ms at any video rate) and grows 8 %/s (multiplicative increase)
# up to 1.5 x the throughput + 10 kbps. Throughput: RateStatistics over kBitrateWindowMs = 1 s.
# REMB lists the SSRCs heard from within kStreamTimeOutMs = 2 s.
REMB_INITIALIZATION = 5.0
REMB_MIN_FEEDBACK_INTERVAL = 0.2
REMB_MAX_FEEDBACK_INTERVAL = 1.0
REMB_RTCP_BITS = 80 * 8
REMB_INCREASE_PER_SECOND = 1.08
BITRATE_WINDOW = 1.0
REMB_STREAM_TIMEOUT = 2.0
# modules/video_coding/nack_requester.cc (NackRequester): a missing packet is requested as
# soon as the gap is seen (kDefaultSendNackDelay = 0), again every RTT, at most kMaxNackRetries
# = 10 times; kDefaultRtt = 100 ms is the RTT a receive-only connection uses (it sends no SR,
# so it never measures one); entries older than kMaxPacketAge = 10000 sequence numbers are
# dropped; more than kMaxNackPackets = 1000 missing clears the list and asks for a key frame.
# NackPeriodicProcessor::kUpdateInterval = 20 ms paces the re-requests.
NACK_RTT = 0.1
NACK_MAX_RETRIES = 10
NACK_MAX_PACKET_AGE = 10_000
NACK_MAX_PACKETS = 1000
NACK_PROCESS_INTERVAL = 0.02
# Ours, not libwebrtc's (which sends a NACK from the packet that reveals the gap): at most one
# NACK per 5 ms per connection, so a burst of gaps costs the load client one RTCP packet.
NACK_BATCH_INTERVAL = 0.005
# video/video_receive_stream2.cc: while a key frame is required (at start), one is requested
# when none arrived within kMaxWaitForKeyFrameMs = 200 ms and again every 200 ms; a stream with
# no decodable frame for kMaxWaitForFrameMs = 3 s (an unrecovered loss: every later VP8 frame
# references the lost one) requests one too, then every 200 ms until it comes.
KEYFRAME_RETRY_INTERVAL = 0.2
FRAME_TIMEOUT = 3.0

# Transport-wide congestion control feedback (send-side BWE), where negotiated.
# modules/remote_bitrate_estimator/transport_sequence_number_feedback_generator.cc (until 2024
# remote_estimator_proxy.cc, same numbers): periodic feedback every send_interval_, which is
# kDefaultInterval = 100 ms until OnSendBandwidthEstimateChanged(estimate) sets it to the time
# an average report (kTwccReportSize = IPv4 20 + UDP 8 + SRTP 10 + report 30 = 68 bytes) takes
# at 5 % of `estimate`, clamped to kMinInterval = 50 ms .. kMaxInterval = 250 ms. `estimate` is
# the connection's own *send-side* target rate (Call::OnTargetTransferRate ->
# ReceiveSideCongestionController::OnBitrateChanged), which arrives as soon as the transport is
# up; on a receive-only connection it stays at GoogCC's start rate, PeerConnectionFactory's
# default 300 kbps (FieldTrial WebRTC-PcFactoryDefaultBitrates "start"), because nothing is
# sent that could move it: 5 % of 300 kbps -> 36 ms -> kMinInterval, 50 ms.
# Each feedback covers the packets received since the previous one (a late packet below that
# range moves its start back: they are reported again); nothing new, no feedback. Packets are
# forgotten kBackWindow = 500 ms after they arrived once reported. Sent on its own, not in a
# compound packet, with or without a=rtcp-rsize (PacketRouter::SendCombinedRtcpPacket ->
# RTCPSender::SendCombinedRtcpPacket sends the packets it is given, no RR added).
TWCC_DEFAULT_INTERVAL = 0.1
TWCC_MIN_INTERVAL = 0.05
TWCC_MAX_INTERVAL = 0.25
TWCC_REPORT_BITS = (20 + 8 + 10 + 30) * 8
TWCC_BANDWIDTH_FRACTION = 0.05
SEND_START_BITRATE = 300_000
TWCC_BACK_WINDOW = 0.5
# rtcp_packet/transport_feedback.cc: receive deltas in kDeltaTick = 250 us, the reference time
# in kBaseTimeTick = 64 ms (24 bits); a feedback starts at most kMaxMissingSequenceNumbers =
# 0x7FFE before its first received packet.
TWCC_DELTA_TICK_US = 250
TWCC_BASE_TICK_US = 64_000
TWCC_MAX_MISSING = 0x7FFE
# Ours: a feedback packet stops growing at this size and the rest goes in the next one (as
# libwebrtc's generator does when a packet is full); at 50 ms intervals one holds ~5 packets.
TWCC_MAX_BYTES = 1200

ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRANSPORT_WIDE_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
SDES_CNAME = 1
RTCP_RTPFB_TRANSPORT_CC = 15  # RTPFB FMT of transport-wide feedback

# The counts BrowserFeedback reports (StreamCounter.feedback, in the window, and .totals):
# rr = compound RTCP packets (each starts with a Receiver Report), report_blocks, remb, nack
# (NACK packets), nack_seqs (sequence numbers requested, retries included), pli, twcc
# (transport-wide feedback packets: only where negotiated, i.e. toward Janus, not this SFU),
# twcc_packets_reported (received RTP packets they reported, re-reports included), rtcp_bytes
# (SRTCP bytes on the wire, all of these).
FEEDBACK_COUNTS = (
    "rr",
    "report_blocks",
    "remb",
    "nack",
    "nack_seqs",
    "pli",
    "twcc",
    "twcc_packets_reported",
    "rtcp_bytes",
)


def twcc_send_interval(send_estimate_bps: float) -> float:
    """TransportSequenceNumberFeedbackGenerator::OnSendBandwidthEstimateChanged: the interval
    at which feedback takes 5 % of the send-side estimate, within 50..250 ms."""
    twcc_bitrate = TWCC_BANDWIDTH_FRACTION * send_estimate_bps
    if twcc_bitrate <= TWCC_REPORT_BITS / TWCC_MAX_INTERVAL:
        return TWCC_MAX_INTERVAL
    return max(TWCC_REPORT_BITS / twcc_bitrate, TWCC_MIN_INTERVAL)


# A receive-only browser's: see SEND_START_BITRATE (50 ms).
TWCC_INTERVAL = twcc_send_interval(SEND_START_BITRATE)


def browser_answer(offer_sdp: str, answer_sdp: str) -> str:
    """aiortc's answer as Chrome would answer the same offer, where it matters for feedback.

    Chrome supports the transport-wide-cc header extension and rtcp-fb "transport-cc" (on
    video and Opus) and keeps both when offered; aiortc knows neither (its HEADER_EXTENSIONS
    and codecs lack them), so its answer drops them, and then Janus sends no transport-wide
    sequence numbers (janus.c drops the extension when the answer lacks its extmap) and gets
    REMB instead of the transport-wide feedback a browser sends it. Put back where offered,
    with the offer's extension id. An offer without them (this SFU's) gets the answer unchanged.
    """
    answer = aiortc_sdp.SessionDescription.parse(answer_sdp)
    offered = {m.rtp.muxId: m for m in aiortc_sdp.SessionDescription.parse(offer_sdp).media}
    changed = False
    for media in answer.media:
        theirs = offered.get(media.rtp.muxId)
        if theirs is None or media.kind not in ("audio", "video"):
            continue
        extension = next(
            (e for e in theirs.rtp.headerExtensions if e.uri == TRANSPORT_WIDE_CC_URI), None
        )
        if extension is not None and all(
            e.uri != TRANSPORT_WIDE_CC_URI for e in media.rtp.headerExtensions
        ):
            media.rtp.headerExtensions.append(
                RTCRtpHeaderExtensionParameters(id=extension.id, uri=extension.uri)
            )
            changed = True
        # Each on its own, as Chrome negotiates them (Janus offers transport-cc on Opus without
        # the extension on audio: feedback needs both, so that changes nothing there).
        offered_codecs = {c.payloadType: c for c in theirs.rtp.codecs}
        for codec in media.rtp.codecs:
            offered_codec = offered_codecs.get(codec.payloadType)
            if (
                offered_codec is not None
                and any(f.type == "transport-cc" for f in offered_codec.rtcpFeedback)
                and all(f.type != "transport-cc" for f in codec.rtcpFeedback)
            ):
                codec.rtcpFeedback.append(RTCRtcpFeedback(type="transport-cc"))
                changed = True
    return str(answer) if changed else answer_sdp


def transport_sequence_number(data: bytes, extension_id: int) -> int | None:
    """The transport-wide sequence number in a plaintext RTP packet's header extension with
    id `extension_id` (RFC 8285, one-byte or two-byte form), or None."""
    first = data[0]
    if not first & 0x10:
        return None
    start = 12 + 4 * (first & 0x0F)
    if start + 4 > len(data):
        return None
    profile = (data[start] << 8) | data[start + 1]
    end = start + 4 + 4 * ((data[start + 2] << 8) | data[start + 3])
    if end > len(data):
        return None
    position = start + 4
    if profile == 0xBEDE:  # one-byte: ID (4 bits), length - 1 (4 bits)
        while position < end:
            header = data[position]
            if header == 0:  # padding
                position += 1
                continue
            element_id, length = header >> 4, (header & 0x0F) + 1
            if element_id == 15:  # reserved: stop
                return None
            if element_id == extension_id:
                if length != 2 or position + 3 > end:
                    return None
                return (data[position + 1] << 8) | data[position + 2]
            position += 1 + length
    elif profile >> 4 == 0x100:  # two-byte: ID (8 bits), length (8 bits)
        while position + 1 < end:
            element_id = data[position]
            if element_id == 0:  # padding
                position += 1
                continue
            length = data[position + 1]
            if element_id == extension_id:
                if length != 2 or position + 4 > end:
                    return None
                return (data[position + 2] << 8) | data[position + 3]
            position += 2 + length
    return None


# Packet status symbols (draft section 3.1.1): the size of the receive delta that follows.
TWCC_NOT_RECEIVED, TWCC_SMALL_DELTA, TWCC_LARGE_DELTA = 0, 1, 2
_RUN_LENGTH_MAX = 0x1FFF
_ONE_BIT_CAPACITY = 14
_TWO_BIT_CAPACITY = 7


class _StatusChunks:
    """Packet status symbols packed into 16-bit chunks as libwebrtc's
    TransportFeedback::LastChunk packs them: symbols accumulate while they fit in one chunk (any
    7; 14 without a large delta; any number up to 8191 of one same symbol), and when the next
    does not, the chunk goes out as a run length (all the same), a 1-bit vector (14 symbols)
    or a 2-bit vector of the first 7 (the rest stay); the last chunk is the smallest that holds
    what is left (a run, a 2-bit vector up to 7, else a 1-bit vector)."""

    __slots__ = ("chunks", "first", "large", "size", "symbols")

    def __init__(self) -> None:
        self.chunks: list[int] = []
        self.size = 0
        self.first = 0
        self.large = False
        self.symbols: list[int] | None = None  # only once they differ (then at most 14)

    def add(self, symbol: int, count: int = 1) -> None:
        while count:
            if self.size == 0:
                self.first = symbol
            if self.symbols is None and symbol == self.first:
                # A run grows by whole counts at once: a long gap costs no loop per packet.
                room = _RUN_LENGTH_MAX - self.size
                if room == 0:
                    self._emit()
                    continue
                taken = min(count, room)
                self.size += taken
                count -= taken
                self.large = self.large or symbol == TWCC_LARGE_DELTA
                continue
            if not self._can_add(symbol):
                self._emit()
                continue
            if self.symbols is None:
                self.symbols = [self.first] * self.size
            self.symbols.append(symbol)
            self.size += 1
            count -= 1
            self.large = self.large or symbol == TWCC_LARGE_DELTA

    def _can_add(self, symbol: int) -> bool:
        if self.size < _TWO_BIT_CAPACITY:
            return True
        if self.size < _ONE_BIT_CAPACITY and not self.large and symbol != TWCC_LARGE_DELTA:
            return True
        return self.symbols is None and self.size < _RUN_LENGTH_MAX and symbol == self.first

    def _reset(self) -> None:
        self.size = 0
        self.large = False
        self.symbols = None

    def _emit(self) -> None:
        symbols = self.symbols
        if symbols is None:
            self.chunks.append((self.first << 13) | self.size)
            self._reset()
        elif self.size == _ONE_BIT_CAPACITY:
            self.chunks.append(_one_bit_chunk(symbols))
            self._reset()
        else:
            self.chunks.append(_two_bit_chunk(symbols[:_TWO_BIT_CAPACITY]))
            self._reset()
            for symbol in symbols[_TWO_BIT_CAPACITY:]:
                self.add(symbol)

    def finish(self) -> list[int]:
        if self.size:
            if self.symbols is None:
                self.chunks.append((self.first << 13) | self.size)
            elif self.size <= _TWO_BIT_CAPACITY:
                self.chunks.append(_two_bit_chunk(self.symbols))
            else:
                self.chunks.append(_one_bit_chunk(self.symbols))
            self._reset()
        return self.chunks


def _one_bit_chunk(symbols: list[int]) -> int:
    """T=1 S=0: 14 one-bit symbols (0 not received, 1 small delta), first in the high bit."""
    chunk = 0x8000
    for index, symbol in enumerate(symbols):
        chunk |= symbol << (_ONE_BIT_CAPACITY - 1 - index)
    return chunk


def _two_bit_chunk(symbols: list[int]) -> int:
    """T=1 S=1: up to 7 two-bit symbols, first in the high bits (unused ones: not received)."""
    chunk = 0xC000
    for index, symbol in enumerate(symbols):
        chunk |= symbol << (2 * (_TWO_BIT_CAPACITY - 1 - index))
    return chunk


def pack_transport_feedback(
    sender_ssrc: int,
    media_ssrc: int,
    base_seq: int,
    received: list[tuple[int, int]],
    feedback_count: int,
    max_bytes: int = TWCC_MAX_BYTES,
) -> tuple[bytes, int]:
    """One transport-wide feedback packet (RTCP RTPFB FMT 15,
    draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1), as libwebrtc's
    rtcp::TransportFeedback builds it, and how many of `received` it reports.

    `received`: (sequence number, arrival time in integer microseconds) of received packets,
    sequence numbers unwrapped and increasing, none below `base_seq` (unwrapped too; the
    packet carries both modulo 2**16). The reference time is the first packet's arrival in
    64 ms units (rounded down, 24 bits); each receive delta is from the previous reported
    arrival (the reference time for the first), rounded to 250 us, half away from zero: a
    small delta (0..255 ticks) in one byte, a larger or negative one in two (signed), and a
    delta beyond those 16 bits ends the packet. Status chunks: _StatusChunks. Padded to 32 bits
    with the P bit set and the padding length in the last byte, as libwebrtc pads it. Packets
    past `max_bytes` are left for the next packet, which then starts at the sequence number
    after the last one reported here.
    """
    chunks = _StatusChunks()
    deltas = bytearray()
    reference = received[0][1] // TWCC_BASE_TICK_US
    last = reference * TWCC_BASE_TICK_US
    next_seq = base_seq
    used = 0
    for seq, arrival in received:
        offset = arrival - last
        if offset >= 0:
            ticks = (offset + TWCC_DELTA_TICK_US // 2) // TWCC_DELTA_TICK_US
        else:
            ticks = -((TWCC_DELTA_TICK_US // 2 - offset) // TWCC_DELTA_TICK_US)
        size = 1 if 0 <= ticks <= 0xFF else 2
        # At most: the open chunk, full runs of the gap, a partial run, a 2-bit vector's
        # leftovers, the chunk of this packet; + header, deltas and padding.
        most_chunks = len(chunks.chunks) + 4 + (seq - next_seq) // _RUN_LENGTH_MAX
        if used and (
            not -0x8000 <= ticks <= 0x7FFF
            or seq - base_seq >= 0xFFFF
            or 20 + 2 * most_chunks + len(deltas) + size + 3 > max_bytes
        ):
            break
        if seq > next_seq:
            chunks.add(TWCC_NOT_RECEIVED, seq - next_seq)
        chunks.add(size)
        deltas += ticks.to_bytes(size, "big", signed=size == 2)
        last += ticks * TWCC_DELTA_TICK_US
        next_seq = seq + 1
        used += 1
    packed = chunks.finish()
    body = struct.pack(
        f"!IIHHI{len(packed)}H",
        sender_ssrc,
        media_ssrc,
        base_seq & 0xFFFF,
        next_seq - base_seq,
        ((reference & 0xFFFFFF) << 8) | (feedback_count & 0xFF),
        *packed,
    )
    body += deltas
    length = 4 + len(body)
    padding = -length % 4
    if padding:
        body += bytes(padding - 1) + bytes([padding])
    header = struct.pack(
        "!BBH",
        0x80 | (0x20 if padding else 0) | RTCP_RTPFB_TRANSPORT_CC,
        RTCP_RTPFB,
        (length + padding) // 4 - 1,
    )
    return header + body, used


class _ReceivedStream:
    """One received SSRC: RFC 3550 receive statistics as libwebrtc's StreamStatisticianImpl
    keeps them, and (media SSRCs of video) the NACK list of NackRequester."""

    __slots__ = (
        "base_seq",
        "clock_rate",
        "cycles",
        "expected_prior",
        "group",
        "jitter",
        "last_arrival",
        "last_packet",
        "last_ts",
        "max_seq",
        "nack",
        "received",
        "received_prior",
        "rtx",
        "ssrc",
    )

    def __init__(self, ssrc: int, group: _ReceivedMline, rtx: bool) -> None:
        self.ssrc = ssrc
        self.group = group
        self.rtx = rtx
        self.clock_rate = group.clock_rate
        self.received = 0
        self.base_seq = -1
        self.max_seq = -1
        self.cycles = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.jitter = 0.0  # RTP timestamp units, not yet rounded
        self.last_ts = 0
        self.last_arrival = 0.0  # of the highest sequence number so far (for jitter)
        self.last_packet = 0.0  # of any packet (for kStatisticsTimeout)
        # Missing sequence number -> [sent at (-1: not yet), requests, gap seen at].
        self.nack: dict[int, list[float]] = {}

    def receive(self, seq: int, timestamp: int, now: float) -> int:
        """Count a packet; how far `seq` is past the highest so far (0 for the first packet
        and duplicates, negative for an older one: reordered or late)."""
        self.received += 1
        self.last_packet = now
        if self.max_seq < 0:
            self.base_seq = self.max_seq = seq
            self.last_ts, self.last_arrival = timestamp, now
            return 0
        delta = (seq - self.max_seq) & 0xFFFF
        if delta == 0:
            return 0
        if delta >= 0x8000:
            return delta - 0x10000
        if seq < self.max_seq:
            self.cycles += 0x10000
        self.max_seq = seq
        # RFC 3550 A.8 interarrival jitter, as libwebrtc computes it: only between in-order
        # packets of different RTP timestamps (the first packet of a frame against the last
        # one before it), J += (|D| - J) / 16 with D in RTP timestamp units.
        if timestamp != self.last_ts:
            ts_diff = ((timestamp - self.last_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            transit_diff = abs((now - self.last_arrival) * self.clock_rate - ts_diff)
            self.jitter += (transit_diff - self.jitter) / 16
            self.last_ts = timestamp
        self.last_arrival = now
        return delta

    def report_block(self, lsr: int, dlsr: int) -> RtcpReceiverInfo:
        """RFC 3550 6.4.2 report block; fraction lost is over the time since the last one."""
        expected = self.cycles + self.max_seq - self.base_seq + 1
        expected_interval = expected - self.expected_prior
        lost_interval = expected_interval - (self.received - self.received_prior)
        self.expected_prior = expected
        self.received_prior = self.received
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        return RtcpReceiverInfo(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=clamp_packets_lost(expected - self.received),
            highest_sequence=(self.cycles + self.max_seq) & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=lsr,
            dlsr=dlsr,
        )


class _ReceivedMline:
    """One received m-line, which libwebrtc gives a receive stream with its own RTCP module
    (RTCPSender): its reports, key-frame requests and NACKs go out as its compound packets,
    with the interval of its kind."""

    def __init__(self, mid: str) -> None:
        self.mid = mid
        self.kind = "video"
        self.active = True
        self.rtcp_ssrc = 0
        self.clock_rate = 90_000
        self.nack = False
        self.pli = False
        self.remb = False
        self.twcc_id = 0  # the transport-wide-cc extension's id where negotiated, else 0
        self.detect_keyframe: KeyframeDetector | None = None
        self.media_ssrc = 0
        self.streams: list[_ReceivedStream] = []
        self.media: _ReceivedStream | None = None
        self.next_report: float | None = None
        self.last_sr = 0  # compact NTP (middle 32 bits) of the last Sender Report
        self.last_sr_arrival = 0.0
        self.waiting_keyframe = False
        self.next_pli = math.inf
        self.last_keyframe = -math.inf  # when a key frame last started (watched after a loss)

    @property
    def report_interval(self) -> float:
        return VIDEO_REPORT_INTERVAL if self.kind == "video" else AUDIO_REPORT_INTERVAL


class BrowserFeedback:
    """The RTCP a browser's receive-only connection sends, for the cheap load client.

    Per received m-line (RTCP module), compound packets RR (one report block per SSRC heard
    from in the last 8 s: fraction and cumulative lost, extended highest sequence number,
    jitter, LSR/DLSR from the Sender Reports received) + SDES CNAME + whatever is due among
    PLI, NACK and REMB, in libwebrtc's order. Periodic reports at libwebrtc's intervals; the
    m-line that carries REMB (the first video one, as libwebrtc's PacketRouter picks its
    "active REMB module") puts it in every compound packet once there is an estimate, and
    sends one each time the estimate is re-evaluated (every ~200 ms): RTCPSender::SetRemb
    asks for an immediate report. So a video subscriber sends ~5 RTCP packets/s, an audio one
    one every 2.5-7.5 s.

    Where an m-line negotiated transport-wide congestion control (the transport-wide-cc header
    extension and rtcp-fb "transport-cc": Janus offers them, browser_answer keeps them), its
    packets that carry a transport-wide sequence number are reported in transport-wide
    feedback (RTPFB FMT 15, one connection-wide generator, TransportSequenceNumberFeedback-
    Generator) every TWCC_INTERVAL (50 ms) while packets arrive, each packet on its own (no
    compound); the m-line gets no REMB (libwebrtc hands such packets to the send-side
    generator, not to the REMB estimator). Its RR/SDES, NACK and PLI go on as above. The
    arrival time reported is when the datagram callback handled the packet (time.monotonic()),
    as libwebrtc uses its socket read time.

    The REMB estimate models libwebrtc's on a loss-free, uncongested loopback (no over-use
    ever detected, so it never drops): the measured receive rate 5 s after the first packet,
    then growing 8 %/s up to 1.5 x the receive rate + 10 kbps (AimdRateControl). Its value
    only matters to the publisher's encoder, which the benchmark does not have; the SFU (aiortc)
    parses and logs it.

    Cost: per RTP packet a dict lookup and a few integer operations in the datagram callback
    (statistics, gap detection, a key-frame check only while one is awaited); everything else
    runs on one asyncio timer per connection (call_later, rescheduled to the next due time:
    ~5 wake-ups/s for video), with intervals randomised as libwebrtc's so K subscribers that
    joined together drift apart. NACKs are sent from the packet callback, batched to one per
    NACK_BATCH_INTERVAL.
    """

    def __init__(
        self,
        counter: StreamCounter,
        cname: bytes,
        send: Callable[[bytes], int],
        *,
        closed: Callable[[], bool] | None = None,
        timer: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        """`send(packet)`: protect and send one (compound) RTCP packet, return the bytes sent
        (ConnectionError when it cannot). `timer=False`: the caller drives process(now) (tests).
        """
        self.counter = counter
        self.cname = cname
        self._send = send
        self._closed = closed or (lambda: False)
        self._timer = timer
        self._rng = rng or random.Random()
        self.groups: dict[str, _ReceivedMline] = {}
        self._ssrcs: dict[int, tuple[_ReceivedMline, bool]] = {}  # ssrc -> (m-line, is RTX)
        self.streams: dict[int, _ReceivedStream] = {}
        self.twcc_negotiated = False
        self.totals: dict[str, int] = dict.fromkeys(FEEDBACK_COUNTS, 0)
        self.totals.update(rtx_recovered=0, nack_abandoned=0, sr_received=0)
        self.sent: list[bytes] = []  # the last RTCP packets sent (plaintext), for tests
        self._handle: asyncio.TimerHandle | None = None
        self._handle_when = math.inf
        self._last_nack_flush = -math.inf
        self._nack_pending = False  # some stream has entries (new or waiting for a re-request)
        # REMB: receive-side estimate over the video m-lines that negotiated it.
        self._remb_first: float | None = None
        self._remb_bytes = 0
        self._remb_rate_samples: collections.deque[tuple[float, int]] = collections.deque()
        self._remb_next = math.inf
        self._estimate: float | None = None
        self._estimate_time = 0.0
        self._remb_bitrate: int | None = None
        self._remb_ssrcs: list[int] = []
        self._remb_sent_at = -math.inf
        self._remb_sent_bitrate = 0.0
        self._remb_group: _ReceivedMline | None = None
        # Transport-wide feedback: one generator per connection (the sequence numbers are
        # transport-wide), as libwebrtc's ReceiveSideCongestionController is one per Call.
        self.twcc_interval = TWCC_INTERVAL
        self._twcc_arrivals: dict[int, int] = {}  # unwrapped sequence number -> arrival (us)
        self._twcc_last: int | None = None  # the last unwrapped sequence number
        self._twcc_start: int | None = None  # first sequence number of the next feedback
        self._twcc_end = 0  # one past the highest sequence number received
        self._twcc_due = math.inf  # the next feedback, while there is something to report
        # Feedback goes out on a clock of its own (the generator's periodic task), phase-shifted
        # per connection so that subscribers that joined together do not send in step.
        self._twcc_phase = self._rng.uniform(0, self.twcc_interval)
        self._twcc_count = 0  # feedback packet count, 8 bits
        self._twcc_media_ssrc = 0
        self._twcc_sender_ssrc = 0

    # --- set-up ------------------------------------------------------------------------
    @classmethod
    def for_transport(
        cls, pc: RTCPeerConnection, dtls: Any, counter: StreamCounter
    ) -> BrowserFeedback:
        """Feedback on `dtls` (a subscriber connection's transport), sent as aiortc sends RTCP
        (`RTCDtlsTransport._send_rtp`: protect_rtcp with the transport's SRTP session) on
        aioice's nominated pair directly, as sfu/hooks.py SenderOutput sends RTP."""
        connection = dtls.transport._connection

        def send(data: bytes) -> int:
            if dtls._state is not DtlsState.CONNECTED:
                raise ConnectionError("DTLS is not connected")
            pair = connection._nominated.get(1)
            if pair is None:
                raise ConnectionError("no nominated ICE pair")
            protected: bytes = dtls._tx_srtp.protect_rtcp(data)
            pair.protocol.transport.sendto(protected, pair.remote_addr)
            return len(protected)

        def closed() -> bool:
            return dtls._state in (DtlsState.CLOSED, DtlsState.FAILED)

        # The connection's own CNAME, as aiortc puts it in its SDP and its SDES.
        cname = getattr(pc, "_RTCPeerConnection__cname", "") or f"bench-{id(pc):x}"
        feedback = cls(counter, cname.encode(), send, closed=closed)
        feedback.configure_from(pc, dtls)
        return feedback

    def configure_from(self, pc: RTCPeerConnection, dtls: Any) -> None:
        """Read the m-lines of `dtls` from pc's current descriptions (after each negotiation)."""
        rtcp_ssrcs = {
            t.mid: t.receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
            for t in pc.getTransceivers()
            if t.mid is not None and t.receiver.transport is dtls
        }
        self.configure(pc.remoteDescription.sdp, pc.localDescription.sdp, rtcp_ssrcs)

    def configure(self, remote_sdp: str, local_sdp: str, rtcp_ssrcs: dict[str, int]) -> None:
        """The m-lines in `rtcp_ssrcs` (mid -> the sender SSRC of our RTCP: aiortc's receiver
        uses its transceiver's sender SSRC, RTCRtpReceiver._set_rtcp_ssrc): SSRCs from the
        remote description, negotiated feedback and header extensions from the local one (the
        answer: what both sides agreed on)."""
        remote = aiortc_sdp.SessionDescription.parse(remote_sdp)
        local = {m.rtp.muxId: m for m in aiortc_sdp.SessionDescription.parse(local_sdp).media}
        for media in remote.media:
            mid = media.rtp.muxId
            if media.kind not in ("audio", "video") or mid not in rtcp_ssrcs:
                continue
            group = self.groups.get(mid)
            if group is None:
                group = self.groups[mid] = _ReceivedMline(mid)
            # A remote that does not send on the m-line (an idle SFU slot): no receive stream.
            group.active = media.direction in ("sendonly", "sendrecv")
            if not group.active:
                group.next_report = None
                continue
            negotiated = local.get(mid, media)
            codec = next((c for c in negotiated.rtp.codecs if not is_rtx(c)), None)
            if codec is None:
                continue
            feedback = {(f.type, f.parameter) for f in codec.rtcpFeedback}
            extensions = {e.uri: e.id for e in negotiated.rtp.headerExtensions}
            # libwebrtc's UseSendSideBwe(): rtcp-fb transport-cc and the extension, per stream.
            twcc = ("transport-cc", None) in feedback and TRANSPORT_WIDE_CC_URI in extensions
            group.twcc_id = extensions[TRANSPORT_WIDE_CC_URI] if twcc else 0
            self.twcc_negotiated |= twcc
            group.kind = media.kind
            group.rtcp_ssrc = rtcp_ssrcs[mid]
            group.clock_rate = codec.clockRate
            group.nack = ("nack", None) in feedback
            group.pli = ("nack", "pli") in feedback
            group.remb = (
                ("goog-remb", None) in feedback and ABS_SEND_TIME_URI in extensions and not twcc
            )
            group.detect_keyframe = keyframe_detector(codec) if media.kind == "video" else None
            rtx_ssrcs: set[int] = set()
            media_ssrc = media.ssrc[0].ssrc if media.ssrc else 0
            for ssrc_group in media.ssrc_group:
                if ssrc_group.semantic == "FID" and len(ssrc_group.items) >= 2:
                    media_ssrc = int(ssrc_group.items[0])
                    rtx_ssrcs.update(int(item) for item in ssrc_group.items[1:])
            group.media_ssrc = media_ssrc
            for description in media.ssrc:
                self._ssrcs[description.ssrc] = (group, description.ssrc in rtx_ssrcs)
        # Transport-wide feedback goes through PacketRouter::SendCombinedRtcpPacket: with no
        # send stream, the first receive stream's RTCP module sends it, with its SSRC.
        self._twcc_sender_ssrc = next(
            (g.rtcp_ssrc for g in self.groups.values() if g.active and g.rtcp_ssrc), 0
        )

    # --- packets in ----------------------------------------------------------------------
    def on_rtp(self, data: bytes, now: float) -> None:
        """A plaintext RTP packet, from the datagram callback (keep this cheap)."""
        ssrc = int.from_bytes(data[8:12], "big")
        stream = self.streams.get(ssrc)
        if stream is None:
            stream = self._new_stream(ssrc, now)
            if stream is None:
                return
        group = stream.group
        if group.next_report is None and group.active:
            self._start_group(group, now)
        if group.twcc_id:
            transport_seq = transport_sequence_number(data, group.twcc_id)
            if transport_seq is not None:  # RTX too: every packet on the transport counts
                self._twcc_received(transport_seq, ssrc, now)
        seq = (data[2] << 8) | data[3]
        delta = stream.receive(seq, int.from_bytes(data[4:8], "big"), now)
        if group.remb:
            self._remb_bytes += len(data)
        if stream.rtx:
            # A retransmission (RFC 4588): its payload starts with the original sequence
            # number, which it recovers.
            media = group.media
            if media is not None and media.nack:
                position = _payload_bounds(data)[0]
                original = (data[position] << 8) | data[position + 1]
                if media.nack.pop(original, None) is not None:
                    self.totals["rtx_recovered"] += 1
            return
        if delta > 1:
            if group.nack:
                self._add_missing(stream, seq, delta - 1, now)
        elif delta < 0 and stream.nack:
            stream.nack.pop(seq, None)  # late, not lost
        # Key frames matter while one is awaited, or while a loss may still need one.
        if (group.waiting_keyframe or stream.nack) and group.detect_keyframe is not None:
            position, end = _payload_bounds(data)
            if group.detect_keyframe(data[position:end]):
                group.last_keyframe = now
                group.waiting_keyframe = False
                group.next_pli = math.inf

    def _new_stream(self, ssrc: int, now: float) -> _ReceivedStream | None:
        known = self._ssrcs.get(ssrc)
        if known is None:
            return None  # an SSRC the SDP did not announce: not reported on
        group, rtx = known
        stream = self.streams[ssrc] = _ReceivedStream(ssrc, group, rtx)
        group.streams.append(stream)
        if not rtx and group.media is None:
            group.media = stream
        if group.remb and self._remb_first is None:
            self._remb_first = now
            self._remb_rate_samples.append((now, self._remb_bytes))
            # Phase-shifted per connection, so subscribers that joined together drift apart.
            self._remb_next = now + REMB_INITIALIZATION + self._rng.uniform(0, REMB_SEND_INTERVAL)
            self._wake_at(self._remb_next)
        return stream

    def _start_group(self, group: _ReceivedMline, now: float) -> None:
        """The m-line's first packet (again, after an idle spell): its receive stream starts."""
        group.next_report = now + group.report_interval / 2
        self._wake_at(group.next_report)
        if group.pli:
            # A new video stream requires a key frame (VideoReceiveStream2): if this packet
            # does not start one, the first request goes after kMaxWaitForKeyFrameMs.
            group.waiting_keyframe = True
            group.next_pli = now + KEYFRAME_RETRY_INTERVAL
            self._wake_at(group.next_pli)

    def on_rtcp(self, data: bytes, now: float) -> None:
        """A plaintext (compound) RTCP packet: keep each Sender Report's time for LSR/DLSR."""
        position, size = 0, len(data)
        while position + 4 <= size:
            length = (((data[position + 2] << 8) | data[position + 3]) + 1) * 4
            if data[position + 1] == RTCP_SR and length >= 28 and position + 28 <= size:
                known = self._ssrcs.get(int.from_bytes(data[position + 4 : position + 8], "big"))
                if known is not None:
                    group = known[0]
                    # LSR: the middle 32 bits of the SR's 64-bit NTP timestamp (RFC 3550 6.4.1).
                    group.last_sr = int.from_bytes(data[position + 10 : position + 14], "big")
                    group.last_sr_arrival = now
                    self.totals["sr_received"] += 1
            position += length

    # --- NACK ----------------------------------------------------------------------------
    def _add_missing(self, stream: _ReceivedStream, seq: int, missing: int, now: float) -> None:
        if len(stream.nack) + missing > NACK_MAX_PACKETS:
            stream.nack.clear()
            self._request_keyframe(stream.group, now, at=now)
            return
        for back in range(missing, 0, -1):
            stream.nack[(seq - back) & 0xFFFF] = [-1.0, 0.0, now]
        self._nack_pending = True
        if now - self._last_nack_flush >= NACK_BATCH_INTERVAL:
            self._flush(now, new_nacks_only=True)
            self._wake_at(now + NACK_PROCESS_INTERVAL)  # the re-requests
        else:
            self._wake_at(self._last_nack_flush + NACK_BATCH_INTERVAL)

    def _due_nacks(self, stream: _ReceivedStream, now: float, new_only: bool) -> list[int]:
        """Sequence numbers to request now (NackRequester::GetNackBatch), oldest first."""
        due: list[int] = []
        lost_at = math.inf
        for seq, entry in list(stream.nack.items()):
            sent_at, requests, seen_at = entry
            if ((stream.max_seq - seq) & 0xFFFF) > NACK_MAX_PACKET_AGE:
                del stream.nack[seq]
                lost_at = min(lost_at, seen_at)
            elif sent_at < 0:
                due.append(seq)
                entry[0], entry[1] = now, 1
            elif not new_only and now - sent_at >= NACK_RTT:
                if requests >= NACK_MAX_RETRIES:
                    # libwebrtc drops it when it sends the last request; here one RTT later,
                    # so that a last retransmission still counts as recovering it.
                    del stream.nack[seq]
                    lost_at = min(lost_at, seen_at)
                else:
                    due.append(seq)
                    entry[0], entry[1] = now, requests + 1
        if lost_at < math.inf:
            self.totals["nack_abandoned"] += 1
            # The frame is lost, and every later one references it: no frame decodes until a
            # key frame (unless one came since), and after kMaxWaitForFrameMs without one the
            # receiver asks for it.
            if stream.group.last_keyframe < lost_at:
                self._request_keyframe(stream.group, now, at=lost_at + FRAME_TIMEOUT)
        base = stream.max_seq
        due.sort(key=lambda seq: (seq - base) & 0xFFFF)
        return due

    def _request_keyframe(self, group: _ReceivedMline, now: float, at: float) -> None:
        if not group.pli:
            return
        if not group.waiting_keyframe:
            group.waiting_keyframe = True
            group.next_pli = max(now, at)
        else:
            group.next_pli = min(group.next_pli, max(now, at))
        self._wake_at(group.next_pli)

    # --- RTCP out ------------------------------------------------------------------------
    def _flush(self, now: float, *, new_nacks_only: bool = False) -> None:
        """Send what is due, one compound packet per m-line that has something to say."""
        remb_due = False
        if not new_nacks_only and now >= self._remb_next:
            remb_due = self._update_remb(now)
        if self._nack_pending or new_nacks_only:
            self._last_nack_flush = now
        pending = False
        for group in self.groups.values():
            if not group.active or group.next_report is None:
                continue
            nacks: list[int] = []
            media = group.media
            if media is not None and media.nack:
                nacks = self._due_nacks(media, now, new_nacks_only)
                pending |= bool(media.nack)
            if new_nacks_only:
                if nacks:
                    self._send_compound(group, now, pli=False, nacks=nacks)
                continue
            pli = group.waiting_keyframe and now >= group.next_pli
            if pli:
                group.next_pli = now + KEYFRAME_RETRY_INTERVAL
            report = now >= group.next_report or (remb_due and group is self._remb_group)
            if pli or nacks or report:
                self._send_compound(group, now, pli=pli, nacks=nacks)
        self._nack_pending = pending

    def _send_compound(
        self, group: _ReceivedMline, now: float, *, pli: bool, nacks: list[int]
    ) -> None:
        """RR + SDES [+ PLI] [+ NACK] [+ REMB]: RTCPSender's compound mode, in its order."""
        ssrc = group.rtcp_ssrc
        lsr = dlsr = 0
        if group.last_sr_arrival:
            lsr = group.last_sr
            dlsr = min(0xFFFFFFFF, int((now - group.last_sr_arrival) * 65536))
        blocks = [
            stream.report_block(lsr, dlsr)
            for stream in group.streams
            if now - stream.last_packet < STATISTICS_TIMEOUT
        ]
        packets: list[Any] = [
            RtcpRrPacket(ssrc=ssrc, reports=blocks),
            RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=ssrc, items=[(SDES_CNAME, self.cname)])]),
        ]
        if pli:
            packets.append(
                RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=ssrc, media_ssrc=group.media_ssrc)
            )
        nack_packets = _nack_runs(nacks)
        for run in nack_packets:
            packets.append(
                RtcpRtpfbPacket(
                    fmt=RTCP_RTPFB_NACK, ssrc=ssrc, media_ssrc=group.media_ssrc, lost=run
                )
            )
        remb = group is self._remb_group and self._remb_bitrate is not None
        if remb:
            fci = pack_remb_fci(self._remb_bitrate or 0, self._remb_ssrcs)
            packets.append(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=ssrc, media_ssrc=0, fci=fci))
        compound = b"".join(bytes(packet) for packet in packets)
        # Every compound packet carries a report, so the next periodic one is rescheduled
        # (RTCPSender::PrepareReport).
        group.next_report = now + group.report_interval * self._rng.uniform(0.5, 1.5)
        try:
            size = self._send(compound)
        except ConnectionError:
            return
        self.sent.append(compound)
        del self.sent[:-16]
        counts = {
            "rr": 1,
            "report_blocks": len(blocks),
            "remb": int(remb),
            "nack": len(nack_packets),
            "nack_seqs": len(nacks),
            "pli": int(pli),
            "rtcp_bytes": size,
        }
        for name, count in counts.items():
            if count:
                self.totals[name] += count
                self.counter.count_feedback(name, now, count)

    # --- REMB ----------------------------------------------------------------------------
    def _update_remb(self, now: float) -> bool:
        """Re-evaluate the receive-side estimate; whether a REMB should go out now."""
        assert self._remb_first is not None
        samples = self._remb_rate_samples
        samples.append((now, self._remb_bytes))
        while len(samples) > 2 and samples[1][0] <= now - BITRATE_WINDOW:
            samples.popleft()
        oldest_time, oldest_bytes = samples[0]
        throughput = 0.0
        if now > oldest_time:
            throughput = (self._remb_bytes - oldest_bytes) * 8 / (now - oldest_time)
        # The estimator only runs when packets arrive: a stopped stream gets no new REMB.
        heard = [
            s.ssrc
            for s in self.streams.values()
            if s.group.remb and now - s.last_packet < REMB_STREAM_TIMEOUT
        ]
        if not heard or throughput <= 0:
            self._remb_next = now + REMB_MIN_FEEDBACK_INTERVAL
            return False
        if self._estimate is None:
            self._estimate = throughput
        else:
            elapsed = min(now - self._estimate_time, 1.0)
            grown = self._estimate * REMB_INCREASE_PER_SECOND**elapsed
            cap = 1.5 * throughput + 10_000
            if grown > cap:
                grown = max(self._estimate, cap)
            self._estimate = grown
        self._estimate_time = now
        interval = REMB_RTCP_BITS / (0.05 * max(self._estimate, 1.0))
        interval = min(max(interval, REMB_MIN_FEEDBACK_INTERVAL), REMB_MAX_FEEDBACK_INTERVAL)
        # The estimator runs on the first packet after the interval: a little later.
        self._remb_next = now + interval + self._rng.uniform(0, 0.01)
        # RembThrottler: send if 200 ms passed or the estimate dropped by more than 3 %.
        dropped = self._estimate * REMB_SEND_THRESHOLD <= self._remb_sent_bitrate
        if not dropped and now < self._remb_sent_at + REMB_SEND_INTERVAL:
            return False
        self._remb_group = next(
            (
                g
                for g in self.groups.values()
                if g.active and g.remb and g.media is not None and g.next_report is not None
            ),
            None,
        )
        if self._remb_group is None:
            return False
        self._remb_sent_at = now
        self._remb_sent_bitrate = self._estimate
        self._remb_bitrate = int(self._estimate)
        self._remb_ssrcs = sorted(heard)
        return True

    # --- transport-wide feedback ---------------------------------------------------------
    def _twcc_received(self, seq: int, ssrc: int, now: float) -> None:
        """A packet with transport-wide sequence number `seq` arrived at `now`
        (TransportSequenceNumberFeedbackGenerator::OnReceivedPacket)."""
        last = self._twcc_last
        unwrapped = seq if last is None else last + ((seq - last + 0x8000) & 0xFFFF) - 0x8000
        self._twcc_last = unwrapped
        self._twcc_media_ssrc = ssrc  # the feedback names the SSRC of the last packet
        arrival = int(now * 1_000_000)
        arrivals = self._twcc_arrivals
        start = self._twcc_start
        if start is not None and start >= self._twcc_end and arrivals:
            # Everything reported: forget what arrived more than kBackWindow ago.
            cutoff = arrival - int(TWCC_BACK_WINDOW * 1_000_000)
            while arrivals:
                oldest = next(iter(arrivals))
                if arrivals[oldest] >= cutoff:
                    break
                del arrivals[oldest]
        if start is None or unwrapped < start:
            self._twcc_start = unwrapped  # a late packet: the next feedback reports it again
        if unwrapped in arrivals:
            return  # only the first arrival counts
        arrivals[unwrapped] = arrival
        self._twcc_end = unwrapped + 1 if last is None else max(self._twcc_end, unwrapped + 1)
        if self._twcc_due == math.inf:
            # The next tick of the generator's clock.
            interval, phase = self.twcc_interval, self._twcc_phase
            self._twcc_due = phase + math.ceil((now - phase) / interval) * interval
            self._wake_at(self._twcc_due)

    def _send_transport_feedback(self, now: float) -> None:
        """Report what arrived from the window's start on (SendPeriodicFeedbacks): one packet,
        or more if it does not fit in one."""
        self._twcc_due = math.inf
        start, end = self._twcc_start, self._twcc_end
        if start is None or start >= end:
            return
        arrivals = self._twcc_arrivals
        received = sorted((seq, arrivals[seq]) for seq in arrivals if seq >= start)
        self._twcc_start = end
        while received:
            base = max(start, received[0][0] - TWCC_MAX_MISSING)
            packet, used = pack_transport_feedback(
                self._twcc_sender_ssrc, self._twcc_media_ssrc, base, received, self._twcc_count
            )
            self._twcc_count = (self._twcc_count + 1) & 0xFF
            start = received[used - 1][0] + 1
            del received[:used]
            try:
                size = self._send(packet)
            except ConnectionError:
                return
            self.sent.append(packet)
            del self.sent[:-16]
            counts = {"twcc": 1, "twcc_packets_reported": used, "rtcp_bytes": size}
            for name, count in counts.items():
                self.totals[name] += count
                self.counter.count_feedback(name, now, count)

    # --- the timer -----------------------------------------------------------------------
    def process(self, now: float) -> float:
        """Send what is due at `now`; the time something is next due (the timer's next wake)."""
        if now >= self._twcc_due:
            self._send_transport_feedback(now)
        self._flush(now)
        due = min(self._remb_next, self._twcc_due)
        for group in self.groups.values():
            if group.active and group.next_report is not None:
                due = min(due, group.next_report)
            if group.waiting_keyframe:
                due = min(due, group.next_pli)
        if self._nack_pending:
            due = min(due, now + NACK_PROCESS_INTERVAL)
        return due

    def _wake_at(self, when: float) -> None:
        if not self._timer or when >= self._handle_when:
            return
        if self._handle is not None:
            self._handle.cancel()
        delay = max(0.0, when - time.monotonic())
        self._handle = asyncio.get_running_loop().call_later(delay, self._on_timer)
        self._handle_when = when

    def _on_timer(self) -> None:
        self._handle = None
        self._handle_when = math.inf
        if self._closed():
            return
        now = time.monotonic()
        try:
            due = self.process(now)
        except Exception:  # never let a bug stop a load client's feedback silently
            logger.exception("browser feedback failed")
            due = now + REMB_SEND_INTERVAL
        if due < math.inf:
            self._wake_at(max(due, now + 0.001))

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._timer = False


def _nack_runs(seqs: list[int]) -> list[list[int]]:
    """`seqs` (oldest first) cut where the sequence numbers wrap: aiortc's RtcpRtpfbPacket
    packs each PID/BLP from increasing numbers, so a list across 65535 -> 0 needs two packets."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq > runs[-1][-1]:
            runs[-1].append(seq)
        else:
            runs.append([seq])
    return runs


# --- CPU -----------------------------------------------------------------------------------
_TICKS = __import__("os").sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process (all its threads) so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's main thread (its event loop) spent runnable but not running.

    From /proc/<pid>/schedstat: high values mean the machine (shared with other work) starved
    the process, so a lag it shows is the machine's, not its own CPU cost.
    """
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[1]) / 1e9
