"""The call's signaling server: frames (protocol), one participant's connection
(participant_connection, over a shared context: membership, media_relay, chat_requests,
moderation_requests, room_event_relay) and the relay to the room's SFU node (sfu_gateway).
rooms.consumers is the thin WebSocket shell around them; docs/protocol.md is the reference for
clients. Who is present is the domain's (rooms.presence)."""
