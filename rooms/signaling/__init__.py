"""The call's signaling server: frames (protocol), the per-connection state machine
(room_session), the relay to the room's SFU node (sfu_gateway) and who is in each room
(presence). rooms.consumers is the thin WebSocket shell around them; docs/protocol.md is the
reference for clients."""
