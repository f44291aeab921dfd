"""Raised hands, reactions and the host's spotlight on the signaling socket: each request checks
its data's shape and calls one function of rooms.together (rooms.spotlight), which decides who
may do what and sends the room events. Nothing is decided here (docs/protocol.md, "Raised hands
and reactions", "Spotlight")."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from rooms import spotlight, together
from rooms.signaling import protocol
from rooms.signaling.context import ConnectionContext, RequestHandler
from rooms.signaling.protocol import ProtocolError, Request

# The longest reaction is a few code points; anything longer is not one.
MAX_EMOJI_LENGTH = 16


def together_handlers(context: ConnectionContext) -> dict[str, RequestHandler]:
    async def raise_hand(request: Request) -> dict[str, Any]:
        peer_id = context.require_joined()
        return await database_sync_to_async(together.raise_hand)(
            context.meeting, peer_id, user=context.user, guest_key=context.guest_key_if_guest
        )

    async def lower_hand(request: Request) -> dict[str, Any]:
        """Without `peerId` (or with one's own): one's own hand; with another's: a moderator's
        request."""
        own = context.require_joined()
        target = request.data.get("peerId")
        peer_id = own if target is None else protocol.check_peer_id(target)
        return await database_sync_to_async(together.lower_hand)(
            context.user,
            context.meeting,
            by_peer_id=own,
            peer_id=peer_id,
            guest_key=context.guest_key_if_guest,
        )

    async def lower_all_hands(request: Request) -> dict[str, Any]:
        own = context.require_joined()
        return await database_sync_to_async(together.lower_all_hands)(
            context.user, context.meeting, by_peer_id=own
        )

    async def send_reaction(request: Request) -> dict[str, Any]:
        peer_id = context.require_joined()
        emoji = protocol.field(request.data, "emoji")
        if not isinstance(emoji, str) or not 0 < len(emoji) <= MAX_EMOJI_LENGTH:
            raise ProtocolError("invalid_data", "emoji must be one of the reactions")
        return await database_sync_to_async(together.send_reaction)(
            context.meeting,
            peer_id,
            user=context.user,
            guest_key=context.guest_key_if_guest,
            emoji=emoji,
        )

    async def set_reactions_enabled(request: Request) -> dict[str, Any]:
        context.require_joined()
        enabled = protocol.field(request.data, "enabled")
        if not isinstance(enabled, bool):
            raise ProtocolError("invalid_data", "enabled must be true or false")
        await database_sync_to_async(together.set_reactions_enabled)(
            context.user, context.meeting, enabled
        )
        return {"enabled": enabled}

    async def set_spotlight(request: Request) -> dict[str, Any]:
        """`peerId`: the participant to put on everyone's stage; null removes the spotlight."""
        own = context.require_joined()
        target = protocol.field(request.data, "peerId")
        peer_id = None if target is None else protocol.check_peer_id(target)
        return await database_sync_to_async(spotlight.set_spotlight)(
            context.user, context.meeting, peer_id, by_peer_id=own
        )

    return {
        "spotlight": set_spotlight,
        "raiseHand": raise_hand,
        "lowerHand": lower_hand,
        "lowerAllHands": lower_all_hands,
        "sendReaction": send_reaction,
        "setReactionsEnabled": set_reactions_enabled,
    }
