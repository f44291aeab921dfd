"""The web's side of contract 2: requests to the room's SFU node (the signaling and presence
use it).

`SfuGateway` is sfu.client's typed client (`gateway.join(...)`, `gateway.produce(...)`, …)
over the room's placement: the node is looked up, and the room placed, on first use. The
channel layer delivers at most once, so every request waits with a timeout; a lost request or
reply is retried once (every SFU method is safe to retry, docs/sfu.md) and then becomes
`SfuUnavailable`, which the client sees as an error response. Nothing here waits forever.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async

from sfu import registry
from sfu.app_settings import app_settings as sfu_settings
from sfu.channel_api import SfuRequestError
from sfu.channel_api import request as sfu_request
from sfu.client import SfuClient
from sfu.contract import SfuMethod

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 2


class SfuUnavailable(Exception):
    """The SFU could not do it; `code` and `reason` go to the client as the error response."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class SfuGateway(SfuClient):
    """One room's link to its node. The node is looked up (and the room placed) lazily and
    looked up again after a timeout, in case the node died and the room moved."""

    def __init__(self, room: str) -> None:
        super().__init__(room)
        self._node_channel: str | None = None

    async def node_channel(self) -> str:
        if self._node_channel is None:
            try:
                node = await sync_to_async(registry.place_room)(self.room)
            except registry.NoSfuNodeAvailable:
                raise SfuUnavailable(
                    "sfu_unavailable", "No media server is available; try again shortly."
                ) from None
            self._node_channel = node.channel
        return self._node_channel

    async def _send(self, method: SfuMethod, data: Mapping[str, object]) -> dict[str, Any]:
        return await self._deliver(
            method, data, timeout=sfu_settings.REQUEST_TIMEOUT_SECONDS, attempts=DEFAULT_ATTEMPTS
        )

    async def _deliver(
        self, method: str, data: Mapping[str, object], *, timeout: float, attempts: int
    ) -> dict[str, Any]:
        for attempt in range(1, attempts + 1):
            channel = await self.node_channel()
            try:
                return await sfu_request(channel, method, data, timeout=timeout)
            except SfuRequestError as exc:
                if exc.code != "timeout":
                    raise SfuUnavailable(exc.code[:64], exc.reason[:500]) from None
                logger.warning(
                    "SFU %s for room %s timed out (attempt %d/%d)",
                    method,
                    self.room,
                    attempt,
                    attempts,
                )
                self._node_channel = None  # the room may have moved to another node
        raise SfuUnavailable("sfu_timeout", f"The media server did not answer {method} in time.")
