"""The web's side of contract 2: requests to the room's SFU node (the signaling and presence
use it).

`SfuGateway` is sfu.client's typed client (`gateway.join(...)`, `gateway.produce(...)`, …)
over the room's placement: the node is looked up, and the room placed, on first use. The
channel layer delivers at most once, so every request waits with a timeout; a lost request or
reply is retried once (every SFU method is safe to retry, docs/sfu.md) and then becomes
`SfuUnavailable`, which the client sees as an error response. Nothing here waits forever.

A node that lets a request time out is pinged; when the ping goes unanswered too, the node is
declared unresponsive (out of placement at once, rather than after NODE_TIMEOUT_SECONDS
without a heartbeat). A join then goes to the room's new node; any other request fails, since
the peer it is about lived on the dead node: rooms.signaling.node_watch moves the room's
participants (each joins the new node and publishes again).
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
# A node that answers nothing for this long after a request timed out is taken for dead.
PING_TIMEOUT_SECONDS = 1.0


class SfuUnavailable(Exception):
    """The SFU could not do it; `code` and `reason` go to the client as the error response."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class SfuGateway(SfuClient):
    """One room's link to its node. The room is placed lazily, on the first request, and
    placed again after a join timed out, in case the node died and the room moved."""

    def __init__(self, room: str) -> None:
        super().__init__(room)
        self.placement: registry.Placement | None = None

    def use(self, placement: registry.Placement) -> None:
        """Send to this placement's node from now on (the room moved there)."""
        self.placement = placement

    async def current_placement(self) -> registry.Placement:
        if self.placement is None:
            try:
                self.placement = await sync_to_async(registry.place_room)(self.room)
            except registry.NoSfuNodeAvailable:
                raise SfuUnavailable(
                    "sfu_unavailable", "No media server is available; try again shortly."
                ) from None
        return self.placement

    async def _send(self, method: SfuMethod, data: Mapping[str, object]) -> dict[str, Any]:
        return await self._deliver(
            method, data, timeout=sfu_settings.REQUEST_TIMEOUT_SECONDS, attempts=DEFAULT_ATTEMPTS
        )

    async def _deliver(
        self, method: SfuMethod, data: Mapping[str, object], *, timeout: float, attempts: int
    ) -> dict[str, Any]:
        for attempt in range(1, attempts + 1):
            placement = await self.current_placement()
            try:
                return await sfu_request(placement.channel, method, data, timeout=timeout)
            except SfuRequestError as exc:
                if exc.code != "timeout":
                    raise SfuUnavailable(exc.code[:64], exc.reason[:500]) from None
                logger.warning(
                    "SFU %s for room %s on %s timed out (attempt %d/%d)",
                    method,
                    self.room,
                    placement.node,
                    attempt,
                    attempts,
                )
            if not await self._answers_ping(placement):
                await self._declare_unresponsive(placement)
                if method is not SfuMethod.JOIN:
                    # The peer lives on the dead node: only a join elsewhere brings it back,
                    # which node_watch does for everyone in the room (MediaRelay.move_to).
                    raise SfuUnavailable(
                        "sfu_unavailable", "The media server stopped; media reconnects."
                    )
            if method is SfuMethod.JOIN:
                self.placement = None  # placed again: on a live node, wherever the room is now
        raise SfuUnavailable("sfu_timeout", f"The media server did not answer {method} in time.")

    async def _answers_ping(self, placement: registry.Placement) -> bool:
        try:
            await sfu_request(placement.channel, SfuMethod.PING, {}, timeout=PING_TIMEOUT_SECONDS)
        except SfuRequestError:
            return False
        return True

    async def _declare_unresponsive(self, placement: registry.Placement) -> None:
        """Out of placement now, so that a join (this one, anyone's) goes to a live node and
        node_watch moves the room's participants."""
        declared = await sync_to_async(registry.declare_unresponsive)(
            placement.node, placement.node_started_at
        )
        if declared:
            logger.error(
                "SFU node %s answered neither a request nor a ping; its rooms move",
                placement.node,
            )
