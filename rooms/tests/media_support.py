"""A participant with aiortc peer connections that does what the browser client does with
media: publish with `produce`, answer the SFU's `newConsumer` offers on one receive
connection, count decoded frames, and publish again on fresh connections after `mediaReset`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from accounts.models import User
from rooms.models import Meeting
from rooms.tests.signaling_support import SignalingClient, session_cookie


def new_pc() -> RTCPeerConnection:
    # An explicit, empty ICE server list: nothing outside 127.0.0.1 is ever contacted.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class Browser:
    """A participant with aiortc peer connections, like the browser client."""

    def __init__(self, client: SignalingClient) -> None:
        self.client = client
        self.send_pc: RTCPeerConnection | None = None
        self.recv_pc: RTCPeerConnection | None = None
        self.consumers: dict[str, dict[str, Any]] = {}
        self.frames: dict[str, int] = {}  # by track kind
        self._tasks: list[asyncio.Task[None]] = []
        self.frame_times: dict[str, list[float]] = {}  # by track kind: when each was decoded
        self.tracks: Callable[[], dict[str, MediaStreamTrack]] | None = None
        self.republished: list[asyncio.Task[dict[str, Any]]] = []
        client.on_server_request = self._on_server_request
        client.on_notification = self._on_notification

    async def publish_tracks(self, tracks: Callable[[], dict[str, MediaStreamTrack]]) -> Any:
        """Publish new tracks from `tracks()` now, and again after each `mediaReset`."""
        self.tracks = tracks
        return await self.publish(tracks())

    def _on_notification(self, frame: dict[str, Any]) -> None:
        """As the client: on `mediaReset`, the old connections are set aside at once (before
        the offers behind the notification are read) and the tracks published afresh."""
        if frame.get("method") != "mediaReset" or self.tracks is None:
            return
        old = [pc for pc in (self.send_pc, self.recv_pc) if pc is not None]
        old_tasks, self._tasks = self._tasks, []
        self.send_pc = self.recv_pc = None
        self.republished.append(asyncio.create_task(self._publish_again(old, old_tasks)))

    async def _publish_again(
        self, old: list[RTCPeerConnection], old_tasks: list[asyncio.Task[None]]
    ) -> dict[str, Any]:
        assert self.tracks is not None
        for task in old_tasks:
            task.cancel()
        for pc in old:
            with contextlib.suppress(Exception):
                await pc.close()
        return await self.publish(self.tracks())

    async def publish(self, tracks: dict[str, MediaStreamTrack]) -> dict[str, Any]:
        """Send these tracks ({source: track}) with one offer, as the client's produce."""
        pc = self.send_pc = new_pc()
        transceivers = {
            source: pc.addTransceiver(track, direction="sendonly")
            for source, track in tracks.items()
        }
        await pc.setLocalDescription(await pc.createOffer())  # gathers ICE fully
        sources = {t.mid: source for source, t in transceivers.items()}
        data = await self.client.request(
            "produce", {"sdp": pc.localDescription.sdp, "sources": sources}
        )
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="answer"))
        return data

    async def _on_server_request(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        assert method == "newConsumer"
        if self.recv_pc is None:
            self.recv_pc = new_pc()
            self.recv_pc.on("track", self._on_track)
        await self.recv_pc.setRemoteDescription(
            RTCSessionDescription(sdp=data["sdp"], type="offer")
        )
        for consumer in data["consumers"]:
            self.consumers[consumer["consumerId"]] = consumer
        await self.recv_pc.setLocalDescription(await self.recv_pc.createAnswer())
        return {"sdp": self.recv_pc.localDescription.sdp}

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.create_task(self._count(track)))

    async def _count(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except Exception:
                return
            self.frames[track.kind] = self.frames.get(track.kind, 0) + 1
            self.frame_times.setdefault(track.kind, []).append(time.monotonic())

    def frames_since(self, kind: str, moment: float) -> int:
        return sum(1 for at in self.frame_times.get(kind, []) if at > moment)

    async def close(self) -> None:
        for task in self.republished:
            task.cancel()
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        for pc in (self.send_pc, self.recv_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await pc.close()


async def participant(meeting: Meeting, user: User, name: str) -> Browser:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, code
    browser = Browser(client)
    await client.join(name=name)
    return browser
