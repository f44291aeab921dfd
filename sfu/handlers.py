"""The node's media methods: check each request's data against sfu/contract.py, then call the
engine.

This is where the node validates what comes from outside the process, once: every field is
type- and size-checked here and a bad request gets `bad_request` without touching any state.
The engine checks only what needs the parsed SDP (a mid of `sources` missing from the offer, a
source that does not fit its m-line's kind).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from sfu.contract import (
    AnswerRequest,
    ConsumerRequest,
    ConsumerViewRequest,
    JoinRequest,
    ProduceRequest,
    ProducerRequest,
    RoomPeer,
    SfuMethod,
    Source,
    is_source,
)
from sfu.engine import EngineError, MediaEngine

Data = Mapping[str, object]
Reply = Mapping[str, object]
Handler = Callable[[Data], Awaitable[Reply]]

MAX_ROOM_LENGTH = 64
MAX_ID_LENGTH = 100
# A viewer's answer grows with the meeting (≈ 1.3 KB per remote track); the signaling frame
# that carries it is bounded at 1 MiB (rooms/signaling/protocol.py MAX_ANSWER_FRAME_BYTES).
MAX_SDP_LENGTH = 1_048_576
MAX_NAME_LENGTH = 200
MAX_SOURCES = 32
MAX_MID_LENGTH = 32
# What Channels accepts as a channel name (channels.layers.BaseChannelLayer), < 100 chars.
CHANNEL_NAME = re.compile(r"^[a-zA-Z\d\-_.]+(![\d\w\-_.]*)?$")
MAX_CHANNEL_LENGTH = 99
# A video's size on screen, in device pixels: an 8K display's width is the most that makes sense.
MAX_VIEW_PIXELS = 8192


class BadRequest(EngineError):
    def __init__(self, reason: str) -> None:
        super().__init__("bad_request", reason)


# --- fields ----------------------------------------------------------------------------------
def text(
    data: Data, name: str, *, max_length: int = MAX_ID_LENGTH, allow_empty: bool = False
) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if not value and not allow_empty:
        raise BadRequest(f"{name} must not be empty")
    if len(value) > max_length:
        raise BadRequest(f"{name} is longer than {max_length} characters")
    return value


def flag(data: Data, name: str) -> bool:
    """An optional boolean (absent: false)."""
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def channel_name(data: Data, name: str) -> str:
    value = text(data, name, max_length=MAX_CHANNEL_LENGTH)
    if not CHANNEL_NAME.match(value):
        raise BadRequest(f"{name} is not a channel name")
    return value


def sources_field(data: Data) -> dict[str, Source]:
    value = data.get("sources", {})
    shape = "sources must be an object mapping mid to mic, camera or screen"
    if not isinstance(value, dict) or len(value) > MAX_SOURCES:
        raise BadRequest(shape)
    sources: dict[str, Source] = {}
    for mid, source in value.items():
        if not isinstance(mid, str) or len(mid) > MAX_MID_LENGTH or not isinstance(source, str):
            raise BadRequest(shape)
        if not is_source(source):
            raise BadRequest(f"unknown source {source!r}")
        sources[mid] = source
    return sources


# --- requests, one reader per shape of sfu/contract.py --------------------------------------
def read_room_peer(data: Data) -> RoomPeer:
    return RoomPeer(
        room=text(data, "room", max_length=MAX_ROOM_LENGTH), peer_id=text(data, "peer_id")
    )


def read_join(data: Data) -> JoinRequest:
    where = read_room_peer(data)
    return JoinRequest(
        room=where["room"],
        peer_id=where["peer_id"],
        peer_channel=channel_name(data, "peer_channel"),
        display_name=text(data, "display_name", max_length=MAX_NAME_LENGTH, allow_empty=True),
        fresh=flag(data, "fresh"),
    )


def read_produce(data: Data) -> ProduceRequest:
    where = read_room_peer(data)
    return ProduceRequest(
        room=where["room"],
        peer_id=where["peer_id"],
        sdp=text(data, "sdp", max_length=MAX_SDP_LENGTH),
        sources=sources_field(data),
    )


def read_producer(data: Data) -> ProducerRequest:
    where = read_room_peer(data)
    return ProducerRequest(
        room=where["room"], peer_id=where["peer_id"], producer_id=text(data, "producer_id")
    )


def read_consumer(data: Data) -> ConsumerRequest:
    where = read_room_peer(data)
    return ConsumerRequest(
        room=where["room"], peer_id=where["peer_id"], consumer_id=text(data, "consumer_id")
    )


def pixels(data: Data, name: str) -> int:
    value = data.get(name)
    # bool is an int to Python, not a size to anyone.
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer")
    if not 0 <= value <= MAX_VIEW_PIXELS:
        raise BadRequest(f"{name} must be between 0 and {MAX_VIEW_PIXELS}")
    return value


def read_consumer_view(data: Data) -> ConsumerViewRequest:
    where = read_consumer(data)
    return ConsumerViewRequest(
        room=where["room"],
        peer_id=where["peer_id"],
        consumer_id=where["consumer_id"],
        width=pixels(data, "width"),
        height=pixels(data, "height"),
    )


def read_answer(data: Data) -> AnswerRequest:
    where = read_room_peer(data)
    return AnswerRequest(
        room=where["room"],
        peer_id=where["peer_id"],
        negotiation_id=text(data, "negotiation_id"),
        sdp=text(data, "sdp", max_length=MAX_SDP_LENGTH),
    )


# --- the table -------------------------------------------------------------------------------
PeerAction = Callable[[str, str], Awaitable[Reply]]
ObjectAction = Callable[[str, str, str], Awaitable[Reply]]


def media_handlers(engine: MediaEngine) -> dict[SfuMethod, Handler]:
    """Every method but ping (the node's own), bound to `engine`."""

    async def join(data: Data) -> Reply:
        request = read_join(data)
        return await engine.join(
            request["room"],
            request["peer_id"],
            request["peer_channel"],
            request["display_name"],
            fresh=request.get("fresh", False),
        )

    async def produce(data: Data) -> Reply:
        request = read_produce(data)
        # MediaEngine.produce takes a dict[str, str], which a dict[str, Source] is not (dict
        # is invariant).
        sources: dict[str, str] = dict(request["sources"])
        return await engine.produce(request["room"], request["peer_id"], request["sdp"], sources)

    async def receive_answer(data: Data) -> Reply:
        request = read_answer(data)
        return await engine.receive_answer(
            request["room"], request["peer_id"], request["negotiation_id"], request["sdp"]
        )

    def on_producer(action: ObjectAction) -> Handler:
        async def handle(data: Data) -> Reply:
            request = read_producer(data)
            return await action(request["room"], request["peer_id"], request["producer_id"])

        return handle

    def on_consumer(action: ObjectAction) -> Handler:
        async def handle(data: Data) -> Reply:
            request = read_consumer(data)
            return await action(request["room"], request["peer_id"], request["consumer_id"])

        return handle

    async def set_consumer_view(data: Data) -> Reply:
        request = read_consumer_view(data)
        return await engine.set_consumer_view(
            request["room"],
            request["peer_id"],
            request["consumer_id"],
            request["width"],
            request["height"],
        )

    def on_peer(action: PeerAction) -> Handler:
        async def handle(data: Data) -> Reply:
            request = read_room_peer(data)
            return await action(request["room"], request["peer_id"])

        return handle

    async def dump(data: Data) -> Reply:
        return engine.dump()

    return {
        SfuMethod.JOIN: join,
        SfuMethod.PRODUCE: produce,
        SfuMethod.CLOSE_PRODUCER: on_producer(engine.close_producer),
        SfuMethod.PAUSE_PRODUCER: on_producer(engine.pause_producer),
        SfuMethod.RESUME_PRODUCER: on_producer(engine.resume_producer),
        SfuMethod.RECEIVE_ANSWER: receive_answer,
        SfuMethod.PAUSE_CONSUMER: on_consumer(engine.pause_consumer),
        SfuMethod.RESUME_CONSUMER: on_consumer(engine.resume_consumer),
        SfuMethod.REQUEST_CONSUMER_KEY_FRAME: on_consumer(engine.request_consumer_keyframe),
        SfuMethod.SET_CONSUMER_VIEW: set_consumer_view,
        SfuMethod.GET_STATS: on_peer(engine.get_stats),
        SfuMethod.RESTART_ICE: on_peer(engine.restart_ice),
        SfuMethod.LEAVE: on_peer(engine.leave),
        SfuMethod.DUMP: dump,
    }
