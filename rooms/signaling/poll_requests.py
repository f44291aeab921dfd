"""Polls on the signaling socket: each request checks its data's types and calls one function
of rooms.polls, which decides who may do what, checks lengths and counts, and sends the room
events. Nothing is decided here (docs/protocol.md, "Polls")."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from rooms import polls
from rooms.models import MAX_POLL_OPTIONS
from rooms.signaling import protocol
from rooms.signaling.context import ConnectionContext, RequestHandler
from rooms.signaling.protocol import ProtocolError, Request

# Ids are database keys; anything past this is no poll of ours (and JSON's safe integers end
# at 2**53 anyway).
MAX_POLL_ID = 2**53


def poll_handlers(context: ConnectionContext) -> dict[str, RequestHandler]:
    def voter() -> polls.Voter:
        return polls.Voter(
            user=context.user, guest_key=context.guest_key_if_guest, name=context.display_name
        )

    async def create_poll(request: Request) -> dict[str, Any]:
        peer_id = context.require_joined()
        question = protocol.field(request.data, "question")
        options = protocol.field(request.data, "options")
        anonymous = request.data.get("anonymous", False)
        if not isinstance(question, str):
            raise ProtocolError("invalid_data", "question must be a string")
        # Checked for shape here; the counts (2 to 10) and lengths in rooms.polls. A list far
        # longer than any poll is refused before anything walks it.
        if (
            not isinstance(options, list)
            or len(options) > 2 * MAX_POLL_OPTIONS
            or not all(isinstance(option, str) for option in options)
        ):
            raise ProtocolError("invalid_data", "options must be a list of strings")
        if not isinstance(anonymous, bool):
            raise ProtocolError("invalid_data", "anonymous must be true or false")
        poll = await database_sync_to_async(polls.create_poll)(
            context.user,
            context.meeting,
            peer_id=peer_id,
            question=question,
            options=options,
            anonymous=anonymous,
        )
        return {"poll": poll}

    async def vote(request: Request) -> dict[str, Any]:
        peer_id = context.require_joined()
        poll_id = _check_poll_id(protocol.field(request.data, "pollId"))
        option_index = protocol.field(request.data, "optionIndex")
        if (
            isinstance(option_index, bool)
            or not isinstance(option_index, int)
            or not 0 <= option_index < MAX_POLL_OPTIONS
        ):
            raise ProtocolError(
                "invalid_data", f"optionIndex must be an integer from 0 to {MAX_POLL_OPTIONS - 1}"
            )
        return await database_sync_to_async(polls.vote)(
            context.meeting,
            peer_id=peer_id,
            voter=voter(),
            poll_id=poll_id,
            option_index=option_index,
        )

    async def close_poll(request: Request) -> dict[str, Any]:
        peer_id = context.require_joined()
        poll_id = _check_poll_id(protocol.field(request.data, "pollId"))
        poll = await database_sync_to_async(polls.close_poll)(
            context.user, context.meeting, peer_id=peer_id, poll_id=poll_id
        )
        return {"poll": poll}

    async def get_polls(request: Request) -> dict[str, Any]:
        peer_id = context.require_joined()
        found = await database_sync_to_async(polls.polls_for)(
            context.user, context.meeting, peer_id=peer_id, voter=voter()
        )
        return {"polls": found}

    return {
        "createPoll": create_poll,
        "vote": vote,
        "closePoll": close_poll,
        "getPolls": get_polls,
    }


def _check_poll_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_POLL_ID:
        raise ProtocolError("invalid_data", "pollId must be a positive integer")
    return value
