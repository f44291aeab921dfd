"""meet.supervise restarts a process that exits, with backoff, and stops on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from meet.supervise import Backoff

BASE_DIR = Path(__file__).resolve().parent.parent


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@contextmanager
def supervised(*command: str, delay: float = 0.05) -> Iterator[subprocess.Popen[bytes]]:
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "meet.supervise", "--initial-delay", str(delay), "--", *command],
        cwd=BASE_DIR,
        start_new_session=True,  # its own group, so a failed test can kill all of it
    )
    try:
        yield supervisor
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()


def test_backoff_doubles_up_to_the_maximum_and_resets_after_a_long_run() -> None:
    backoff = Backoff(initial=1, maximum=30, reset_after=60)
    assert [backoff.after_run(0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.after_run(61) == 1
    assert backoff.after_run(0.5) == 2


def test_a_command_that_exits_is_started_again_until_told_to_stop(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    # Waits of 0.3, 0.6 and 1.2 s between starts: the stop below lands in the third.
    with supervised("sh", "-c", f"echo $$ >> {starts}; exit 3", delay=0.3) as supervisor:
        wait_until(lambda: len(lines(starts)) >= 3)
        assert supervisor.poll() is None
        # The third run has ended (its pid is gone, reaped): the supervisor is waiting.
        third = int(lines(starts)[2])
        wait_until(lambda: not Path(f"/proc/{third}").exists())
        # Told to stop while waiting to restart: it exits at once, with no further start.
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=5) == 0
        count = len(lines(starts))
    assert len(lines(starts)) == count


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_is_passed_to_the_child_and_nothing_restarts(
    tmp_path: Path, signum: signal.Signals
) -> None:
    pids = tmp_path / "pids"
    # The child records its pid and then sleeps; only a signal from the supervisor ends it.
    child = f"echo $$ >> {pids}; exec sleep 60"
    with supervised("sh", "-c", child, delay=5) as supervisor:
        wait_until(lambda: len(lines(pids)) == 1)
        (pid,) = map(int, lines(pids))
        started = time.monotonic()
        supervisor.send_signal(signum)  # to the supervisor alone, not its process group
        assert supervisor.wait(timeout=5) == 0
        assert time.monotonic() - started < 2
        wait_until(lambda: not alive(pid), timeout=2)
    assert lines(pids) == [str(pid)]


def test_a_killed_child_is_restarted_as_a_new_process(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    with supervised("sh", "-c", f"echo $$ >> {pids}; exec sleep 60") as supervisor:
        wait_until(lambda: len(lines(pids)) == 1)
        os.kill(int(lines(pids)[0]), signal.SIGKILL)
        wait_until(lambda: len(lines(pids)) == 2)
        first, second = lines(pids)
        assert first != second
        assert alive(int(second))
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=5) == 0
