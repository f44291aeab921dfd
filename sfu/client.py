"""A thin typed client for the node's channel API: one function per method.

Every function sends one request with sfu.channel_api.request() and returns the reply's data,
or raises SfuRequestError (the node's error_code/error_reason, or "timeout").
"""

from __future__ import annotations

from typing import Any

from sfu.channel_api import request


async def call(
    node_channel: str,
    method: str,
    data: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
) -> dict[str, Any]:
    return await request(node_channel, method, data or {}, timeout=timeout)


async def join(node: str, room: str, peer_id: str, peer_channel: str, display_name: str) -> dict:
    return await call(
        node,
        "join",
        {
            "room": room,
            "peer_id": peer_id,
            "peer_channel": peer_channel,
            "display_name": display_name,
        },
    )


async def produce(node: str, room: str, peer_id: str, sdp: str, sources: dict[str, str]) -> dict:
    return await call(
        node, "produce", {"room": room, "peer_id": peer_id, "sdp": sdp, "sources": sources}
    )


async def _on_producer(node: str, method: str, room: str, peer_id: str, producer_id: str) -> dict:
    return await call(node, method, {"room": room, "peer_id": peer_id, "producer_id": producer_id})


async def close_producer(node: str, room: str, peer_id: str, producer_id: str) -> dict:
    return await _on_producer(node, "closeProducer", room, peer_id, producer_id)


async def pause_producer(node: str, room: str, peer_id: str, producer_id: str) -> dict:
    return await _on_producer(node, "pauseProducer", room, peer_id, producer_id)


async def resume_producer(node: str, room: str, peer_id: str, producer_id: str) -> dict:
    return await _on_producer(node, "resumeProducer", room, peer_id, producer_id)


async def receive_answer(node: str, room: str, peer_id: str, negotiation_id: str, sdp: str) -> dict:
    return await call(
        node,
        "receiveAnswer",
        {"room": room, "peer_id": peer_id, "negotiation_id": negotiation_id, "sdp": sdp},
    )


async def _on_consumer(node: str, method: str, room: str, peer_id: str, consumer_id: str) -> dict:
    return await call(node, method, {"room": room, "peer_id": peer_id, "consumer_id": consumer_id})


async def pause_consumer(node: str, room: str, peer_id: str, consumer_id: str) -> dict:
    return await _on_consumer(node, "pauseConsumer", room, peer_id, consumer_id)


async def resume_consumer(node: str, room: str, peer_id: str, consumer_id: str) -> dict:
    return await _on_consumer(node, "resumeConsumer", room, peer_id, consumer_id)


async def request_consumer_keyframe(node: str, room: str, peer_id: str, consumer_id: str) -> dict:
    return await _on_consumer(node, "requestConsumerKeyFrame", room, peer_id, consumer_id)


async def get_stats(node: str, room: str, peer_id: str) -> dict:
    return await call(node, "getStats", {"room": room, "peer_id": peer_id})


async def restart_ice(node: str, room: str, peer_id: str) -> dict:
    return await call(node, "restartIce", {"room": room, "peer_id": peer_id})


async def leave(node: str, room: str, peer_id: str) -> dict:
    return await call(node, "leave", {"room": room, "peer_id": peer_id})


async def dump(node: str, *, timeout: float | None = None) -> dict:
    return await call(node, "dump", {}, timeout=timeout)


async def ping(node: str, *, timeout: float | None = None) -> dict:
    return await call(node, "ping", {}, timeout=timeout)
