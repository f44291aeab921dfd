"""Producer: a browser's sent track, received on its peer's send transport.

A producer is bound to the `ReceiverBinding` of its m-line (re-bound to a new one after an
ICE restart), counts what it receives, keeps the audio levels for the active-speaker watch,
relays key-frame requests to the publisher (throttled) and, when it closes, closes its
consumers. Its packets are forwarded by forwarding.fan_out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu import hooks
from sfu.codecs import keyframe_detector
from sfu.forwarding import RateMeter
from sfu.speaker import LevelWindow

if TYPE_CHECKING:
    from sfu.consumer import Consumer
    from sfu.peer import Peer
    from sfu.receiving import ReceiverBinding

logger = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL_SECONDS = 0.5


class Producer:
    """A browser's sent track, received on its send transport and forwarded to consumers."""

    def __init__(
        self, peer: Peer, kind: str, source: str, mid: str, codec: RTCRtpCodecParameters
    ) -> None:
        self.id = uuid.uuid4().hex
        self.peer = peer
        self.kind = kind
        self.source = source
        self.mid = mid
        self.codec = codec
        self.paused = False
        self.closed = False
        self.consumers: dict[str, Consumer] = {}
        self.meter = RateMeter()
        self.keyframe_requests = 0
        self.levels = LevelWindow()
        self.media_ssrc: int | None = None
        self.binding: ReceiverBinding | None = None
        self.detect_keyframe = keyframe_detector(codec)
        self._last_keyframe_request = 0.0
        self._keyframe_timer: asyncio.TimerHandle | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "producer_id": self.id,
            "kind": self.kind,
            "source": self.source,
            "paused": self.paused,
        }

    # --- the publisher's stream ----------------------------------------------------------------
    def attach(self, binding: ReceiverBinding, mid: str) -> None:
        """Receive from `binding` (the receiver of m-line `mid` on the send transport)."""
        self.binding = binding
        self.mid = mid
        binding.producer = self

    def reattach(self, binding: ReceiverBinding, mid: str) -> None:
        """Carried over an ICE restart: a new publisher stream for the same consumers, which
        restart at its next key frame."""
        self.attach(binding, mid)
        for consumer in self.consumers.values():
            if consumer.forwarding and consumer.slot is not None:
                consumer.slot.restart_stream()
        self.request_keyframe()

    def detach(self) -> None:
        """The send transport is gone (ICE restart): wait for `reattach` or close."""
        if self.binding is not None:
            self.binding.producer = None
        self.binding = None
        self.mid = ""

    # --- key frames ----------------------------------------------------------------------------
    def request_keyframe(self) -> None:
        """PLI to the publisher, at most one per KEYFRAME_REQUEST_INTERVAL_SECONDS.

        A request inside the interval is deferred to its end, not lost.
        """
        if self.kind != "video" or self.closed or self._keyframe_timer is not None:
            return
        wait = self._last_keyframe_request + KEYFRAME_REQUEST_INTERVAL_SECONDS - time.monotonic()
        if wait > 0:
            self._keyframe_timer = asyncio.get_running_loop().call_later(
                wait, self._deferred_keyframe_request
            )
            return
        self._send_pli()

    def _deferred_keyframe_request(self) -> None:
        self._keyframe_timer = None
        if not self.closed:
            self._send_pli()

    def _send_pli(self) -> None:
        binding = self.binding
        if binding is None or self.media_ssrc is None:
            return
        self._last_keyframe_request = time.monotonic()
        self.keyframe_requests += 1
        task = asyncio.ensure_future(hooks.send_pli(binding.receiver, self.media_ssrc))
        task.add_done_callback(_log_task_error)

    # --- pause / close -------------------------------------------------------------------------
    async def set_paused(self, paused: bool) -> None:
        """Pause or resume forwarding; each consumer's peer hears of it."""
        if self.paused == paused:
            return
        self.paused = paused
        event = "consumerPaused" if paused else "consumerResumed"
        for consumer in list(self.consumers.values()):
            consumer.update()
            await consumer.peer.notify(event, {"consumer_id": consumer.id})

    async def close(self, *, notify_owner: bool) -> None:
        """Close this producer and its consumers (their peers get `consumerClosed`); the
        owner gets `producerClosed` only when the SFU, not its own request, closed it."""
        if self.closed:
            return
        self.closed = True
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        if self.binding is not None:
            self.binding.producer = None
            self.binding = None
        self.peer.forget_producer(self)
        for consumer in list(self.consumers.values()):
            await consumer.close_with_producer()
        if notify_owner and not self.peer.closed:
            await self.peer.notify("producerClosed", {"producer_id": self.id})


def _log_task_error(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("background RTCP send failed: %s", task.exception())
