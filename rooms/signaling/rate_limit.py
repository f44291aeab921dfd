"""A token bucket per connection: the flood guard in front of every client frame."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second up to `burst`; each frame takes one.

    A client that keeps sending with an empty bucket is refused frame by frame; `overdrawn`
    counts those refusals since the bucket last had a token, so the caller can close a
    connection that ignores the errors instead of answering it forever.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self.overdrawn = 0

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.overdrawn = 0
            return True
        self.overdrawn += 1
        return False
