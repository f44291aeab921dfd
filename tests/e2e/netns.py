"""A loopback-only network namespace for the browser tests and the join benchmark.

Chromium offers ICE candidates on every interface it finds and keeps checking from all of
them, so on a machine with any address besides 127.0.0.1 some media would travel to that
address. Inside a namespace whose only interface is `lo`, nothing can: Chromium, daphne and the
SFU node all run there (nsenter), and the test process talks to Chromium over Playwright's
pipes and to the others through the shared database and Redis.

TCP services on the host's 127.0.0.1 (PostgreSQL, a system Redis) are bridged in through a
unix socket, at the same port number, so URLs stay as they are. Unix-socket services (the
embedded Redis, SQLite files) need nothing: only the network is separate.

Needs root (unshare/nsenter). `LoopbackNamespace.create()` returns None where that is not
possible; callers then run on the host network and say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from tests.e2e.stack import REPO

RELAY = Path(__file__).with_name("tcp_unix_relay.py")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "postgres": 5432, "postgresql": 5432}


class LoopbackNamespace:
    def __init__(self, holder: subprocess.Popen[bytes]) -> None:
        self.holder = holder
        self.bridges: list[subprocess.Popen[bytes]] = []
        self.socket_paths: list[Path] = []

    @classmethod
    def create(cls) -> LoopbackNamespace | None:
        if os.environ.get("MEET_E2E_HOST_NETWORK") == "1":
            return None
        if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
            return None
        holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        namespace = cls(holder)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if holder.poll() is not None:
                return None
            probe = subprocess.run(
                namespace.wrap(["ip", "-o", "addr", "show", "dev", "lo"]),
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0 and "127.0.0.1" in probe.stdout:
                return namespace
            time.sleep(0.05)
        namespace.close()
        return None

    @property
    def path(self) -> str:
        return f"/proc/{self.holder.pid}/ns/net"

    def wrap(self, argv: list[str]) -> list[str]:
        """The command line that runs `argv` inside the namespace."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def bridge_services(self, *urls: str) -> None:
        """Make host TCP services on 127.0.0.1 reachable at the same address inside."""
        for url in urls:
            parsed = urlparse(url)
            if parsed.hostname not in LOCAL_HOSTS:
                continue
            port = parsed.port or DEFAULT_PORTS.get(parsed.scheme)
            if port is None:
                continue
            socket_path = REPO / "var" / f"e2e-bridge-{os.getpid()}-{port}.sock"
            socket_path.unlink(missing_ok=True)
            self.socket_paths.append(socket_path)
            outside = [sys.executable, str(RELAY), "unix-to-tcp", str(socket_path), "127.0.0.1"]
            inside = [sys.executable, str(RELAY), "tcp-to-unix", "127.0.0.1", str(port)]
            self._start_relay([*outside, str(port)])
            self._start_relay(self.wrap([*inside, str(socket_path)]))

    def _start_relay(self, argv: list[str]) -> None:
        relay = subprocess.Popen(argv, stdout=subprocess.PIPE)
        self.bridges.append(relay)
        assert relay.stdout is not None
        if relay.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"relay did not start: {argv}")

    def close(self) -> None:
        for process in [*self.bridges, self.holder]:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.bridges.clear()
        for path in self.socket_paths:
            path.unlink(missing_ok=True)
        self.socket_paths.clear()
