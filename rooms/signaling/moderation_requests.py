"""The moderators' requests on the signaling socket: each one validates its data and calls one
function of rooms.moderation (or chat.services), which checks that the actor may moderate and
sends the room events. Nothing is decided here (docs/chat-and-moderation.md).

Each runs synchronously (ORM) through database_sync_to_async; PermissionDenied and
ValidationError become error responses with the domain's code. Each passes origin "call" for
the audit log (rooms.audit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async

from chat import services as chat
from rooms import moderation
from rooms.access import Actor
from rooms.audit import Origin
from rooms.models import LobbyRequest, Meeting
from rooms.signaling import protocol
from rooms.signaling.context import ConnectionContext, RequestHandler
from rooms.signaling.protocol import ProtocolError, Request

ModerationRequest = Callable[[Meeting, Actor, dict[str, Any]], dict[str, Any]]


def mute_participant(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    peer_id = protocol.check_peer_id(protocol.field(data, "peerId"))
    moderation.mute_participant(actor, meeting, peer_id, origin=Origin.CALL)
    return {}


def remove_participant(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Who the peer is (user or guest key) is read from presence by rooms.moderation."""
    peer_id = protocol.check_peer_id(protocol.field(data, "peerId"))
    moderation.remove_participant(actor, meeting, peer_id=peer_id, origin=Origin.CALL)
    return {}


def lock_meeting(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    locked = protocol.field(data, "locked")
    if not isinstance(locked, bool):
        raise ProtocolError("invalid_data", "locked must be true or false")
    moderation.set_locked(actor, meeting, locked, origin=Origin.CALL)
    return {"locked": locked}


def set_guest_access(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    allowed = protocol.field(data, "allowed")
    if not isinstance(allowed, bool):
        raise ProtocolError("invalid_data", "allowed must be true or false")
    moderation.set_guest_access(actor, meeting, allowed, origin=Origin.CALL)
    return {"allowed": allowed}


def admit_entry(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    moderation.admit(actor, _lobby_request(meeting, actor, data), origin=Origin.CALL)
    return {}


def deny_entry(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    moderation.deny(actor, _lobby_request(meeting, actor, data), origin=Origin.CALL)
    return {}


def lobby_requests(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Who is waiting now (a moderator who joins late is shown them)."""
    moderation.check_can_moderate(actor, meeting)
    return {
        "requests": [moderation.lobby_request_dict(r) for r in moderation.waiting_requests(meeting)]
    }


def delete_chat_message(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    message = chat.message_in_meeting(meeting, protocol.field(data, "messageId"))
    chat.delete_message(actor, message, origin=Origin.CALL)
    return {}


def end_meeting(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    moderation.end_meeting(actor, meeting, origin=Origin.CALL)
    return {}


def _lobby_request(meeting: Meeting, actor: Actor, data: dict[str, Any]) -> LobbyRequest:
    # Moderators first: someone else learns nothing about which request ids exist.
    moderation.check_can_moderate(actor, meeting)
    return moderation.lobby_request_in_meeting(meeting, protocol.field(data, "requestId"))


METHODS: dict[str, ModerationRequest] = {
    "muteParticipant": mute_participant,
    "removeParticipant": remove_participant,
    "lockMeeting": lock_meeting,
    "setGuestAccess": set_guest_access,
    "admitEntry": admit_entry,
    "denyEntry": deny_entry,
    "lobbyRequests": lobby_requests,
    "deleteChatMessage": delete_chat_message,
    "endMeeting": end_meeting,
}


def moderation_handlers(context: ConnectionContext) -> dict[str, RequestHandler]:
    def handler(function: ModerationRequest) -> RequestHandler:
        async def handle(request: Request) -> dict[str, Any]:
            context.require_joined()
            return await database_sync_to_async(function)(
                context.meeting, context.user, request.data
            )

        return handle

    return {method: handler(function) for method, function in METHODS.items()}
