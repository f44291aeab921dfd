"""The moderators' requests on the signaling socket: each one validates its data and calls one
function of rooms.moderation (or chat.services), which checks that the actor may moderate and
sends the room events. Nothing is decided here (docs/chat-and-moderation.md).

Synchronous (ORM); the session runs them through database_sync_to_async and turns
PermissionDenied / ValidationError into error responses with the domain's code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rooms import moderation
from rooms.models import LobbyRequest, Meeting
from rooms.signaling import protocol
from rooms.signaling.protocol import ProtocolError

ModerationRequest = Callable[[Meeting, Any, dict[str, Any]], dict[str, Any]]


def mute_participant(meeting: Meeting, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    peer_id = protocol.check_peer_id(protocol.field(data, "peerId"))
    moderation.mute_participant(actor, meeting, peer_id)
    return {}


def remove_participant(meeting: Meeting, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Who the peer is (user or guest key) is read from presence by rooms.moderation."""
    peer_id = protocol.check_peer_id(protocol.field(data, "peerId"))
    moderation.remove_participant(actor, meeting, peer_id=peer_id)
    return {}


def lock_meeting(meeting: Meeting, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    locked = protocol.field(data, "locked")
    if not isinstance(locked, bool):
        raise ProtocolError("invalid_data", "locked must be true or false")
    moderation.set_locked(actor, meeting, locked)
    return {"locked": locked}


def admit_entry(meeting: Meeting, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    moderation.admit(actor, _lobby_request(meeting, actor, data))
    return {}


def deny_entry(meeting: Meeting, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    moderation.deny(actor, _lobby_request(meeting, actor, data))
    return {}


def lobby_requests(meeting: Meeting, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Who is waiting now (a moderator who joins late is shown them)."""
    moderation.check_can_moderate(actor, meeting)
    return {
        "requests": [moderation.lobby_request_dict(r) for r in moderation.waiting_requests(meeting)]
    }


def delete_chat_message(meeting: Meeting, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    from chat import services as chat

    message = chat.message_in_meeting(meeting, protocol.field(data, "messageId"))
    chat.delete_message(actor, message)
    return {}


def end_meeting(meeting: Meeting, actor: Any, data: dict[str, Any]) -> dict[str, Any]:
    moderation.end_meeting(actor, meeting)
    return {}


def _lobby_request(meeting: Meeting, actor: Any, data: dict[str, Any]) -> LobbyRequest:
    moderation.check_can_moderate(actor, meeting)
    request_id = protocol.field(data, "requestId")
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        raise ProtocolError("invalid_data", "requestId must be a lobby request's id")
    request = LobbyRequest.objects.filter(pk=request_id, meeting=meeting).first()
    if request is None:
        raise ProtocolError("unknown_request", "There is no such lobby request.")
    return request


METHODS: dict[str, ModerationRequest] = {
    "muteParticipant": mute_participant,
    "removeParticipant": remove_participant,
    "lockMeeting": lock_meeting,
    "admitEntry": admit_entry,
    "denyEntry": deny_entry,
    "lobbyRequests": lobby_requests,
    "deleteChatMessage": delete_chat_message,
    "endMeeting": end_meeting,
}
