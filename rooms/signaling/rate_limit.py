"""A token bucket per connection: the flood guard in front of every client frame."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens a second up to `burst`; each frame takes one.

    A client that keeps sending with an empty bucket is refused frame by frame; `overdrawn`
    counts those refusals since the bucket was last full, so the caller can close a connection
    that ignores the errors instead of answering it forever. Since the bucket was last *full*,
    not since it last had a token: a flood above the rate gets a token now and then as they
    trickle in, and its refusals must still add up; a client is forgiven once it has stayed
    under the rate long enough for the bucket to fill again.
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
        if self._tokens >= self.burst:
            self.overdrawn = 0
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.overdrawn += 1
        return False
