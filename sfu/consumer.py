"""Consumer: one producer forwarded to one subscriber.

A consumer is carried by a `SendSlot` (a sendonly m-line of the subscriber's receive
transport, sfu/negotiation.py). It forwards while it is negotiated, started, paused by
neither side and shown: the subscriber reports how it shows the video (`set_view`), and a
video not on screen costs no bytes. Every (re)start waits for, and asks the publisher for, a
key frame. Of a simulcast producer it forwards one layer (`layer`), moving to `target_layer`
at that layer's next key frame (sfu/forwarding.py).
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from sfu.forwarding import RateMeter
from sfu.layers import MAX_TEMPORAL_LAYERS

MAX_TEMPORAL_LAYER = MAX_TEMPORAL_LAYERS - 1

# A viewer NACKing more than this share of the packets it was sent gets a lower layer...
LOSS_STEP_DOWN = 0.1
# ... and may try one layer up after this long NACKing less than LOSS_STEP_UP.
LOSS_STEP_UP = 0.02
LOSS_RECOVER_SECONDS = 10.0
# A step up that brings the losses back within this long failed: the next try waits twice as
# long (up to LOSS_RECOVER_MAX_SECONDS), so a link that cannot carry the layer above is not
# congested again every ten seconds.
LOSS_PROBE_FAILED_SECONDS = 5.0
LOSS_RECOVER_MAX_SECONDS = 80.0
# Fewer packets than this in a check say nothing about loss.
LOSS_MIN_PACKETS = 10

if TYPE_CHECKING:
    from sfu.forwarding import SendSlot
    from sfu.peer import Peer
    from sfu.producer import Producer


class Consumer:
    """One producer forwarded to one subscriber, on a slot of the subscriber's receive PC."""

    def __init__(self, peer: Peer, producer: Producer) -> None:
        self.id = uuid.uuid4().hex
        self.peer = peer
        self.producer = producer
        self.kind = producer.kind
        self.paused = False  # by the subscriber
        self.negotiated = False  # its m-line is in an answered offer
        self.closed = False
        self.slot: SendSlot | None = None
        # The slot's retransmission count when this consumer took it (slots are reused).
        self.slot_retransmissions_before = 0
        self.slot_retransmissions_skipped_before = 0
        self.meter = RateMeter()
        self.keyframe_requests = 0
        self.forwarding = False
        # How the subscriber shows the video, in device pixels (None: not said; 0: not shown).
        self.view_width: int | None = None
        self.view_height: int | None = None
        # The producer's layer being forwarded (-1: none yet) and the one to move to.
        self.layer = -1
        self.target_layer = -1
        self.layer_switches = 0
        # The highest layer this viewer's losses allow (None: any); see review_losses.
        self.loss_cap: int | None = None
        # The highest layer this viewer's share of its downlink estimate allows (None: any,
        # or no estimate); set by sfu/downlink.py.
        self.bandwidth_cap: int | None = None
        # Of a simulcast VP8 producer: the highest temporal layer forwarded now and the one to
        # move to (lower at the next picture, higher at that layer's next sync frame); the
        # downlink's share sets the target (sfu/downlink.py), all of them without one.
        self.temporal_layer = MAX_TEMPORAL_LAYER
        self.temporal_target = MAX_TEMPORAL_LAYER
        # When its share last moved it to a smaller picture (monotonic; sfu/downlink.py).
        self.spatial_down_at = float("-inf")
        self._loss_cap_since = 0.0
        self._stepped_up_at: float | None = None
        self._recover_after = LOSS_RECOVER_SECONDS
        self._packets_seen = 0
        self._nacks_seen = 0

    @property
    def hidden(self) -> bool:
        return self.view_height == 0 or self.view_width == 0

    def update(self) -> None:
        """Recompute whether packets flow; a (re)start waits for and asks for a key frame."""
        was_forwarding = self.forwarding
        forwarding = (
            not self.closed
            and self.negotiated
            and not self.paused
            and not self.producer.paused
            and not self.hidden
            and self.slot is not None
            and self.slot.started
        )
        self.forwarding = forwarding
        if forwarding and not was_forwarding:
            self.restart()

    def restart(self) -> None:
        """The stream starts again (resumed, shown again, a new publisher stream): wait for a
        key frame of the layer this consumer should get, and ask for one."""
        if self.slot is None:
            return
        self.slot.restart_stream()
        self.layer = -1
        producer = self.producer
        if producer.simulcast:
            producer.retarget(self, time.monotonic())
        else:
            producer.request_keyframe()

    def review_losses(self, now: float, top_layer: int) -> None:
        """Every LAYER_CHECK_SECONDS (simulcast): a viewer that NACKs more than
        LOSS_STEP_DOWN of what it was sent is capped one layer below the one it gets; after
        LOSS_RECOVER_SECONDS of NACKing less than LOSS_STEP_UP it may go one layer up again
        (twice as long after each step up that failed at once). Its link is what is short,
        so a lower layer helps it; key frames would not.

        Only while the viewer's downlink is not estimated (no transport-wide feedback): the
        estimate (sfu/downlink.py) already answers loss and comes back up by probing, where
        this cap would hold the viewer down for up to LOSS_RECOVER_MAX_SECONDS."""
        slot = self.slot
        if slot is None or slot.output is None:
            return
        packets = self.meter.packets
        nacks = slot.retransmissions + slot.retransmissions_skipped
        sent, nacked = packets - self._packets_seen, nacks - self._nacks_seen
        self._packets_seen, self._nacks_seen = packets, nacks
        if self.peer.receive.downlink.estimating(now):
            self.loss_cap = None
            return
        if sent < LOSS_MIN_PACKETS:
            return
        ratio = nacked / sent
        current = self.layer if self.layer >= 0 else top_layer
        if ratio > LOSS_STEP_DOWN and current > 0:
            capped = current - 1
            if self.loss_cap is None or capped < self.loss_cap:
                stepped_up = self._stepped_up_at
                if stepped_up is not None and now - stepped_up <= LOSS_PROBE_FAILED_SECONDS:
                    self._recover_after = min(2 * self._recover_after, LOSS_RECOVER_MAX_SECONDS)
                elif stepped_up is None or now - stepped_up > LOSS_RECOVER_MAX_SECONDS:
                    self._recover_after = LOSS_RECOVER_SECONDS
                self.loss_cap = capped
            self._loss_cap_since = now
        elif (
            self.loss_cap is not None
            and ratio < LOSS_STEP_UP
            and now - self._loss_cap_since >= self._recover_after
        ):
            self.loss_cap = None if self.loss_cap + 1 >= top_layer else self.loss_cap + 1
            self._loss_cap_since = now
            self._stepped_up_at = now

    def set_view(self, width: int, height: int) -> None:
        """The subscriber shows the video at width x height device pixels (0 x 0: not at all)."""
        self.view_width = width
        self.view_height = height
        self.update()
        if self.forwarding and self.producer.simulcast:
            self.producer.retarget(self, time.monotonic())

    def describe(self) -> dict[str, Any]:
        return {
            "consumer_id": self.id,
            "producer_id": self.producer.id,
            "producer_peer_id": self.producer.peer.id,
            "kind": self.kind,
            "source": self.producer.source,
            "mid": self.slot.transceiver.mid if self.slot else None,
            "paused": self.paused,
            "producer_paused": self.producer.paused,
        }

    def describe_layers(self) -> dict[str, Any]:
        """The layer choice, for getStats: current and target layer (-1: none), how often it
        moved, the view the subscriber reported. A producer without layers has one: 0 while
        forwarding."""
        if self.producer.simulcast:
            layer, target = self.layer, self.target_layer
        else:
            layer = target = 0 if self.forwarding else -1
        return {
            "layer": layer,
            "target_layer": target,
            "layer_switches": self.layer_switches,
            "loss_cap": self.loss_cap,
            "bandwidth_cap": self.bandwidth_cap,
            "temporal_layer": self.temporal_layer,
            "temporal_target": self.temporal_target,
            "view_width": self.view_width,
            "view_height": self.view_height,
        }

    def set_paused(self, paused: bool) -> None:
        """The subscriber's own pause."""
        self.paused = paused
        self.update()

    def request_keyframe(self) -> None:
        """The subscriber asks for a key frame (relayed to the publisher, throttled)."""
        self.keyframe_requests += 1
        self.producer.request_keyframe(self.layer if self.layer >= 0 else self.target_layer)

    def take_slot(self, slot: SendSlot) -> None:
        """Be carried by `slot` from the next offer on (the slot's stream restarts)."""
        slot.consumer_id = self.id
        slot.restart_stream()
        self.slot = slot
        self.slot_retransmissions_before = slot.retransmissions
        self.slot_retransmissions_skipped_before = slot.retransmissions_skipped

    def lose_slot(self) -> None:
        """The receive transport was replaced (ICE restart): offered again on the new one."""
        self.slot = None
        self.negotiated = False
        self.forwarding = False

    def close(self) -> None:
        """Forget this consumer; its slot goes idle and the next offer marks it inactive."""
        self.closed = True
        self.forwarding = False
        self.peer.consumers.pop(self.id, None)
        self.producer.consumers.pop(self.id, None)
        if self.slot is not None:
            self.slot.consumer_id = None
            self.slot = None
            self.peer.receive.needs_negotiation = True

    async def close_with_producer(self) -> None:
        """The producer closed: close, and tell the subscriber unless it is leaving."""
        subscriber = self.peer
        self.close()
        if not subscriber.closed:
            await subscriber.notify("consumerClosed", {"consumer_id": self.id})
            subscriber.receive.schedule()
