"""`python -m meet.supervise [options] -- COMMAND...`: keep one process running.

honcho (the runner of `make run`) stops every process as soon as one exits, so a crashed SFU
node or Celery worker would take the web and everything else down with it. Wrapped in this
supervisor, a process that exits on its own is started again after a delay that doubles on
each quick failure (1 s up to 30 s: a process that crashes at start-up doesn't spin), and that
starts again from the beginning once it has stayed up a while.

SIGINT or SIGTERM to the supervisor means stop: it is passed on to the child, nothing is
restarted any more, and the supervisor exits once the child has. honcho signals the whole
process group, which the child shares, so the child sees the signal twice; Celery and the SFU
node treat a repeated stop signal as the same stop. Sharing the group also means honcho's final
SIGKILL reaches the child should the supervisor itself be killed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def log(message: str) -> None:
    print(f"supervise[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


class Backoff:
    """The delay before the next start: doubled on each quick exit, reset after a long run."""

    def __init__(self, initial: float, maximum: float, reset_after: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.reset_after = reset_after
        self.current = initial

    def after_run(self, ran_for: float) -> float:
        if ran_for >= self.reset_after:
            self.current = self.initial
        delay = self.current
        self.current = min(self.current * 2, self.maximum)
        return delay


class Supervisor:
    def __init__(
        self,
        command: Sequence[str],
        backoff: Backoff,
        spawn: Callable[[Sequence[str]], subprocess.Popen[bytes]] = subprocess.Popen,
    ) -> None:
        self.command = list(command)
        self.backoff = backoff
        self.spawn = spawn
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_signal: int | None = None
        # The handlers write here (signal.set_wakeup_fd), so a backoff wait ends at once on a
        # stop; a flag alone would not end it (PEP 475 resumes an interrupted sleep).
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum
        if self.child is not None:
            # send_signal skips a child already reaped, so a reused pid is never hit.
            self.child.send_signal(signum)

    def _wait(self, seconds: float) -> None:
        """Sleep, cut short by a stop signal."""
        deadline = time.monotonic() + seconds
        while self.stop_signal is None and (left := deadline - time.monotonic()) > 0:
            select.select([self._wake_r], [], [], left)
            with contextlib.suppress(BlockingIOError):  # woken by the timeout, not a signal
                os.read(self._wake_r, 512)

    def run(self) -> int:
        os.set_blocking(self._wake_r, False)
        signal.set_wakeup_fd(self._wake_w)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop_signal)
        returncode = 0
        while self.stop_signal is None:
            started = time.monotonic()
            try:
                self.child = self.spawn(self.command)
            except OSError as exc:
                log(f"cannot start {self.command[0]}: {exc}")
                returncode = 127
            else:
                # A stop that came while the child was being started found no child to pass to.
                if self.stop_signal is not None:
                    self.child.send_signal(self.stop_signal)
                returncode = self.child.wait()
            if self.stop_signal is not None:
                break
            delay = self.backoff.after_run(time.monotonic() - started)
            log(f"{' '.join(self.command)} exited ({describe(returncode)}); restart in {delay:g} s")
            self._wait(delay)
            returncode = 0  # a stop now finds no child: nothing failed while stopping
        # Stopped on request: a child ended by the signal passed on to it stopped as asked;
        # one that failed while stopping passes its status on.
        return 0 if returncode < 0 else returncode


def describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:  # a real-time signal has no name
            return f"signal {-returncode}"
    return f"status {returncode}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m meet.supervise", description="Run COMMAND, restarting it when it exits."
    )
    parser.add_argument("--initial-delay", type=float, default=1.0, help="seconds (1)")
    parser.add_argument("--max-delay", type=float, default=30.0, help="seconds (30)")
    parser.add_argument(
        "--reset-after",
        type=float,
        default=60.0,
        help="seconds up after which the delay starts again from the initial one (60)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("a command is required after --")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    backoff = Backoff(args.initial_delay, args.max_delay, args.reset_after)
    return Supervisor(args.command, backoff).run()


if __name__ == "__main__":
    sys.exit(main())
