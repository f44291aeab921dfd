"""Subscriber load process for bench/sfu.py (not run by hand).

Reads one JSON command per line on stdin and answers one JSON line on stdout. It holds K
lightweight aiortc subscribers: each joins a room on a node over the channel layer, answers the
node's `negotiate` offers, and counts the RTP packets it receives below the decoder (see
sfu_media.hook_received), so the load clients cost far less than decoding would. The first
subscriber of a room may decode, to prove the picture. It also hosts the direct
publisher->subscriber connection that is the latency baseline.

`feedback` ("add" and "direct" commands; "none" when absent): the RTCP the counting
subscribers send back. "none": nothing; "browser": what Chrome sends on such a connection
(sfu_media.BrowserFeedback), so the SFU pays for receiving and handling feedback as it does with
real browsers. The direct baseline connection takes the same setting, so the subtraction of its
latency stays like for like.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

# The repository first: bench/sfu.py must not shadow the sfu package.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")

import sfu_media
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from channels.layers import get_channel_layer

from sfu.channel_api import request

logger = logging.getLogger("bench.clients")
REQUEST_TIMEOUT = 30.0


class Decoded:
    """What the decoding subscriber's tracks produced."""

    def __init__(self) -> None:
        self.video_frames = 0
        self.audio_frames = 0
        self.sizes: dict[str, int] = {}

    def reset(self) -> None:
        self.video_frames = 0
        self.audio_frames = 0
        self.sizes = {}

    def report(self) -> dict[str, Any]:
        return {
            "video_frames": self.video_frames,
            "audio_frames": self.audio_frames,
            "sizes": self.sizes,
        }


class Subscriber:
    def __init__(
        self, node: str, room: str, peer_id: str, decode: bool, feedback: str = "none"
    ) -> None:
        if feedback not in sfu_media.FEEDBACK_MODES:
            raise ValueError(f"feedback must be one of {sfu_media.FEEDBACK_MODES}")
        self.node = node
        self.room = room
        self.peer_id = peer_id
        self.decode = decode
        self.feedback = feedback
        self.path = "sfu"
        self.counter = sfu_media.StreamCounter()
        self.decoded = Decoded()
        self.pc: RTCPeerConnection | None = None
        self.channel = ""
        self.tasks: list[asyncio.Task[None]] = []
        self.negotiations = 0
        self.error = ""

    async def join(self) -> None:
        layer = get_channel_layer()
        self.channel = (
            await layer.new_channel()
        )  # one prefix per process: channels_redis pops only the lock holder's prefix
        self.tasks.append(asyncio.create_task(self._events()))
        await request(
            self.node,
            "join",
            {
                "room": self.room,
                "peer_id": self.peer_id,
                "peer_channel": self.channel,
                "display_name": f"load {self.peer_id}",
            },
            timeout=REQUEST_TIMEOUT,
        )

    async def _events(self) -> None:
        layer = get_channel_layer()
        while True:
            message = await layer.receive(self.channel)
            if message.get("event") != "negotiate":
                continue
            try:
                await self._negotiate(message.get("data") or {})
            except Exception as exc:  # keep the load running; the status shows it
                logger.exception("negotiation failed for %s", self.peer_id)
                self.error = repr(exc)

    async def _negotiate(self, data: dict[str, Any]) -> None:
        if self.pc is None:
            self.pc = sfu_media.new_peer_connection()
            if self.decode:
                self.pc.on("track", self._consume)
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="offer"))
        self.counter.kinds = sfu_media.payload_kinds(data["sdp"])
        await pc.setLocalDescription(await self._create_answer(data["sdp"]))
        sfu_media.hook_received(pc, self.counter, decode=self.decode, feedback=self.feedback)
        await request(
            self.node,
            "receiveAnswer",
            {
                "room": self.room,
                "peer_id": self.peer_id,
                "negotiation_id": data.get("negotiation_id"),
                "sdp": pc.localDescription.sdp,
            },
            timeout=REQUEST_TIMEOUT,
        )
        self.negotiations += 1

    async def _create_answer(self, offer: str) -> RTCSessionDescription:
        """aiortc's answer; a browser-mode (counting) subscriber's as a browser would answer
        (transport-wide-cc kept where offered), since it then sends what a browser sends."""
        assert self.pc is not None
        answer = await self.pc.createAnswer()
        if self.feedback == "browser" and not self.decode:
            answer = RTCSessionDescription(
                sdp=sfu_media.browser_answer(offer, answer.sdp), type=answer.type
            )
        return answer

    def _consume(self, track: MediaStreamTrack) -> None:
        async def read() -> None:
            try:
                while True:
                    frame = await track.recv()
                    now = time.monotonic()
                    if not self.counter.window_start <= now < self.counter.window_end:
                        continue
                    if track.kind == "video":
                        self.decoded.video_frames += 1
                        size = f"{frame.width}x{frame.height}"  # type: ignore[union-attr]
                        self.decoded.sizes[size] = self.decoded.sizes.get(size, 0) + 1
                    else:
                        self.decoded.audio_frames += 1
            except MediaStreamError:
                return

        self.tasks.append(asyncio.create_task(read()))

    async def leave(self) -> None:
        try:
            await request(
                self.node, "leave", {"room": self.room, "peer_id": self.peer_id}, timeout=10
            )
        except Exception as exc:
            logger.warning("leave failed for %s: %s", self.peer_id, exc)
        await self.close()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pc is not None:
            await self.pc.close()


class DirectSubscriber(Subscriber):
    """The baseline: the publisher's connection straight to this process, no SFU between."""

    def __init__(self, feedback: str = "none") -> None:
        super().__init__("", "", "direct", decode=False, feedback=feedback)
        self.path = "direct"

    async def answer(self, offer: str) -> str:
        self.pc = sfu_media.new_peer_connection()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        self.counter.kinds = sfu_media.payload_kinds(offer)
        await self.pc.setLocalDescription(await self._create_answer(offer))
        sfu_media.hook_received(self.pc, self.counter, decode=False, feedback=self.feedback)
        return self.pc.localDescription.sdp

    async def leave(self) -> None:
        await self.close()


class LoadProcess:
    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.window_started = 0.0

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command["cmd"]
        if name == "add":
            return await self.add(command)
        if name == "direct":
            direct = DirectSubscriber(feedback=command.get("feedback", "none"))
            sdp = await direct.answer(command["sdp"])
            self.subscribers.append(direct)
            return {"sdp": sdp}
        if name == "status":
            now = time.monotonic()
            receiving = [s for s in self.subscribers if now - s.counter.last_packet < 1.0]
            return {
                "subscribers": len(self.subscribers),
                "receiving": len(receiving),
                "errors": [s.error for s in self.subscribers if s.error][:3],
            }
        if name == "window":
            start, end = command["start"], command["end"]
            for subscriber in self.subscribers:
                subscriber.counter.open_window(start, end, command["sample_mask"])
                subscriber.decoded.reset()
            self.window_started = start
            return {}
        if name == "window_end":
            return self.window_report()
        if name == "leave_all":
            subscribers, self.subscribers = self.subscribers, []
            # Bounded: redis-py's asyncio pool refuses more than 100 connections at once.
            limit = asyncio.Semaphore(16)

            async def leave(subscriber: Subscriber) -> None:
                async with limit:
                    await subscriber.leave()

            await asyncio.gather(*(leave(s) for s in subscribers))
            return {"left": len(subscribers)}
        raise ValueError(f"unknown command {name!r}")

    async def add(self, command: dict[str, Any]) -> dict[str, Any]:
        limit = asyncio.Semaphore(8)
        new = [
            Subscriber(
                command["node"],
                command["room"],
                peer_id,
                decode=peer_id in command.get("decode", []),
                feedback=command.get("feedback", "none"),
            )
            for peer_id in command["peer_ids"]
        ]
        self.subscribers.extend(new)

        async def join(subscriber: Subscriber) -> None:
            async with limit:
                try:
                    await subscriber.join()
                except Exception as exc:
                    subscriber.error = repr(exc)

        await asyncio.gather(*(join(s) for s in new))
        return {"added": len(new), "errors": [s.error for s in new if s.error][:3]}

    def window_report(self) -> dict[str, Any]:
        subscribers = []
        samples: dict[str, list[tuple[str, int, float]]] = {"sfu": [], "direct": []}
        decoded = None
        for subscriber in self.subscribers:
            subscribers.append(
                {
                    "peer_id": subscriber.peer_id,
                    "path": subscriber.path,
                    **subscriber.counter.report(),
                }
            )
            samples[subscriber.path].extend(subscriber.counter.samples)
            if subscriber.decode:
                decoded = subscriber.decoded.report()
        return {
            "subscribers": subscribers,
            "samples": samples,
            "decoded": decoded,
        }


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sfu_media.loopback_only()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    process = LoadProcess()
    for _ in itertools.count():
        line = await reader.readline()
        if not line:
            break
        command = json.loads(line)
        if command["cmd"] == "quit":
            await process.handle({"cmd": "leave_all"})
            break
        try:
            answer = {"ok": True, **await process.handle(command)}
        except Exception as exc:
            logger.exception("command %s failed", command.get("cmd"))
            answer = {"ok": False, "error": repr(exc)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
