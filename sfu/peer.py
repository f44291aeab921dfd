"""Peer: one participant of a router, with its two transports, producers and consumers.

The send transport is an RTCPeerConnection on which the browser always offers (`produce`):
every sending m-line becomes a Producer, bound to the m-line's ReceiverBinding. The receive
transport (sfu/negotiation.py) carries a Consumer per producer of the other peers. A peer
closes what it owns: its producers (and so their consumers at the other peers), its
consumers, its transports.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu import hooks, ice
from sfu.codecs import codec_key
from sfu.consumer import Consumer
from sfu.errors import EngineError
from sfu.negotiation import ReceiveTransport
from sfu.producer import Producer
from sfu.receiving import ReceiverBinding
from sfu.sdp import SOURCES_BY_KIND, parse_sdp, primary_codec, validate_offer_media
from sfu.simulcast import accept_layers, offered_layers

if TYPE_CHECKING:
    from sfu.router import Router

logger = logging.getLogger(__name__)

# Closed producer ids kept, so a retried closeProducer is answered, not refused.
RECENT_CLOSED_PRODUCERS = 32


class Peer:
    """A participant: its transports, the producers it sends, the consumers it receives."""

    def __init__(self, router: Router, peer_id: str, channel: str, display_name: str) -> None:
        self.id = peer_id
        self.router = router
        self.channel = channel
        self.display_name = display_name
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self.closed = False
        # The send transport: the browser offers; one ReceiverBinding per m-line, by mid.
        self.send_pc: RTCPeerConnection | None = None
        self.bindings: dict[str, ReceiverBinding] = {}
        self.send_lock = asyncio.Lock()
        self.receive = ReceiveTransport(self)
        self.closed_producers: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {
            "peer_id": self.id,
            "display_name": self.display_name,
            "producers": [p.describe() for p in self.producers.values()],
        }

    def transports(self) -> list[RTCPeerConnection]:
        return [pc for pc in (self.send_pc, self.receive.pc) if pc is not None]

    async def notify(self, name: str, data: dict[str, Any]) -> None:
        """An event to this peer's channel; a failed send is logged, never raised."""
        message = {
            "type": "sfu.event",
            "room": self.router.room,
            "peer_id": self.id,
            "event": name,
            "data": data,
        }
        try:
            await self.router.emit(self.channel, message)
        except Exception:
            logger.exception("could not send %s to peer %s", name, self.id)

    # --- producing -----------------------------------------------------------------------------
    async def produce(self, offer_sdp: str, sources: dict[str, str]) -> dict[str, Any]:
        """Answer the browser's (re-)offer on the send transport and bring the producers in
        line with it: new sending mids produce, mids that stopped sending close theirs."""
        media_by_mid = validate_offer_media(parse_sdp(offer_sdp), sources)
        layers = offered_layers(offer_sdp)
        async with self.send_lock:
            if self.closed:
                raise EngineError("unknown_peer", "the peer left")
            pc = self.send_pc
            if pc is None:
                pc = self.send_pc = RTCPeerConnection(ice.rtc_configuration())
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except Exception as exc:
                raise EngineError("bad_sdp", f"the offer was refused: {exc}") from None
            for transceiver in pc.getTransceivers():
                hooks.refuse_transport_cc(transceiver)  # publishers get REMB
                if transceiver.mid is not None and transceiver.mid not in self.bindings:
                    self.bindings[transceiver.mid] = ReceiverBinding(
                        transceiver.receiver, transceiver.kind
                    )
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            await self._update_producers(pc, media_by_mid, sources, layers)
            local_sdp = accept_layers(ice.announce(pc.localDescription.sdp), layers)
        return {
            "sdp": local_sdp,
            "producers": [
                {**p.describe(), "mid": p.mid} for p in self.producers.values() if not p.closed
            ],
        }

    async def _update_producers(
        self,
        pc: RTCPeerConnection,
        media_by_mid: dict[str, aiortc_sdp.MediaDescription],
        sources: dict[str, str],
        layers: dict[str, list[str]],
    ) -> None:
        by_mid = {p.mid: p for p in self.producers.values()}
        for transceiver in pc.getTransceivers():
            mid = transceiver.mid
            if mid is None or mid not in media_by_mid:
                continue
            media = media_by_mid[mid]
            sending = media.direction in ("sendonly", "sendrecv") and media.port != 0
            existing = by_mid.get(mid)
            if sending and existing is None:
                codec = primary_codec(transceiver)
                if codec is None:
                    continue
                source = sources.get(mid) or SOURCES_BY_KIND[transceiver.kind][0]
                rids = layers.get(mid)
                orphan = self._orphan_producer(transceiver.kind, source, codec, rids)
                if orphan is not None:
                    orphan.reattach(self.bindings[mid], mid)
                else:
                    self._add_producer(transceiver, mid, source, codec, rids)
            elif not sending and existing is not None:
                await existing.close(notify_owner=False)
        # Producers of a transport replaced by restartIce that the new offer did not
        # bring back are gone.
        for producer in [p for p in self.producers.values() if p.binding is None]:
            await producer.close(notify_owner=True)

    def _orphan_producer(
        self, kind: str, source: str, codec: RTCRtpCodecParameters, rids: list[str] | None
    ) -> Producer | None:
        """An open producer left without an m-line by restartIce that this one can carry on
        (the same kind, source, codec and layers)."""
        layer_rids: list[str | None] = list(rids) if rids else [None]
        return next(
            (
                p
                for p in self.producers.values()
                if p.binding is None
                and p.kind == kind
                and p.source == source
                and codec_key(p.codec) == codec_key(codec)
                and [layer.rid for layer in p.layers] == layer_rids
            ),
            None,
        )

    def _add_producer(
        self,
        transceiver: RTCRtpTransceiver,
        mid: str,
        source: str,
        codec: RTCRtpCodecParameters,
        rids: list[str] | None,
    ) -> Producer:
        producer = Producer(self, transceiver.kind, source, mid, codec, rids)
        producer.attach(self.bindings[mid], mid)
        self.producers[producer.id] = producer
        self.router.producer_added(producer)
        return producer

    def forget_producer(self, producer: Producer) -> None:
        """`producer` closed; its id is kept a while so a retried closeProducer succeeds."""
        self.producers.pop(producer.id, None)
        self.closed_producers.append(producer.id)
        del self.closed_producers[:-RECENT_CLOSED_PRODUCERS]

    # --- consuming -----------------------------------------------------------------------------
    def add_consumer(self, producer: Producer) -> Consumer:
        """Consume `producer`; the consumer goes into the next offer (`receive.schedule()`)."""
        consumer = Consumer(self, producer)
        self.consumers[consumer.id] = consumer
        producer.consumers[consumer.id] = consumer
        self.receive.needs_negotiation = True
        return consumer

    # --- restart / close -----------------------------------------------------------------------
    async def restart_ice(self) -> dict[str, str]:
        """aiortc has no ICE restart: replace both transports.

        The receive transport is recreated and every consumer is offered again (a `negotiate`
        event follows). The send transport is closed; the producers stay (their consumers
        keep their m-lines) and are re-attached, by mid then by kind and source, when the
        browser calls `produce` with a full offer from a new RTCPeerConnection.
        """
        async with self.send_lock, self.receive.lock:
            old = self.transports()
            self.send_pc = None
            for producer in self.producers.values():
                producer.detach()
            self.bindings.clear()
            self.receive.restart()
        for pc in old:
            await pc.close()
        self.receive.schedule()
        return {"send_transport": "closed", "receive_transport": "renegotiating"}

    async def close(self) -> None:
        """Leave the router: close producers (their consumers elsewhere), consumers and both
        transports."""
        if self.closed:
            return
        self.closed = True
        self.router.peers.pop(self.id, None)
        for producer in list(self.producers.values()):
            await producer.close(notify_owner=False)
        for consumer in list(self.consumers.values()):
            consumer.close()
        self.receive.cancel_negotiation()
        for pc in self.transports():
            await pc.close()
        self.send_pc = None
        self.bindings.clear()
        self.receive.reset()
