"""SFU node registry: heartbeats, liveness and room placement.

The database is the one place every node and web process on every machine can see, so node
state and placements live there. Liveness is derived from the heartbeat's age; nothing has to
mark a crashed node dead.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from sfu.app_settings import app_settings
from sfu.models import RoomPlacement, SfuNode


class NoSfuNodeAvailable(Exception):
    """No live node has room for another meeting."""


@dataclass(frozen=True)
class NodeLoad:
    """What a node reports with each heartbeat."""

    load: int = 0
    room_count: int = 0
    peer_count: int = 0


def channel_for(node_name: str) -> str:
    return f"sfu.{node_name}"


def liveness_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    now = now or timezone.now()
    return now - dt.timedelta(seconds=app_settings.NODE_TIMEOUT_SECONDS)


def live_nodes(now: dt.datetime | None = None) -> QuerySet[SfuNode]:
    return SfuNode.objects.filter(stopped=False, last_heartbeat__gte=liveness_cutoff(now))


def register_node(name: str, capacity: int) -> SfuNode:
    """Called once when a node starts: (re)claims its row and drops its stale placements.

    A restarted node has lost every room it had in memory, so placements pointing at it are
    removed; the rooms get re-placed on their next join.
    """
    now = timezone.now()
    with transaction.atomic():
        node, _ = SfuNode.objects.update_or_create(
            name=name,
            defaults={
                "channel": channel_for(name),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "capacity": capacity,
                "load": 0,
                "room_count": 0,
                "peer_count": 0,
                "started_at": now,
                "last_heartbeat": now,
                "stopped": False,
            },
        )
        RoomPlacement.objects.filter(node=node).delete()
    return node


def record_heartbeat(name: str, load: NodeLoad) -> bool:
    """Record that the node lives, with its load. True when the node had been taken for dead
    (`declare_unresponsive`) since its last heartbeat: it is back in placement, but its rooms
    were moved away, so it closes what it held (their participants joined elsewhere)."""
    with transaction.atomic():
        taken_for_dead = SfuNode.objects.filter(name=name, stopped=True).exists()
        SfuNode.objects.filter(name=name).update(
            last_heartbeat=timezone.now(),
            load=load.load,
            room_count=load.room_count,
            peer_count=load.peer_count,
            stopped=False,
        )
    return taken_for_dead


def mark_stopped(name: str) -> None:
    """A clean shutdown: out of placement at once, not after the timeout."""
    with transaction.atomic():
        SfuNode.objects.filter(name=name).update(stopped=True, load=0, room_count=0, peer_count=0)
        RoomPlacement.objects.filter(node__name=name).delete()


def declare_unresponsive(name: str, started_at: dt.datetime) -> bool:
    """A caller's request to the node timed out and a ping went unanswered: out of placement
    now, rather than after NODE_TIMEOUT_SECONDS without a heartbeat, so its rooms move at
    once. Only this incarnation (a restarted node has a new `started_at`); its next heartbeat
    brings it back. True when the node was live until now."""
    with transaction.atomic():
        changed = SfuNode.objects.filter(name=name, started_at=started_at, stopped=False).update(
            stopped=True, load=0, room_count=0, peer_count=0
        )
        RoomPlacement.objects.filter(node__name=name, node__started_at=started_at).delete()
    return changed > 0


@dataclass(frozen=True)
class Placement:
    """Where a room's media is. Each (re)placement is a new one (`placed_at`): the room's
    participants joined on an earlier one must join again, even on the same node."""

    room: str
    node: str
    channel: str
    node_started_at: dt.datetime  # the node's incarnation: a restarted node has lost its rooms
    placed_at: dt.datetime
    live: bool

    @classmethod
    def of(cls, placement: RoomPlacement, now: dt.datetime | None = None) -> Placement:
        node = placement.node
        return cls(
            room=placement.room,
            node=node.name,
            channel=node.channel,
            node_started_at=node.started_at,
            placed_at=placement.placed_at,
            live=not node.stopped and node.last_heartbeat >= liveness_cutoff(now),
        )

    def same_as(self, other: Placement) -> bool:
        return (self.node, self.placed_at) == (other.node, other.placed_at)


def room_placements(rooms: Iterable[str]) -> dict[str, Placement]:
    """Where each of these rooms is placed, live or not; rooms not placed are absent."""
    now = timezone.now()
    placements = RoomPlacement.objects.select_related("node").filter(room__in=list(rooms))
    return {p.room: Placement.of(p, now) for p in placements}


def place_room(room: str) -> Placement:
    """Where `room` is: its current node if still alive, else the least loaded live one.

    Runs under a row lock on the placement so two web processes placing the same room at once
    agree on one node.
    """
    with transaction.atomic():
        placement = RoomPlacement.objects.select_for_update().filter(room=room).first()
        nodes = live_nodes()
        if placement is not None and nodes.filter(pk=placement.node_id).exists():
            return Placement.of(placement)
        candidates = [node for node in nodes if node.load < node.capacity]
        if not candidates:
            raise NoSfuNodeAvailable("No SFU node is available.")
        placed_rooms = {
            node_id: count
            for node_id, count in _placement_counts([node.pk for node in candidates]).items()
        }
        chosen = min(
            candidates, key=lambda n: (n.load / max(n.capacity, 1), placed_rooms.get(n.pk, 0))
        )
        placed, _ = RoomPlacement.objects.update_or_create(room=room, defaults={"node": chosen})
        return Placement.of(placed)


def release_room(room: str, node_name: str | None = None) -> None:
    """Forget a room's placement (its router closed). With node_name, only if still there."""
    placements = RoomPlacement.objects.filter(room=room)
    if node_name is not None:
        placements = placements.filter(node__name=node_name)
    placements.delete()


def node_for_room(room: str) -> SfuNode | None:
    placement = RoomPlacement.objects.select_related("node").filter(room=room).first()
    return placement.node if placement else None


def _placement_counts(node_ids: list[int]) -> dict[int, int]:
    rows = (
        RoomPlacement.objects.filter(node_id__in=node_ids)
        .values("node_id")
        .annotate(count=Count("id"))
    )
    return {row["node_id"]: row["count"] for row in rows}
