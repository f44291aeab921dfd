"""The node's garbage-collection pauses: fewer objects to walk, and the slow ones logged.

A full collection walks every tracked object with the event loop held: every packet the node
forwards waits for it. A node holding a big meeting holds many objects (aiortc's per-m-line
state for every viewer's every slot), and in bench/renegotiation.py's process a full
collection took 0.26-0.34 s at 40 publishers and up to 1.1 s at 80. The watch times each
collection and logs one that held the loop SLOW_COLLECTION_MS or more, with its generation, so
an operator sees what a freeze in a big call was.

What the node holds from its start (Django, aiortc, PyAV and their modules: ≈ 134,000 tracked
objects, a full collection of them alone 52-82 ms on the development machine) lives as long
as the process: `freeze_start_up` moves it out of the collector's reach (gc.freeze, as
long-running Python servers do), so a collection walks only what the calls hold.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, Final

logger = logging.getLogger(__name__)

SLOW_COLLECTION_MS: Final = 100.0


def freeze_start_up() -> None:
    """Collect once, then keep everything alive now out of later collections' walk."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """The node stops (in a test process, another starts later): its start-up objects may be
    collected again."""
    gc.unfreeze()


class CollectionWatch:
    """Installed on the node's start (gc.callbacks), removed on its close."""

    def __init__(self) -> None:
        self.slow = 0
        self.longest_ms = 0.0
        self._started: float | None = None

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        held_ms = (time.perf_counter() - self._started) * 1000
        self._started = None
        if held_ms < SLOW_COLLECTION_MS:
            return
        self.slow += 1
        self.longest_ms = max(self.longest_ms, held_ms)
        # Not gc.get_objects() here: listing every object would hold the loop again.
        logger.warning(
            "garbage collection (generation %s) held the event loop %.0f ms (%s collected)",
            info.get("generation"),
            held_ms,
            info.get("collected"),
        )
