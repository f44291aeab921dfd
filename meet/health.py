"""Health of the parts meet needs: the database, the channel layer and the SFU nodes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from sfu import registry

CHANNEL_LAYER_TIMEOUT_SECONDS = 2.0


@dataclass
class HealthReport:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check["ok"] for check in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check["ok"]]

    def summary(self) -> dict[str, Any]:
        """What anyone may see: whether meet is well and which parts are not, no detail."""
        return {"ok": self.ok, "failing": self.failing}

    def as_json(self) -> dict[str, Any]:
        """The full report (node names, loads, errors): for staff and the health token only."""
        return {**self.summary(), "checks": self.checks}


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "vendor": connection.vendor}


async def check_channel_layer() -> dict[str, Any]:
    """A real round trip: send to a fresh channel and receive it back."""
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "CHANNEL_LAYERS is not configured"}
    try:
        async with asyncio.timeout(CHANNEL_LAYER_TIMEOUT_SECONDS):
            # The default prefix: channels_redis starves receives on a second prefix in one process.
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "healthz.ping"})
            message = await layer.receive(channel)
    except TimeoutError:
        return {"ok": False, "error": "no answer within 2 s"}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": message.get("type") == "healthz.ping", "backend": type(layer).__name__}


def check_sfu_nodes() -> dict[str, Any]:
    try:
        nodes = [
            {
                "name": node.name,
                # A start later than expected shows the node was restarted (meet.supervise).
                "started_at": node.started_at.isoformat(),
                "last_heartbeat": node.last_heartbeat.isoformat(),
                "load": node.load,
                "capacity": node.capacity,
                "rooms": node.room_count,
                "peers": node.peer_count,
            }
            for node in registry.live_nodes()
        ]
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if not nodes:
        return {"ok": False, "error": "no SFU node has heartbeaten recently", "nodes": []}
    return {"ok": True, "nodes": nodes}


async def collect() -> HealthReport:
    report = HealthReport()
    report.checks["database"] = await sync_to_async(check_database)()
    report.checks["channel_layer"] = await check_channel_layer()
    if report.checks["database"]["ok"]:
        report.checks["sfu"] = await sync_to_async(check_sfu_nodes)()
    else:
        report.checks["sfu"] = {"ok": False, "error": "unknown: the database is down"}
    return report
