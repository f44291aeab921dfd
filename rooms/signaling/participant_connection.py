"""One participant's connection to the call: the state machine behind one WebSocket.

The consumer (rooms.consumers) hands it every frame and channel-layer message; it validates
and dispatches them to the parts that hold the behaviour — membership (join, leave, presence),
the media relay (SFU requests and events), chat and moderation requests, the room-event relay —
over one shared ConnectionContext.

Client requests run one at a time, in order, on a worker task of their own, so a slow SFU
request never holds up what arrives meanwhile on the consumer's channel: SFU events, room
events and the client's answers to `newConsumer`. Every request ends in exactly one response;
every failure is an error response or a close with a documented code, never an exception
out of the consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError

from rooms.access import Actor
from rooms.app_settings import app_settings
from rooms.sfu_gateway import SfuUnavailable
from rooms.signaling import protocol
from rooms.signaling.admission import Admission
from rooms.signaling.breakout_requests import breakout_handlers
from rooms.signaling.chat_requests import chat_handlers
from rooms.signaling.context import ConnectionContext, RequestHandler, Socket, State
from rooms.signaling.media_relay import MediaRelay
from rooms.signaling.membership import Membership
from rooms.signaling.moderation_requests import moderation_handlers
from rooms.signaling.poll_requests import poll_handlers
from rooms.signaling.protocol import ProtocolError, Request, Response
from rooms.signaling.rate_limit import TokenBucket
from rooms.signaling.room_event_relay import RoomEventRelay
from rooms.signaling.together_requests import together_handlers

logger = logging.getLogger(__name__)


class ParticipantConnection:
    def __init__(
        self, socket: Socket, admission: Admission, *, user: Actor, guest_key: str
    ) -> None:
        self.context = context = ConnectionContext(
            socket, admission, user=user, guest_key=guest_key
        )
        self.media = MediaRelay(context)
        self.membership = Membership(context, self.media)
        self.room_events = RoomEventRelay(context, self.membership, self.media)
        self.bucket = TokenBucket(
            rate=app_settings.SIGNALING_RATE_PER_SECOND,
            burst=app_settings.SIGNALING_RATE_BURST,
        )
        self._handlers: dict[str, RequestHandler] = {
            **self.membership.handlers(),
            **self.media.handlers(),
            **chat_handlers(context),
            **moderation_handlers(context),
            **together_handlers(context),
            **poll_handlers(context),
            **breakout_handlers(context),
        }

    @property
    def peer_id(self) -> str | None:
        return self.context.peer_id

    # --- frames from the client -------------------------------------------------------------
    async def _admit(
        self,
        size: int,
        request_id: Callable[[], int | str | None],
        limit: int = protocol.MAX_FRAME_BYTES,
    ) -> bool:
        """Whether to read a frame of `size` bytes: every frame, text or binary, passes the
        size limit (`limit`) and the flood guard first (a refusal is answered or the socket
        closed)."""
        context = self.context
        if context.state is State.CLOSED:
            return False
        if size > limit:
            # Before parsing: a client sending this much is broken or hostile.
            await context.close(protocol.CLOSE_FRAME_TOO_BIG)
            return False
        if not self.bucket.take():
            if self.bucket.overdrawn > app_settings.SIGNALING_RATE_CLOSE_AFTER:
                await context.close(protocol.CLOSE_RATE_LIMITED)
                return False
            await context.send(
                protocol.error_response(
                    request_id(), "rate_limited", "Too many messages; slow down."
                )
            )
            return False
        return True

    async def receive_text(self, text: str) -> None:
        context = self.context
        # An answer to the server's offer grows with the meeting: while one is awaited, a
        # frame may be larger (parse_frame still refuses a request that large).
        limit = (
            protocol.MAX_ANSWER_FRAME_BYTES
            if self.media.awaiting_answer
            else protocol.MAX_FRAME_BYTES
        )
        size = len(text)
        if size <= limit:
            size = protocol.encoded_size(text)
        if not await self._admit(size, lambda: _id_of(text), limit):
            return
        try:
            frame = protocol.parse_frame(text, limit)
        except ProtocolError as exc:
            await context.send(protocol.error_response(exc.request_id, exc.code, exc.reason))
            return
        if isinstance(frame, Response):
            await self.media.on_client_response(frame)
            return
        if frame.method not in self._handlers:
            await context.send(
                protocol.error_response(
                    frame.id, "unknown_method", f"Unknown method {frame.method[:64]!r}."
                )
            )
            return

        async def run() -> None:
            await self._run_request(frame)

        if not context.enqueue(run):
            await context.send(
                protocol.error_response(frame.id, "busy", "Too many requests in flight.")
            )

    async def receive_binary(self, data: bytes) -> None:
        if not await self._admit(len(data), lambda: None):
            return
        await self.context.send(
            protocol.error_response(None, "invalid_frame", "Frames must be JSON text.")
        )

    async def _run_request(self, request: Request) -> None:
        handler = self._handlers[request.method]
        try:
            data = await handler(request)
        except (ProtocolError, SfuUnavailable) as exc:
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
            logger.exception("%s failed in room %s", request.method, self.context.code)
            response = protocol.error_response(
                request.id, "internal_error", "The server could not do that."
            )
        else:
            response = protocol.ok_response(request.id, data)
        await self.context.send(response)
        if self.media.holding_events:
            await self.media.release_held_events()

    # --- channel-layer messages -------------------------------------------------------------
    async def sfu_event(self, message: dict[str, Any]) -> None:
        await self.media.sfu_event(message)

    async def room_event(self, message: dict[str, Any]) -> None:
        await self.room_events.relay(message)

    async def replaced(self) -> None:
        await self.membership.replaced()

    async def disconnected(self) -> None:
        await self.membership.disconnected()


def _id_of(text: str) -> int | str | None:
    """The request id of a frame we refuse without parsing it fully (best effort)."""
    if len(text) > 4096:
        return None
    try:
        frame = protocol.parse_frame(text)
    except ProtocolError as exc:
        return exc.request_id
    return frame.id
