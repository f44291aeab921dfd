"""Audio for many: each viewer is sent the few loudest microphones, not every open one.

In a meeting of N with everyone's microphone open the node would forward N(N-1) audio streams,
almost all of them silence or room noise, and each browser would mix N-1 of them. Meet, Jitsi
(last-N audio) and LiveKit forward only the few people speaking; so does the node once a room
has more open microphones than SFU_AUDIBLE_SPEAKERS (3 by default; 0 forwards every one).

Every SELECTION_INTERVAL_SECONDS the router hands `AudibleSelection.update` each open
microphone's mean RFC 6464 level over that interval (-dBov: 0 loudest, 127 silence; None: no
packets). A microphone louder than SPEAKING_LEVEL is speaking. The audible set is, in order,
until the limit is reached: the speaking ones, loudest first (one already audible counts
STICKY_DB louder, so two voices at the boundary do not trade places every interval), then the
recently audible ones by how recently they last spoke, for HANGOVER_SECONDS (so the ends of
words and short pauses are not cut). A new speaker louder than the quietest audible one is let
in at the next interval: heard within 100-200 ms of starting to speak.

The packets of a microphone left out are not sent; each viewer's numbering skips them
(SendSlot.skip), so the viewer's jitter buffer sees a pause in the timestamps, as with a
browser's own discontinuous transmission, not lost packets.
"""

from __future__ import annotations

from typing import Final

from sfu.speaker import SPEAKING_LEVEL

SELECTION_INTERVAL_SECONDS: Final = 0.1
HANGOVER_SECONDS: Final = 1.0
STICKY_DB: Final = 6.0


class AudibleSelection:
    """Which of a room's open microphones its viewers are sent (at most `limit`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.audible: set[str] = set()
        self._last_spoke: dict[str, float] = {}

    def update(self, levels: dict[str, float | None], now: float) -> set[str]:
        """The audible set after an interval whose mean levels were `levels` (every open
        microphone, by producer id)."""
        for key in list(self._last_spoke):
            if key not in levels:
                del self._last_spoke[key]
        if self.limit <= 0 or len(levels) <= self.limit:
            self.audible = set(levels)
            return self.audible
        speaking = {
            key: level
            for key, level in levels.items()
            if level is not None and level < SPEAKING_LEVEL
        }
        for key in speaking:
            self._last_spoke[key] = now

        def loudness(key: str) -> float:
            bonus = STICKY_DB if key in self.audible else 0.0
            return -speaking[key] + bonus

        chosen = sorted(speaking, key=loudness, reverse=True)[: self.limit]
        if len(chosen) < self.limit:
            recent = [
                key
                for key, spoke in self._last_spoke.items()
                if key not in speaking and key in self.audible and now - spoke < HANGOVER_SECONDS
            ]
            recent.sort(key=lambda key: self._last_spoke[key], reverse=True)
            chosen.extend(recent[: self.limit - len(chosen)])
        self.audible = set(chosen)
        return self.audible
