"""Real processes for the browser tests and the join benchmark: daphne and one SFU node.

Both run as subprocesses against the same database and Redis (channel-layer prefix included) as
the process that starts them, so what the test creates through the ORM is what they see.
Media stays on 127.0.0.1: the SFU gathers only there (SFU_LISTEN_IPS) and no ICE servers are
configured (SFU_ICE_SERVERS empty).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LOG_DIR = REPO / "var" / "e2e-logs"
SCREENSHOT_DIR = REPO / "var" / "screenshots"

CHROMIUM = os.environ.get("MEET_CHROMIUM", "/usr/bin/chromium")
# Flags from shared/research/browser-e2e.md: no background traffic, fake devices that need no
# prompt (getDisplayMedia picks the whole screen), media allowed on loopback (Chromium ignores
# 127.0.0.1 for WebRTC without it).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--auto-select-desktop-capture-source=Entire screen",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(settings_dict: dict[str, object]) -> str:
    """DATABASE_URL (django-environ syntax) for the database Django is connected to now."""
    engine = str(settings_dict["ENGINE"])
    name = str(settings_dict["NAME"])
    if engine.endswith("sqlite3"):
        return f"sqlite:///{name}"
    if engine.endswith("postgresql"):
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{credentials}{host}:{port}/{name}"
    raise RuntimeError(f"no DATABASE_URL form for {engine}")


def child_env(db_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "SFU_LISTEN_IPS": "127.0.0.1",
            "SFU_ICE_SERVERS": "",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # REDIS_URL and CHANNEL_LAYER_PREFIX are inherited: one channel layer for everybody.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(extra)
    return env


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


Wrap = Callable[[list[str]], list[str]]


def no_wrap(argv: list[str]) -> list[str]:
    return argv


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    # Turns a command line into one that runs in the test network (LoopbackNamespace.wrap).
    wrap: Wrap = no_wrap
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.wrap(self.args),
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Daphne(ManagedProcess):
    def __init__(
        self, env: dict[str, str], log_path: Path, *, wrap: Wrap = no_wrap, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        super().__init__(
            "daphne",
            [
                str(VENV_BIN / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "meet.asgi:application",
            ],
            env,
            log_path,
            wrap,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()

        def listening() -> bool:
            if not self.alive():
                raise RuntimeError(f"daphne exited:\n{self.log_tail()}")
            # Probe from the network daphne runs in (bash's /dev/tcp: no extra tools needed).
            probe = f"exec 3<>/dev/tcp/127.0.0.1/{self.port}"
            return (
                subprocess.run(self.wrap(["bash", "-c", probe]), capture_output=True).returncode
                == 0
            )

        wait_until(listening, 30, "daphne to listen")


class SfuNodeProcess(ManagedProcess):
    def __init__(
        self, env: dict[str, str], log_path: Path, node_name: str, *, wrap: Wrap = no_wrap
    ) -> None:
        self.node_name = node_name
        super().__init__(
            "sfu",
            [str(VENV_BIN / "python"), "manage.py", "runsfu", "--node", node_name],
            env,
            log_path,
            wrap,
        )

    def start(self, is_live: Callable[[str], bool]) -> None:
        super().start()

        def registered() -> bool:
            if not self.alive():
                raise RuntimeError(f"SFU node exited:\n{self.log_tail()}")
            return is_live(self.node_name)

        wait_until(registered, 30, f"SFU node {self.node_name} to register")


def launch_chromium(playwright: Any, namespace: Any = None) -> Any:
    """Debian's Chromium with the test flags; inside `namespace` (a LoopbackNamespace) if given."""
    if namespace is None:
        return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    return playwright.chromium.launch(
        executable_path=str(Path(__file__).with_name("chromium-in-netns.sh")),
        args=CHROMIUM_ARGS,
        env={**os.environ, "MEET_E2E_NETNS": namespace.path, "MEET_E2E_CHROMIUM": CHROMIUM},
    )


def session_cookie(user: Any, base_url: str) -> dict[str, Any]:
    """A signed-in session for `user`, as a Playwright cookie for `base_url`."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": session.session_key,
        "url": base_url,
        "httpOnly": True,
    }


def create_meeting(host: Any) -> str:
    """A live meeting hosted by `host` (the "New meeting" button's domain call); its link's path.

    Instant meetings let any signed-in user in, so the other participants need no invitation.
    """
    from django.urls import reverse

    from rooms.services import create_instant_meeting

    meeting = create_instant_meeting(host)
    return reverse("rooms:join", kwargs={"code": meeting.code})
