"""One participant's signaling session: the state machine behind one WebSocket.

    connected --join--> joined --leave--> connected (may join again)
        \\--join refused (lobby, lock, removal)--> connected
    any --socket closed / removed / ended / replaced--> closed

Client requests run one at a time, in order, on a worker task of their own, so a slow SFU
request never holds up what arrives meanwhile on the consumer's channel: SFU events, room
events and the client's answers to `newConsumer`. Every request ends in exactly one response;
every failure is an error response or a close with a documented code, never an exception
out of the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError

from rooms.signaling import admission as admission_policy
from rooms.signaling import departures, moderation_requests, presence, protocol, shapes
from rooms.signaling.admission import Admission
from rooms.signaling.protocol import ProtocolError, Request, Response
from rooms.signaling.rate_limit import TokenBucket
from rooms.signaling.sfu_gateway import SfuGateway, SfuUnavailable, camel_keys

logger = logging.getLogger(__name__)

REPLACED_MESSAGE_TYPE = "signaling.replaced"
MAX_QUEUED_REQUESTS = 32
MAX_PENDING_NEGOTIATIONS = 16
# Peer notifications about oneself are not sent back to oneself.
PEER_EVENTS = frozenset({"newPeer", "peerClosed", "peerDisplayNameChanged"})
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


def setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


class Connection(Protocol):
    """What the session needs from its WebSocket (the consumer)."""

    channel_name: str

    async def send_frame(self, frame: dict[str, Any]) -> None: ...

    async def close_with(self, code: int) -> None: ...


class State(enum.Enum):
    CONNECTED = "connected"
    JOINING = "joining"
    JOINED = "joined"
    CLOSED = "closed"


class RoomSession:
    def __init__(
        self,
        connection: Connection,
        admission: Admission,
        *,
        user: Any,
        guest_key: str,
    ) -> None:
        self.connection = connection
        self.admission = admission
        self.meeting = admission.meeting
        self.code: str = admission.meeting.code
        self.user = user
        self.guest_key = guest_key
        self.role = admission.role
        self.state = State.CONNECTED
        self.peer_id: str | None = None
        self.display_name = ""
        self.gateway = SfuGateway(self.code)
        self.producers: dict[str, str] = {}  # producer id -> source
        self.bucket = TokenBucket(
            rate=setting("SIGNALING_RATE_PER_SECOND", 30.0),
            burst=setting("SIGNALING_RATE_BURST", 60),
        )
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue(
            MAX_QUEUED_REQUESTS
        )
        self._worker: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        # The consumer makes the session in its own task (connect). Whatever ends that task,
        # disconnect or not (an exception out of the consumer, a cancelled instance), ends
        # the heartbeat with it: a row is refreshed only while its connection really lives.
        try:
            connection_task = asyncio.current_task()
        except RuntimeError:
            connection_task = None
        if connection_task is not None:
            connection_task.add_done_callback(lambda _task: self._stop_heartbeat())
        self._next_server_request_id = 1
        self._pending_negotiations: dict[int, str] = {}  # newConsumer id -> negotiation id
        self._held_sfu_events: list[dict[str, Any]] = []
        self._holding_events = False
        self._handlers: dict[str, Callable[[Request], Awaitable[dict[str, Any]]]] = {
            "join": self._join,
            "produce": self._produce,
            "closeProducer": self._close_producer,
            "pauseProducer": self._pause_producer,
            "resumeProducer": self._resume_producer,
            "pauseConsumer": self._consumer_request("pauseConsumer"),
            "resumeConsumer": self._consumer_request("resumeConsumer"),
            "requestConsumerKeyFrame": self._consumer_request("requestConsumerKeyFrame"),
            "restartIce": self._restart_ice,
            "getStats": self._get_stats,
            "changeDisplayName": self._change_display_name,
            "leave": self._leave,
            "chatMessage": self._chat_message,
            "chatHistory": self._chat_history,
        }
        for method, function in moderation_requests.METHODS.items():
            self._handlers[method] = self._moderation_request(function)

    # --- frames from the client -----------------------------------------------------------
    async def receive_text(self, text: str) -> None:
        if self.state is State.CLOSED:
            return
        if len(text) > protocol.MAX_FRAME_BYTES or protocol.encoded_size(text) > (
            protocol.MAX_FRAME_BYTES
        ):
            # Before parsing: a client sending this much is broken or hostile.
            await self._close(protocol.CLOSE_FRAME_TOO_BIG)
            return
        if not self.bucket.take():
            if self.bucket.overdrawn > setting("SIGNALING_RATE_CLOSE_AFTER", 200):
                await self._close(protocol.CLOSE_RATE_LIMITED)
                return
            await self._send(
                protocol.error_response(
                    _id_of(text), "rate_limited", "Too many messages; slow down."
                )
            )
            return
        try:
            frame = protocol.parse_frame(text)
        except ProtocolError as exc:
            await self._send(protocol.error_response(exc.request_id, exc.code, exc.reason))
            return
        if isinstance(frame, Response):
            await self._on_client_response(frame)
            return
        if frame.method not in self._handlers:
            await self._send(
                protocol.error_response(
                    frame.id, "unknown_method", f"Unknown method {frame.method[:64]!r}."
                )
            )
            return
        try:
            self._queue.put_nowait(lambda: self._run_request(frame))
        except asyncio.QueueFull:
            await self._send(
                protocol.error_response(frame.id, "busy", "Too many requests in flight.")
            )
            return
        self._ensure_worker()

    async def receive_binary(self) -> None:
        await self._send(
            protocol.error_response(None, "invalid_frame", "Frames must be JSON text.")
        )

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work())

    async def _work(self) -> None:
        while not self._queue.empty() and self.state is not State.CLOSED:
            job = self._queue.get_nowait()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("signaling job failed in room %s", self.code)

    async def _run_request(self, request: Request) -> None:
        handler = self._handlers[request.method]
        try:
            data = await handler(request)
        except ProtocolError as exc:
            response = protocol.error_response(request.id, exc.code, exc.reason)
        except SfuUnavailable as exc:
            response = protocol.error_response(request.id, exc.code, exc.reason)
        except PermissionDenied as exc:
            # The domain layer refused (rooms.moderation, chat.services): its code and words.
            code = str(getattr(exc, "code", "") or "forbidden")
            reason = str(getattr(exc, "message", "") or exc)
            response = protocol.error_response(request.id, code, reason)
        except ValidationError as exc:
            code = str(exc.code or "invalid_data")
            response = protocol.error_response(request.id, code, " ".join(exc.messages))
        except Exception:
            logger.exception("%s failed in room %s", request.method, self.code)
            response = protocol.error_response(
                request.id, "internal_error", "The server could not do that."
            )
        else:
            response = protocol.ok_response(request.id, data)
        await self._send(response)
        if self._holding_events:
            await self._release_held_events()

    def _require_joined(self) -> str:
        if self.state is not State.JOINED or self.peer_id is None:
            raise ProtocolError("not_joined", "Join the meeting first.")
        return self.peer_id

    # --- join and leave -------------------------------------------------------------------
    async def _join(self, request: Request) -> dict[str, Any]:
        if self.state is State.JOINED:
            raise ProtocolError("already_joined", "This connection has already joined.")
        peer_id = protocol.check_peer_id(protocol.field(request.data, "peerId"))
        display_name = protocol.check_display_name(protocol.field(request.data, "displayName"))
        try:
            await database_sync_to_async(presence.check_peer_owner)(
                self.meeting.pk, peer_id, self._signed_in_user(), self.guest_key
            )
        except presence.PeerIdTaken:
            raise ProtocolError("peer_id_taken", "Another participant uses this peerId.") from None
        refusal = await database_sync_to_async(admission_policy.refusal_at_join)(
            self.admission, self.user, self.guest_key
        )
        if refusal is not None:
            code, reason = refusal
            if code == "lobby":
                await self._knock(peer_id, display_name)
            raise ProtocolError(code, reason)
        try:
            entry = await database_sync_to_async(presence.enter)(
                self.meeting,
                peer_id=peer_id,
                user=self._signed_in_user(),
                guest_key=self.guest_key,
                display_name=display_name,
                role=self.role,
                channel_name=self.connection.channel_name,
            )
        except presence.PeerIdTaken:
            raise ProtocolError("peer_id_taken", "Another participant uses this peerId.") from None
        if entry.replaced_channel:
            await departures.channel_send(
                entry.replaced_channel, {"type": REPLACED_MESSAGE_TYPE, "peer_id": peer_id}
            )
        self.state = State.JOINING
        self._holding_events = True
        self.peer_id = peer_id
        self.display_name = display_name
        try:
            sfu_join = await self.gateway.request(
                "join",
                {
                    "peer_id": peer_id,
                    "peer_channel": self.connection.channel_name,
                    "display_name": display_name,
                },
            )
        except BaseException:
            if self.state is not State.CLOSED:
                self.state = State.CONNECTED
            self.peer_id = None
            if not entry.resumed:
                await database_sync_to_async(presence.leave)(
                    self.meeting, peer_id, channel_name=self.connection.channel_name
                )
            raise
        self.producers = {}
        abandoned = await database_sync_to_async(presence.expire_abandoned)(
            self.meeting, self._grace_seconds(), departures.heartbeat_seconds()
        )
        for gone in abandoned:
            await self._broadcast("peerClosed", {"peerId": gone})
        if not entry.resumed:
            await self._broadcast(
                "newPeer", {"peerId": peer_id, "displayName": display_name, "role": self.role}
            )
        peers = await database_sync_to_async(presence.present_participants)(self.meeting.pk)
        chat = await database_sync_to_async(_recent_chat)(self.meeting)
        response = {
            "protocolVersion": protocol.PROTOCOL_VERSION,
            "peerId": peer_id,
            "role": self.role,
            # Staff moderate any meeting without being its host: the client can't tell by role.
            "canModerate": self.admission.may_moderate,
            "peers": shapes.peer_list(peers, peer_id, sfu_join),
            "iceServers": shapes.ice_servers_for_browsers(),
            "chat": {"messages": chat},
            # The participant was still present (a reconnect inside the grace period): the
            # others saw no peerClosed/newPeer. Media always starts afresh: the SFU's join
            # replaced the old media session, so the client publishes again.
            "reconnected": entry.resumed,
            "resumed": False,
        }
        self.state = State.JOINED
        self._start_heartbeat(peer_id)
        return response

    def _start_heartbeat(self, peer_id: str) -> None:
        self._stop_heartbeat()
        self._heartbeat = asyncio.create_task(self._keep_alive(peer_id))

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None and not self._heartbeat.done():
            self._heartbeat.cancel()
        self._heartbeat = None

    async def _keep_alive(self, peer_id: str) -> None:
        """Refresh this connection's presence row every PRESENCE_HEARTBEAT_SECONDS while
        joined, so the presence sweep can tell it from one whose web process died."""
        channel = self.connection.channel_name
        while True:
            await asyncio.sleep(departures.heartbeat_seconds())
            if self.state is not State.JOINED or self.peer_id != peer_id:
                return
            try:
                liveness = await database_sync_to_async(presence.heartbeat)(
                    self.meeting.pk, peer_id, channel
                )
            except Exception:
                # The sweep waits for several missed heartbeats: the next one may get through.
                logger.warning("presence heartbeat failed in room %s", self.code, exc_info=True)
                continue
            if liveness is presence.Liveness.TAKEN_OVER:
                return  # another connection has the peer; signaling.replaced closes this one
            if liveness is presence.Liveness.GONE:
                if self.state is not State.JOINED or self.peer_id != peer_id:
                    return  # left meanwhile, on purpose
                # The sweep took this peer for gone (this process stalled for several
                # heartbeats): the others got peerClosed, the SFU peer is closed. 1011 makes
                # the client reconnect and join again, as a new peer for the others.
                logger.warning(
                    "peer %s in room %s was swept out while connected; closing", peer_id, self.code
                )
                await self._close(protocol.CLOSE_SERVER_ERROR)
                return

    async def _release_held_events(self) -> None:
        """SFU events are held from the start of a join until its response is sent:
        newConsumer must not reach the client before the response that says who is here."""
        self._holding_events = False
        held, self._held_sfu_events = self._held_sfu_events, []
        for message in held:
            await self.sfu_event(message)

    async def _knock(self, peer_id: str, display_name: str) -> None:
        """A hook for the lobby: the person asks to enter and waits on this connection for
        "lobbyAdmitted" (then joins again) or "lobbyDenied"."""
        from rooms import moderation

        self.peer_id = peer_id  # so that lobby events targeted at this peer reach us
        await database_sync_to_async(moderation.request_entry)(
            self.meeting,
            display_name=display_name,
            peer_id=peer_id,
            user=self._signed_in_user(),
            guest_key="" if self._signed_in_user() is not None else self.guest_key,
        )

    async def _leave(self, request: Request) -> dict[str, Any]:
        self._require_joined()
        await self.depart()
        return {}

    async def depart(self) -> None:
        """Leave for good now (leave request, removal, meeting ended): no grace period."""
        if self.state not in (State.JOINED, State.JOINING) or self.peer_id is None:
            return
        peer_id = self.peer_id
        self.state = State.CONNECTED if self.state is not State.CLOSED else State.CLOSED
        self.peer_id = None
        self._stop_heartbeat()
        self.producers = {}
        self._pending_negotiations.clear()
        await departures.finish_departure(
            self.meeting, self.gateway, peer_id, channel_name=self.connection.channel_name
        )

    # --- media ----------------------------------------------------------------------------
    async def _produce(self, request: Request) -> dict[str, Any]:
        peer_id = self._require_joined()
        sdp = protocol.check_sdp(protocol.field(request.data, "sdp"), kind="offer")
        sources = protocol.check_sources(protocol.field(request.data, "sources"), sdp)
        result = await self.gateway.request(
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
        peer_id = self._require_joined()
        producer_id = protocol.check_object_id(
            protocol.field(request.data, "producerId"), "producerId"
        )
        await self.gateway.request(method, {"peer_id": peer_id, "producer_id": producer_id})
        return producer_id

    def _consumer_request(self, method: str) -> Callable[[Request], Awaitable[dict[str, Any]]]:
        async def handle(request: Request) -> dict[str, Any]:
            peer_id = self._require_joined()
            consumer_id = protocol.check_object_id(
                protocol.field(request.data, "consumerId"), "consumerId"
            )
            await self.gateway.request(method, {"peer_id": peer_id, "consumer_id": consumer_id})
            return {}

        return handle

    async def _restart_ice(self, request: Request) -> dict[str, Any]:
        peer_id = self._require_joined()
        return camel_keys(await self.gateway.request("restartIce", {"peer_id": peer_id}))

    async def _get_stats(self, request: Request) -> dict[str, Any]:
        peer_id = self._require_joined()
        return camel_keys(await self.gateway.request("getStats", {"peer_id": peer_id}))

    async def _change_display_name(self, request: Request) -> dict[str, Any]:
        peer_id = self._require_joined()
        name = protocol.check_display_name(protocol.field(request.data, "displayName"))
        await database_sync_to_async(presence.rename)(
            self.meeting.pk, peer_id, self.connection.channel_name, name
        )
        self.display_name = name
        await self._broadcast("peerDisplayNameChanged", {"peerId": peer_id, "displayName": name})
        return {}

    # --- chat (chat.services owns it; see docs/chat-and-moderation.md) --------------------
    async def _chat_message(self, request: Request) -> dict[str, Any]:
        peer_id = self._require_joined()
        from chat import services as chat

        author = chat.ChatAuthor(
            display_name=self.display_name,
            user=self._signed_in_user(),
            guest_key="" if self._signed_in_user() is not None else self.guest_key,
            peer_id=peer_id,
        )

        def post() -> dict[str, Any]:
            message = chat.post_message(
                self.meeting,
                author=author,
                client_id=request.data.get("clientId"),  # type: ignore[arg-type]
                text=request.data.get("text"),  # type: ignore[arg-type]
            )
            return chat.message_dict(message)

        message = await _chat_call(post)
        return {"message": message}

    async def _chat_history(self, request: Request) -> dict[str, Any]:
        self._require_joined()
        from chat import services as chat

        def read() -> list[dict[str, Any]]:
            messages = chat.history(self.meeting, since_id=request.data.get("sinceId"))
            return [chat.message_dict(message) for message in messages]

        return {"messages": await _chat_call(read)}

    # --- moderation (rooms.moderation decides; see moderation_requests) ------------------
    def _moderation_request(
        self, function: moderation_requests.ModerationRequest
    ) -> Callable[[Request], Awaitable[dict[str, Any]]]:
        async def handle(request: Request) -> dict[str, Any]:
            self._require_joined()
            # Refusals (PermissionDenied, ValidationError) become error responses with the
            # domain's code in _run_request.
            return await database_sync_to_async(function)(
                self.meeting, self._signed_in_user(), request.data
            )

        return handle

    # --- the newConsumer server request ---------------------------------------------------
    async def _on_client_response(self, response: Response) -> None:
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
                self.code,
                response.error_code,
                response.error_reason,
            )
            return
        try:
            sdp = protocol.check_sdp(response.data.get("sdp"), kind="answer")
        except ProtocolError as exc:
            await self._send(
                protocol.notification("error", {"code": exc.code, "reason": exc.reason})
            )
            return
        peer_id = self.peer_id

        async def send_answer() -> None:
            if self.state is not State.JOINED or peer_id != self.peer_id:
                return
            try:
                await self.gateway.request(
                    "receiveAnswer",
                    {"peer_id": peer_id, "negotiation_id": negotiation_id, "sdp": sdp},
                )
            except SfuUnavailable as exc:
                logger.warning("receiveAnswer failed in room %s: %s", self.code, exc)

        try:
            self._queue.put_nowait(send_answer)
        except asyncio.QueueFull:
            logger.warning("answer dropped in room %s: request queue full", self.code)
            return
        self._ensure_worker()

    # --- events from the SFU node (contract 2) --------------------------------------------
    async def sfu_event(self, message: dict[str, Any]) -> None:
        if self._holding_events:
            if len(self._held_sfu_events) < 256:
                self._held_sfu_events.append(message)
            return
        if self.state is not State.JOINED or message.get("peer_id") != self.peer_id:
            return
        if message.get("room") != self.code:
            return
        event = message.get("event")
        data = message.get("data")
        if event not in SFU_EVENTS or not isinstance(data, dict):
            logger.warning("unexpected SFU event %r in room %s", event, self.code)
            return
        if event == "negotiate":
            await self._negotiate(data)
        elif event == "activeSpeaker":
            speaker = data.get("peer_id")
            await self._send(
                protocol.notification(
                    "activeSpeaker", {"peerId": speaker if isinstance(speaker, str) else None}
                )
            )
        else:
            if event == "producerClosed":
                self.producers.pop(str(data.get("producer_id")), None)
            await self._send(protocol.notification(str(event), camel_keys(data)))

    async def _negotiate(self, data: dict[str, Any]) -> None:
        negotiation_id = data.get("negotiation_id")
        sdp = data.get("sdp")
        consumers = data.get("consumers", [])
        if not isinstance(negotiation_id, (str, int)) or not isinstance(sdp, str):
            logger.warning("malformed negotiate event in room %s", self.code)
            return
        if not isinstance(consumers, list):
            consumers = []
        request_id = self._next_server_request_id
        self._next_server_request_id += 1
        self._pending_negotiations[request_id] = str(negotiation_id)
        while len(self._pending_negotiations) > MAX_PENDING_NEGOTIATIONS:
            self._pending_negotiations.pop(next(iter(self._pending_negotiations)))
        await self._send(
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

    # --- room events (contract 3) ---------------------------------------------------------
    async def room_event(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        data = message.get("data") or {}
        if not isinstance(event, str) or not isinstance(data, dict) or self.state is State.CLOSED:
            return
        target_peer = message.get("target_peer_id")
        if target_peer is not None and target_peer != self.peer_id:
            return
        target_user = message.get("target_user_id")
        if target_user is not None:
            user = self._signed_in_user()
            if user is None or user.pk != target_user:
                return
        if message.get("audience") == "moderators" and not self.admission.may_moderate:
            return
        if self.state is not State.JOINED:
            # Not in the call (yet): only what is addressed to this peer, e.g. the lobby's
            # lobbyAdmitted / lobbyDenied while waiting.
            if target_peer is None or self.peer_id is None:
                return
            await self._send(protocol.notification(event, data))
            return
        if event in PEER_EVENTS and data.get("peerId") == self.peer_id:
            return
        if event == "muteRequested":
            await self._muted_by_host()
        elif event == "removed":
            await self._send(protocol.notification("removed", data))
            await self.depart()
            await self._close(protocol.CLOSE_REMOVED)
        elif event == "meetingEnded":
            await self._send(protocol.notification("meetingEnded", data))
            await self.depart()
            await self._close(protocol.CLOSE_ENDED)
        else:
            await self._send(protocol.notification(event, data))

    async def _muted_by_host(self) -> None:
        peer_id = self.peer_id
        mics = [pid for pid, source in self.producers.items() if source == "mic"]

        async def pause_mics() -> None:
            for producer_id in mics:
                try:
                    await self.gateway.request(
                        "pauseProducer", {"peer_id": peer_id, "producer_id": producer_id}
                    )
                except SfuUnavailable as exc:
                    logger.warning("could not mute %s in room %s: %s", peer_id, self.code, exc)
            await self._send(protocol.notification("mutedByHost", {}))

        try:
            self._queue.put_nowait(pause_mics)
        except asyncio.QueueFull:
            await pause_mics()
            return
        self._ensure_worker()

    # --- the socket goes ------------------------------------------------------------------
    async def replaced(self) -> None:
        """Another connection took this peer over: close without leaving."""
        self.state = State.CLOSED
        self._stop_heartbeat()
        await self._close(protocol.CLOSE_REPLACED)

    async def disconnected(self) -> None:
        """The WebSocket is gone. A joined peer stays present for the grace period, so a
        reconnect resumes it; only then does it leave (peerClosed to the others)."""
        was_joined = self.state in (State.JOINED, State.JOINING)
        self.state = State.CLOSED
        self._stop_heartbeat()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
        if not was_joined or self.peer_id is None:
            return
        channel = self.connection.channel_name
        still_ours = await database_sync_to_async(presence.mark_disconnected)(
            self.meeting.pk, self.peer_id, channel
        )
        if still_ours:
            departures.schedule_grace_expiry(
                self.meeting, self.gateway, self.peer_id, channel, self._grace_seconds()
            )

    # --- helpers --------------------------------------------------------------------------
    async def _close(self, code: int) -> None:
        self.state = State.CLOSED
        await self.connection.close_with(code)

    async def _send(self, frame: dict[str, Any]) -> None:
        try:
            await self.connection.send_frame(frame)
        except Exception:
            logger.debug("send failed in room %s (socket gone)", self.code, exc_info=True)

    async def _broadcast(self, event: str, data: dict[str, Any]) -> None:
        await departures.broadcast(self.code, event, data)

    def _signed_in_user(self) -> Any:
        user = self.user
        return user if user is not None and getattr(user, "is_authenticated", False) else None

    @staticmethod
    def _grace_seconds() -> float:
        return departures.grace_seconds()


def _recent_chat(meeting: Any) -> list[dict[str, Any]]:
    try:
        from chat import services as chat
    except ImportError:
        return []
    return [chat.message_dict(message) for message in chat.recent_messages(meeting)]


async def _chat_call(function: Callable[[], Any]) -> Any:
    try:
        return await database_sync_to_async(function)()
    except ValidationError as exc:
        raise ProtocolError(str(exc.code or "chat_error"), " ".join(exc.messages)) from None


def _id_of(text: str) -> int | str | None:
    """The request id of a frame we refuse without parsing it fully (best effort)."""
    if len(text) > 4096:
        return None
    try:
        frame = protocol.parse_frame(text)
    except ProtocolError as exc:
        return exc.request_id
    return frame.id
