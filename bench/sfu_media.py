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
from aiortc.mediastreams import MediaStreamTrack

from sfu import hooks
from sfu.codecs import is_vp8_keyframe_start

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

    def record(
        self,
        data: bytes,
        fd: int = -1,
        arrived: float | None = None,
        kernel_expected: bool = False,
    ) -> None:
        """Count a plaintext RTP packet; `fd`: read its kernel arrival time from that socket
        (only for sampled packets: the read must happen before the socket's next datagram);
        `arrived`: a kernel arrival time read earlier (`kernel_expected`: it should be there).
        Without either (the sending side) the sample's two times are both "now"."""
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
        self.window_start, self.window_end, self.sample_mask = start, end, sample_mask

    def report(self) -> dict[str, Any]:
        return {
            "packets": dict(self.packets),
            "frames": dict(self.frames),
            "kernel_stamp_missing": self.kernel_missing,
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


def hook_received(pc: RTCPeerConnection, counter: StreamCounter, *, decode: bool) -> None:
    """Record every RTP packet a subscriber connection receives, after SRTP, before parsing.

    With decode=False the packet stops here: no jitter buffer, no decoder (a cheap load
    client); with decode=True it goes on to aiortc's receiver and decoder as usual. Either
    way the kernel arrival time is read in aioice's datagram callback.
    """
    for transport in {t.receiver.transport for t in pc.getTransceivers()}:
        if getattr(transport, "_bench_hooked", False):
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
            _shortcut_srtp(transport, counter)


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


def _shortcut_srtp(dtls: Any, counter: StreamCounter) -> None:
    """Count SRTP straight from aioice's datagram callback (the cheap load client).

    aioice queues every datagram for RTCDtlsTransport's receive coroutine; for a client that
    only counts, that queue and coroutine cost as much as the SFU's forwarding. Once SRTP is
    up, RTP is decrypted and counted right here (with the socket, for its kernel arrival
    time); DTLS, STUN and RTCP take the usual path.
    """
    connection = dtls.transport._connection
    original = connection.data_received
    socket_fd = -1

    def data_received(data: bytes, component: int) -> None:
        nonlocal socket_fd
        srtp = dtls._rx_srtp
        if srtp is not None and _is_srtp(data):
            try:
                plain = srtp.unprotect(data)
            except Exception:  # replayed or corrupt: aiortc would drop it too
                return
            if socket_fd < 0:
                socket_fd = _nominated_socket_fd(connection)
            counter.record(plain, socket_fd)
            return
        original(data, component)

    connection.data_received = data_received


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
