"""Consumer: one producer forwarded to one subscriber.

A consumer is carried by a `SendSlot` (a sendonly m-line of the subscriber's receive
transport, sfu/negotiation.py). It forwards while it is negotiated, started and paused by
neither side; every (re)start waits for, and asks the publisher for, a key frame.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sfu.forwarding import RateMeter

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
        self.meter = RateMeter()
        self.keyframe_requests = 0
        self.forwarding = False

    def update(self) -> None:
        """Recompute whether packets flow; a (re)start waits for and asks for a key frame."""
        forwarding = (
            not self.closed
            and self.negotiated
            and not self.paused
            and not self.producer.paused
            and self.slot is not None
            and self.slot.started
        )
        if forwarding and not self.forwarding:
            assert self.slot is not None
            self.slot.restart_stream()
            self.producer.request_keyframe()
        self.forwarding = forwarding

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

    def set_paused(self, paused: bool) -> None:
        """The subscriber's own pause."""
        self.paused = paused
        self.update()

    def request_keyframe(self) -> None:
        """The subscriber asks for a key frame (relayed to the publisher, throttled)."""
        self.keyframe_requests += 1
        self.producer.request_keyframe()

    def take_slot(self, slot: SendSlot) -> None:
        """Be carried by `slot` from the next offer on (the slot's stream restarts)."""
        slot.consumer_id = self.id
        slot.restart_stream()
        self.slot = slot
        self.slot_retransmissions_before = slot.retransmissions

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
