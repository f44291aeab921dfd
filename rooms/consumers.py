"""The call's signaling WebSocket (protoo-style; docs/protocol.md is the reference).

Origin checks and session authentication happen in meet/asgi.py before this runs. This class
is only the WebSocket shell: who may connect (rooms.signaling.admission), what frames mean
(rooms.signaling.protocol) and what the connection does
(rooms.signaling.participant_connection) live in rooms/signaling/.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.sessions.backends.base import SessionBase

from rooms import access
from rooms.events import group_name, user_group_name
from rooms.signaling import admission as admission_policy
from rooms.signaling import protocol
from rooms.signaling.participant_connection import ParticipantConnection

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = protocol.CLOSE_UNAUTHENTICATED


class SignalingConsumer(AsyncWebsocketConsumer):
    session: ParticipantConnection | None = None
    group: str | None = None
    user_group: str | None = None

    async def connect(self) -> None:
        code = str(self.scope.get("url_route", {}).get("kwargs", {}).get("code", ""))
        user = self.scope.get("user")
        signed_in = access.signed_in(user)
        django_session = self.scope.get("session")
        try:
            admission = await database_sync_to_async(_admission_for)(
                code, signed_in, django_session
            )
        except Exception:
            logger.exception("admission check failed for %r", code)
            await self._refuse(protocol.CLOSE_SERVER_ERROR)
            return
        if admission is None:
            # Unknown meeting and not allowed look the same. Someone not signed in is told to
            # sign in instead, unless the meeting would have let guests in.
            await self._refuse(
                protocol.CLOSE_NOT_FOUND if signed_in else protocol.CLOSE_UNAUTHENTICATED
            )
            return
        guest_key = "" if signed_in else admission_policy.guest_key_for(django_session)
        self.session = ParticipantConnection(self, admission, user=signed_in, guest_key=guest_key)
        self.group = group_name(admission.meeting.code)
        await self.channel_layer.group_add(self.group, self.channel_name)
        if signed_in is not None:
            # So that signing out reaches this socket (rooms.signaling.sign_out).
            self.user_group = user_group_name(signed_in.pk)
            await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()

    async def _refuse(self, code: int) -> None:
        """Accept, then close with `code`. Closing before accepting makes daphne answer the
        handshake with HTTP 403, and the browser sees only 1006: the documented code is lost
        and the client retries in vain."""
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        for group in (self.group, self.user_group):
            if group is None:
                continue
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.exception("group_discard failed")
        if self.session is not None:
            await self.session.disconnected()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        if text_data is not None:
            await self.session.receive_text(text_data)
        else:
            await self.session.receive_binary(bytes_data or b"")

    # --- channel-layer messages -----------------------------------------------------------
    async def sfu_event(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            await self.session.sfu_event(message)

    async def room_event(self, message: dict[str, Any]) -> None:
        if self.session is not None:
            await self.session.room_event(message)

    async def signaling_replaced(self, message: dict[str, Any]) -> None:
        if self.session is not None and message.get("peer_id") == self.session.peer_id:
            await self.session.replaced()

    async def signaling_signed_out(self, message: dict[str, Any]) -> None:
        """The user signed out (rooms.signaling.sign_out): this socket leaves if it was opened
        with the session signed out (or the message names none)."""
        if self.session is None:
            return
        session_key = message.get("session_key")
        ours = getattr(self.scope.get("session"), "session_key", None)
        if session_key is None or session_key == ours:
            await self.session.room_events.signed_out()

    # --- the connection's view of the socket (context.Socket) -----------------------
    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def close_with(self, code: int) -> None:
        await self.close(code=code)


def _admission_for(
    code: str, user: access.Actor, session: SessionBase | None
) -> admission_policy.Admission | None:
    return admission_policy.admit(admission_policy.find_meeting(code), user, session)
