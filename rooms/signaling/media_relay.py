"""The media half of a participant's connection: the client's media requests relayed to the
room's SFU node, the node's events relayed to the client, and the `newConsumer` server request
whose answer goes back to the node.

SFU events are held from the start of a join until its response is sent: `newConsumer` must
not reach the client before the response that says who is here.

When the room moves to another node (its node died: rooms.signaling.node_watch), `move_to`
joins the peer there and tells the client `mediaReset`; the client publishes again on fresh
peer connections, and whatever the old node still sends is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rooms.sfu_gateway import SfuUnavailable
from rooms.signaling import protocol, shapes
from rooms.signaling.context import ConnectionContext, RequestHandler, State
from rooms.signaling.protocol import ProtocolError, Request, Response
from sfu import registry
from sfu.client import read_event
from sfu.contract import NegotiateData

# A gateway method acting on one of the peer's producers or consumers: (peer_id, object_id).
ObjectAction = Callable[[str, str], Awaitable[None]]

logger = logging.getLogger(__name__)

MAX_PENDING_NEGOTIATIONS = 16
MAX_HELD_EVENTS = 256


class MediaRelay:
    def __init__(self, context: ConnectionContext) -> None:
        self.context = context
        self.producers: dict[str, str] = {}  # producer id -> source
        self._next_server_request_id = 1
        self._pending_negotiations: dict[int, str] = {}  # newConsumer id -> negotiation id
        self._held_events: list[dict[str, Any]] = []
        self.holding_events = False

    def handlers(self) -> dict[str, RequestHandler]:
        return {
            "produce": self._produce,
            "closeProducer": self._close_producer,
            "pauseProducer": self._pause_producer,
            "resumeProducer": self._resume_producer,
            "pauseConsumer": self._consumer_request(self.context.gateway.pause_consumer),
            "resumeConsumer": self._consumer_request(self.context.gateway.resume_consumer),
            "requestConsumerKeyFrame": self._consumer_request(
                self.context.gateway.request_consumer_keyframe
            ),
            "setConsumerView": self._set_consumer_view,
            "restartIce": self._restart_ice,
            "getStats": self._get_stats,
        }

    def start(self) -> None:
        """A join begins: media starts afresh (the SFU's join replaces the old media session)
        and the node's events wait for the join's response."""
        self.holding_events = True
        self.producers = {}

    def forget(self) -> None:
        """The peer left: nothing of its media session is waited for any more."""
        self.producers = {}
        self._pending_negotiations.clear()

    # --- following the room to another node (node_watch.Follower) ---------------------------
    @property
    def room(self) -> str:
        return self.context.code

    @property
    def placement(self) -> registry.Placement | None:
        return self.context.gateway.placement

    def move_to(self, placement: registry.Placement) -> None:
        """The room is placed anew: join there afresh, after the requests already queued."""
        context = self.context

        async def move() -> None:
            peer_id = context.peer_id
            if context.state is not State.JOINED or peer_id is None:
                return
            current = context.gateway.placement
            if current is not None and current.same_as(placement):
                return  # moved already (a watch round queued this twice)
            context.gateway.use(placement)
            self.start()
            self._pending_negotiations.clear()
            try:
                await context.gateway.join(
                    peer_id, context.channel_name, context.display_name, fresh=True
                )
            except SfuUnavailable as exc:
                # The new node failed too: reconnecting joins afresh, wherever the room is.
                logger.warning("could not move peer %s of room %s: %s", peer_id, self.room, exc)
                self.holding_events = False
                self._held_events = []
                await context.close(protocol.CLOSE_SERVER_ERROR)
                return
            await context.send(protocol.notification("mediaReset", {"reason": "serverMoved"}))
            await self.release_held_events()

        if not context.enqueue(move):
            logger.warning("peer %s of room %s not moved: queue full", context.peer_id, self.room)

    # --- the client's requests --------------------------------------------------------------
    async def _produce(self, request: Request) -> dict[str, Any]:
        peer_id = self.context.require_joined()
        sdp = protocol.check_sdp(protocol.field(request.data, "sdp"), kind="offer")
        sources = protocol.check_sources(protocol.field(request.data, "sources"), sdp)
        result = await self.context.gateway.produce(peer_id, sdp, sources)
        for producer in result["producers"]:
            self.producers[producer["producer_id"]] = producer["source"]
        return shapes.produce_for_client(result)

    async def _close_producer(self, request: Request) -> dict[str, Any]:
        producer_id = await self._producer_request(request, self.context.gateway.close_producer)
        self.producers.pop(producer_id, None)
        return {}

    async def _pause_producer(self, request: Request) -> dict[str, Any]:
        await self._producer_request(request, self.context.gateway.pause_producer)
        return {}

    async def _resume_producer(self, request: Request) -> dict[str, Any]:
        await self._producer_request(request, self.context.gateway.resume_producer)
        return {}

    async def _producer_request(self, request: Request, action: ObjectAction) -> str:
        peer_id = self.context.require_joined()
        producer_id = protocol.check_object_id(
            protocol.field(request.data, "producerId"), "producerId"
        )
        await action(peer_id, producer_id)
        return producer_id

    def _consumer_request(self, action: ObjectAction) -> RequestHandler:
        async def handle(request: Request) -> dict[str, Any]:
            peer_id = self.context.require_joined()
            consumer_id = protocol.check_object_id(
                protocol.field(request.data, "consumerId"), "consumerId"
            )
            await action(peer_id, consumer_id)
            return {}

        return handle

    async def _set_consumer_view(self, request: Request) -> dict[str, Any]:
        peer_id = self.context.require_joined()
        data = request.data
        consumer_id = protocol.check_object_id(protocol.field(data, "consumerId"), "consumerId")
        width = protocol.check_view_pixels(protocol.field(data, "width"), "width")
        height = protocol.check_view_pixels(protocol.field(data, "height"), "height")
        await self.context.gateway.set_consumer_view(peer_id, consumer_id, width, height)
        return {}

    async def _restart_ice(self, request: Request) -> dict[str, Any]:
        peer_id = self.context.require_joined()
        return shapes.restart_ice_for_client(await self.context.gateway.restart_ice(peer_id))

    async def _get_stats(self, request: Request) -> dict[str, Any]:
        peer_id = self.context.require_joined()
        return shapes.stats_for_client(await self.context.gateway.get_stats(peer_id))

    # --- a host's mute ----------------------------------------------------------------------
    async def pause_microphones(self) -> None:
        """A moderator muted this participant: pause their microphone producers (they may
        unmute themselves, as in Meet) and tell the client."""
        context = self.context
        peer_id = context.peer_id
        mics = [pid for pid, source in self.producers.items() if source == "mic"]

        async def pause_mics() -> None:
            for producer_id in mics:
                if peer_id is None:
                    break  # not joined: no producers either
                try:
                    await context.gateway.pause_producer(peer_id, producer_id)
                except SfuUnavailable as exc:
                    logger.warning("could not mute %s in room %s: %s", peer_id, context.code, exc)
            await context.send(protocol.notification("mutedByHost", {}))

        if not context.enqueue(pause_mics):
            await pause_mics()

    # --- the newConsumer server request -----------------------------------------------------
    @property
    def awaiting_answer(self) -> bool:
        """Whether an offer (newConsumer) sent to the client awaits its answer."""
        return bool(self._pending_negotiations)

    async def on_client_response(self, response: Response) -> None:
        context = self.context
        negotiation_id = (
            self._pending_negotiations.pop(response.id, None)
            if isinstance(response.id, int)
            else None
        )
        if negotiation_id is None:
            return  # late or unknown: nothing is waiting for it
        if not response.ok:
            logger.info(
                "client refused newConsumer in room %s: %s %s",
                context.code,
                response.error_code,
                response.error_reason,
            )
            return
        try:
            sdp = protocol.check_sdp(response.data.get("sdp"), kind="answer")
        except ProtocolError as exc:
            await context.send(
                protocol.notification("error", {"code": exc.code, "reason": exc.reason})
            )
            return
        peer_id = context.peer_id

        async def send_answer() -> None:
            if context.state is not State.JOINED or peer_id is None or peer_id != context.peer_id:
                return
            try:
                await context.gateway.receive_answer(peer_id, negotiation_id, sdp)
            except SfuUnavailable as exc:
                logger.warning("receiveAnswer failed in room %s: %s", context.code, exc)

        if not context.enqueue(send_answer):
            logger.warning("answer dropped in room %s: request queue full", context.code)

    # --- events from the SFU node (contract 2) ----------------------------------------------
    async def sfu_event(self, message: dict[str, Any]) -> None:
        context = self.context
        if self.holding_events:
            if len(self._held_events) < MAX_HELD_EVENTS:
                self._held_events.append(message)
            return
        if context.state is not State.JOINED or message.get("peer_id") != context.peer_id:
            return
        if message.get("room") != context.code:
            return
        placement = context.gateway.placement
        sender = message.get("node")
        if sender is not None and placement is not None and sender != placement.node:
            return  # the room's old node, still talking after the room moved
        event = read_event(message)
        if event is None:
            logger.warning("unexpected SFU event %r in room %s", message.get("event"), context.code)
            return
        if event["event"] == "negotiate":
            await self._negotiate(event["data"])
        elif event["event"] == "activeSpeaker":
            data = shapes.active_speaker_for_client(event["data"])
            await context.send(protocol.notification("activeSpeaker", data))
        elif event["event"] == "downlinkLimited":
            data = shapes.downlink_limited_for_client(event["data"])
            await context.send(protocol.notification("downlinkLimited", data))
        elif event["event"] == "producerClosed":
            self.producers.pop(event["data"]["producer_id"], None)
            data = shapes.producer_closed_for_client(event["data"])
            await context.send(protocol.notification("producerClosed", data))
        else:
            data = shapes.consumer_event_for_client(event["data"])
            await context.send(protocol.notification(event["event"], data))

    async def release_held_events(self) -> None:
        """The join's response is sent: the events held meanwhile go out, in order."""
        self.holding_events = False
        held, self._held_events = self._held_events, []
        for message in held:
            await self.sfu_event(message)

    async def _negotiate(self, negotiate: NegotiateData) -> None:
        request_id = self._next_server_request_id
        self._next_server_request_id += 1
        self._pending_negotiations[request_id] = negotiate["negotiation_id"]
        while len(self._pending_negotiations) > MAX_PENDING_NEGOTIATIONS:
            self._pending_negotiations.pop(next(iter(self._pending_negotiations)))
        await self.context.send(
            protocol.server_request(
                request_id, "newConsumer", shapes.new_consumer_for_client(negotiate)
            )
        )
