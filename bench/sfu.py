"""SFU forwarding benchmark: CPU per forwarded stream and the SFU's added latency per hop,
beside Janus.

    .venv/bin/python bench/sfu.py [--quick] [--window SECONDS] [--max-k N] [--pacing browser|none]
        [--engines sfu janus janus-default mediarelay] [--ks 0,1,10,20,40] [--rounds N]
        [--feedback browser|none] [--unpaced-ks 1,10,40] [--profile K]

    # the comparison docs/performance.md keeps (issue 17):
    .venv/bin/python bench/sfu.py --engines sfu janus janus-default --kinds video \
        --ks 0,1,10,20,40 --unpaced-ks 1,10,20,40 --rounds 2 --profile 40

Everything runs on 127.0.0.1 (aioice restricted to it, empty ICE server lists): an embedded
Redis, a throwaway SQLite database, one SFU node (`manage.py runsfu --node bench-1`), this
process (publishers + the orchestration), and subscriber load processes (bench/sfu_clients.py).

For each of one VP8 publisher (640x480@30, ~1 Mbps, pre-encoded once and sent without
re-encoding) and one Opus publisher, K subscribers join (K = 0, 1, 10, 50, 100, 150, 200; stops
increasing K once a subscriber no longer gets the full frame rate). Per K, over a window:
- SFU process CPU from /proc/<pid>/stat, as % of one core, per forwarded stream, and forwarded
  packets per CPU-second; the load processes' CPU too (they must cost less than the SFU);
- the SFU's added latency per hop: publisher send time to subscriber receive time of the same
  RTP packet (matched by a CRC of the payload's last bytes, which forwarding leaves alone),
  minus the same through a direct publisher->subscriber aiortc connection in the same run.
  Receive time = the kernel's arrival time of the datagram at the subscriber's socket
  (SIOCGSTAMPNS), so the load clients' own queueing is not counted; the time the load client's
  Python code got to the packet is in the JSON too (*_app_*), and so are keyframe packets apart.
- Pacing (--pacing, default browser): the publishers pace their RTP like a browser's pacer
  (libwebrtc: 2.5 x the bitrate, 5 ms bursts; a keyframe spreads over ~100 ms), the direct
  connection likewise; a full run then measures video once more unpaced (aiortc's whole-frame
  bursts, the worst case of burst arrivals) at K = 1, 10, 50, 100.
Baseline in the same run: aiortc's MediaRelay (decode once, encode per subscriber) in a relay
process (bench/sfu_relay.py) at K = 1, 5, 10, and the ratio of CPU per stream.

What users would pick instead, in the same run: Janus 1.1.2 (Debian's package, VideoRoom),
started by bench/sfu_janus.py, which answers the node's API so the same publisher and load
clients drive it; `janus` runs it with two event loops, `janus-default` with a thread per
handle. CPU is Janus's own process. --rounds interleaves the engines; the summary's
`vs_janus` gives each engine's CPU per forwarded packet and per subscriber as a ratio to
Janus (two loops) in the same round, with added latency beside it.

Subscribers (--feedback, default browser) send RTCP as a browser's stack does toward what the
server negotiated (bench/sfu_media.py BrowserFeedback, after libwebrtc): receiver reports
(video about once a second, audio every 5 s), REMB every 200 ms, or transport-wide feedback
where negotiated (Janus), NACK for gaps, PLI until a key frame;
`none` is the silent load of earlier runs. --profile K samples the server with py-spy through
the window at K and writes collapsed stacks and per-function shares next to the logs.

Prints a table and writes JSON to bench/results/sfu-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
PYTHON = sys.executable
# The repository first: this file (bench/sfu.py) must not shadow the sfu package.
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

NODE = "bench-1"
RELAY_CHANNEL = "sfu.bench-relay"
JANUS_CHANNEL = "sfu.bench-janus"
# Engines that forward RTP (measured against the direct connection for added latency) and
# how each is started: our node; Janus (Debian's janus 1.1.2, VideoRoom) behind an adapter
# that speaks the node's API (bench/sfu_janus.py), with two event loops (its best
# configuration here) and with its default thread per handle; aiortc's MediaRelay.
FORWARDING_ENGINES = ("sfu", "sfu-uvloop", "sfu-no-estimate", "janus", "janus-default")
# Variants of our node, for before/after comparisons in one sitting: the settings they run with
# (sfu-no-estimate: no transport-wide congestion control offered, so no downlink estimate).
NODE_VARIANTS = {
    "sfu": {},
    "sfu-uvloop": {"SFU_EVENT_LOOP": "uvloop"},
    "sfu-no-estimate": {"SFU_DOWNLINK_ESTIMATE": "0"},
}
ENGINES = (*FORWARDING_ENGINES, "mediarelay")
JANUS_EVENT_LOOPS = {"janus": 2, "janus-default": 0}
SETTLE_PER_JOIN = 0.04  # seconds of settling per subscriber added before a window
JOIN_BATCH = 10  # subscribers that join at once (batches one second apart)
SAMPLE_MASK_LARGE_K = 7  # above K=10 subscribers time 1 packet in 8 (all of them below)
FULL_RATE = 0.95  # a subscriber gets "full rate" if it receives >= 95 % of the frames sent
LAGGING_P50_MS = 100.0  # an SFU-path p50 above this means the node runs behind
ATTEMPTS = 2  # windows per K before a K that does not get full rate ends the ramp
PACE_MULTIPLIER = 2.5  # libwebrtc PacingController::kDefaultPaceMultiplier (see sfu_media.Pacer)
UNPACED_VIDEO_KS = [1, 10, 50, 100]  # the full run's second, unpaced video pass
UNPACED_VIDEO_RAMP = "sfu-video-unpaced"
# A latency sample: (kind, packet key, app time, kernel arrival time, keyframe packet).
Sample = tuple[str, int, float, float, bool]
TARGETS = {
    "cpu_per_video_stream": 0.2,
    "relay_ratio": 40.0,
    "added_p50_ms": 5.0,
    "added_p99_ms": 20.0,
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- environment -------------------------------------------------------------------------
def prepare_environment(workdir: Path, migrate: bool) -> tuple[subprocess.Popen[bytes], Path]:
    """Embedded Redis + throwaway SQLite; the env every process of the benchmark shares."""
    from meet import embedded_redis

    socket_path = workdir / "redis.sock"
    redis = embedded_redis.start(socket_path)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "meet.settings",
            "REDIS_URL": f"unix://{socket_path}",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "CHANNEL_LAYER_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
            "SFU_LISTEN_IPS": "127.0.0.1",
            "SFU_ANNOUNCED_IP": "",
            "SFU_ICE_SERVERS": "",
            "DEBUG": "true",
        }
    )
    if migrate:  # the SFU node registers itself in the database
        try:
            subprocess.run(
                [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, check=True
            )
        except BaseException:
            embedded_redis.stop(redis, socket_path)
            raise
    return redis, socket_path


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


class ChildProcess:
    """A child speaking JSON lines on stdin/stdout (the load processes)."""

    def __init__(self, name: str, logfile: Path) -> None:
        self.name = name
        self.logfile = logfile
        self.proc: asyncio.subprocess.Process | None = None
        self.lock = asyncio.Lock()

    async def start(self, *args: str) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON,
            *args,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self.logfile.open("ab"),
            limit=1 << 28,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def call(self, command: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        async with self.lock:
            self.proc.stdin.write((json.dumps(command) + "\n").encode())
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited; see {self.logfile}")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"{self.name}: {command['cmd']} failed: {answer.get('error')}")
        return answer

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.call({"cmd": "quit"}, timeout=5)
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def start_server(
    args: list[str], logfile: Path, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        PYTHON,
        *args,
        cwd=REPO,
        stdout=logfile.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


async def stop_server(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def wait_for_node(channel: str, proc: asyncio.subprocess.Process, method: str) -> None:
    """Poll until the node answers (any answer, an error included: it is listening)."""
    from sfu.channel_api import SfuRequestError, request

    deadline = time.monotonic() + 60
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"{channel} exited with {proc.returncode}")
        try:
            await request(channel, method, {}, timeout=1)
            return
        except SfuRequestError as exc:
            if exc.code != "timeout":
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{channel} did not answer in 60 s")


# --- publishers ------------------------------------------------------------------------
class Publisher:
    """A publisher joined to a node, sending one pre-encoded track (recorded as it is sent)."""

    def __init__(
        self, node_channel: str, room: str, source: Any, kind: str, pacing_rate_bps: float | None
    ) -> None:
        import sfu_media

        self.node_channel = node_channel
        self.room = room
        self.source = source
        self.kind = kind
        self.peer_id = f"publisher-{kind}"
        self.counter = sfu_media.StreamCounter()
        self.pacing_rate_bps = pacing_rate_bps
        self.pacers: list[Any] = []
        self.pc: Any = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        import sfu_media
        from aiortc import RTCSessionDescription
        from channels.layers import get_channel_layer

        from sfu.channel_api import request

        layer = get_channel_layer()
        channel = await layer.new_channel()  # the same prefix as every receiver in this process

        async def drain_events() -> None:  # unread events would fill the channel
            while True:
                await layer.receive(channel)

        self.tasks.append(asyncio.create_task(drain_events()))
        await request(
            self.node_channel,
            "join",
            {
                "room": self.room,
                "peer_id": self.peer_id,
                "peer_channel": channel,
                "display_name": "publisher",
            },
            timeout=30,
        )
        self.pc = sfu_media.new_peer_connection()
        transceiver = self.pc.addTransceiver(self.source.track(), direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.counter.kinds = sfu_media.payload_kinds(self.pc.localDescription.sdp)
        answer = await request(
            self.node_channel,
            "produce",
            {
                "room": self.room,
                "peer_id": self.peer_id,
                "sdp": self.pc.localDescription.sdp,
                "sources": {transceiver.mid: "camera" if self.kind == "video" else "mic"},
            },
            timeout=30,
        )
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        self.pacers = sfu_media.hook_sent(self.pc, self.counter, self.pacing_rate_bps)

    async def stop(self) -> None:
        from sfu.channel_api import request

        try:
            await request(
                self.node_channel, "leave", {"room": self.room, "peer_id": self.peer_id}, timeout=10
            )
        except Exception as exc:
            log(f"publisher leave failed: {exc}")
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for pacer in self.pacers:
            await pacer.stop()
        if self.pc is not None:
            await self.pc.close()


class DirectPublisher:
    """The same source straight to a subscriber in a load process: the no-SFU baseline."""

    def __init__(self, source: Any, pacing_rate_bps: float | None, feedback: str) -> None:
        import sfu_media

        self.feedback = feedback
        self.source = source
        self.counter = sfu_media.StreamCounter()
        self.pacing_rate_bps = pacing_rate_bps
        self.pacers: list[Any] = []
        self.pc: Any = None

    async def start(self, client: ChildProcess) -> None:
        import sfu_media
        from aiortc import RTCSessionDescription

        self.pc = sfu_media.new_peer_connection()
        self.pc.addTransceiver(self.source.track(), direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.counter.kinds = sfu_media.payload_kinds(self.pc.localDescription.sdp)
        answer = await client.call(
            {"cmd": "direct", "sdp": self.pc.localDescription.sdp, "feedback": self.feedback}
        )
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        self.pacers = sfu_media.hook_sent(self.pc, self.counter, self.pacing_rate_bps)

    async def stop(self) -> None:
        for pacer in self.pacers:
            await pacer.stop()
        if self.pc is not None:
            await self.pc.close()


# --- measurement -----------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Latencies:
    """One path's per-packet latencies in ms: by kernel arrival, by app receive, keyframe."""

    kernel: list[float]
    app: list[float]
    keyframe: list[bool]

    def kernel_where(self, keyframe: bool) -> list[float]:
        return [v for v, k in zip(self.kernel, self.keyframe, strict=True) if k == keyframe]


def latencies_ms(sent: list[Sample], received: list[Sample], kind: str) -> Latencies:
    """Match each received sample to the latest send of the same packet key before it.

    Sample = (kind, key, app time, kernel arrival time, keyframe); on the sending side both
    times are when the packet left and only there is keyframe known.
    """
    send_times: dict[int, list[tuple[float, bool]]] = {}
    for sample_kind, key, at, _, keyframe in sent:
        if sample_kind == kind:
            send_times.setdefault(key, []).append((at, keyframe))
    for times in send_times.values():
        times.sort()
    result = Latencies([], [], [])
    for sample_kind, key, app_at, kernel_at, _ in received:
        if sample_kind != kind or key not in send_times:
            continue
        times = send_times[key]
        index = bisect.bisect_right(times, (kernel_at, True)) - 1
        if index >= 0 and kernel_at - times[index][0] < 2.0:
            sent_at, keyframe = times[index]
            result.kernel.append((kernel_at - sent_at) * 1000)
            result.app.append((app_at - sent_at) * 1000)
            result.keyframe.append(keyframe)
    return result


@dataclass
class Window:
    seconds: float
    cpu: dict[str, float]  # % of one core per process
    publisher: dict[str, Any]
    publisher_samples: list[Sample]
    direct: dict[str, Any] | None
    direct_samples: list[Sample]
    reports: list[dict[str, Any]]
    publisher_state: str


async def measure(
    k: int,
    seconds: float,
    pids: dict[str, int],
    clients: list[ChildProcess],
    publisher: Publisher,
    direct: DirectPublisher | None,
) -> Window:
    from sfu_media import cpu_seconds, runqueue_wait_seconds

    # One window for every process, in CLOCK_MONOTONIC (shared across processes): counters
    # only count packets inside it, so RPC delays do not skew the rates.
    sample_mask = 0 if k <= 10 else SAMPLE_MASK_LARGE_K
    start = time.monotonic() + 0.3
    end = start + seconds
    await asyncio.gather(
        *(
            c.call({"cmd": "window", "start": start, "end": end, "sample_mask": sample_mask})
            for c in clients
        )
    )
    publisher.counter.open_window(start, end, 0)
    for pacer in publisher.pacers:
        pacer.max_queue = 0  # the longest pacer queue (packets) of this window
    if direct:
        direct.counter.open_window(start, end, 0)
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    waited_before = runqueue_wait_seconds(pids["server"])
    cpu_started = time.monotonic()
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    waited = runqueue_wait_seconds(pids["server"]) - waited_before
    elapsed = time.monotonic() - cpu_started
    await asyncio.sleep(0.3)  # packets in flight at the end of the window still count
    published = publisher.counter.report()
    published_samples = list(publisher.counter.samples)
    direct_report = direct.counter.report() if direct else None
    direct_samples = list(direct.counter.samples) if direct else []
    reports = await asyncio.gather(*(c.call({"cmd": "window_end"}) for c in clients))
    cpu = {name: 100 * (after[name] - before[name]) / elapsed for name in pids}
    cpu["server_runqueue_wait"] = 100 * waited / elapsed
    state = f"{publisher.pc.connectionState}/{publisher.pc.iceConnectionState}"
    return Window(
        elapsed,
        cpu,
        published,
        published_samples,
        direct_report,
        direct_samples,
        list(reports),
        state,
    )


def summarise_window(engine: str, kind: str, k: int, window: Window, pacing: str) -> dict[str, Any]:
    sent_frames = window.publisher["frames"].get(kind, 0)
    sent_packets = window.publisher["packets"].get(kind, 0)
    ratios = []
    forwarded_packets = 0
    received: list[Sample] = []
    direct_received: list[Sample] = []
    decoded = None
    kernel_missing = 0
    feedback_sent: dict[str, float] = {}
    feedback_senders = 0
    for report in window.reports:
        received.extend(tuple(s) for s in report["samples"]["sfu"])  # type: ignore[misc]
        direct_received.extend(tuple(s) for s in report["samples"]["direct"])  # type: ignore[misc]
        decoded = decoded or report["decoded"]
        for subscriber in report["subscribers"]:
            kernel_missing += subscriber.get("kernel_stamp_missing", 0)
            if subscriber["path"] != "sfu":
                continue
            if subscriber.get("feedback"):
                feedback_senders += 1
            for name, count in (subscriber.get("feedback") or {}).items():
                feedback_sent[name] = feedback_sent.get(name, 0) + count
            forwarded_packets += sum(subscriber["packets"].values())
            ratios.append(subscriber["frames"].get(kind, 0) / max(1, sent_frames))
    sfu_cpu = window.cpu["server"]
    sfu_lat = latencies_ms(window.publisher_samples, received, kind)
    direct_lat = latencies_ms(window.direct_samples, direct_received, kind)
    row: dict[str, Any] = {
        "engine": engine,
        "kind": kind,
        "pacing": pacing,
        "k": k,
        "window_s": round(window.seconds, 2),
        "sent_frames_per_s": round(sent_frames / window.seconds, 1),
        "sent_packets_per_s": round(sent_packets / window.seconds, 1),
        "server_cpu_pct": round(sfu_cpu, 2),
        "server_cpu_pct_per_stream": round(sfu_cpu / k, 3) if k else None,
        "forwarded_packets_per_s": round(forwarded_packets / window.seconds, 1),
        "forwarded_packets_per_cpu_s": (
            round(forwarded_packets / (sfu_cpu / 100 * window.seconds))
            if sfu_cpu > 0 and k
            else None
        ),
        # The server's CPU time per packet it forwarded (all its work, feedback included).
        "server_us_per_forwarded_packet": (
            round(1e6 * sfu_cpu / 100 * window.seconds / forwarded_packets, 2)
            if forwarded_packets and k
            else None
        ),
        "rate_min": round(min(ratios), 3) if ratios else None,
        "rate_mean": round(statistics.fmean(ratios), 3) if ratios else None,
        "full_rate": bool(ratios) and min(ratios) >= FULL_RATE,
        "clients_cpu_pct": round(
            sum(v for n, v in window.cpu.items() if n.startswith("clients")), 2
        ),
        "clients_cpu_pct_per_process": [
            round(v, 2) for n, v in window.cpu.items() if n.startswith("clients")
        ],
        "publisher_cpu_pct": round(window.cpu["publisher"], 2),
        "loadavg_1min": round(os.getloadavg()[0], 2),
        # % of the window the node's event loop was runnable but waiting for a CPU.
        "server_runqueue_wait_pct": round(window.cpu["server_runqueue_wait"], 2),
        "latency_samples": len(sfu_lat.kernel),
        "latency_keyframe_samples": sum(sfu_lat.keyframe),
        # Received samples whose kernel timestamp could not be read (app time used instead).
        "kernel_stamp_missing": kernel_missing,
        "publisher_connection_state": window.publisher_state,
        "decoded": decoded,
        # What each subscriber sent the server, per second (the decoding one sends aiortc's
        # own feedback and is not counted here).
        "feedback_per_subscriber_per_s": {
            name: round(count / window.seconds / feedback_senders, 2)
            for name, count in feedback_sent.items()
        }
        if feedback_senders
        else {},
    }
    if k == 0:
        row["full_rate"] = True
    # <path>_p50/p99 (what the table shows): to the kernel's arrival at the subscriber's
    # socket; <path>_app_*: to when the load client's Python code got the packet;
    # <path>_keyframe_* / <path>_delta_*: kernel-based, packets of keyframes / of other frames.
    for name, lat in (("sfu", sfu_lat), ("direct", direct_lat)):
        series = {
            "": lat.kernel,
            "_app": lat.app,
            "_keyframe": lat.kernel_where(True),
            "_delta": lat.kernel_where(False),
        }
        if kind != "video":
            del series["_keyframe"], series["_delta"]
        for suffix, values in series.items():
            row[f"{name}{suffix}_p50_ms"] = _round(percentile(values, 50))
            row[f"{name}{suffix}_p99_ms"] = _round(percentile(values, 99))
    # Keeping up = full rate and no standing backlog: a node that is seconds behind can still
    # deliver every frame for a while (its queues drain later), which is not keeping up.
    sfu_p50 = row["sfu_p50_ms"]
    row["lagging"] = sfu_p50 is not None and sfu_p50 > LAGGING_P50_MS
    row["full_rate"] = row["full_rate"] and not row["lagging"]
    for suffix in ("", "_app", "_keyframe", "_delta") if kind == "video" else ("", "_app"):
        for q in ("p50", "p99"):
            sfu_value = row[f"sfu{suffix}_{q}_ms"]
            direct_value = row[f"direct{suffix}_{q}_ms"]
            row[f"added{suffix}_{q}_ms"] = (
                _round(sfu_value - direct_value)
                if engine in FORWARDING_ENGINES
                and sfu_value is not None
                and direct_value is not None
                else None
            )
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# --- profile -------------------------------------------------------------------------------
PROFILE_RATE_HZ = 250
PROFILE_TOP = 25


class Profile:
    """py-spy samples the server through one window at K = `k` (non-blocking: the process is
    not paused to read its stacks, so the figures are not the profiler's). Writes the
    collapsed stacks (flamegraph.pl / speedscope input) and keeps, per function, its share of
    the samples where the process was busy: self (its own line on top) and inclusive."""

    def __init__(self, k: int, out_dir: Path) -> None:
        self.k = k
        self.out_dir = out_dir
        self.results: dict[str, Any] = {}

    def start(self, pid: int, seconds: float) -> tuple[asyncio.Task[Any], Path] | None:
        py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        if not Path(py_spy).exists():
            log("py-spy not installed (requirements-dev.txt): no profile")
            return None
        out = self.out_dir / f"profile-{uuid.uuid4().hex[:6]}.txt"
        command = [
            py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(PROFILE_RATE_HZ), "--nonblocking", "--format", "raw",
            "--output", str(out),
        ]  # fmt: skip

        async def run() -> int:
            process = await asyncio.create_subprocess_exec(
                *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            return await process.wait()

        return asyncio.create_task(run()), out

    async def finish(self, sampling: tuple[asyncio.Task[Any], Path], name: str) -> None:
        task, out = sampling
        await task
        if not out.exists():
            log(f"py-spy wrote no profile for {name}")
            return
        final = self.out_dir / f"profile-{name}.txt"
        out.rename(final)
        self.results[name] = summarise_profile(final.read_text()) | {"stacks": str(final)}
        log(f"profile of {name}: {final}")


def summarise_profile(collapsed: str) -> dict[str, Any]:
    """Per-function shares of the busy samples, from py-spy's collapsed stacks."""
    total = 0
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function_of(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for function in set(frames):
            inclusive[function] = inclusive.get(function, 0) + count

    def top(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:PROFILE_TOP]
        return [(function, round(100 * n / total, 1)) for function, n in ranked]

    return {"samples": total, "self_pct": top(own), "inclusive_pct": top(inclusive)}


def _function_of(frame: str) -> str:
    """`send (aiortc/rtcdtlstransport.py:123)` -> `send (aiortc/rtcdtlstransport.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", str(REPO) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


# --- one ramp ------------------------------------------------------------------------------
async def ramp(
    engine: str,
    kind: str,
    node_channel: str,
    server_pid: int,
    clients: list[ChildProcess],
    ks: list[int],
    seconds: float,
    pacing: str,
    feedback: str,
    profile: Profile | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Add subscribers step by step; one window per K. Returns rows and why it stopped.

    With `profile`, the server is sampled by py-spy during the window at profile.k."""
    import sfu_media

    room = f"bench-{engine}-{kind}-{pacing}-{uuid.uuid4().hex[:6]}"
    source = sfu_media.PacketSource(sfu_media.load_clip(kind))
    # The direct connection is paced the same way, so the subtraction stays fair.
    rate = PACE_MULTIPLIER * source.clip.bitrate if pacing == "browser" else None
    publisher = Publisher(node_channel, room, source, kind, rate)
    direct = DirectPublisher(source, rate, feedback) if engine in FORWARDING_ENGINES else None
    pids = {"server": server_pid, "publisher": os.getpid()}
    pids.update({f"clients{i}": c.pid for i, c in enumerate(clients)})
    rows: list[dict[str, Any]] = []
    stopped = f"reached K={ks[-1]}"
    source.start()
    try:
        await publisher.start()
        if direct:
            await direct.start(clients[0])
        current = 0
        for k in ks:
            added = max(0, k - current)
            if added:
                await add_subscribers(clients, node_channel, room, current, k, feedback)
                current = k
            ready = await wait_receiving(clients, k + (1 if direct else 0), timeout=30 + k * 0.3)
            if not ready:
                stopped = f"at K={k} not every subscriber started receiving within the bound"
                log(stopped)
            # Settle: a burst of joins (ICE + DTLS handshakes in Python) leaves the node with
            # a backlog of packets to drain; measure the steady state, not the join.
            await asyncio.sleep(2.0 + SETTLE_PER_JOIN * added)
            for attempt in range(1, ATTEMPTS + 1):
                sampling = (
                    profile.start(server_pid, seconds)
                    if profile is not None and k == profile.k and attempt == 1
                    else None
                )
                window = await measure(k, seconds, pids, clients, publisher, direct)
                if sampling is not None and profile is not None:
                    await profile.finish(sampling, f"{engine}-{kind}-{pacing}-K{k}")
                row = summarise_window(engine, kind, k, window, pacing)
                row["feedback"] = feedback
                row["pacer_max_queue"] = max((p.max_queue for p in publisher.pacers), default=None)
                row["attempt"] = attempt
                log(format_row(row))
                if row["full_rate"] or attempt == ATTEMPTS:
                    break
                # The machine is shared: a burst elsewhere can stall a window. Retry once
                # before calling this K the limit; both windows are kept in the JSON.
                rows.append({**row, "discarded": True})
                await asyncio.sleep(3.0)
            rows.append(row)
            if not row["full_rate"] and engine not in FORWARDING_ENGINES:
                # The baseline is measured at every (small) K: where it no longer keeps up
                # is part of the comparison, and its CPU there is a lower bound.
                if not stopped.startswith("measured"):
                    stopped = f"measured every K; below full rate from K={k}"
                continue
            if not row["full_rate"]:
                lag = f"SFU-path p50 {row['sfu_p50_ms']} ms; " if row["lagging"] else ""
                stopped = (
                    f"stopped at K={k}: {lag}a subscriber got {row['rate_min']:.0%} of the frames "
                    f"(mean {row['rate_mean']:.0%}); publisher sent {row['sent_frames_per_s']} "
                    f"frames/s, its connection {row['publisher_connection_state']}, node waited "
                    f"for a CPU {row['server_runqueue_wait_pct']:.0f} % of the window; "
                    "larger K not tried"
                )
                break
            if not ready:
                break
    finally:
        await asyncio.gather(
            *(c.call({"cmd": "leave_all"}, timeout=120) for c in clients), return_exceptions=True
        )
        await publisher.stop()
        if direct:
            await direct.stop()
        await source.stop()
    return rows, stopped


async def add_subscribers(
    clients: list[ChildProcess], node: str, room: str, start: int, end: int, feedback: str
) -> None:
    """Spread new subscribers over the load processes; the room's first one decodes.

    Joins come in batches of JOIN_BATCH a second apart, as people arrive: fifty ICE + DTLS
    handshakes at once on a 2-core machine starve the node's forwarding of the publisher for
    long enough to lose it (see docs/performance.md), which is a join storm, not a K.
    """
    for batch_start in range(start, end, JOIN_BATCH):
        batch_end = min(end, batch_start + JOIN_BATCH)
        by_client: dict[int, list[str]] = {}
        for index in range(batch_start, batch_end):
            by_client.setdefault(index % len(clients), []).append(f"sub-{index}")
        calls = []
        for client_index, peer_ids in by_client.items():
            decode = ["sub-0"] if "sub-0" in peer_ids else []
            command = {
                "cmd": "add",
                "node": node,
                "room": room,
                "peer_ids": peer_ids,
                "feedback": feedback,
            }
            calls.append(clients[client_index].call({**command, "decode": decode}, timeout=300))
        for answer in await asyncio.gather(*calls):
            if answer.get("errors"):
                log(f"join errors: {answer['errors']}")
        if batch_end < end:
            await asyncio.sleep(1.0)


async def wait_receiving(clients: list[ChildProcess], expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        answers = await asyncio.gather(*(c.call({"cmd": "status"}) for c in clients))
        receiving = sum(a["receiving"] for a in answers)
        if receiving >= expected:
            return True
        if time.monotonic() > deadline:
            errors = [e for a in answers for e in a["errors"]]
            log(f"only {receiving}/{expected} subscribers receiving; errors: {errors[:3]}")
            return False
        await asyncio.sleep(0.5)


# --- report --------------------------------------------------------------------------------
HEADER = (
    f"{'engine':<10} {'kind':<5} {'pace':<7} {'K':>4} {'srv CPU%':>8} {'%/strm':>7} "
    f"{'pkt/CPUs':>9} {'rate min':>8} {'add p50':>7} {'add p99':>7} {'sfu p50':>7} "
    f"{'sfu p99':>7} {'dir p50':>7} {'app p50':>7} {'app p99':>7} {'kf p99':>7} "
    f"{'clients%':>8} {'pub%':>5} {'srv wait%':>9} {'load':>5} {'decoded':>14}"
)


def format_row(row: dict[str, Any]) -> str:
    def show(value: Any, spec: str = ".2f") -> str:
        return "-" if value is None else format(value, spec)

    decoded = row.get("decoded") or {}
    decoded_text = ""
    if decoded and row["kind"] == "video":
        sizes = ",".join(decoded.get("sizes", {}))
        decoded_text = f"{decoded['video_frames'] / row['window_s']:.0f}fps {sizes}"
    elif decoded:
        decoded_text = f"{decoded['audio_frames'] / row['window_s']:.0f}/s"
    return (
        f"{row['engine']:<10} {row['kind']:<5} {row.get('pacing', '?'):<7} {row['k']:>4} "
        f"{row['server_cpu_pct']:>8.1f} "
        f"{show(row['server_cpu_pct_per_stream'], '.3f'):>7} "
        f"{show(row['forwarded_packets_per_cpu_s'], '.0f'):>9} "
        f"{show(row['rate_min'], '.0%'):>8} {show(row['added_p50_ms']):>7} "
        f"{show(row['added_p99_ms']):>7} "
        f"{show(row['sfu_p50_ms']):>7} {show(row['sfu_p99_ms']):>7} "
        f"{show(row['direct_p50_ms']):>7} "
        f"{show(row.get('sfu_app_p50_ms')):>7} {show(row.get('sfu_app_p99_ms')):>7} "
        f"{show(row.get('sfu_keyframe_p99_ms')):>7} "
        f"{row['clients_cpu_pct']:>8.1f} {row['publisher_cpu_pct']:>5.1f} "
        f"{row['server_runqueue_wait_pct']:>9.1f} {row['loadavg_1min']:>5.1f} {decoded_text:>14}"
    )


def slope(rows: list[dict[str, Any]], full_rate_only: bool = True) -> float | None:
    """Least-squares CPU % per added subscriber over the kept (by default full-rate) windows."""
    points = [
        (r["k"], r["server_cpu_pct"])
        for r in rows
        if (r["full_rate"] or not full_rate_only) and not r.get("discarded")
    ]
    if len({k for k, _ in points}) < 2:
        return None
    mean_k = statistics.fmean(k for k, _ in points)
    mean_c = statistics.fmean(c for _, c in points)
    denominator = sum((k - mean_k) ** 2 for k, _ in points)
    return sum((k - mean_k) * (c - mean_c) for k, c in points) / denominator


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind in ("video", "audio"):
        sfu_rows = results["ramps"].get(f"sfu-{kind}", {}).get("rows", [])
        relay_rows = results["ramps"].get(f"mediarelay-{kind}", {}).get("rows", [])
        # MediaRelay: every kept window, also those below full rate (on a shared 2-core
        # machine it loses frames from K=5): its CPU then undercounts what it would need, so
        # the ratio is a lower bound.
        sfu_slope, relay_slope = slope(sfu_rows), slope(relay_rows, full_rate_only=False)
        full = [r for r in sfu_rows if r["full_rate"] and r["k"] > 0 and not r.get("discarded")]
        largest = full[-1] if full else None
        entry: dict[str, Any] = {
            "sfu_cpu_pct_per_stream_marginal": _round3(sfu_slope),
            "sfu_cpu_pct_per_stream_at_largest_k": largest and largest["server_cpu_pct_per_stream"],
            "largest_full_rate_k": largest and largest["k"],
            "mediarelay_cpu_pct_per_stream_marginal": _round3(relay_slope),
            "relay_over_sfu": round(relay_slope / sfu_slope, 1)
            if sfu_slope and relay_slope
            else None,
            "pacing": full[0]["pacing"] if full else None,
            "added_p50_ms_worst": _worst(full, "added_p50_ms"),
            "added_p99_ms_worst": _worst(full, "added_p99_ms"),
            "added_app_p50_ms_worst": _worst(full, "added_app_p50_ms"),
            "added_app_p99_ms_worst": _worst(full, "added_app_p99_ms"),
        }
        summary[kind] = entry
    unpaced = results["ramps"].get(UNPACED_VIDEO_RAMP, {}).get("rows", [])
    full = [r for r in unpaced if r["full_rate"] and r["k"] > 0 and not r.get("discarded")]
    if unpaced:
        summary["video_unpaced"] = {
            "pacing": "none",
            "largest_full_rate_k": full[-1]["k"] if full else None,
            "added_p50_ms_worst": _worst(full, "added_p50_ms"),
            "added_p99_ms_worst": _worst(full, "added_p99_ms"),
            "added_keyframe_p99_ms_worst": _worst(full, "added_keyframe_p99_ms"),
            "added_app_p50_ms_worst": _worst(full, "added_app_p50_ms"),
            "added_app_p99_ms_worst": _worst(full, "added_app_p99_ms"),
        }
    if any(engine in JANUS_EVENT_LOOPS for engine in results.get("engines", [])):
        summary["vs_janus"] = compare_engines(results)
    return summary


def compare_engines(results: dict[str, Any]) -> dict[str, Any]:
    """Each forwarding engine beside Janus (two event loops), per kind and pacing: CPU per
    forwarded packet and per subscriber as a ratio to Janus's in the same round (the median
    over rounds), with each engine's figures and latency beside it."""
    groups: dict[str, dict[str, dict[int, list[dict[str, Any]]]]] = {}
    for ramp_result in results["ramps"].values():
        engine = ramp_result.get("engine")
        if engine not in FORWARDING_ENGINES:
            continue
        group = f"{ramp_result['kind']}-{ramp_result['pacing']}"
        by_round = groups.setdefault(group, {}).setdefault(engine, {})
        kept = [r for r in ramp_result["rows"] if not r.get("discarded")]
        by_round.setdefault(ramp_result["round"], []).extend(kept)
    comparison: dict[str, Any] = {}
    for group, engines in groups.items():
        janus = engines.get("janus", {})
        entry: dict[str, Any] = {}
        for engine, by_round in engines.items():
            ks = sorted({r["k"] for rows in by_round.values() for r in rows if r["k"] > 0})
            figures: dict[str, Any] = {
                "cpu_pct_per_subscriber_marginal": _median(
                    [slope(rows, full_rate_only=False) for rows in by_round.values()]
                ),
                # What one more forwarded packet costs: the marginal CPU per subscriber over
                # the packets each subscriber receives (the headline against Janus).
                "us_per_forwarded_packet_marginal": _median(
                    [_marginal_us_per_packet(rows) for rows in by_round.values()]
                ),
                "us_per_forwarded_packet": {
                    k: _median(_at(by_round, k, "server_us_per_forwarded_packet")) for k in ks
                },
                "added_p50_ms": {k: _median(_at(by_round, k, "added_p50_ms")) for k in ks},
                "added_p99_ms": {k: _median(_at(by_round, k, "added_p99_ms")) for k in ks},
                "worst_rate": {k: _min(_at(by_round, k, "rate_min")) for k in ks},
            }
            if engine != "janus" and janus:
                figures["per_packet_over_janus"] = {
                    k: _median(_ratios(by_round, janus, k, "server_us_per_forwarded_packet"))
                    for k in ks
                }
                figures["marginal_per_packet_over_janus"] = _median(
                    [
                        mine / theirs
                        for number, rows in by_round.items()
                        if (mine := _marginal_us_per_packet(rows))
                        and (theirs := _marginal_us_per_packet(janus.get(number, [])))
                    ]
                )
                figures["per_subscriber_over_janus"] = _median(
                    [
                        mine / theirs
                        for number, rows in by_round.items()
                        if (mine := slope(rows, full_rate_only=False))
                        and (theirs := slope(janus.get(number, []), full_rate_only=False))
                    ]
                )
            entry[engine] = figures
        comparison[group] = entry
    return comparison


def _marginal_us_per_packet(rows: list[dict[str, Any]]) -> float | None:
    """CPU µs per forwarded packet at the margin: the slope of CPU (% of a core) over K,
    divided by the packets per second one subscriber receives."""
    per_subscriber = slope(rows, full_rate_only=False)
    rates = [r["forwarded_packets_per_s"] / r["k"] for r in rows if r["k"] > 0]
    if per_subscriber is None or not rates:
        return None
    return per_subscriber / 100 * 1e6 / statistics.fmean(rates)


def _at(by_round: dict[int, list[dict[str, Any]]], k: int, key: str) -> list[float]:
    return [r[key] for rows in by_round.values() for r in rows if r["k"] == k and r.get(key)]


def _ratios(
    mine: dict[int, list[dict[str, Any]]],
    theirs: dict[int, list[dict[str, Any]]],
    k: int,
    key: str,
) -> list[float]:
    """mine / theirs at K, round by round (the rounds both engines ran)."""
    ratios = []
    for number, rows in mine.items():
        a = [r[key] for r in rows if r["k"] == k and r.get(key)]
        b = [r[key] for r in theirs.get(number, []) if r["k"] == k and r.get(key)]
        if a and b:
            ratios.append(statistics.fmean(a) / statistics.fmean(b))
    return ratios


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _min(values: list[float]) -> float | None:
    return min(values) if values else None


def _round3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _worst(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return max(values) if values else None


# --- main ----------------------------------------------------------------------------------
async def start_engine(engine: str, logs: Path) -> tuple[asyncio.subprocess.Process, str, int]:
    """Start the server of `engine`; its channel and the pid whose CPU is measured."""
    from sfu import client as sfu_client

    env: dict[str, str] = {}
    if engine in NODE_VARIANTS:
        command, channel = ["manage.py", "runsfu", "--node", NODE], f"sfu.{NODE}"
        env = {"SFU_EVENT_LOOP": "asyncio", **NODE_VARIANTS[engine]}
    elif engine in JANUS_EVENT_LOOPS:
        loops = str(JANUS_EVENT_LOOPS[engine])
        command = [str(BENCH / "sfu_janus.py"), JANUS_CHANNEL, "--event-loops", loops]
        channel = JANUS_CHANNEL
    else:
        command, channel = [str(BENCH / "sfu_relay.py"), RELAY_CHANNEL], RELAY_CHANNEL
    server = await start_server(command, logs / f"{engine}.log", env)
    try:
        await wait_for_node(channel, server, "dump")
        pid = server.pid
        if engine in JANUS_EVENT_LOOPS:
            # The adapter only translates signaling; the media goes through Janus itself.
            pid = int((await sfu_client.dump(channel, timeout=10))["server_pid"])  # type: ignore[typeddict-item]
    except BaseException:
        await stop_server(server)
        raise
    return server, channel, pid


async def run_engine(
    engine: str,
    round_number: int,
    args: argparse.Namespace,
    results: dict[str, Any],
    clients: list[ChildProcess],
    logs: Path,
    profile: Profile | None,
    *,
    sfu_ks: list[int],
    relay_ks: list[int],
    unpaced_ks: list[int],
) -> None:
    server, channel, pid = await start_engine(engine, logs)
    ks = sfu_ks if engine in FORWARDING_ENGINES else relay_ks
    suffix = "" if round_number == 1 else f"#{round_number}"
    try:
        passes = [(f"{engine}-{kind}", kind, ks, args.pacing) for kind in args.kinds]
        if engine in FORWARDING_ENGINES and unpaced_ks:
            passes.append((f"{engine}-video-unpaced", "video", unpaced_ks, "none"))
        for name, kind, pass_ks, pacing in passes:
            log(f"round {round_number}: {engine} {kind} pacing={pacing}: K={pass_ks}")
            try:
                rows, stopped = await ramp(
                    engine, kind, channel, pid, clients, pass_ks, args.window, pacing,
                    args.feedback,
                    profile if round_number == 1 and engine in NODE_VARIANTS else None,
                )  # fmt: skip
            except Exception as exc:
                log(f"{engine} {kind} failed: {exc!r}")
                rows, stopped = [], f"failed: {exc!r}"
            for row in rows:
                row["round"] = round_number
            results["ramps"][name + suffix] = {
                "rows": rows,
                "stopped": stopped,
                "pacing": pacing,
                "engine": engine,
                "kind": kind,
                "round": round_number,
            }
    finally:
        await stop_server(server)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # Settings only (no django.setup()): the load processes need the channel layer, not apps.
    import sfu_media

    sfu_media.loopback_only()
    for kind in ("video", "audio"):
        sfu_media.load_clip(kind)  # encode once, before anything is timed
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    logs = RESULTS / f"sfu-{stamp}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    if args.quick:
        sfu_ks, relay_ks = [1, 10], [1]
    else:
        sfu_ks = [0, 1, 10, 50, 100, 150, 200]
        sfu_ks = [k for k in sfu_ks if k <= args.max_k]
        relay_ks = [1, 5, 10]
    if args.ks:
        sfu_ks = args.ks
    # The full run measures video once more unpaced, after the paced ramps: the worst case of
    # burst arrivals beside the browser-like figures.
    unpaced_ks = (
        [k for k in UNPACED_VIDEO_KS if k <= args.max_k]
        if args.pacing == "browser"
        and not args.quick
        and any(engine in FORWARDING_ENGINES for engine in args.engines)
        and "video" in args.kinds
        else []
    )
    if args.unpaced_ks is not None:
        unpaced_ks = args.unpaced_ks
    video_clip = sfu_media.load_clip("video")
    audio_clip = sfu_media.load_clip("audio")
    results: dict[str, Any] = {
        "started": stamp,
        "quick": args.quick,
        "window_s": args.window,
        "machine": machine(),
        "clips": {
            "video": {
                "codec": "VP8",
                "size": "640x480",
                "fps": 30,
                "kbps": round(video_clip.bitrate / 1000),
            },
            "audio": {"codec": "opus", "ptime_ms": 20, "kbps": round(audio_clip.bitrate / 1000)},
        },
        "pacing": {
            "mode": args.pacing,
            "multiplier": PACE_MULTIPLIER,
            "burst_interval_ms": sfu_media.PACE_INTERVAL * 1000,
            "rates_kbps": {
                "video": round(PACE_MULTIPLIER * video_clip.bitrate / 1000),
                "audio": round(PACE_MULTIPLIER * audio_clip.bitrate / 1000),
            }
            if args.pacing == "browser"
            else None,
            "unpaced_video_ks": unpaced_ks,
        },
        "latency_clock": "kernel arrival at the subscriber socket (SIOCGSTAMPNS); *_app_*: "
        "when the load client's Python code got the packet",
        "feedback": args.feedback,
        "engines": args.engines,
        "rounds": args.rounds,
        "targets": TARGETS,
        "ramps": {},
        "notes": [],
    }
    clients = [
        ChildProcess(f"clients{i}", logs / f"clients{i}.log") for i in range(args.client_processes)
    ]
    for client in clients:
        await client.start(str(BENCH / "sfu_clients.py"))
    profile = Profile(args.profile, logs) if args.profile is not None else None
    try:
        # Rounds interleave the engines (sfu, janus, …, sfu, janus, …) so that each is
        # measured in the same stretch of a shared machine's weather as the others.
        for round_number in range(1, args.rounds + 1):
            for engine in args.engines:
                await run_engine(
                    engine, round_number, args, results, clients, logs, profile,
                    sfu_ks=sfu_ks, relay_ks=relay_ks, unpaced_ks=unpaced_ks,
                )  # fmt: skip
    finally:
        for client in clients:
            await client.stop()
    if profile is not None:
        results["profile"] = profile.results
    results["summary"] = summarise(results)
    results["finished"] = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"sfu-{stamp}.json"
    out.write_text(json.dumps(results, indent=1))
    print_report(results, out)
    return results


def print_report(results: dict[str, Any], out: Path) -> None:
    m = results["machine"]
    print(f"\nSFU benchmark {results['started']} on {m['nproc']} x {m['cpu_model']}")
    print(f"publisher pacing: {pacing_text(results)}")
    print(
        "CPU as % of one core; latency in ms (add = SFU path minus direct path); "
        "rate = worst subscriber"
    )
    print(
        "latency to the kernel's arrival at the subscriber socket; app = SFU path to when the "
        "load client got it; kf = SFU path, keyframe packets"
    )
    print(
        "srv wait% = share of the window the node was runnable but waiting for a CPU; "
        "load = 1-min loadavg"
    )
    print(HEADER)
    for name, ramp_result in results["ramps"].items():
        for row in ramp_result["rows"]:
            print(format_row(row) + ("  (1st try, discarded)" if row.get("discarded") else ""))
        print(f"  {name}: {ramp_result['stopped']}")
    print(
        "\nsummary (targets: <= 0.2 % of a core per video stream, >= 40x MediaRelay, "
        "added <= 5 ms p50, <= 20 ms p99)"
    )
    for kind, entry in results["summary"].items():
        if kind != "vs_janus":
            print(f"  {kind}: {json.dumps(entry)}")
    if "vs_janus" in results["summary"]:
        print("\nbeside Janus (two event loops); medians over rounds")
        print("\n".join(janus_table(results["summary"]["vs_janus"])))
    for name, profile in results.get("profile", {}).items():
        print(f"\nprofile {name} ({profile['samples']} busy samples), self %:")
        for function, share in profile["self_pct"][:15]:
            print(f"  {share:5.1f}  {function}")
    print(f"\nJSON: {out}")


def janus_table(comparison: dict[str, Any]) -> list[str]:
    """Markdown rows: per group and engine, CPU per packet and per subscriber, ratios, latency."""
    lines = [
        "| load | engine | marginal µs per forwarded packet | ÷ Janus "
        "| % of a core per subscriber (marginal) | ÷ Janus |",
        "|---|---|---|---|---|---|",
    ]

    def show(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for group, engines in comparison.items():
        for engine, f in engines.items():
            lines.append(
                f"| {group} | {engine} | {show(f['us_per_forwarded_packet_marginal'], '.1f')} "
                f"| {show(f.get('marginal_per_packet_over_janus'), '.2f')} "
                f"| {show(f['cpu_pct_per_subscriber_marginal'], '.3f')} "
                f"| {show(f.get('per_subscriber_over_janus'), '.2f')} |"
            )
    lines += [
        "",
        "| load | engine | K | µs per forwarded packet (all the server's CPU) | ÷ Janus "
        "| added p50 / p99 ms | worst subscriber rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, engines in comparison.items():
        for engine, f in engines.items():
            for k, per_packet in f["us_per_forwarded_packet"].items():
                ratio = f.get("per_packet_over_janus", {}).get(k)
                lines.append(
                    f"| {group} | {engine} | {k} | {show(per_packet, '.1f')} "
                    f"| {show(ratio, '.2f')} "
                    f"| {show(f['added_p50_ms'].get(k), '.1f')} / "
                    f"{show(f['added_p99_ms'].get(k), '.1f')} "
                    f"| {show(f['worst_rate'].get(k), '.0%')} |"
                )
    return lines


def pacing_text(results: dict[str, Any]) -> str:
    pacing = results.get("pacing")
    if not pacing:
        return "none (aiortc whole-frame bursts)"
    if pacing["mode"] == "browser":
        text = (
            f"browser-like ({pacing['multiplier']:g} x the clip bitrate = "
            f"{pacing['rates_kbps']['video']} kbps video / {pacing['rates_kbps']['audio']} kbps "
            f"audio, {pacing['burst_interval_ms']:g} ms bursts)"
        )
    else:
        text = "none (aiortc whole-frame bursts)"
    if pacing.get("unpaced_video_ks"):
        text += f"; video also unpaced at K={pacing['unpaced_video_ks']}"
    return text


def markdown(results: dict[str, Any]) -> str:
    """The tables docs/performance.md keeps, from a results JSON (`--markdown FILE`)."""
    m = results["machine"]
    lines = [
        f"Run {results['started']}: {m['nproc']} x {m['cpu_model']}, {results['window_s']:g} s "
        f"windows, loadavg at start {m['loadavg_at_start'][0]:.1f}. Publisher pacing: "
        f"{pacing_text(results)}. "
        + (
            "Latency to the kernel's arrival at the subscriber's socket; app = to when the load "
            "client's Python code got the packet."
            if "latency_clock" in results
            else "Latency to when the load client got the packet (run before kernel timestamps)."
        ),
        "",
        "| engine | kind | pacing | K | node CPU % | % per stream | fwd pkt/CPU-s "
        "| worst sub rate | added p50 / p99 ms | SFU path p50 / p99 | direct p50 / p99 "
        "| SFU path app p50 / p99 | SFU path keyframe pkts p50 / p99 | load clients CPU % "
        "(per process) | node waited for CPU % | decoded |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def show(value: Any, spec: str = ".2f") -> str:
        return "-" if value is None else format(value, spec)

    for name, ramp_result in results["ramps"].items():
        for r in ramp_result["rows"]:
            decoded = r.get("decoded") or {}
            decoded_text = ""
            if decoded and r["kind"] == "video":
                decoded_text = (
                    f"{decoded['video_frames'] / r['window_s']:.0f} fps "
                    f"{','.join(decoded.get('sizes', {}))}"
                )
            elif decoded:
                decoded_text = f"{decoded['audio_frames'] / r['window_s']:.0f}/s"
            note = " (1st try, discarded)" if r.get("discarded") else ""
            lines.append(
                f"| {r['engine']}{note} | {r['kind']} | {r.get('pacing', 'none')} | {r['k']} "
                f"| {r['server_cpu_pct']:.1f} "
                f"| {show(r['server_cpu_pct_per_stream'], '.3f')} "
                f"| {show(r['forwarded_packets_per_cpu_s'], '.0f')} "
                f"| {show(r['rate_min'], '.0%')} "
                f"| {show(r['added_p50_ms'], '.1f')} / {show(r['added_p99_ms'], '.1f')} "
                f"| {show(r['sfu_p50_ms'], '.1f')} / {show(r['sfu_p99_ms'], '.1f')} "
                f"| {show(r['direct_p50_ms'], '.1f')} / {show(r['direct_p99_ms'], '.1f')} "
                f"| {show(r.get('sfu_app_p50_ms'), '.1f')} / "
                f"{show(r.get('sfu_app_p99_ms'), '.1f')} "
                f"| {show(r.get('sfu_keyframe_p50_ms'), '.1f')} / "
                f"{show(r.get('sfu_keyframe_p99_ms'), '.1f')} "
                f"| {r['clients_cpu_pct']:.1f} "
                f"({' + '.join(f'{v:.1f}' for v in r['clients_cpu_pct_per_process'])}) "
                f"| {r['server_runqueue_wait_pct']:.0f} | {decoded_text} |"
            )
        lines.append(f"| {name}: {ramp_result['stopped']} ||||||||||||||||")
    lines += ["", "| kind | summary |", "|---|---|"]
    for kind, entry in results["summary"].items():
        if kind != "vs_janus":
            lines.append(f"| {kind} | {json.dumps(entry)} |")
    if "vs_janus" in results["summary"]:
        lines += ["", *janus_table(results["summary"]["vs_janus"])]
    for name, profile in results.get("profile", {}).items():
        lines += ["", f"Profile {name} ({profile['samples']} busy samples):", ""]
        lines += ["| self % | function |", "|---|---|"]
        lines += [f"| {share} | `{function}` |" for function, share in profile["self_pct"]]
    return "\n".join(lines)


def _k_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="K=1,10 for a few seconds each (smoke check)"
    )
    parser.add_argument("--window", type=float, default=None, help="seconds per measurement window")
    parser.add_argument("--max-k", type=int, default=200)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["sfu", "mediarelay"],
        choices=ENGINES,
        help="sfu: our node (sfu-uvloop: on uvloop); janus / janus-default: Janus 1.1.2 VideoRoom "
        "with two event loops "
        "/ a thread per handle (scripts/ensure-janus.sh installs it); mediarelay: aiortc's",
    )
    parser.add_argument("--ks", type=_k_list, help="the K values, e.g. 0,1,10,20,40")
    parser.add_argument(
        "--unpaced-ks", type=_k_list, help="the K values of the unpaced video pass ('' for none)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the engines this many times, interleaved"
    )
    parser.add_argument(
        "--feedback",
        choices=["browser", "none"],
        default="browser",
        help="subscribers send RTCP as a browser does (receiver reports, REMB, NACK, PLI) or "
        "nothing (the cheap load of earlier runs)",
    )
    parser.add_argument(
        "--profile", type=int, metavar="K", help="sample the server with py-spy at this K"
    )
    parser.add_argument(
        "--kinds", nargs="+", default=["video", "audio"], choices=["video", "audio"]
    )
    parser.add_argument(
        "--pacing",
        choices=["browser", "none"],
        default="browser",
        help="publisher pacing: browser = libwebrtc-like (2.5 x bitrate, 5 ms bursts), none = "
        "aiortc's whole-frame bursts (default browser; a full run adds an unpaced video pass)",
    )
    parser.add_argument("--markdown", metavar="JSON", help="print a results file as tables, exit")
    args = parser.parse_args()
    if args.markdown:
        results = json.loads(Path(args.markdown).read_text())
        results["summary"] = summarise(results)  # the current summary of the stored rows
        print(markdown(results))
        return
    if args.window is None:
        args.window = 3.0 if args.quick else 8.0
    workdir = Path(tempfile.mkdtemp(prefix="meet-bench-sfu-"))
    try:
        migrate = any(engine in NODE_VARIANTS for engine in args.engines)
        redis, socket_path = prepare_environment(workdir, migrate=migrate)
        if any(engine in JANUS_EVENT_LOOPS for engine in args.engines):
            subprocess.run(["bash", str(REPO / "scripts" / "ensure-janus.sh")], check=True)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        asyncio.run(run(args))
    finally:
        from meet import embedded_redis

        embedded_redis.stop(redis, socket_path)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
