"""The network lab's network: namespaces, veth links, rate limits and the delay line.

Topology (every address in 198.18.0.0/24, the benchmarking range; no default route anywhere,
so nothing can be routed out of the machine; IPv6 off in every namespace):

    server ns:  lo, br0 198.18.0.1/24  (daphne, the SFU node)
                 |-- sp1 ====== eth0 198.18.0.11   participant ns 1   (unshaped: one veth pair)
                 |-- sp2 == lb [link ns: wire] la == eth0 198.18.0.12   participant ns 2 (shaped)
                 ...

- A namespace is held by a `sleep` started with `unshare --net` (as tests/e2e/netns.py does),
  with PR_SET_PDEATHSIG=SIGKILL: when this process dies, however it dies, the holders die and
  the kernel removes the namespaces and every veth in them. Nothing is named in
  /var/run/netns, so `ip netns list` never shows the lab. Veths are created from inside the
  namespaces (`ip link add ... peer name ... netns PID`), so no interface of the lab ever
  exists in the host's namespace, even for a moment.
- Processes run in a namespace through `nsenter --net=/proc/<holder>/ns/net`, under
  `setpriv --pdeathsig KILL` for the long-lived ones.
- A shaped participant's link passes through a **link namespace** of its own holding two
  interfaces without addresses: `la` (veth to the participant's eth0) and `lb` (veth to the
  server's bridge port). There:
  - **rate + queue**: a `tbf` qdisc on `la`'s egress (downlink) and on `lb`'s egress
    (uplink): rate R, bucket max(3,200 B, 5 ms at R), queue limit max(3,000 B, queue_ms at
    R) bytes, tail drop. The queue is never on the sender's own interface, so neither
    Chromium's nor the SFU's socket sees it as local backpressure;
  - **delay, jitter, loss**: bench/netlab_wire.py, a user-space delay line on AF_PACKET
    sockets, since this kernel has no netem (see that file). When a link needs no delay,
    jitter or loss, the two interfaces are joined by a kernel bridge instead (no process).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WIRE = Path(__file__).with_name("netlab_wire.py")
SUBNET_PREFIX = "198.18.0."
SERVER_IP = SUBNET_PREFIX + "1"
PREFIX_LEN = 24
PR_SET_PDEATHSIG = 1
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the process that started it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def checksum_offload_off(device: str) -> None:
    """Make the kernel compute TX checksums in software on `device` (`ethtool -K DEV tx off`,
    without needing ethtool; TSO/GSO go with it, so no frame is larger than the MTU).

    Needed on both ends that send into a wire: a veth passes a locally built packet with its
    checksum still to be filled in (CHECKSUM_PARTIAL), which the stack at the other end trusts;
    the wire copies the frame's bytes, and the receiver of the copy would drop it as corrupt.
    """
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    request = struct.pack("16sP", device.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, request)


def participant_ip(index: int) -> str:
    return f"{SUBNET_PREFIX}{10 + index}"


@dataclass
class Direction:
    """One direction of a participant's link. None / 0: not shaped."""

    rate_kbit: int | None = None
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0

    @property
    def needs_wire(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.loss)

    def describe(self) -> str:
        parts = []
        if self.rate_kbit:
            parts.append(f"{self.rate_kbit} kbit/s")
        if self.delay_ms:
            parts.append(f"{self.delay_ms:g} ms")
        if self.jitter_ms:
            parts.append(f"±{self.jitter_ms:g} ms")
        if self.loss:
            parts.append(f"{self.loss * 100:g} % loss")
        return " ".join(parts) or "-"


@dataclass
class LinkShape:
    down: Direction = field(default_factory=Direction)  # server -> participant
    up: Direction = field(default_factory=Direction)  # participant -> server
    queue_ms: float = 80.0

    @property
    def shaped(self) -> bool:
        return any((d.rate_kbit or d.needs_wire) for d in (self.down, self.up))

    def describe(self) -> str:
        if not self.shaped:
            return "unshaped"
        return f"down {self.down.describe()} / up {self.up.describe()}"


def tbf_args(rate_kbit: int, queue_ms: float) -> list[str]:
    """tbf with a bucket of max(3,200 B, 5 ms at the rate) and a tail-drop queue that holds
    `queue_ms` at the rate (tbf's `latency`: limit = burst + rate x latency)."""
    burst = max(3200, int(rate_kbit * 1000 / 8 * 0.005))
    return ["tbf", "rate", f"{rate_kbit}kbit", "burst", str(burst), "latency", f"{queue_ms:g}ms"]


class Namespace:
    """A network namespace held by a sleeping process that dies with us."""

    def __init__(self, name: str, holder: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.holder = holder

    @classmethod
    def create(cls, name: str) -> Namespace:
        holder = subprocess.Popen(
            ["unshare", "--net", "--", "sleep", "infinity"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        namespace = cls(name, holder)
        ours = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while True:
            if holder.poll() is not None:
                raise RuntimeError(f"unshare --net failed for namespace {name}")
            with contextlib.suppress(OSError):
                if os.readlink(namespace.path) != ours:
                    break
            if time.monotonic() > deadline:
                namespace.close()
                raise RuntimeError(f"namespace {name} did not appear")
            time.sleep(0.01)
        namespace.run("ip", "link", "set", "lo", "up")
        for key in ("all", "default"):
            namespace.run("sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1")
        return namespace

    @property
    def pid(self) -> int:
        return self.holder.pid

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/net"

    @property
    def inode(self) -> str:
        return os.readlink(self.path)

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` inside this namespace, killed if this process dies."""
        return ["nsenter", f"--net={self.path}", "--", "setpriv", "--pdeathsig", "KILL", *argv]

    def run(self, *argv: str, check: bool = True) -> str:
        result = subprocess.run(
            ["nsenter", f"--net={self.path}", "--", *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)}: {result.stderr.strip()}")
        return result.stdout

    def close(self) -> None:
        if self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait(5)


@dataclass
class Link:
    index: int
    name: str
    shape: LinkShape
    participant: Namespace
    link_ns: Namespace | None = None
    wire: subprocess.Popen[bytes] | None = None
    wire_stats_path: Path | None = None

    @property
    def ip(self) -> str:
        return participant_ip(self.index)

    def set_rate(self, direction: str, rate_kbit: int | None) -> None:
        """Change a direction's rate mid-call (the queue and its packets stay)."""
        if self.link_ns is None:
            raise RuntimeError(f"{self.name}'s link is not shaped")
        device = "la" if direction == "down" else "lb"
        getattr(self.shape, direction).rate_kbit = rate_kbit
        if rate_kbit:
            self.link_ns.run(
                "tc", "qdisc", "replace", "dev", device, "root",
                *tbf_args(rate_kbit, self.shape.queue_ms),
            )  # fmt: skip
        else:
            self.link_ns.run("tc", "qdisc", "del", "dev", device, "root", check=False)

    def qdisc_stats(self) -> dict[str, Any]:
        """tbf counters per direction: sent bytes/packets, drops, overlimits, backlog."""
        result: dict[str, Any] = {}
        if self.link_ns is None:
            return result
        for direction, device in (("down", "la"), ("up", "lb")):
            out = self.link_ns.run("tc", "-s", "-j", "qdisc", "show", "dev", device, check=False)
            with contextlib.suppress(ValueError):
                for qdisc in json.loads(out or "[]"):
                    if qdisc.get("kind") == "tbf":
                        result[direction] = {
                            key: qdisc.get(key)
                            for key in ("bytes", "packets", "drops", "overlimits", "backlog")
                        }
        return result

    def wire_stats(self) -> dict[str, Any] | None:
        if self.wire_stats_path is None:
            return None
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self.wire_stats_path.read_text()))
        return None


class Lab:
    """The server namespace with its bridge, and the participants' links."""

    def __init__(self, work_dir: Path, seed: int | None = None) -> None:
        self.work_dir = work_dir
        self.seed = seed
        self.namespaces: list[Namespace] = []
        self.links: list[Link] = []
        self.server: Namespace | None = None

    def _namespace(self, name: str) -> Namespace:
        namespace = Namespace.create(name)
        self.namespaces.append(namespace)
        return namespace

    def start(self) -> None:
        self.server = self._namespace("server")
        run = self.server.run
        run("ip", "link", "add", "br0", "type", "bridge")
        run("ip", "addr", "add", f"{SERVER_IP}/{PREFIX_LEN}", "dev", "br0")
        run("ip", "link", "set", "br0", "up")

    def add_participant(self, index: int, name: str, shape: LinkShape) -> Link:
        assert self.server is not None
        participant = self._namespace(f"participant-{index}")
        port = f"sp{index}"
        link = Link(index=index, name=name, shape=shape, participant=participant)
        if not shape.shaped:
            self.server.run(
                "ip", "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", str(participant.pid),
            )  # fmt: skip
        else:
            link_ns = self._namespace(f"link-{index}")
            link.link_ns = link_ns
            self.server.run(
                "ip", "link", "add", port, "type", "veth",
                "peer", "name", "lb", "netns", str(link_ns.pid),
            )  # fmt: skip
            link_ns.run(
                "ip", "link", "add", "la", "type", "veth",
                "peer", "name", "eth0", "netns", str(participant.pid),
            )  # fmt: skip
            for device in ("la", "lb"):
                link_ns.run("ip", "link", "set", device, "promisc", "on", "up")
            for direction in ("down", "up"):
                rate = getattr(shape, direction).rate_kbit
                if rate:
                    link.set_rate(direction, rate)
            if shape.down.needs_wire or shape.up.needs_wire:
                self._start_wire(link)
            else:
                link_ns.run("ip", "link", "add", "lbr", "type", "bridge")
                link_ns.run("ip", "link", "set", "la", "master", "lbr")
                link_ns.run("ip", "link", "set", "lb", "master", "lbr")
                link_ns.run("ip", "link", "set", "lbr", "up")
        if link.wire is not None:
            self.server.run(sys.executable, str(Path(__file__)), "checksum-offload-off", port)
            participant.run(sys.executable, str(Path(__file__)), "checksum-offload-off", "eth0")
        self.server.run("ip", "link", "set", port, "master", "br0")
        self.server.run("ip", "link", "set", port, "up")
        participant.run("ip", "addr", "add", f"{link.ip}/{PREFIX_LEN}", "dev", "eth0")
        participant.run("ip", "link", "set", "eth0", "up")
        self.links.append(link)
        return link

    def _start_wire(self, link: Link) -> None:
        assert link.link_ns is not None
        link.wire_stats_path = self.work_dir / f"wire-{link.index}.json"
        down, up = link.shape.down, link.shape.up
        argv = [
            sys.executable, str(WIRE), "--outer", "la", "--inner", "lb",
            "--down", f"{down.delay_ms},{down.jitter_ms},{down.loss}",
            "--up", f"{up.delay_ms},{up.jitter_ms},{up.loss}",
            "--stats", str(link.wire_stats_path),
        ]  # fmt: skip
        if self.seed is not None:
            argv += ["--seed", str(self.seed + link.index)]
        link.wire = subprocess.Popen(
            link.link_ns.wrap(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert link.wire.stdout is not None
        line = link.wire.stdout.readline()
        if line.strip() != b"ready":
            rest = link.wire.stdout.read().decode(errors="replace") if link.wire.poll() else ""
            raise RuntimeError(f"the wire of {link.name} did not start: {line!r} {rest}")

    def wait_reachable(self, timeout: float = 10) -> None:
        """Every participant reaches the server (ARP + one TCP connect attempt's SYN/RST)."""
        assert self.server is not None
        deadline = time.monotonic() + timeout
        for link in self.links:
            while True:
                # bash's /dev/tcp to a closed port: "Connection refused" proves the path works.
                probe = subprocess.run(
                    ["nsenter", f"--net={link.participant.path}", "--", "bash", "-c",
                     f"exec 3<>/dev/tcp/{SERVER_IP}/9"],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if "refused" in probe.stderr or probe.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{link.name} cannot reach {SERVER_IP}: {probe.stderr}")
                time.sleep(0.1)

    def close(self) -> None:
        for link in self.links:
            if link.wire is not None and link.wire.poll() is None:
                link.wire.terminate()
                try:
                    link.wire.wait(5)
                except subprocess.TimeoutExpired:
                    link.wire.kill()
                    link.wire.wait(5)
        for namespace in reversed(self.namespaces):
            namespace.close()
        self.namespaces.clear()


# --- CPU and load ---------------------------------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_ticks(pid: int) -> int | None:
    """utime + stime of one process, in clock ticks (None if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def pids_in_namespace(inode: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "ns" / "net") == inode:
                pids.append(int(entry.name))
    return pids


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


class CpuMeter:
    """CPU % of one core per group of processes over a window, plus the machine's busy %.

    Groups are either a fixed pid or "every process in a network namespace" (all of a
    participant's Chromium processes: browser, renderers, GPU, network and audio services).
    Processes that start or end within the window are counted for the part they lived.
    """

    def __init__(self) -> None:
        # name -> (kind, pid, namespace inode, excluded pids); kind: pid | ns | tree
        self.groups: dict[str, tuple[str, int, str, set[int]]] = {}
        self._start: dict[str, dict[int, int]] = {}
        self._t0 = 0.0
        self._machine0 = (0, 0)

    def add_pid(self, name: str, pid: int) -> None:
        self.groups[name] = ("pid", pid, "", set())

    def add_namespace(self, name: str, inode: str, exclude: set[int] | None = None) -> None:
        self.groups[name] = ("ns", 0, inode, exclude or set())

    def add_tree(self, name: str, root: int) -> None:
        """`root` and its descendants that share its network namespace (this process, its
        embedded Redis and Playwright's driver; not the servers or browsers in the lab's
        namespaces)."""
        self.groups[name] = ("tree", root, "", set())

    def _pids(self, kind: str, pid: int, inode: str, exclude: set[int]) -> list[int]:
        if kind == "pid":
            return [pid]
        if kind == "tree":
            return _tree_in_namespace(pid)
        return [p for p in pids_in_namespace(inode) if p not in exclude]

    def _sample(self) -> dict[str, dict[int, int]]:
        sample: dict[str, dict[int, int]] = {}
        for name, group in self.groups.items():
            ticks = {}
            for pid in self._pids(*group):
                value = process_ticks(pid)
                if value is not None:
                    ticks[pid] = value
            sample[name] = ticks
        return sample

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._machine0 = machine_ticks()
        self._start = self._sample()

    def stop(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self._t0
        end = self._sample()
        busy1, total1 = machine_ticks()
        busy0, total0 = self._machine0
        result: dict[str, Any] = {
            "window_s": round(elapsed, 2),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "machine_busy_pct": round(100 * (busy1 - busy0) / max(1, total1 - total0), 1),
            "cpus": os.cpu_count(),
            "processes_pct_of_core": {},
        }
        for name, ticks in end.items():
            before = self._start.get(name, {})
            used = sum(value - before.get(pid, 0) for pid, value in ticks.items())
            result["processes_pct_of_core"][name] = round(
                100 * used / CLOCK_TICKS / max(elapsed, 1e-6), 1
            )
        # Whatever else kept the machine busy (other people's test runs on a shared machine).
        ours = sum(result["processes_pct_of_core"].values())
        cpus = os.cpu_count() or 1
        result["others_pct_of_core"] = round(max(0.0, result["machine_busy_pct"] * cpus - ours), 1)
        return result


def _tree_in_namespace(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    try:
        inode = os.readlink(f"/proc/{root}/ns/net")
    except OSError:
        return []
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/ns/net") == inode:
                found.append(pid)
        stack.extend(children.get(pid, []))
    return found


if __name__ == "__main__":
    # Run inside a namespace by Lab: `python netlab_net.py checksum-offload-off DEV...`.
    if len(sys.argv) >= 3 and sys.argv[1] == "checksum-offload-off":
        for device in sys.argv[2:]:
            checksum_offload_off(device)
    else:
        raise SystemExit(__doc__)
