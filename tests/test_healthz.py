"""/healthz reports the database, the channel layer and the SFU nodes' heartbeats.

Everyone gets the status and what is failing; the detail is for staff and the token holder.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any as SettingsWrapper

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from meet import embedded_redis
from sfu.node import SfuNodeServer

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "healthz-test-token"


async def get_health(client: AsyncClient, **headers: str) -> tuple[int, dict]:
    response = await client.get("/healthz", headers=headers)
    return response.status_code, json.loads(response.content)


async def staff_client() -> AsyncClient:
    staff = await get_user_model().objects.acreate_user(
        username="ops", email="ops@example.org", password="x", is_staff=True
    )
    client = AsyncClient()
    await client.aforce_login(staff)
    return client


async def running_node(name: str) -> tuple[SfuNodeServer, asyncio.Task[None]]:
    node = SfuNodeServer(name)
    return node, asyncio.create_task(node.run())


async def wait_for_status(
    client: AsyncClient, status: int, timeout: float = 15.0, **headers: str
) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            code, body = await get_health(client, **headers)
            if code == status:
                return body
            await asyncio.sleep(0.1)


async def test_healthz_is_200_with_a_heartbeating_sfu_node() -> None:
    client = await staff_client()
    code, body = await get_health(client)
    assert code == 503
    assert body["failing"] == ["sfu"]

    node, running = await running_node("health-node")
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
        settings.MEET_HEALTHZ_TOKEN = TOKEN
        client = AsyncClient()
        _, body = await get_health(client, authorization=f"Bearer {TOKEN}")
        assert body["checks"]["channel_layer"]["ok"] is True

        await sync_to_async(embedded_redis.stop)(server, socket_path)
        code, body = await get_health(client, authorization=f"Bearer {TOKEN}")
        assert code == 503
        assert "channel_layer" in body["failing"]
        assert body["checks"]["channel_layer"]["error"]
        assert body["checks"]["database"]["ok"] is True
    finally:
        await sync_to_async(embedded_redis.stop)(server, socket_path)


async def test_healthz_shows_only_the_status_without_staff_or_the_token(
    settings: SettingsWrapper,
) -> None:
    settings.MEET_HEALTHZ_TOKEN = TOKEN
    signed_in = AsyncClient()
    person = await get_user_model().objects.acreate_user(
        username="someone", email="someone@example.org", password="x"
    )
    await signed_in.aforce_login(person)
    node, running = await running_node("secret-node-name")
    try:
        await wait_for_status(AsyncClient(), 200, authorization=f"Bearer {TOKEN}")
        refused: list[tuple[AsyncClient, dict[str, str]]] = [
            (AsyncClient(), {}),
            (AsyncClient(), {"authorization": "Bearer wrong-token"}),
            (AsyncClient(), {"authorization": f"Basic {TOKEN}"}),
            (signed_in, {}),
        ]
        for client, headers in refused:
            response = await client.get("/healthz", headers=headers)
            assert response.status_code == 200
            assert json.loads(response.content) == {"ok": True, "failing": []}, headers
            assert b"secret-node-name" not in response.content

        # An empty setting accepts no token at all, not even an empty one.
        settings.MEET_HEALTHZ_TOKEN = ""
        for headers in ({"authorization": "Bearer "}, {"authorization": "Bearer"}):
            assert await get_health(AsyncClient(), **headers) == (
                200,
                {"ok": True, "failing": []},
            )

        staff_code, staff_body = await get_health(await staff_client())
        assert staff_code == 200
        assert [n["name"] for n in staff_body["checks"]["sfu"]["nodes"]] == ["secret-node-name"]
    finally:
        node.stop()
        await running
    # A failing check is named to everyone, still without its error message.
    body = await wait_for_status(AsyncClient(), 503)
    assert body == {"ok": False, "failing": ["sfu"]}
