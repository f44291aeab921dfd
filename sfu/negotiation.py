"""A peer's receive transport and its offer/answer: the SFU always offers on it.

Each consumer is carried by a sendonly m-line, a `SendSlot`. aiortc never removes or reuses
m-lines, so a closed consumer leaves its slot idle (`inactive` in the next offer) and a later
consumer of the same kind and codec takes it over. One offer is in flight at a time; the
consumers created meanwhile are batched into the next one. aiortc has no ICE restart, so
`restart` forgets the connection and every consumer is offered again on a new one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.codecs import is_rtx
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpSendParameters

from sfu import hooks, ice
from sfu.codecs import capability_for, codec_key
from sfu.downlink import Downlink
from sfu.errors import EngineError
from sfu.forwarding import SendSlot
from sfu.sdp import parse_sdp

if TYPE_CHECKING:
    from sfu.consumer import Consumer
    from sfu.peer import Peer

logger = logging.getLogger(__name__)

# Answered negotiation ids kept, so a retried receiveAnswer is answered, not refused.
RECENT_ANSWERS = 32


@dataclass
class Negotiation:
    """An offer waiting for the subscriber's answer, and the consumers new in it."""

    id: str
    consumers: list[Consumer]


class ParkedTrack(MediaStreamTrack):
    """The track a forwarding RTCRtpSender holds: never yields, so aiortc never encodes.

    Its id becomes the consumer id in the SFU's offer (a=msid), so the browser can match tracks.
    """

    def __init__(self, kind: str, track_id: str) -> None:
        super().__init__()
        self.kind = kind
        self._track_id = track_id

    @property
    def id(self) -> str:
        return self._track_id

    async def recv(self) -> NoReturn:
        while True:  # nothing ever sets the event
            await asyncio.Event().wait()


class ReceiveTransport:
    """The RTCPeerConnection on which a peer receives its consumers, and its negotiation."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.pc: RTCPeerConnection | None = None
        self.slots: list[SendSlot] = []
        self.in_flight: Negotiation | None = None
        self.needs_negotiation = False
        self.lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._answered: list[str] = []
        self.downlink = Downlink(self)

    # --- offers ----------------------------------------------------------------------------
    def schedule(self) -> None:
        """One offer in flight per peer; changes meanwhile are batched into the next one."""
        if self.peer.closed or not self.needs_negotiation or self.in_flight is not None:
            return
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.create_task(self._negotiate())

    async def _negotiate(self) -> None:
        peer = self.peer
        try:
            async with self.lock:
                if peer.closed or self.in_flight is not None or not self.needs_negotiation:
                    return
                self.needs_negotiation = False
                offer = await self._create_offer()
                if offer is None:
                    return
                sdp, consumers = offer
                negotiation = self.in_flight = Negotiation(id=uuid.uuid4().hex, consumers=consumers)
            await peer.notify(
                "negotiate",
                {
                    "negotiation_id": negotiation.id,
                    "sdp": sdp,
                    "consumers": [c.describe() for c in consumers],
                },
            )
        except asyncio.CancelledError:
            raise
        except InvalidStateError:
            # aiortc closes a PC by itself once its DTLS transport closes (the browser went
            # away); the signaling layer's `leave` cleans the peer up.
            logger.info("peer %s's receive transport is closed; no offer sent", peer.id)
        except Exception:
            if not peer.closed:  # a peer closed mid-offer takes its PC with it: expected
                logger.exception("negotiation for peer %s failed", peer.id)

    async def _create_offer(self) -> tuple[str, list[Consumer]] | None:
        consumers = self.peer.consumers
        pc = self.pc
        if pc is None:
            if not consumers:
                return None
            pc = self.pc = RTCPeerConnection(ice.rtc_configuration(max_bundle=True))
        new_consumers = [c for c in consumers.values() if c.slot is None]
        used = {c.slot for c in consumers.values() if c.slot is not None}
        changed = bool(new_consumers)
        for idle in self.slots:
            if idle not in used and idle.transceiver.direction != "inactive":
                idle.transceiver.direction = "inactive"
                changed = True
        for consumer in new_consumers:
            slot = self._idle_slot(consumer, used)
            if slot is None:
                slot = self._new_slot(pc, consumer)
            used.add(slot)
            consumer.take_slot(slot)
            sender = slot.transceiver.sender
            sender.replaceTrack(ParkedTrack(consumer.kind, consumer.id))
            hooks.set_stream_id(sender, consumer.producer.peer.id)
            slot.transceiver.direction = "sendonly"
        if not changed:
            return None
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        return ice.announce(pc.localDescription.sdp), new_consumers

    # --- slots -----------------------------------------------------------------------------
    def _idle_slot(self, consumer: Consumer, used: set[SendSlot]) -> SendSlot | None:
        key = codec_key(consumer.producer.codec)
        return next(
            (s for s in self.slots if s not in used and s.kind == consumer.kind and s.key == key),
            None,
        )

    def _new_slot(self, pc: RTCPeerConnection, consumer: Consumer) -> SendSlot:
        codec = consumer.producer.codec
        transceiver = pc.addTransceiver(consumer.kind, direction="sendonly")
        hooks.drop_receive_estimator(transceiver.receiver)
        preferences = [capability_for(codec)]
        if consumer.kind == "video":
            preferences.append(_video_rtx_capability())
        transceiver.setCodecPreferences(preferences)
        slot = SendSlot(transceiver, consumer.kind, codec_key(codec))

        def started(parameters: RTCRtpSendParameters) -> None:
            self._slot_started(slot, parameters)

        def keyframe_requested() -> None:
            self._slot_keyframe_request(slot)

        hooks.on_sender_start(transceiver.sender, started)
        hooks.on_keyframe_request(transceiver.sender, keyframe_requested)
        # One DTLS transport carries every slot (max-bundle): its feedback is the downlink's.
        hooks.on_transport_feedback(transceiver.sender.transport, self._transport_feedback)
        self.slots.append(slot)
        return slot

    def _transport_feedback(self, data: bytes, at_arrival: bool) -> None:
        self.downlink.on_feedback(data, at_arrival)

    def _slot_started(self, slot: SendSlot, parameters: RTCRtpSendParameters) -> None:
        """aiortc started the slot's sender (the subscriber's DTLS connected)."""
        codec = parameters.codecs[0]
        transport_cc_id = next(
            (e.id for e in parameters.headerExtensions if e.uri == hooks.TRANSPORT_CC_URI), None
        )
        slot.start(
            hooks.SenderOutput(slot.transceiver.sender, self.downlink, transport_cc_id),
            codec.payloadType,
            codec.clockRate,
            parameters.muxId,
        )
        consumer = self.peer.consumers.get(slot.consumer_id or "")
        if consumer is not None:
            consumer.update()

    def _slot_keyframe_request(self, slot: SendSlot) -> None:
        """PLI/FIR from the subscriber for the slot's stream."""
        consumer = self.peer.consumers.get(slot.consumer_id or "")
        if consumer is not None and consumer.forwarding:
            consumer.request_keyframe()

    # --- answers ---------------------------------------------------------------------------
    async def receive_answer(self, negotiation_id: str, answer_sdp: str) -> None:
        """The subscriber's answer to the offer in flight; its consumers start forwarding."""
        parse_sdp(answer_sdp)
        async with self.lock:
            negotiation = self.in_flight
            if negotiation_id in self._answered:
                return  # a retried request
            if negotiation is None or negotiation.id != negotiation_id:
                raise EngineError(
                    "unknown_negotiation", f"no offer {negotiation_id!r} is waiting for an answer"
                )
            assert self.pc is not None
            try:
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=answer_sdp, type="answer")
                )
            except Exception as exc:
                raise EngineError("bad_sdp", f"the answer was refused: {exc}") from None
            self.in_flight = None
            self._answered.append(negotiation_id)
            del self._answered[:-RECENT_ANSWERS]
            for consumer in negotiation.consumers:
                consumer.negotiated = True
                consumer.update()
        self.schedule()

    # --- restart / close -------------------------------------------------------------------
    def cancel_negotiation(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def reset(self) -> None:
        """Forget the connection (the caller closes it), its slots and the offer in flight."""
        self.cancel_negotiation()
        self._task = None
        self.pc = None
        self.slots.clear()
        self.in_flight = None
        self.downlink.close()
        self.downlink = Downlink(self)

    def restart(self) -> None:
        """A new connection for the same consumers: each is offered again on it.

        Call with `lock` held; the caller closes the old connection, then calls `schedule`.
        """
        self.reset()
        for consumer in self.peer.consumers.values():
            consumer.lose_slot()
        self.needs_negotiation = bool(self.peer.consumers)


def _video_rtx_capability() -> RTCRtpCodecCapability:
    capabilities = RTCRtpReceiver.getCapabilities("video")
    assert capabilities is not None  # aiortc always has video capabilities
    return next(c for c in capabilities.codecs if is_rtx(c))
