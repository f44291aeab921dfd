"""Room events (rooms.events) as one connection hears them: which are for this participant,
and what a few of them do besides reaching the client — a host's mute pauses the microphone,
a removal or the meeting's end makes the participant leave and closes the socket. Signing out
(rooms.signaling.sign_out) does the same."""

from __future__ import annotations

from typing import Any

from rooms.events import MODERATORS
from rooms.signaling import protocol
from rooms.signaling.context import ConnectionContext, State
from rooms.signaling.media_relay import MediaRelay
from rooms.signaling.membership import Membership

# Peer notifications about oneself are not sent back to oneself.
PEER_EVENTS = frozenset({"newPeer", "peerClosed", "peerDisplayNameChanged"})
# The lobby's answers to a waiting peer.
LOBBY_ANSWERS = frozenset({"lobbyAdmitted", "lobbyDenied", "lobbyTimedOut"})
# Events that end this participant's time in the call, with the close code that says why.
DEPARTING_EVENTS = {"removed": protocol.CLOSE_REMOVED, "meetingEnded": protocol.CLOSE_ENDED}


class RoomEventRelay:
    def __init__(
        self, context: ConnectionContext, membership: Membership, media: MediaRelay
    ) -> None:
        self.context = context
        self.membership = membership
        self.media = media

    def is_for_me(self, message: dict[str, Any]) -> bool:
        context = self.context
        target_peer = message.get("target_peer_id")
        if target_peer is not None and target_peer != context.peer_id:
            return False
        target_user = message.get("target_user_id")
        if target_user is not None and (context.user is None or context.user.pk != target_user):
            return False
        return not (message.get("audience") == MODERATORS and not context.admission.may_moderate)

    async def relay(self, message: dict[str, Any]) -> None:
        context = self.context
        event = message.get("event")
        data = message.get("data") or {}
        if (
            not isinstance(event, str)
            or not isinstance(data, dict)
            or context.state is State.CLOSED
        ):
            return
        if not self.is_for_me(message):
            return
        if context.state is State.JOINING:
            # Joining: the join's response (its peer list) is being made. What happens in the
            # room meanwhile comes after it, in order, rather than being lost between the peer
            # list and the end of the join: many people joining at once (breakout rooms
            # closing) would otherwise miss each other. The job runs once the response is sent.
            async def after_join() -> None:
                await self.relay(message)

            context.enqueue(after_join)
            return
        if context.state is not State.JOINED:
            # Not in the call (yet): only what is addressed to this peer, e.g. the lobby's
            # lobbyAdmitted / lobbyDenied / lobbyTimedOut while waiting, or meetingEnded (the
            # meeting ended for all while this person asked to join: closed with 4410 too).
            if message.get("target_peer_id") is None or context.peer_id is None:
                return
            if event in LOBBY_ANSWERS:
                self.membership.lobby_answered(data.get("requestId"))
            await context.send(protocol.notification(event, data))
            if event in DEPARTING_EVENTS:
                self.membership.lobby_answered(None)
                await context.close(DEPARTING_EVENTS[event])
            return
        if event in PEER_EVENTS and data.get("peerId") == context.peer_id:
            return
        if event == "muteRequested":
            await self.media.pause_microphones()
        elif event in DEPARTING_EVENTS:
            await context.send(protocol.notification(event, data))
            await self.membership.depart()
            await context.close(DEPARTING_EVENTS[event])
        else:
            await context.send(protocol.notification(event, data))

    async def signed_out(self) -> None:
        """The user signed out of the session this socket was opened with: leave at once, as a
        removal does (presence, the SFU peer, peerClosed to the others), and close with 4401
        so the client sends them to sign in rather than reconnecting."""
        if self.context.state is State.CLOSED:
            return
        await self.membership.depart()
        await self.context.close(protocol.CLOSE_UNAUTHENTICATED)
