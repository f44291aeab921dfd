"""A real SFU node in-process, on the test's event loop, behind the real channel layer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sfu.node import SfuNodeServer
from sfu.tests.helpers import start_node, stop_node


@pytest.fixture
async def sfu_node() -> AsyncIterator[SfuNodeServer]:
    node, task = await start_node()
    try:
        yield node
    finally:
        await stop_node(node, task)
