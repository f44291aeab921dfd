"""Producer: a browser's sent track, received on its peer's send transport.

A producer is bound to the `ReceiverBinding` of its m-line (re-bound to a new one after an
ICE restart), counts what it receives, keeps the audio levels for the active-speaker watch,
relays key-frame requests to the publisher (throttled, per layer) and, when it closes, closes
its consumers. Its packets are forwarded by forwarding.fan_out.

A simulcast producer has several `Layer`s (sfu/layers.py), lowest first; any other has one.
Every LAYER_CHECK_SECONDS it chooses again, per consumer, which layer that consumer should get
(`check_layers`) and asks the publisher for a key frame of a layer a consumer should move to.
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
from sfu.layers import Layer, choose_layer
from sfu.speaker import LevelWindow

if TYPE_CHECKING:
    from sfu.consumer import Consumer
    from sfu.peer import Peer
    from sfu.receiving import ReceiverBinding

logger = logging.getLogger(__name__)

KEYFRAME_REQUEST_INTERVAL_SECONDS = 0.5
# How often a simulcast producer reconsiders each consumer's layer (besides view changes).
LAYER_CHECK_SECONDS = 0.5


class Producer:
    """A browser's sent track, received on its send transport and forwarded to consumers."""

    def __init__(
        self,
        peer: Peer,
        kind: str,
        source: str,
        mid: str,
        codec: RTCRtpCodecParameters,
        rids: list[str] | None = None,
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
        self.levels = LevelWindow()  # for the active-speaker watch (sfu/speaker.py)
        # Audio for many (sfu/audible.py): this interval's levels, whether viewers are sent
        # this microphone now, and the packets they were not sent because it was not.
        self.recent_levels = LevelWindow()
        self.audible = True
        self.inaudible_packets = 0
        self.media_ssrc: int | None = None
        self.binding: ReceiverBinding | None = None
        self.detect_keyframe = keyframe_detector(codec)
        self.layers = [Layer(i, rid) for i, rid in enumerate(rids)] if rids else [Layer(0, None)]
        self.simulcast = len(self.layers) > 1
        self.rewrites_vp8 = self.simulcast and codec.mimeType.lower() == "video/vp8"
        self.next_layer_check = 0.0
        self.first_packet: float | None = None  # monotonic, of a simulcast producer
        self._keyframe_timers: dict[int, asyncio.TimerHandle] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "producer_id": self.id,
            "kind": self.kind,
            "source": self.source,
            "paused": self.paused,
        }

    def layer_of_rid(self, rid: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.rid == rid), None)

    # --- the publisher's stream ----------------------------------------------------------------
    def attach(self, binding: ReceiverBinding, mid: str) -> None:
        """Receive from `binding` (the receiver of m-line `mid` on the send transport)."""
        self.binding = binding
        self.mid = mid
        binding.producer = self
        for layer in self.layers:
            layer.ssrc = None  # a new transport: the binding learns the SSRCs again

    def reattach(self, binding: ReceiverBinding, mid: str) -> None:
        """Carried over an ICE restart: a new publisher stream for the same consumers, which
        restart at its next key frame."""
        self.attach(binding, mid)
        for consumer in self.consumers.values():
            if consumer.forwarding:
                consumer.restart()

    def detach(self) -> None:
        """The send transport is gone (ICE restart): wait for `reattach` or close."""
        if self.binding is not None:
            self.binding.producer = None
        self.binding = None
        self.mid = ""

    # --- key frames ----------------------------------------------------------------------------
    def request_keyframe(self, layer: int = -1) -> None:
        """PLI to the publisher for `layer` (-1: the top one, or the only one), at most one per
        KEYFRAME_REQUEST_INTERVAL_SECONDS per layer.

        A request inside the interval is deferred to its end, not lost. Only the layer that
        needs a key frame is asked: the others' viewers do not pay for it.
        """
        if self.kind != "video" or self.closed:
            return
        index = layer if 0 <= layer < len(self.layers) else len(self.layers) - 1
        if index in self._keyframe_timers:
            return
        wait = (
            self.layers[index].last_keyframe_request
            + KEYFRAME_REQUEST_INTERVAL_SECONDS
            - time.monotonic()
        )
        if wait > 0:
            self._keyframe_timers[index] = asyncio.get_running_loop().call_later(
                wait, self._deferred_keyframe_request, index
            )
            return
        self._send_pli(index)

    def _deferred_keyframe_request(self, index: int) -> None:
        self._keyframe_timers.pop(index, None)
        if not self.closed:
            self._send_pli(index)

    def _send_pli(self, index: int) -> None:
        binding = self.binding
        layer = self.layers[index]
        ssrc = layer.ssrc if self.simulcast else self.media_ssrc
        if binding is None or ssrc is None:
            return
        layer.last_keyframe_request = time.monotonic()
        layer.keyframe_requests += 1
        self.keyframe_requests += 1
        task = asyncio.ensure_future(hooks.send_pli(binding.receiver, ssrc))
        task.add_done_callback(_log_task_error)

    # --- layers --------------------------------------------------------------------------------
    def check_layers(self, now: float) -> None:
        """Choose each consumer's layer again; ask for a key frame of each layer a consumer
        should move to (the move itself happens at that key frame, in fan_out)."""
        self.next_layer_check = now + LAYER_CHECK_SECONDS
        top = len(self.layers) - 1
        for consumer in self.consumers.values():
            if consumer.forwarding:
                consumer.review_losses(now, top)
                self.retarget(consumer, now)

    def retarget(self, consumer: Consumer, now: float) -> None:
        """Choose `consumer`'s target layer: what its tile needs, within its caps (its losses,
        its share of its downlink)."""
        caps = [cap for cap in (consumer.loss_cap, consumer.bandwidth_cap) if cap is not None]
        target = choose_layer(
            self.layers,
            consumer.view_height,
            now,
            consumer.layer,
            self.first_packet,
            highest=min(caps) if caps else None,
        )
        consumer.target_layer = target
        if target != consumer.layer:
            self.request_keyframe(target)

    def layer_options(self, consumer: Consumer, now: float) -> list[int]:
        """The layers `consumer` could get, lowest first, up to what its tile needs within its
        loss cap (sfu/downlink.py chooses among them by its downlink's estimate)."""
        wanted = choose_layer(
            self.layers,
            consumer.view_height,
            now,
            consumer.layer,
            self.first_packet,
            highest=consumer.loss_cap,
        )
        first = self.first_packet
        options = [
            layer.index
            for layer in self.layers
            if layer.index <= wanted and layer.active(now, first)
        ]
        return options or [wanted]

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
        for timer in self._keyframe_timers.values():
            timer.cancel()
        self._keyframe_timers.clear()
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
