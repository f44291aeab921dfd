"""The call's signaling server: frames (protocol), one participant's connection
(participant_connection, over a shared context: membership, media_relay, chat_requests,
moderation_requests, room_event_relay). rooms.consumers is the thin WebSocket shell around
them; docs/protocol.md is the reference for clients. Who is present is the domain's
(rooms.presence); the link to the room's SFU node is rooms.sfu_gateway."""
