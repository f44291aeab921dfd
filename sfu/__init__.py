"""The media server: aiortc peer connections that forward RTP without transcoding.

Each `runsfu` process is one SFU node with its own channel-layer channel (`sfu.<node>`); it
registers in the database, heartbeats, and serves requests from the signaling consumers.
"""
