"""A real SFU node in-process, on the test's event loop, behind the real channel layer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from sfu import client
from sfu.node import SfuNodeServer


async def start_node(name: str | None = None) -> tuple[SfuNodeServer, asyncio.Task[None]]:
    node = SfuNodeServer(name or f"test-{uuid.uuid4().hex[:8]}")
    task = asyncio.create_task(node.run())
    async with asyncio.timeout(20):
        while True:
            try:
                await client.ping(node.channel, timeout=1.0)
                break
            except Exception:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    return node, task


async def stop_node(node: SfuNodeServer, task: asyncio.Task[None]) -> None:
    node.stop()
    await asyncio.wait_for(task, 20)


@pytest.fixture
async def sfu_node() -> AsyncIterator[SfuNodeServer]:
    node, task = await start_node()
    try:
        yield node
    finally:
        await stop_node(node, task)
