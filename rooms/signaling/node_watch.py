"""Following a room to a new SFU node when its node dies: the web process's side of failover.

A node that dies stops heartbeating (or a caller declares it unresponsive after a timeout and
an unanswered ping, rooms.sfu_gateway); the registry then no longer counts it live. Nothing
reaches the participants on their own: their media simply stops. So every web process watches
the nodes of the rooms its joined connections are in, every FAILOVER_CHECK_SECONDS, with one
query for all of them: a room whose node is no longer live (or that lost its placement, as a
restarted node's rooms do) is placed again, on a live node, and each connection joined on
an earlier placement moves to the current one (MediaRelay.move_to: the peer joins afresh
there, and the client is told `mediaReset` and publishes again on fresh peer connections).
A placement is compared whole (node and when it was made), not by node name: a room placed
again on the same node, say the only one, after it came back, must still be joined again.

Several web processes may notice at once; `registry.place_room` holds a row lock, so they all
agree on one node. One watch runs per event loop and only while connections are registered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from channels.db import database_sync_to_async

from rooms.app_settings import app_settings
from sfu import registry

logger = logging.getLogger(__name__)


class Follower(Protocol):
    """A joined connection's media, as the watch sees it (MediaRelay)."""

    @property
    def room(self) -> str: ...

    @property
    def placement(self) -> registry.Placement | None: ...

    def move_to(self, placement: registry.Placement) -> None: ...


class NodeWatch:
    def __init__(self) -> None:
        self.followers: set[Follower] = set()
        self._task: asyncio.Task[None] | None = None

    def watch(self, follower: Follower) -> None:
        self.followers.add(follower)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def unwatch(self, follower: Follower) -> None:
        self.followers.discard(follower)

    async def _run(self) -> None:
        while self.followers:
            await asyncio.sleep(app_settings.FAILOVER_CHECK_SECONDS)
            try:
                await self.check()
            except Exception:
                logger.exception("checking the SFU nodes of this process's rooms failed")

    async def check(self) -> None:
        """One round: move every follower whose room is (now) on another node."""
        by_room: dict[str, list[Follower]] = {}
        for follower in list(self.followers):
            by_room.setdefault(follower.room, []).append(follower)
        if not by_room:
            return
        placements = await database_sync_to_async(registry.room_placements)(by_room)
        for room, followers in by_room.items():
            placement = placements.get(room)
            if placement is None or not placement.live:
                placement = await self._place_again(room, placement)
                if placement is None:
                    continue
            for follower in followers:
                joined_on = follower.placement
                if joined_on is None or not joined_on.same_as(placement):
                    follower.move_to(placement)

    async def _place_again(
        self, room: str, dead: registry.Placement | None
    ) -> registry.Placement | None:
        try:
            placement = await database_sync_to_async(registry.place_room)(room)
        except registry.NoSfuNodeAvailable:
            logger.error("room %s lost its media server and no other is live", room)
            return None
        logger.warning(
            "room %s: media server %s is gone; moving to %s",
            room,
            dead.node if dead is not None else "(placement released)",
            placement.node,
        )
        return placement


_watches: dict[asyncio.AbstractEventLoop, NodeWatch] = {}


def current() -> NodeWatch:
    """This event loop's watch (daphne has one loop; tests may run several in turn)."""
    loop = asyncio.get_running_loop()
    for other in [known for known in _watches if known.is_closed()]:
        del _watches[other]
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = NodeWatch()
    return watch
