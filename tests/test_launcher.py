"""`make run`'s launcher brings every process up and Ctrl-C takes every one of them down."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
# /healthz shows its detail (node names) only to staff or with this token.
HEALTHZ_TOKEN = "launcher-test-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[tuple[int, int], str]:
    """Every live process below `root`, keyed by (pid, start time) so reuse can't fool us."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))):
            children.setdefault(stat[1], []).append(int(entry.name))
    found: dict[tuple[int, int], str] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        stat = proc_stat(pid)
        if stat is None:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except FileNotFoundError:
            continue
        found[(pid, stat[2])] = cmd
        stack.extend(children.get(pid, []))
    return found


def still_alive(processes: dict[tuple[int, int], str]) -> list[str]:
    alive = []
    for (pid, started), cmd in processes.items():
        stat = proc_stat(pid)
        if stat is not None and stat[2] == started and stat[0] != "Z":
            alive.append(cmd)
    return alive


def launcher_env(var_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        MEET_VAR_DIR=str(var_dir),
        PORT=str(port),
        SFU_NODE_NAME=f"launcher-{port}",
        MEET_HEALTHZ_TOKEN=HEALTHZ_TOKEN,
    )
    return env


def health(port: int, token: str | None = HEALTHZ_TOKEN) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_health(port: int, runner: subprocess.Popen[bytes], timeout: float) -> dict:
    """The /healthz body once it is 200 (the launcher still running), else fail."""
    deadline = time.monotonic() + timeout
    status, body = 0, {}
    while time.monotonic() < deadline and runner.poll() is None:
        try:
            status, body = health(port)
        except (urllib.error.URLError, ConnectionError):
            status = 0
        if status == 200:
            return body
        time.sleep(0.25)
    raise AssertionError(f"/healthz not 200 within {timeout} s: {status} {body}")


@contextmanager
def launched(var_dir: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], list[bytes]]]:
    """`make run`'s launcher, SIGINTed on the way out; then no process it started may live.

    Yields the runner and a list that receives its output once it has stopped.
    """
    runner = subprocess.Popen(
        [sys.executable, "-m", "meet.launcher"],
        cwd=BASE_DIR,
        env=launcher_env(var_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output: list[bytes] = []
    started: dict[tuple[int, int], str] = {}
    try:
        yield runner, output
    finally:
        started = descendants(runner.pid)
        runner.send_signal(signal.SIGINT)  # what Ctrl-C sends to the runner
        try:
            output.append(runner.communicate(timeout=30)[0])
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
            raise
    deadline = time.monotonic() + 10
    while still_alive(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert still_alive(started) == [], output[0].decode()[-3000:]


@pytest.mark.slow
def test_launcher_serves_healthz_with_sfu_heartbeat_and_sigint_leaves_no_process(
    tmp_path: Path,
) -> None:
    port = free_port()
    var_dir = tmp_path / "var"
    with launched(var_dir, port) as (runner, output):
        body = wait_for_health(port, runner, timeout=90)
        assert [node["name"] for node in body["checks"]["sfu"]["nodes"]] == [f"launcher-{port}"]
        # Without the token: the status only, no node names.
        assert health(port, token=None) == (200, {"ok": True, "failing": []})
        assert (var_dir / "redis.sock").exists()
        running = list(descendants(runner.pid).values())
        assert any("redis-server" in cmd for cmd in running), running
        assert any("runsfu" in cmd for cmd in running), running
        assert any("celery" in cmd and "beat" in cmd for cmd in running), running
        assert any("celery" in cmd and "worker" in cmd for cmd in running), running
    assert b"meet is starting at http://localhost:" in output[0]


def find(processes: dict[tuple[int, int], str], *words: str) -> set[tuple[int, int]]:
    """The processes whose command line has every word: not the shells honcho runs them in,
    nor the supervisors, whose command lines hold the same words."""
    return {
        key
        for key, cmd in processes.items()
        if all(word in cmd for word in words)
        and "meet.supervise" not in cmd
        and Path(cmd.split()[0]).name not in {"sh", "bash", "dash"}
    }


@pytest.mark.slow
def test_a_killed_sfu_node_is_restarted_while_everything_else_keeps_running(
    tmp_path: Path,
) -> None:
    port = free_port()
    with launched(tmp_path / "var", port) as (runner, output):
        wait_for_health(port, runner, timeout=90)
        before = descendants(runner.pid)
        (sfu,) = find(before, "manage.py runsfu")
        others = {
            "worker": find(before, "celery", "worker"),
            "beat": find(before, "celery", "beat"),
            "redis": find(before, "redis-server"),
        }
        assert all(others.values()), before

        killed_at = dt.datetime.now(dt.UTC)
        os.kill(sfu[0], signal.SIGKILL)

        # The web answers throughout, and a new node process heartbeats under the same name.
        deadline = time.monotonic() + 15
        node: dict = {}
        while time.monotonic() < deadline:
            assert runner.poll() is None, "the launcher stopped"
            try:
                status, body = health(port)
            except (urllib.error.URLError, ConnectionError) as error:
                pytest.fail(f"the web stopped answering once the SFU node was killed: {error}")
            assert status in (200, 503), (status, body)
            nodes = body["checks"]["sfu"].get("nodes", [])
            if (
                status == 200
                and nodes
                and dt.datetime.fromisoformat(nodes[0]["started_at"]) > killed_at
            ):
                node = nodes[0]
                break
            time.sleep(0.25)
        assert node, f"no restarted SFU node within 15 s: {body}"
        assert node["name"] == f"launcher-{port}"
        assert dt.datetime.fromisoformat(node["last_heartbeat"]) > killed_at

        after = descendants(runner.pid)
        assert len(find(after, "manage.py runsfu") - {sfu}) == 1, after
        for name, processes in others.items():
            assert processes <= set(after), f"{name} was restarted: {processes} -> {after}"
    assert b"manage.py runsfu exited (signal SIGKILL); restart in 1 s" in output[0]


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DEBUG="false", MEET_VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    assert not (tmp_path / "secret_key").exists()


def test_development_secret_key_is_generated_once_into_var(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DEBUG="true", MEET_VAR_DIR=str(tmp_path))
    command = [sys.executable, "-c", "from django.conf import settings; print(settings.SECRET_KEY)"]
    env["DJANGO_SETTINGS_MODULE"] = "meet.settings"
    first = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    second = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert len(first.stdout.strip()) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
