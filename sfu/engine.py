"""The media engine: the entry point the node's handlers call.

mediasoup's model on aiortc: a Router per room (sfu/router.py) owns its Peers (sfu/peer.py);
a peer owns its send transport and the Producers on it (sfu/producer.py), and its receive
transport (sfu/negotiation.py) with a Consumer per producer of the other peers
(sfu/consumer.py). Media is forwarded as RTP packets (sfu/receiving.py, sfu/forwarding.py)
through the hooks in sfu/hooks.py.

`MediaEngine` keeps the routers by room, turns unknown ids into `EngineError`s and hands
each request to the object it is about.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sfu import hooks, stats
from sfu.consumer import Consumer
from sfu.errors import EngineError
from sfu.peer import Peer
from sfu.producer import Producer
from sfu.router import Emit, Router

__all__ = ["EngineError", "MediaEngine"]


class MediaEngine:
    def __init__(
        self,
        emit: Emit,
        release_room: Callable[[str], Awaitable[None]],
        *,
        estimate_downlinks: bool = True,
    ) -> None:
        hooks.negotiate_rid_extensions()  # simulcast from browsers (sfu/simulcast.py)
        if estimate_downlinks:
            hooks.negotiate_transport_cc()  # each viewer's downlink (sfu/downlink.py)
        self.routers: dict[str, Router] = {}
        self._emit = emit
        self._release_room = release_room

    # --- lookups -----------------------------------------------------------------------------
    def _router(self, room: str) -> Router:
        router = self.routers.get(room)
        if router is None:
            raise EngineError("unknown_room", f"room {room!r} is not on this node")
        return router

    def _peer(self, room: str, peer_id: str) -> Peer:
        peer = self._router(room).peers.get(peer_id)
        if peer is None:
            raise EngineError("unknown_peer", f"peer {peer_id!r} has not joined room {room!r}")
        return peer

    @staticmethod
    def _producer(peer: Peer, producer_id: str) -> Producer:
        producer = peer.producers.get(producer_id)
        if producer is None:
            raise EngineError("unknown_producer", f"peer has no producer {producer_id!r}")
        return producer

    @staticmethod
    def _consumer(peer: Peer, consumer_id: str) -> Consumer:
        consumer = peer.consumers.get(consumer_id)
        if consumer is None:
            raise EngineError("unknown_consumer", f"peer has no consumer {consumer_id!r}")
        return consumer

    # --- join / leave ------------------------------------------------------------------------
    async def join(
        self, room: str, peer_id: str, channel: str, display_name: str, *, fresh: bool = False
    ) -> dict[str, Any]:
        router = self.routers.get(room)
        if router is not None and peer_id in router.peers:
            existing = router.peers[peer_id]
            if existing.channel == channel and not fresh:
                # The same connection asking again (a retried request): nothing to redo.
                return {"peers": [p.describe() for p in router.peers.values() if p is not existing]}
            # A reconnect from a new connection (or a fresh join) replaces the old peer.
            await self._close_peer(existing, release=False)
        router = self.routers.get(room)
        if router is None:
            router = self.routers[room] = Router(room, self._emit)
        others = [p.describe() for p in router.peers.values()]
        router.add_peer(peer_id, channel, display_name)
        return {"peers": others}

    async def leave(self, room: str, peer_id: str) -> dict[str, Any]:
        """Idempotent: leaving a room one is not in (any more) is a no-op."""
        router = self.routers.get(room)
        peer = router.peers.get(peer_id) if router is not None else None
        if peer is not None:
            await self._close_peer(peer, release=True)
        return {}

    async def _close_peer(self, peer: Peer, *, release: bool) -> None:
        """Close the peer; the router goes with its last peer (and its placement, if asked)."""
        if peer.closed:
            return
        router = peer.router
        await peer.close()
        if router.peers or self.routers.get(router.room) is not router:
            return
        del self.routers[router.room]
        router.close()
        if release:
            await self._release_room(router.room)

    async def close_rooms(self, *, created_before: float) -> list[str]:
        """Close every room older than `created_before` (time.monotonic()): the node was taken
        for dead and its rooms moved, their participants now have peers elsewhere. A room
        created since the registry was read was placed here afterwards and stays."""
        stale = [router for router in self.routers.values() if router.created_at < created_before]
        for router in stale:
            for peer in list(router.peers.values()):
                await self._close_peer(peer, release=False)
        return [router.room for router in stale]

    async def close(self) -> None:
        for router in list(self.routers.values()):
            for peer in list(router.peers.values()):
                await self._close_peer(peer, release=False)

    # --- producers ---------------------------------------------------------------------------
    async def produce(
        self, room: str, peer_id: str, offer_sdp: str, sources: dict[str, str]
    ) -> dict[str, Any]:
        return await self._peer(room, peer_id).produce(offer_sdp, sources)

    async def close_producer(self, room: str, peer_id: str, producer_id: str) -> dict[str, Any]:
        peer = self._peer(room, peer_id)
        if producer_id in peer.closed_producers:
            return {}  # a retried request
        await self._producer(peer, producer_id).close(notify_owner=False)
        return {}

    async def pause_producer(self, room: str, peer_id: str, producer_id: str) -> dict[str, Any]:
        await self._producer(self._peer(room, peer_id), producer_id).set_paused(True)
        return {}

    async def resume_producer(self, room: str, peer_id: str, producer_id: str) -> dict[str, Any]:
        await self._producer(self._peer(room, peer_id), producer_id).set_paused(False)
        return {}

    # --- consumers ---------------------------------------------------------------------------
    async def receive_answer(
        self, room: str, peer_id: str, negotiation_id: str, answer_sdp: str
    ) -> dict[str, Any]:
        await self._peer(room, peer_id).receive.receive_answer(negotiation_id, answer_sdp)
        return {}

    async def pause_consumer(self, room: str, peer_id: str, consumer_id: str) -> dict[str, Any]:
        self._consumer(self._peer(room, peer_id), consumer_id).set_paused(True)
        return {}

    async def resume_consumer(self, room: str, peer_id: str, consumer_id: str) -> dict[str, Any]:
        self._consumer(self._peer(room, peer_id), consumer_id).set_paused(False)
        return {}

    async def set_consumer_view(
        self, room: str, peer_id: str, consumer_id: str, width: int, height: int
    ) -> dict[str, Any]:
        """How the subscriber shows the consumer's video (device pixels; 0 x 0: not shown)."""
        self._consumer(self._peer(room, peer_id), consumer_id).set_view(width, height)
        return {}

    async def request_consumer_keyframe(
        self, room: str, peer_id: str, consumer_id: str
    ) -> dict[str, Any]:
        self._consumer(self._peer(room, peer_id), consumer_id).request_keyframe()
        return {}

    # --- transports --------------------------------------------------------------------------
    async def restart_ice(self, room: str, peer_id: str) -> dict[str, Any]:
        """aiortc has no ICE restart: both transports of the peer are replaced
        (Peer.restart_ice)."""
        return await self._peer(room, peer_id).restart_ice()

    # --- stats / dump ------------------------------------------------------------------------
    async def get_stats(self, room: str, peer_id: str) -> dict[str, Any]:
        return await stats.peer_stats(self._peer(room, peer_id))

    def dump(self) -> dict[str, Any]:
        return stats.dump(self.routers)

    def forwarded_streams(self) -> int:
        return stats.forwarded_streams(self.routers)
