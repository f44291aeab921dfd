"""The typed client of the SFU node: one async method per `SfuMethod`.

`SfuClient` builds each request from sfu/contract.py's shapes and types each reply; how a
request reaches the node is a subclass's business:

- `rooms.sfu_gateway.SfuGateway` (production): places the room on a node, retries a
  lost request once, raises `SfuUnavailable`;
- `NodeClient`: straight to one node's channel with sfu.channel_api.request(), raises
  `SfuRequestError` (the node's error_code/error_reason, or "timeout"). Tests and tools.

Replies are not checked again: the node is this codebase, and it produces them from requests
that sfu.handlers has checked. Events reach the peer's channel, not the client; `read_event`
types them for whoever receives them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, cast

from sfu.channel_api import request
from sfu.contract import (
    EVENT_NAMES,
    EVENT_TYPE,
    AnswerRequest,
    ConsumerRequest,
    ConsumerViewRequest,
    DumpReply,
    JoinReply,
    JoinRequest,
    PingReply,
    ProduceReply,
    ProduceRequest,
    ProducerRequest,
    RestartIceReply,
    RoomPeer,
    SfuEvent,
    SfuMethod,
    Source,
    StatsReply,
)


class SfuClient(ABC):
    """The node's methods for one room. `room` goes into every request but ping and dump."""

    def __init__(self, room: str) -> None:
        self.room = room

    @abstractmethod
    async def _send(self, method: SfuMethod, data: Mapping[str, object]) -> dict[str, Any]:
        """Send one request and return the reply's data, or raise."""

    # --- the node ----------------------------------------------------------------------------
    async def ping(self) -> PingReply:
        return cast(PingReply, await self._send(SfuMethod.PING, {}))

    async def dump(self) -> DumpReply:
        """Counts of everything the node holds, in total and per room."""
        return cast(DumpReply, await self._send(SfuMethod.DUMP, {}))

    # --- peers -------------------------------------------------------------------------------
    async def join(
        self, peer_id: str, peer_channel: str, display_name: str, *, fresh: bool = False
    ) -> JoinReply:
        """Join the room; events go to peer_channel. A new peer_channel, or `fresh`, replaces
        the peer (a new media session); the same channel again is a retried request."""
        data = JoinRequest(
            room=self.room,
            peer_id=peer_id,
            peer_channel=peer_channel,
            display_name=display_name,
            fresh=fresh,
        )
        return cast(JoinReply, await self._send(SfuMethod.JOIN, data))

    async def leave(self, peer_id: str) -> None:
        await self._send(SfuMethod.LEAVE, self._peer(peer_id))

    async def get_stats(self, peer_id: str) -> StatsReply:
        return cast(StatsReply, await self._send(SfuMethod.GET_STATS, self._peer(peer_id)))

    async def restart_ice(self, peer_id: str) -> RestartIceReply:
        reply = await self._send(SfuMethod.RESTART_ICE, self._peer(peer_id))
        return cast(RestartIceReply, reply)

    # --- producing ---------------------------------------------------------------------------
    async def produce(self, peer_id: str, sdp: str, sources: Mapping[str, Source]) -> ProduceReply:
        """Apply the send transport's offer; the reply's producers are all the open ones."""
        data = ProduceRequest(room=self.room, peer_id=peer_id, sdp=sdp, sources=dict(sources))
        return cast(ProduceReply, await self._send(SfuMethod.PRODUCE, data))

    async def close_producer(self, peer_id: str, producer_id: str) -> None:
        await self._on_producer(SfuMethod.CLOSE_PRODUCER, peer_id, producer_id)

    async def pause_producer(self, peer_id: str, producer_id: str) -> None:
        await self._on_producer(SfuMethod.PAUSE_PRODUCER, peer_id, producer_id)

    async def resume_producer(self, peer_id: str, producer_id: str) -> None:
        await self._on_producer(SfuMethod.RESUME_PRODUCER, peer_id, producer_id)

    # --- consuming ---------------------------------------------------------------------------
    async def receive_answer(self, peer_id: str, negotiation_id: str, sdp: str) -> None:
        """The browser's answer to the `negotiate` offer `negotiation_id`."""
        data = AnswerRequest(
            room=self.room, peer_id=peer_id, negotiation_id=negotiation_id, sdp=sdp
        )
        await self._send(SfuMethod.RECEIVE_ANSWER, data)

    async def pause_consumer(self, peer_id: str, consumer_id: str) -> None:
        await self._on_consumer(SfuMethod.PAUSE_CONSUMER, peer_id, consumer_id)

    async def resume_consumer(self, peer_id: str, consumer_id: str) -> None:
        await self._on_consumer(SfuMethod.RESUME_CONSUMER, peer_id, consumer_id)

    async def request_consumer_keyframe(self, peer_id: str, consumer_id: str) -> None:
        await self._on_consumer(SfuMethod.REQUEST_CONSUMER_KEY_FRAME, peer_id, consumer_id)

    async def set_consumer_view(
        self, peer_id: str, consumer_id: str, width: int, height: int
    ) -> None:
        """How the subscriber shows the consumer's video (device pixels; 0 x 0: not shown)."""
        data = ConsumerViewRequest(
            room=self.room, peer_id=peer_id, consumer_id=consumer_id, width=width, height=height
        )
        await self._send(SfuMethod.SET_CONSUMER_VIEW, data)

    # --- request data ------------------------------------------------------------------------
    def _peer(self, peer_id: str) -> RoomPeer:
        return RoomPeer(room=self.room, peer_id=peer_id)

    async def _on_producer(self, method: SfuMethod, peer_id: str, producer_id: str) -> None:
        data = ProducerRequest(room=self.room, peer_id=peer_id, producer_id=producer_id)
        await self._send(method, data)

    async def _on_consumer(self, method: SfuMethod, peer_id: str, consumer_id: str) -> None:
        data = ConsumerRequest(room=self.room, peer_id=peer_id, consumer_id=consumer_id)
        await self._send(method, data)


class NodeClient(SfuClient):
    """Straight to one node's channel, no placement, no retry. `room` may stay empty for ping
    and dump."""

    def __init__(self, node_channel: str, room: str = "", *, timeout: float | None = None) -> None:
        super().__init__(room)
        self.node_channel = node_channel
        self.timeout = timeout

    async def _send(self, method: SfuMethod, data: Mapping[str, object]) -> dict[str, Any]:
        return await request(self.node_channel, method, data, timeout=self.timeout)


async def ping(node_channel: str, *, timeout: float | None = None) -> PingReply:
    return await NodeClient(node_channel, timeout=timeout).ping()


async def dump(node_channel: str, *, timeout: float | None = None) -> DumpReply:
    return await NodeClient(node_channel, timeout=timeout).dump()


def read_event(message: Mapping[str, object]) -> SfuEvent | None:
    """A message from the node on a peer's channel, typed; None when it is not a well-formed
    event of sfu/contract.py (the receiver logs and drops it)."""
    data = message.get("data")
    if (
        message.get("type") != EVENT_TYPE
        or message.get("event") not in EVENT_NAMES
        or not isinstance(message.get("room"), str)
        or not isinstance(message.get("peer_id"), str)
        or not isinstance(data, dict)
    ):
        return None
    if message["event"] == "negotiate" and not (
        isinstance(data.get("negotiation_id"), str)
        and isinstance(data.get("sdp"), str)
        and isinstance(data.get("consumers"), list)
    ):
        return None
    if message["event"] == "downlinkLimited" and not (
        isinstance(data.get("limited"), bool)
        and isinstance(data.get("estimate_bps"), int)
        and not isinstance(data.get("estimate_bps"), bool)
    ):
        return None
    return cast(SfuEvent, message)
