"""Being in the call on one connection: join (or knock at the lobby), stay (the presence
heartbeat), rename, and leave — now, or after the reconnect grace period when the socket drops.

    connected --join--> joined --leave--> connected (may join again)
        \\--join refused (lock, removal)--> connected
        \\--join refused: lobby--> waiting (connected, with a knock) --admitted: join--> joined
              waiting --cancelKnock / denied / timed out--> connected (may ask again)
    any --socket closed / removed / ended / replaced--> closed (a waiting knock is withdrawn)

Who is present is rooms.presence's; who may enter is rooms.signaling.admission's; this module
only puts them together for one connection, with the SFU join in between.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from chat import services as chat
from rooms import access, breakouts, events, moderation, presence, spotlight, together
from rooms.models import Meeting
from rooms.signaling import admission as admission_policy
from rooms.signaling import node_watch, protocol, shapes
from rooms.signaling.context import ConnectionContext, RequestHandler, State
from rooms.signaling.media_relay import MediaRelay
from rooms.signaling.protocol import ProtocolError, Request
from sfu.app_settings import app_settings as sfu_settings

logger = logging.getLogger(__name__)

REPLACED_MESSAGE_TYPE = "signaling.replaced"


class Membership:
    def __init__(self, context: ConnectionContext, media: MediaRelay) -> None:
        self.context = context
        self.media = media
        self._heartbeat: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        # The lobby request this connection waits on (its id), and the timer that times it out.
        self._knock_id: int | None = None
        self._knock_timer: asyncio.Task[None] | None = None
        # The consumer makes the connection in its own task (connect). Whatever ends that task,
        # disconnect or not (an exception out of the consumer, a cancelled instance), ends the
        # heartbeat with it (a row is refreshed only while its connection really lives), and
        # its place among the node watch's followers.
        try:
            connection_task = asyncio.current_task()
        except RuntimeError:
            connection_task = None
        if connection_task is not None:
            connection_task.add_done_callback(lambda _task: self._connection_ended())

    def handlers(self) -> dict[str, RequestHandler]:
        return {
            "join": self._join,
            "cancelKnock": self._cancel_knock,
            "leave": self._leave,
            "changeDisplayName": self._change_display_name,
        }

    # --- join -------------------------------------------------------------------------------
    async def _join(self, request: Request) -> dict[str, Any]:
        context = self.context
        if context.state is State.JOINED:
            raise ProtocolError("already_joined", "This connection has already joined.")
        peer_id = protocol.check_peer_id(protocol.field(request.data, "peerId"))
        display_name = access.call_name(
            context.user,
            protocol.check_display_name(protocol.field(request.data, "displayName")),
        )
        try:
            await database_sync_to_async(presence.check_peer_owner)(
                context.meeting.pk, peer_id, context.user, context.guest_key
            )
        except presence.PeerIdTaken:
            raise ProtocolError("peer_id_taken", "Another participant uses this peerId.") from None
        refusal = await database_sync_to_async(admission_policy.refusal_at_join)(
            context.admission, context.user, context.guest_key, context.admission.session
        )
        if refusal is not None:
            if refusal.code == "lobby":
                await self._knock(peer_id, display_name)
            if refusal.close is not None:
                self._close_after_response(refusal.close)
            raise ProtocolError(refusal.code, refusal.reason)
        try:
            entry = await database_sync_to_async(presence.enter)(
                context.meeting,
                peer_id=peer_id,
                user=context.user,
                guest_key=context.guest_key,
                display_name=display_name,
                role=context.role,
                channel_name=context.channel_name,
                user_agent=context.user_agent,
            )
        except presence.PeerIdTaken:
            raise ProtocolError("peer_id_taken", "Another participant uses this peerId.") from None
        self._forget_knock()  # admitted (or let in otherwise): no longer waiting
        if entry.replaced_channel:
            await events.send_to_channel(
                entry.replaced_channel, {"type": REPLACED_MESSAGE_TYPE, "peer_id": peer_id}
            )
        # Before the SFU join, so that it gives the newcomer none of their media.
        await presence.clear_abandoned(context.meeting, context.gateway)
        context.state = State.JOINING
        context.peer_id = peer_id
        context.display_name = display_name
        self.media.start()
        try:
            sfu_join = await context.gateway.join(peer_id, context.channel_name, display_name)
        except BaseException:
            if context.state is not State.CLOSED:
                context.state = State.CONNECTED
            context.peer_id = None
            if not entry.resumed:
                await database_sync_to_async(presence.leave)(
                    context.meeting, peer_id, channel_name=context.channel_name
                )
            raise
        if not entry.resumed:
            await context.broadcast(
                "newPeer",
                {
                    "peerId": peer_id,
                    "displayName": display_name,
                    "isGuest": context.user is None,
                    "role": context.role,
                },
            )
        peers = await database_sync_to_async(presence.present_participants)(context.meeting.pk)
        recent_chat = await database_sync_to_async(_recent_chat)(context)
        # Raised hands (the queue) and reactions (on or off, which): rooms.together.
        together_state = await database_sync_to_async(together.call_state)(context.meeting)
        # The host's spotlight for everyone (later changes: spotlightChanged).
        spotlight_state = await database_sync_to_async(spotlight.spotlight_state)(context.meeting)
        breakout_state = await database_sync_to_async(breakouts.call_state)(context.meeting)
        response = {
            "protocolVersion": protocol.PROTOCOL_VERSION,
            "peerId": peer_id,
            # The name this person goes by in the call (rooms.access.call_name): a signed-in
            # person's account name, whatever they typed.
            "displayName": display_name,
            "isGuest": context.user is None,
            "role": context.role,
            # Staff moderate any meeting without being its host: the client can't tell by role.
            "canModerate": context.admission.may_moderate,
            "peers": shapes.peer_list(peers, peer_id, sfu_join),
            "iceServers": shapes.ice_servers_for_browsers(),
            # Publish the camera as simulcast layers (docs/protocol.md, "Simulcast").
            "simulcast": sfu_settings.SIMULCAST,
            # The host controls' state, as the meeting is now (later changes: meetingLocked,
            # guestAccessChanged).
            "meeting": await database_sync_to_async(_meeting_state)(context),
            "chat": {"messages": recent_chat},
            **together_state,
            "spotlight": spotlight_state,
            # The meeting's breakout rooms, and which one this call is (rooms.breakouts).
            "breakouts": breakout_state,
            # The participant was still present (a reconnect inside the grace period): the
            # others saw no peerClosed/newPeer. Media always starts afresh: the SFU's join
            # replaced the old media session, so the client publishes again.
            "reconnected": entry.resumed,
            "resumed": False,
        }
        context.state = State.JOINED
        self._start_heartbeat(peer_id)
        node_watch.current().watch(self.media)
        # Assigned to an open breakout room (a reconnect, a late join): sent there again.
        move = await database_sync_to_async(breakouts.pending_move)(
            context.meeting, context.user, context.guest_key_if_guest
        )
        if move is not None:
            self._notify_after_response(*move)
        return response

    def _notify_after_response(self, method: str, data: dict[str, Any]) -> None:
        """A notification that must follow this request's response (the client acts on it
        once joined): queued as the next job, as _close_after_response does."""
        context = self.context

        async def notify() -> None:
            await context.send(protocol.notification(method, data))

        context.enqueue(notify)

    def _close_after_response(self, code: int) -> None:
        """Close with `code` once the refused join has had its response: the client learns
        why from the errorCode, and the close code tells it (and its reconnect logic) that
        nothing this socket can do would help. This request runs as a job of the connection's
        queue, so a job queued now runs after its response is sent."""
        context = self.context

        async def close() -> None:
            await context.close(code)

        if not context.enqueue(close):
            # A full queue (a flooding client): close now, without waiting for the response.
            self._closing = asyncio.get_running_loop().create_task(close())

    async def _knock(self, peer_id: str, display_name: str) -> None:
        """The lobby: the person asks to enter and waits on this connection for
        "lobbyAdmitted" (then joins again), "lobbyDenied" or "lobbyTimedOut" (after
        ROOMS_LOBBY_WAIT_SECONDS), or withdraws ("cancelKnock", or the socket closes)."""
        context = self.context
        if self._knock_id is not None and context.peer_id not in (None, peer_id):
            await self._withdraw_knock()  # knocking again as another tab id: the old one goes
        context.peer_id = peer_id  # so that lobby events targeted at this peer reach us
        request = await database_sync_to_async(moderation.request_entry)(
            context.meeting,
            display_name=display_name,
            peer_id=peer_id,
            user=context.user,
            guest_key=context.guest_key_if_guest,
        )
        if request.pk == self._knock_id and self._knock_timer is not None:
            return  # the same knock again (a retried join): its timer runs already
        self._forget_knock()
        self._knock_id = request.pk
        waited = (timezone.now() - request.requested_at).total_seconds()
        delay = max(0.0, moderation.lobby_wait_seconds() - waited)
        self._knock_timer = asyncio.get_running_loop().create_task(
            self._time_out_knock(request.pk, peer_id, delay)
        )

    async def _time_out_knock(self, request_id: int, peer_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._knock_id != request_id:
            return
        self._knock_id = None
        try:
            await database_sync_to_async(moderation.expire_entry)(
                self.context.meeting, request_id, peer_id=peer_id
            )
        except Exception:
            logger.exception("timing out lobby request %s failed", request_id)

    def lobby_answered(self, request_id: object) -> None:
        """The waiting peer was answered (admitted, denied, timed out, or the meeting ended):
        stop waiting; an admitted person's next join goes ahead."""
        if request_id is None or request_id == self._knock_id:
            self._forget_knock()

    def _forget_knock(self) -> None:
        self._knock_id = None
        timer = self._knock_timer
        if timer is not None and not timer.done() and timer is not asyncio.current_task():
            timer.cancel()
        self._knock_timer = None

    async def _withdraw_knock(self) -> bool:
        """Withdraw this connection's waiting request, if any: the moderators' notice goes."""
        request_id, peer_id = self._knock_id, self.context.peer_id
        self._forget_knock()
        if request_id is None or peer_id is None:
            return False
        withdrawn = await database_sync_to_async(moderation.withdraw_entry)(
            self.context.meeting, request_id, peer_id=peer_id
        )
        return withdrawn is not None

    async def _cancel_knock(self, request: Request) -> dict[str, Any]:
        """The person cancels ("Cancel") while asking to be let in: the request is withdrawn.
        The socket stays open and may ask again (join)."""
        context = self.context
        if context.state is State.JOINED:
            raise ProtocolError("already_joined", "This connection has already joined.")
        if self._knock_id is None:
            raise ProtocolError("not_waiting", "There is no request to join to cancel.")
        await self._withdraw_knock()
        context.peer_id = None
        return {}

    # --- staying ----------------------------------------------------------------------------
    def _start_heartbeat(self, peer_id: str) -> None:
        self._stop_heartbeat()
        self._heartbeat = asyncio.create_task(self._keep_alive(peer_id))

    def _connection_ended(self) -> None:
        """The connection's task is over, however it ended: no more heartbeats, and its media
        no longer follows the room to another node (node_watch)."""
        self._stop_heartbeat()
        node_watch.current().unwatch(self.media)

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None and not self._heartbeat.done():
            self._heartbeat.cancel()
        self._heartbeat = None

    async def _keep_alive(self, peer_id: str) -> None:
        """Refresh this connection's presence row every PRESENCE_HEARTBEAT_SECONDS while
        joined, so the presence sweep can tell it from one whose web process died."""
        context = self.context
        channel = context.channel_name
        while True:
            await asyncio.sleep(presence.heartbeat_seconds())
            if context.state is not State.JOINED or context.peer_id != peer_id:
                return
            try:
                liveness = await database_sync_to_async(presence.heartbeat)(
                    context.meeting.pk, peer_id, channel
                )
            except Exception:
                # The sweep waits for several missed heartbeats: the next one may get through.
                logger.warning("presence heartbeat failed in room %s", context.code, exc_info=True)
                continue
            if liveness is presence.Liveness.TAKEN_OVER:
                return  # another connection has the peer; signaling.replaced closes this one
            if liveness is presence.Liveness.GONE:
                if context.state is not State.JOINED or context.peer_id != peer_id:
                    return  # left meanwhile, on purpose
                # The sweep took this peer for gone (this process stalled for several
                # heartbeats): the others got peerClosed, the SFU peer is closed. 4500 makes
                # the client reconnect and join again, as a new peer for the others.
                logger.warning(
                    "peer %s in room %s was swept out while connected; closing",
                    peer_id,
                    context.code,
                )
                await context.close(protocol.CLOSE_SERVER_ERROR)
                return

    async def _change_display_name(self, request: Request) -> dict[str, Any]:
        context = self.context
        peer_id = context.require_joined()
        name = protocol.check_display_name(protocol.field(request.data, "displayName"))
        if context.user is not None:
            raise ProtocolError(
                "name_from_account",
                "Your name in calls is your account's name; change it in your preferences.",
            )
        await database_sync_to_async(presence.rename)(
            context.meeting.pk, peer_id, context.channel_name, name
        )
        context.display_name = name
        await context.broadcast("peerDisplayNameChanged", {"peerId": peer_id, "displayName": name})
        return {}

    # --- leaving ----------------------------------------------------------------------------
    async def _leave(self, request: Request) -> dict[str, Any]:
        self.context.require_joined()
        await self.depart()
        return {}

    async def depart(self) -> None:
        """Leave for good now (leave request, removal, meeting ended): no grace period."""
        context = self.context
        if context.state not in (State.JOINED, State.JOINING) or context.peer_id is None:
            return
        peer_id = context.peer_id
        context.state = State.CONNECTED
        context.peer_id = None
        self._stop_heartbeat()
        node_watch.current().unwatch(self.media)
        self.media.forget()
        await presence.finish_departure(
            context.meeting, context.gateway, peer_id, channel_name=context.channel_name
        )

    async def replaced(self) -> None:
        """Another connection took this peer over: close without leaving."""
        self.context.state = State.CLOSED
        self._stop_heartbeat()
        node_watch.current().unwatch(self.media)
        await self.context.close(protocol.CLOSE_REPLACED)

    async def disconnected(self) -> None:
        """The WebSocket is gone. A joined peer stays present for the grace period, so a
        reconnect resumes it; only then does it leave (peerClosed to the others)."""
        context = self.context
        was_joined = context.state in (State.JOINED, State.JOINING)
        context.state = State.CLOSED
        self._stop_heartbeat()
        node_watch.current().unwatch(self.media)
        await context.stop_work()
        if self._knock_id is not None:
            # Asking to join in a tab that went away (closed, reloaded, lost): as Meet, the
            # hosts' notice of it goes; a reconnecting client asks again.
            try:
                await self._withdraw_knock()
            except Exception:
                logger.warning("withdrawing a knock in room %s failed", context.code, exc_info=True)
        if not was_joined or context.peer_id is None:
            return
        channel = context.channel_name
        still_ours = await database_sync_to_async(presence.mark_disconnected)(
            context.meeting.pk, context.peer_id, channel
        )
        if still_ours:
            presence.schedule_grace_expiry(
                context.meeting,
                context.gateway,
                context.peer_id,
                channel,
                presence.grace_seconds(),
            )


def _meeting_state(context: ConnectionContext) -> dict[str, Any]:
    """What the host controls show: the lock, and who may ask to join."""
    meeting = Meeting.objects.filter(pk=context.meeting.pk).first() or context.meeting
    return {
        "locked": meeting.locked,
        "accessPolicy": meeting.access_policy,
        "guestsMayAsk": moderation.guests_may_ask(meeting),
    }


def _recent_chat(context: ConnectionContext) -> list[dict[str, Any]]:
    return [chat.message_dict(message) for message in chat.recent_messages(context.meeting)]
