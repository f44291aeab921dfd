"""The node's media methods: validate each request's data, then call the engine.

Everything here comes from outside the process, so every field is type- and size-checked and
a bad request gets `bad_request` (or the engine's own code) without touching any state.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from sfu.channel_api import SfuRequest
from sfu.engine import EngineError, MediaEngine

MAX_SDP_LENGTH = 200_000
# What Channels accepts as a channel name (channels.layers.BaseChannelLayer), < 100 chars.
CHANNEL_NAME = re.compile(r"^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$")
MAX_NAME_LENGTH = 200


class BadRequest(EngineError):
    def __init__(self, reason: str) -> None:
        super().__init__("bad_request", reason)


def text(
    data: dict[str, Any], name: str, *, max_length: int = 100, allow_empty: bool = False
) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if not value and not allow_empty:
        raise BadRequest(f"{name} must not be empty")
    if len(value) > max_length:
        raise BadRequest(f"{name} is longer than {max_length} characters")
    return value


def channel_name(data: dict[str, Any], name: str) -> str:
    value = text(data, name, max_length=99)
    if not CHANNEL_NAME.match(value):
        raise BadRequest(f"{name} is not a channel name")
    return value


def sources_field(data: dict[str, Any]) -> dict[str, str]:
    value = data.get("sources", {})
    if not isinstance(value, dict) or len(value) > 32:
        raise BadRequest("sources must be an object mapping mid to mic, camera or screen")
    for mid, source in value.items():
        if not isinstance(mid, str) or len(mid) > 32 or not isinstance(source, str):
            raise BadRequest("sources must be an object mapping mid to mic, camera or screen")
        if source not in ("mic", "camera", "screen"):
            raise BadRequest(f"unknown source {source!r}")
    return dict(value)


def media_handlers(engine: MediaEngine) -> dict[str, Callable[[SfuRequest], Awaitable[dict]]]:
    def room_peer(data: dict[str, Any]) -> tuple[str, str]:
        return text(data, "room", max_length=64), text(data, "peer_id")

    async def join(request: SfuRequest) -> dict:
        data = request.data
        room, peer_id = room_peer(data)
        return await engine.join(
            room,
            peer_id,
            channel_name(data, "peer_channel"),
            text(data, "display_name", max_length=MAX_NAME_LENGTH, allow_empty=True),
        )

    async def produce(request: SfuRequest) -> dict:
        data = request.data
        room, peer_id = room_peer(data)
        return await engine.produce(
            room, peer_id, text(data, "sdp", max_length=MAX_SDP_LENGTH), sources_field(data)
        )

    def on_producer(method: Callable[[str, str, str], Awaitable[dict]]):  # type: ignore[no-untyped-def]
        async def handler(request: SfuRequest) -> dict:
            room, peer_id = room_peer(request.data)
            return await method(room, peer_id, text(request.data, "producer_id"))

        return handler

    def on_consumer(method: Callable[[str, str, str], Awaitable[dict]]):  # type: ignore[no-untyped-def]
        async def handler(request: SfuRequest) -> dict:
            room, peer_id = room_peer(request.data)
            return await method(room, peer_id, text(request.data, "consumer_id"))

        return handler

    async def receive_answer(request: SfuRequest) -> dict:
        data = request.data
        room, peer_id = room_peer(data)
        return await engine.receive_answer(
            room,
            peer_id,
            text(data, "negotiation_id"),
            text(data, "sdp", max_length=MAX_SDP_LENGTH),
        )

    async def get_stats(request: SfuRequest) -> dict:
        return await engine.get_stats(*room_peer(request.data))

    async def restart_ice(request: SfuRequest) -> dict:
        return await engine.restart_ice(*room_peer(request.data))

    async def leave(request: SfuRequest) -> dict:
        return await engine.leave(*room_peer(request.data))

    async def dump(request: SfuRequest) -> dict:
        return engine.dump()

    return {
        "join": join,
        "produce": produce,
        "closeProducer": on_producer(engine.close_producer),
        "pauseProducer": on_producer(engine.pause_producer),
        "resumeProducer": on_producer(engine.resume_producer),
        "receiveAnswer": receive_answer,
        "pauseConsumer": on_consumer(engine.pause_consumer),
        "resumeConsumer": on_consumer(engine.resume_consumer),
        "requestConsumerKeyFrame": on_consumer(engine.request_consumer_keyframe),
        "getStats": get_stats,
        "restartIce": restart_ice,
        "leave": leave,
        "dump": dump,
    }
