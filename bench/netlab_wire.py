"""The network lab's delay line: a user-space "wire" between two veth ends (bench/netlab.py).

    python bench/netlab_wire.py --outer lA --inner lB --stats PATH \\
        [--down DELAY_MS,JITTER_MS,LOSS] [--up DELAY_MS,JITTER_MS,LOSS] [--seed N]

Runs inside a link namespace of its own that holds only the two interfaces (no address, no
forwarding), so the kernel never handles the frames itself: every Ethernet frame that arrives
on `inner` (from the server's bridge) leaves on `outer` (toward the participant) after the
downlink delay, and every frame from `outer` leaves on `inner` after the uplink delay. ARP
passes through like everything else, so the two ends see each other as on one cable.

Why user space: this kernel has no `netem` qdisc (tc answers "Specified qdisc kind is
unknown"), and the machine has no iptables/nft binaries for NFQUEUE; AF_PACKET sockets need
nothing beyond the kernel and Python.

Per direction:
- **delay**: each frame leaves `delay_ms` after it arrived;
- **jitter**: plus a uniform random amount in [-jitter_ms, +jitter_ms] (the total never below
  zero), **without reordering**: a frame never leaves before the one ahead of it in the same
  direction (like netem with a rate, or a real path), so jitter bunches frames rather than
  swapping them;
- **loss**: each frame is dropped with probability `loss` (independent, Bernoulli), here,
  before the rate limit's queue (the tc qdisc on the interface the frame leaves by).
The rate limit and its queue are not here: they are a `tbf` qdisc on the egress of `outer`
(downlink) and `inner` (uplink), set by netlab_net.py; frames written by this process go
through it like any other frame (packet sockets pass the qdisc).

The process asks for SCHED_FIFO priority 1 (falls back to nice -10) so that the wire keeps its
timing while Chromium keeps both cores busy; how late it sent frames anyway is in its stats
(`late_ms_*`). Stats (JSON) are rewritten to --stats once a second and at exit (SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
SOCKET_BUFFER = 4 * 1024 * 1024


@dataclass
class Direction:
    name: str
    delay_s: float
    jitter_s: float
    loss: float
    source: socket.socket
    target: socket.socket
    rng: random.Random
    queue: collections.deque[tuple[float, bytes]] = field(default_factory=collections.deque)
    last_release: float = 0.0
    frames_in: int = 0
    bytes_in: int = 0
    lost: int = 0
    sent: int = 0
    bytes_sent: int = 0
    send_errors: int = 0
    late_sum_s: float = 0.0
    late_max_s: float = 0.0
    late_over_2ms: int = 0
    late_over_10ms: int = 0

    def receive(self, frame: bytes, now: float) -> None:
        self.frames_in += 1
        self.bytes_in += len(frame)
        if self.loss and self.rng.random() < self.loss:
            self.lost += 1
            return
        wait = self.delay_s
        if self.jitter_s:
            wait = max(0.0, wait + self.rng.uniform(-self.jitter_s, self.jitter_s))
        release = max(now + wait, self.last_release)
        self.last_release = release
        self.queue.append((release, frame))

    def release_due(self, now: float) -> None:
        queue = self.queue
        while queue and queue[0][0] <= now:
            release, frame = queue.popleft()
            try:
                self.target.send(frame)
            except OSError:  # ENOBUFS: the tbf queue behind it is full and dropped the frame
                self.send_errors += 1
                continue
            self.sent += 1
            self.bytes_sent += len(frame)
            late = now - release
            self.late_sum_s += late
            self.late_max_s = max(self.late_max_s, late)
            if late > 0.002:
                self.late_over_2ms += 1
            if late > 0.010:
                self.late_over_10ms += 1

    def stats(self) -> dict[str, Any]:
        return {
            "delay_ms": self.delay_s * 1000,
            "jitter_ms": self.jitter_s * 1000,
            "loss": self.loss,
            "frames_in": self.frames_in,
            "bytes_in": self.bytes_in,
            "lost": self.lost,
            "sent": self.sent,
            "bytes_sent": self.bytes_sent,
            "send_errors": self.send_errors,
            "in_flight": len(self.queue),
            "late_ms_mean": round(1000 * self.late_sum_s / self.sent, 3) if self.sent else None,
            "late_ms_max": round(1000 * self.late_max_s, 3),
            "late_over_2ms": self.late_over_2ms,
            "late_over_10ms": self.late_over_10ms,
        }


def open_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    with contextlib.suppress(OSError):  # Linux >= 4.20; otherwise filtered by pkttype below
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.bind((interface, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def kernel_drops(sock: socket.socket) -> int:
    """Frames the kernel dropped because this socket's receive buffer was full (since the
    last call)."""
    with contextlib.suppress(OSError):
        raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        return int.from_bytes(raw[4:8], "little")
    return 0


def parse_direction(text: str) -> tuple[float, float, float]:
    delay_ms, jitter_ms, loss = (float(x) for x in text.split(","))
    if delay_ms < 0 or jitter_ms < 0 or not 0 <= loss < 1:
        raise argparse.ArgumentTypeError(f"bad direction {text!r}")
    return delay_ms / 1000, jitter_ms / 1000, loss


def raise_priority() -> str:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        return "SCHED_FIFO 1"
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            os.nice(-10)
        return f"nice {os.nice(0)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outer", required=True, help="interface toward the participant")
    parser.add_argument("--inner", required=True, help="interface toward the server")
    parser.add_argument("--down", type=parse_direction, default=(0.0, 0.0, 0.0))
    parser.add_argument("--up", type=parse_direction, default=(0.0, 0.0, 0.0))
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()

    outer = open_socket(args.outer)
    inner = open_socket(args.inner)
    rng = random.Random(args.seed)
    (down_delay, down_jitter, down_loss), (up_delay, up_jitter, up_loss) = args.down, args.up
    down = Direction("down", down_delay, down_jitter, down_loss, inner, outer, rng)
    up = Direction("up", up_delay, up_jitter, up_loss, outer, inner, rng)
    by_fd = {inner.fileno(): down, outer.fileno(): up}
    priority = raise_priority()
    dropped_by_kernel = {"down": 0, "up": 0}

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def write_stats() -> None:
        for direction in (down, up):
            dropped_by_kernel[direction.name] += kernel_drops(direction.source)
        data = {
            "pid": os.getpid(),
            "priority": priority,
            "at": time.time(),
            "down": {**down.stats(), "socket_drops": dropped_by_kernel["down"]},
            "up": {**up.stats(), "socket_drops": dropped_by_kernel["up"]},
        }
        tmp = args.stats.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(args.stats)

    poller = select.epoll()
    poller.register(inner.fileno(), select.EPOLLIN)
    poller.register(outer.fileno(), select.EPOLLIN)
    next_stats = time.monotonic()
    print("ready", flush=True)
    while not stopping:
        now = time.monotonic()
        heads = [d.queue[0][0] for d in (down, up) if d.queue]
        wake = min([next_stats, *heads])
        try:
            events = poller.poll(max(0.0, wake - now))
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd, _ in events:
            direction = by_fd[fd]
            source = direction.source
            while True:
                try:
                    frame, address = source.recvfrom(65536)
                except BlockingIOError:
                    break
                except InterruptedError:
                    continue
                if address[2] == PACKET_OUTGOING:
                    continue
                direction.receive(frame, now)
        now = time.monotonic()
        down.release_due(now)
        up.release_due(now)
        if now >= next_stats:
            write_stats()
            next_stats = now + 1.0
    write_stats()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
