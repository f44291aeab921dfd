"""The baseline for bench/sfu.py: aiortc's MediaRelay behind the SFU node's channel API.

    python bench/sfu_relay.py CHANNEL

Answers the subset of the node API the benchmark uses (join, produce, receiveAnswer, leave,
dump) on CHANNEL. A publisher's tracks are received the ordinary aiortc way (decoded once) and
fanned out with aiortc.contrib.media.MediaRelay to one offering peer connection per
subscriber, whose RTCRtpSender encodes again for each subscriber: what an aiortc "SFU" costs
without forwarding. One producer set per room, published before subscribers arrive (enough for
the benchmark; no renegotiation when more producers appear).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The repository first: bench/sfu.py must not shadow the sfu package.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")

import sfu_media
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack
from channels.layers import get_channel_layer

from sfu.channel_api import (
    MalformedRequest,
    error_response,
    ok_response,
    parse_request,
)

logger = logging.getLogger("bench.relay")


@dataclass
class Room:
    peers: dict[str, str] = field(default_factory=dict)  # peer_id -> peer channel
    publishers: dict[str, RTCPeerConnection] = field(default_factory=dict)
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    subscriptions: dict[str, RTCPeerConnection] = field(default_factory=dict)


class RelayNode:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.layer = get_channel_layer()
        self.relay = MediaRelay()
        self.rooms: dict[str, Room] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self.tasks.discard)

    async def serve(self) -> None:
        while True:
            message = await self.layer.receive(self.channel)
            self.spawn(self.handle(message))

    async def handle(self, message: object) -> None:
        try:
            req = parse_request(message)
        except MalformedRequest as exc:
            if exc.reply_to:
                await self.layer.send(
                    exc.reply_to, error_response(exc.request_id, "bad_request", str(exc))
                )
            return
        handler = getattr(self, f"on_{req.method}", None)
        try:
            if handler is None:
                raise ValueError(f"unknown method {req.method}")
            response = ok_response(req.id, await handler(req.data))
        except Exception as exc:
            logger.exception("%s failed", req.method)
            response = error_response(req.id, "error", repr(exc))
        await self.layer.send(req.reply_to, response)

    async def on_join(self, data: dict[str, Any]) -> dict[str, Any]:
        room = self.rooms.setdefault(data["room"], Room())
        room.peers[data["peer_id"]] = data["peer_channel"]
        if room.tracks:
            self.spawn(self.subscribe(data["room"], data["peer_id"]))
        return {"peers": []}

    async def on_produce(self, data: dict[str, Any]) -> dict[str, Any]:
        room = self.rooms[data["room"]]
        pc = sfu_media.new_peer_connection()
        room.publishers[data["peer_id"]] = pc
        tracks: list[MediaStreamTrack] = []
        pc.on("track", tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        room.tracks.extend(tracks)
        for peer_id in room.peers:
            if peer_id not in room.publishers and peer_id not in room.subscriptions:
                self.spawn(self.subscribe(data["room"], peer_id))
        producers = [
            {
                "producer_id": uuid.uuid4().hex,
                "mid": t.mid,
                "kind": t.kind,
                "source": "",
                "paused": False,
            }
            for t in pc.getTransceivers()
        ]
        return {"sdp": pc.localDescription.sdp, "producers": producers}

    async def subscribe(self, room_name: str, peer_id: str) -> None:
        room = self.rooms[room_name]
        pc = sfu_media.new_peer_connection()
        room.subscriptions[peer_id] = pc
        for track in room.tracks:
            pc.addTransceiver(self.relay.subscribe(track, buffered=False), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        await self.layer.send(
            room.peers[peer_id],
            {
                "type": "sfu.event",
                "room": room_name,
                "peer_id": peer_id,
                "event": "negotiate",
                "data": {
                    "negotiation_id": uuid.uuid4().hex,
                    "sdp": pc.localDescription.sdp,
                    "consumers": [],
                },
            },
        )

    async def on_receiveAnswer(self, data: dict[str, Any]) -> dict[str, Any]:
        pc = self.rooms[data["room"]].subscriptions[data["peer_id"]]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="answer"))
        return {}

    async def on_leave(self, data: dict[str, Any]) -> dict[str, Any]:
        room = self.rooms.get(data["room"])
        if room is None:
            return {}
        room.peers.pop(data["peer_id"], None)
        for connections in (room.subscriptions, room.publishers):
            pc = connections.pop(data["peer_id"], None)
            if pc is not None:
                await pc.close()
        if not room.peers:
            self.rooms.pop(data["room"], None)
        return {}

    async def on_dump(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "rooms": len(self.rooms),
            "subscriptions": sum(len(r.subscriptions) for r in self.rooms.values()),
        }


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sfu_media.loopback_only()
    node = RelayNode(sys.argv[1])
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    server = asyncio.create_task(node.serve())
    await stopping.wait()
    server.cancel()


if __name__ == "__main__":
    asyncio.run(main())
