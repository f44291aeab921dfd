"""The media half of a participant's connection: the client's media requests relayed to the
room's SFU node, the node's events relayed to the client, and the `newConsumer` server request
whose answer goes back to the node.

SFU events are held from the start of a join until its response is sent: `newConsumer` must
not reach the client before the response that says who is here.
"""

from __future__ import annotations

import logging
from typing import Any

from rooms.signaling import protocol, shapes
from rooms.signaling.context import ConnectionContext, RequestHandler, State
from rooms.signaling.protocol import ProtocolError, Request, Response
from rooms.signaling.sfu_gateway import SfuUnavailable, camel_keys

logger = logging.getLogger(__name__)

MAX_PENDING_NEGOTIATIONS = 16
MAX_HELD_EVENTS = 256
SFU_EVENTS = frozenset(
    {
        "negotiate",
        "consumerClosed",
        "consumerPaused",
        "consumerResumed",
        "activeSpeaker",
        "producerClosed",
    }
)


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
            "pauseConsumer": self._consumer_request("pauseConsumer"),
            "resumeConsumer": self._consumer_request("resumeConsumer"),
            "requestConsumerKeyFrame": self._consumer_request("requestConsumerKeyFrame"),
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

    # --- the client's requests --------------------------------------------------------------
    async def _produce(self, request: Request) -> dict[str, Any]:
        peer_id = self.context.require_joined()
        sdp = protocol.check_sdp(protocol.field(request.data, "sdp"), kind="offer")
        sources = protocol.check_sources(protocol.field(request.data, "sources"), sdp)
        result = await self.context.gateway.request(
            "produce", {"peer_id": peer_id, "sdp": sdp, "sources": sources}
        )
        answer = result.get("sdp")
        if not isinstance(answer, str):
            raise SfuUnavailable("sfu_bad_response", "The media server gave no answer SDP.")
        producers = [p for p in result.get("producers", []) if isinstance(p, dict)]
        for producer in producers:
            if isinstance(producer.get("producer_id"), str):
                self.producers[producer["producer_id"]] = str(producer.get("source", ""))
        return {"sdp": answer, "producers": camel_keys(producers)}

    async def _close_producer(self, request: Request) -> dict[str, Any]:
        producer_id = await self._producer_request(request, "closeProducer")
        self.producers.pop(producer_id, None)
        return {}

    async def _pause_producer(self, request: Request) -> dict[str, Any]:
        await self._producer_request(request, "pauseProducer")
        return {}

    async def _resume_producer(self, request: Request) -> dict[str, Any]:
        await self._producer_request(request, "resumeProducer")
        return {}

    async def _producer_request(self, request: Request, method: str) -> str:
        peer_id = self.context.require_joined()
        producer_id = protocol.check_object_id(
            protocol.field(request.data, "producerId"), "producerId"
        )
        await self.context.gateway.request(method, {"peer_id": peer_id, "producer_id": producer_id})
        return producer_id

    def _consumer_request(self, method: str) -> RequestHandler:
        async def handle(request: Request) -> dict[str, Any]:
            peer_id = self.context.require_joined()
            consumer_id = protocol.check_object_id(
                protocol.field(request.data, "consumerId"), "consumerId"
            )
            await self.context.gateway.request(
                method, {"peer_id": peer_id, "consumer_id": consumer_id}
            )
            return {}

        return handle

    async def _restart_ice(self, request: Request) -> dict[str, Any]:
        peer_id = self.context.require_joined()
        return dict(
            camel_keys(await self.context.gateway.request("restartIce", {"peer_id": peer_id}))
        )

    async def _get_stats(self, request: Request) -> dict[str, Any]:
        peer_id = self.context.require_joined()
        return dict(
            camel_keys(await self.context.gateway.request("getStats", {"peer_id": peer_id}))
        )

    # --- a host's mute ----------------------------------------------------------------------
    async def pause_microphones(self) -> None:
        """A moderator muted this participant: pause their microphone producers (they may
        unmute themselves, as in Meet) and tell the client."""
        context = self.context
        peer_id = context.peer_id
        mics = [pid for pid, source in self.producers.items() if source == "mic"]

        async def pause_mics() -> None:
            for producer_id in mics:
                try:
                    await context.gateway.request(
                        "pauseProducer", {"peer_id": peer_id, "producer_id": producer_id}
                    )
                except SfuUnavailable as exc:
                    logger.warning("could not mute %s in room %s: %s", peer_id, context.code, exc)
            await context.send(protocol.notification("mutedByHost", {}))

        if not context.enqueue(pause_mics):
            await pause_mics()

    # --- the newConsumer server request -----------------------------------------------------
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
            if context.state is not State.JOINED or peer_id != context.peer_id:
                return
            try:
                await context.gateway.request(
                    "receiveAnswer",
                    {"peer_id": peer_id, "negotiation_id": negotiation_id, "sdp": sdp},
                )
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
        event = message.get("event")
        data = message.get("data")
        if event not in SFU_EVENTS or not isinstance(data, dict):
            logger.warning("unexpected SFU event %r in room %s", event, context.code)
            return
        if event == "negotiate":
            await self._negotiate(data)
        elif event == "activeSpeaker":
            speaker = data.get("peer_id")
            await context.send(
                protocol.notification(
                    "activeSpeaker", {"peerId": speaker if isinstance(speaker, str) else None}
                )
            )
        else:
            if event == "producerClosed":
                self.producers.pop(str(data.get("producer_id")), None)
            await context.send(protocol.notification(str(event), camel_keys(data)))

    async def release_held_events(self) -> None:
        """The join's response is sent: the events held meanwhile go out, in order."""
        self.holding_events = False
        held, self._held_events = self._held_events, []
        for message in held:
            await self.sfu_event(message)

    async def _negotiate(self, data: dict[str, Any]) -> None:
        negotiation_id = data.get("negotiation_id")
        sdp = data.get("sdp")
        consumers = data.get("consumers", [])
        if not isinstance(negotiation_id, (str, int)) or not isinstance(sdp, str):
            logger.warning("malformed negotiate event in room %s", self.context.code)
            return
        if not isinstance(consumers, list):
            consumers = []
        request_id = self._next_server_request_id
        self._next_server_request_id += 1
        self._pending_negotiations[request_id] = str(negotiation_id)
        while len(self._pending_negotiations) > MAX_PENDING_NEGOTIATIONS:
            self._pending_negotiations.pop(next(iter(self._pending_negotiations)))
        await self.context.send(
            protocol.server_request(
                request_id,
                "newConsumer",
                {
                    "negotiationId": str(negotiation_id),
                    "sdp": sdp,
                    "consumers": [
                        shapes.consumer_for_client(c) for c in consumers if isinstance(c, dict)
                    ],
                },
            )
        )
