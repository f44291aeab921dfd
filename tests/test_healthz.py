"""/healthz reports the database, the channel layer and the SFU nodes' heartbeats."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any as SettingsWrapper

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from meet import embedded_redis
from sfu.node import SfuNodeServer

pytestmark = pytest.mark.django_db(transaction=True)


async def get_health(client: AsyncClient) -> tuple[int, dict]:
    response = await client.get("/healthz")
    return response.status_code, json.loads(response.content)


async def wait_for_status(client: AsyncClient, status: int, timeout: float = 15.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            code, body = await get_health(client)
            if code == status:
                return body
            await asyncio.sleep(0.1)


async def test_healthz_is_200_with_a_heartbeating_sfu_node() -> None:
    client = AsyncClient()
    code, body = await get_health(client)
    assert code == 503
    assert body["failing"] == ["sfu"]

    node = SfuNodeServer("health-node")
    running = asyncio.create_task(node.run())
    try:
        body = await wait_for_status(client, 200)
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["channel_layer"]["ok"] is True
        assert [n["name"] for n in body["checks"]["sfu"]["nodes"]] == ["health-node"]
    finally:
        node.stop()
        await running
    # A clean stop takes the node out at once.
    body = await wait_for_status(client, 503)
    assert body["failing"] == ["sfu"]


async def test_healthz_is_503_naming_the_channel_layer_when_redis_is_down(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    socket_path = Path(settings.VAR_DIR) / f"health-{tmp_path.name[-8:]}.sock"
    server = await sync_to_async(embedded_redis.start)(socket_path)
    try:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [f"unix://{socket_path}"], "prefix": "health-test"},
            }
        }
        client = AsyncClient()
        _, body = await get_health(client)
        assert body["checks"]["channel_layer"]["ok"] is True

        await sync_to_async(embedded_redis.stop)(server, socket_path)
        code, body = await get_health(client)
        assert code == 503
        assert "channel_layer" in body["failing"]
        assert body["checks"]["channel_layer"]["error"]
        assert body["checks"]["database"]["ok"] is True
    finally:
        await sync_to_async(embedded_redis.stop)(server, socket_path)
