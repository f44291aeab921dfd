"""Active speaker from the RFC 6464 audio level the browsers put on every audio packet.

Levels are -dBov (0 = loudest, 127 = silence). Each window (300 ms) the loudest producer whose
mean level is louder than SPEAKING_LEVEL is the speaker; none means silence. Only changes are
reported, so a room gets at most one event per window.
"""

from __future__ import annotations

SPEAKER_INTERVAL_SECONDS = 0.3
# Mean -dBov louder than this counts as speech (speech is typically -20..-50 dBov; browsers
# with noise suppression report 127 in silence).
SPEAKING_LEVEL = 60


class LevelWindow:
    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    def add(self, level: int) -> None:
        self.total += level
        self.count += 1

    def take_mean(self) -> float | None:
        if not self.count:
            return None
        mean = self.total / self.count
        self.total = 0
        self.count = 0
        return mean


def loudest(levels: dict[str, float | None]) -> str | None:
    """The key with the loudest (lowest) mean level under the speaking threshold, or None."""
    speaking = {key: level for key, level in levels.items() if level is not None}
    speaking = {key: level for key, level in speaking.items() if level < SPEAKING_LEVEL}
    if not speaking:
        return None
    return min(speaking, key=lambda key: speaking[key])
