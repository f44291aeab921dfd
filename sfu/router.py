"""Router: one room on this node, its peers and its active-speaker watch.

The engine creates a router on a room's first `join` and closes it when the last peer has
left. A joining peer consumes every producer already in the room; a new producer is consumed
by every other peer. While the room has audio, the router names the loudest peer every
SPEAKER_INTERVAL_SECONDS (`activeSpeaker`, on change only), and every
SELECTION_INTERVAL_SECONDS which microphones its viewers are sent (sfu/audible.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sfu.app_settings import app_settings
from sfu.audible import SELECTION_INTERVAL_SECONDS, AudibleSelection
from sfu.peer import Peer
from sfu.producer import Producer
from sfu.speaker import SPEAKER_INTERVAL_SECONDS, loudest

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Send a message to a Channels channel name (the node's channel layer)."""


class Router:
    """A room: its peers, their producers and consumers, and who is speaking."""

    def __init__(self, room: str, emit: Emit) -> None:
        self.room = room
        self.emit = emit
        self.peers: dict[str, Peer] = {}
        self.active_speaker: str | None = None
        self.closed = False
        self.created_at = time.monotonic()
        self._speaker_task: asyncio.Task[None] | None = None
        self._audible_task: asyncio.Task[None] | None = None

    def producers(self) -> list[Producer]:
        return [p for peer in self.peers.values() for p in peer.producers.values()]

    def add_peer(self, peer_id: str, channel: str, display_name: str) -> Peer:
        """A new peer, with a consumer for every producer already in the room."""
        peer = Peer(self, peer_id, channel, display_name)
        self.peers[peer_id] = peer
        for other in list(self.peers.values()):
            if other is peer:
                continue
            for producer in other.producers.values():
                peer.add_consumer(producer)
        peer.receive.schedule()
        return peer

    def producer_added(self, producer: Producer) -> None:
        """Every other peer consumes the new producer; audio starts the speaker watch."""
        for other in self.peers.values():
            if other is not producer.peer and not other.closed:
                other.add_consumer(producer)
                other.receive.schedule()
        if producer.kind == "audio" and (self._speaker_task is None or self._speaker_task.done()):
            self._speaker_task = asyncio.create_task(self._watch_speaker())
        limit = app_settings.AUDIBLE_SPEAKERS
        if (
            producer.kind == "audio"
            and limit > 0
            and (self._audible_task is None or self._audible_task.done())
        ):
            self._audible_task = asyncio.create_task(self._select_audible(limit))

    async def _watch_speaker(self) -> None:
        while not self.closed:
            await asyncio.sleep(SPEAKER_INTERVAL_SECONDS)
            levels = {
                p.peer.id: (None if p.paused else p.levels.take_mean())
                for p in self.producers()
                if p.kind == "audio"
            }
            speaker = loudest(levels)
            if speaker != self.active_speaker:
                self.active_speaker = speaker
                for peer in list(self.peers.values()):
                    await peer.notify("activeSpeaker", {"peer_id": speaker})

    async def _select_audible(self, limit: int) -> None:
        selection = AudibleSelection(limit)
        while not self.closed:
            await asyncio.sleep(SELECTION_INTERVAL_SECONDS)
            microphones = [p for p in self.producers() if p.kind == "audio" and not p.paused]
            levels = {p.id: p.recent_levels.take_mean() for p in microphones}
            audible = selection.update(levels, time.monotonic())
            for producer in microphones:
                producer.audible = producer.id in audible

    def close(self) -> None:
        """The last peer left (peers close themselves): stop the speaker watch and the
        audible selection."""
        self.closed = True
        for task in (self._speaker_task, self._audible_task):
            if task is not None:
                task.cancel()
        self._speaker_task = self._audible_task = None
