"""The media engine: routers (rooms), peers, producers, consumers and their transports.

mediasoup's model on aiortc. Per participant a send transport (an RTCPeerConnection on which
the browser always offers) and a receive transport (on which the SFU always offers). Producers
are the browser's sent tracks; every other peer of the room gets a consumer per producer,
carried by a sendonly m-line of its receive transport. Media is forwarded as RTP packets
(sfu/forwarding.py) through the hooks in sfu/hooks.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import is_rtx
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RtpPacket, unwrap_rtx

from sfu import hooks, ice
from sfu.codecs import FORWARDED_MIME_TYPES, capability_for, codec_key, keyframe_detector
from sfu.forwarding import RateMeter, SendSlot, extension_value, ntp_now
from sfu.speaker import SPEAKER_INTERVAL_SECONDS, LevelWindow, loudest

logger = logging.getLogger(__name__)

SOURCES_BY_KIND = {"audio": ("mic",), "video": ("camera", "screen")}
KEYFRAME_REQUEST_INTERVAL_SECONDS = 0.5
NACK_RETRY_SECONDS = 0.1
RECENT_IDS = 32

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class EngineError(Exception):
    """A request the engine refuses; code and reason go back to the caller."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def new_id() -> str:
    return uuid.uuid4().hex


class ParkedTrack(MediaStreamTrack):
    """The track a forwarding RTCRtpSender holds: never yields, so aiortc never encodes.

    Its id becomes the consumer id in the SFU's offer (a=msid), so the browser can match tracks.
    """

    def __init__(self, kind: str, track_id: str) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id

    async def recv(self) -> Any:
        await asyncio.Event().wait()


# --- producers -------------------------------------------------------------------------------
class Producer:
    """A browser's sent track, received on its send transport and forwarded to consumers."""

    def __init__(self, peer: Peer, kind: str, source: str, mid: str, codec: RTCRtpCodecParameters):
        self.id = new_id()
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
        self._last_keyframe_request = 0.0
        self._keyframe_timer: asyncio.TimerHandle | None = None
        self._detect_keyframe = keyframe_detector(codec)

    def describe(self) -> dict[str, Any]:
        return {
            "producer_id": self.id,
            "kind": self.kind,
            "source": self.source,
            "paused": self.paused,
        }

    async def forward(self, packet: RtpPacket) -> None:
        if self.paused:
            return
        now = time.monotonic()
        self.meter.add(len(packet.payload), now)
        self.media_ssrc = packet.ssrc
        if self.kind == "audio":
            level = packet.extensions.audio_level
            if level is not None:
                self.levels.add(level[1])
        keyframe_start: bool | None = None
        detect = self._detect_keyframe
        # The same for every copy: one send time and one extension value per incoming packet.
        ntp_time = ntp_now()
        value = extension_value(packet, self.kind, ntp_time)
        # Synchronous from here: K copies without an await between them (nothing else runs
        # in between, so the consumer set cannot change under the loop either).
        for consumer in list(self.consumers.values()):
            slot = consumer.slot
            if not consumer.forwarding or slot is None:
                continue
            if slot.waiting_keyframe and keyframe_start is None:
                keyframe_start = detect is not None and detect(packet.payload)
            try:
                sent = slot.send(packet, bool(keyframe_start), value, ntp_time, now)
            except ConnectionError:
                continue  # the subscriber's transport is not (or no longer) connected
            except Exception:
                # Never let one consumer break the publisher's receive loop.
                logger.exception("forwarding to consumer %s failed", consumer.id)
                continue
            if sent > 0:
                consumer.meter.add(sent, now)
            elif sent < 0:
                self.request_keyframe()

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
        task = asyncio.ensure_future(binding.receiver._send_rtcp_pli(self.media_ssrc))
        task.add_done_callback(_log_task_error)

    def close(self) -> None:
        self.closed = True
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        if self.binding is not None:
            self.binding.producer = None
            self.binding = None


def _log_task_error(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("background RTCP send failed: %s", task.exception())


class ReceiverBinding:
    """The forwarding state of one receiver on a send transport; points at its producer."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str) -> None:
        self.receiver = receiver
        self.kind = kind
        self.producer: Producer | None = None
        self.codecs: dict[int, RTCRtpCodecParameters] = {}
        self.rtx_ssrc: dict[int, int] = {}
        self.nack = NackGenerator() if kind == "video" else None
        self.streams: dict[int, StreamStatistics] = {}
        self.retransmissions = 0
        self.nacks_sent = 0
        self._last_nack = 0.0
        hooks.install_forwarding_receiver(receiver, self.on_started, self.on_packet)

    def on_started(self, parameters: RTCRtpReceiveParameters) -> None:
        for codec in parameters.codecs:
            self.codecs[codec.payloadType] = codec
        for encoding in parameters.encodings:
            if encoding.rtx:
                self.rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
        # aiortc's RTCP task reports on these streams (Receiver Reports to the publisher).
        self.streams = hooks.receiver_stream_statistics(self.receiver)

    async def on_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        # Called from the transport's receive loop: an exception here would end it (and the
        # publisher's whole connection), so log and drop the packet instead.
        try:
            await self._on_packet(packet, arrival_time_ms)
        except Exception:
            logger.exception("dropping a packet that failed to forward")

    async def _on_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        codec = self.codecs.get(packet.payload_type)
        if codec is None:
            return
        if self.kind == "video":
            await hooks.feed_remb(self.receiver, packet, arrival_time_ms)
        if is_rtx(codec):
            original_ssrc = self.rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None and len(self.rtx_ssrc) == 0 and self.nack is not None:
                original_ssrc = next(iter(self.streams), None)
            if original_ssrc is None or len(packet.payload) < 2 or apt not in self.codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = self.codecs[apt]
            self.retransmissions += 1
        stream = self.streams.get(packet.ssrc)
        if stream is None:
            stream = self.streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        nack = self.nack
        if nack is not None:
            new_gap = nack.add(packet)
            # aiortc NACKs only when a new gap appears; a lost retransmission would then wait
            # for the next loss. Repeat the NACK for what is still missing every interval.
            now = time.monotonic()
            if nack.missing and (new_gap or now - self._last_nack >= NACK_RETRY_SECONDS):
                self._last_nack = now
                self.nacks_sent += 1
                await self.receiver._send_rtcp_nack(packet.ssrc, sorted(nack.missing))
        producer = self.producer
        if producer is not None and codec_key(codec) == codec_key(producer.codec):
            await producer.forward(packet)


# --- consumers -------------------------------------------------------------------------------
class Consumer:
    """One producer forwarded to one subscriber, on a slot of the subscriber's receive PC."""

    def __init__(self, peer: Peer, producer: Producer) -> None:
        self.id = new_id()
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


# --- peers -----------------------------------------------------------------------------------
@dataclass
class Negotiation:
    id: str
    consumers: list[Consumer]


@dataclass
class Peer:
    id: str
    router: Router
    channel: str
    display_name: str
    producers: dict[str, Producer] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    send_pc: RTCPeerConnection | None = None
    recv_pc: RTCPeerConnection | None = None
    bindings: dict[str, ReceiverBinding] = field(default_factory=dict)  # by mid
    slots: list[SendSlot] = field(default_factory=list)
    in_flight: Negotiation | None = None
    needs_negotiation: bool = False
    closed: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    negotiation_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    negotiation_task: asyncio.Task[None] | None = None
    # Recent ids, so a retried closeProducer / receiveAnswer is answered, not refused.
    closed_producers: list[str] = field(default_factory=list)
    answered_negotiations: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "peer_id": self.id,
            "display_name": self.display_name,
            "producers": [p.describe() for p in self.producers.values()],
        }

    def transports(self) -> list[RTCPeerConnection]:
        return [pc for pc in (self.send_pc, self.recv_pc) if pc is not None]


@dataclass
class Router:
    room: str
    peers: dict[str, Peer] = field(default_factory=dict)
    active_speaker: str | None = None
    speaker_task: asyncio.Task[None] | None = None

    def producers(self) -> list[Producer]:
        return [p for peer in self.peers.values() for p in peer.producers.values()]


# --- the engine ------------------------------------------------------------------------------
class MediaEngine:
    def __init__(self, emit: Emit, release_room: Callable[[str], Awaitable[None]]) -> None:
        self.routers: dict[str, Router] = {}
        self._emit = emit
        self._release_room = release_room

    # --- lookups -----------------------------------------------------------------------------
    def _router(self, room: str) -> Router:
        router = self.routers.get(room)
        if router is None:
            raise EngineError("unknown_room", f"room {room!r} is not on this node")
        return router

    def _peer(self, room: str, peer_id: str) -> Peer:
        peer = self._router(room).peers.get(peer_id)
        if peer is None:
            raise EngineError("unknown_peer", f"peer {peer_id!r} has not joined room {room!r}")
        return peer

    @staticmethod
    def _producer(peer: Peer, producer_id: str) -> Producer:
        producer = peer.producers.get(producer_id)
        if producer is None:
            raise EngineError("unknown_producer", f"peer has no producer {producer_id!r}")
        return producer

    @staticmethod
    def _consumer(peer: Peer, consumer_id: str) -> Consumer:
        consumer = peer.consumers.get(consumer_id)
        if consumer is None:
            raise EngineError("unknown_consumer", f"peer has no consumer {consumer_id!r}")
        return consumer

    async def _event(self, peer: Peer, name: str, data: dict[str, Any]) -> None:
        message = {
            "type": "sfu.event",
            "room": peer.router.room,
            "peer_id": peer.id,
            "event": name,
            "data": data,
        }
        try:
            await self._emit(peer.channel, message)
        except Exception:
            logger.exception("could not send %s to peer %s", name, peer.id)

    # --- join / leave ------------------------------------------------------------------------
    async def join(self, room: str, peer_id: str, channel: str, display_name: str) -> dict:
        router = self.routers.get(room)
        if router is not None and peer_id in router.peers:
            existing = router.peers[peer_id]
            if existing.channel == channel:
                # The same connection asking again (a retried request): nothing to redo.
                return {"peers": [p.describe() for p in router.peers.values() if p is not existing]}
            # A reconnect from a new connection replaces the old peer.
            await self._close_peer(existing, release=False)
        router = self.routers.get(room)
        if router is None:
            router = self.routers[room] = Router(room=room)
        peer = Peer(id=peer_id, router=router, channel=channel, display_name=display_name)
        others = [p.describe() for p in router.peers.values()]
        router.peers[peer_id] = peer
        for other in list(router.peers.values()):
            if other is peer:
                continue
            for producer in other.producers.values():
                self._add_consumer(peer, producer)
        self._schedule_negotiation(peer)
        return {"peers": others}

    async def leave(self, room: str, peer_id: str) -> dict:
        """Idempotent: leaving a room one is not in (any more) is a no-op."""
        router = self.routers.get(room)
        peer = router.peers.get(peer_id) if router is not None else None
        if peer is not None:
            await self._close_peer(peer, release=True)
        return {}

    async def _close_peer(self, peer: Peer, *, release: bool) -> None:
        if peer.closed:
            return
        peer.closed = True
        router = peer.router
        router.peers.pop(peer.id, None)
        for producer in list(peer.producers.values()):
            await self._close_producer(producer, notify_owner=False)
        for consumer in list(peer.consumers.values()):
            self._drop_consumer(consumer)
        if peer.negotiation_task is not None and not peer.negotiation_task.done():
            peer.negotiation_task.cancel()
        for pc in peer.transports():
            await pc.close()
        peer.send_pc = peer.recv_pc = None
        peer.bindings.clear()
        peer.slots.clear()
        peer.in_flight = None
        if not router.peers and self.routers.get(router.room) is router:
            del self.routers[router.room]
            if router.speaker_task is not None:
                router.speaker_task.cancel()
                router.speaker_task = None
            if release:
                await self._release_room(router.room)

    async def close(self) -> None:
        for router in list(self.routers.values()):
            for peer in list(router.peers.values()):
                await self._close_peer(peer, release=False)

    # --- producing ---------------------------------------------------------------------------
    async def produce(self, room: str, peer_id: str, offer_sdp: str, sources: dict) -> dict:
        peer = self._peer(room, peer_id)
        description = _parse_sdp(offer_sdp)
        media_by_mid = _validate_offer_media(description, sources)
        async with peer.send_lock:
            if peer.closed:
                raise EngineError("unknown_peer", "the peer left")
            pc = peer.send_pc
            if pc is None:
                pc = peer.send_pc = RTCPeerConnection(ice.rtc_configuration())
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except Exception as exc:
                raise EngineError("bad_sdp", f"the offer was refused: {exc}") from None
            for transceiver in pc.getTransceivers():
                if transceiver.mid is not None and transceiver.mid not in peer.bindings:
                    peer.bindings[transceiver.mid] = ReceiverBinding(
                        transceiver.receiver, transceiver.kind
                    )
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)

            by_mid = {p.mid: p for p in peer.producers.values()}
            for transceiver in pc.getTransceivers():
                mid = transceiver.mid
                if mid is None or mid not in media_by_mid:
                    continue
                media = media_by_mid[mid]
                sending = media.direction in ("sendonly", "sendrecv") and media.port != 0
                existing = by_mid.get(mid)
                if sending and existing is None:
                    codec = _primary_codec(transceiver)
                    if codec is None:
                        continue
                    source = sources.get(mid) or SOURCES_BY_KIND[transceiver.kind][0]
                    orphan = next(
                        (
                            p
                            for p in peer.producers.values()
                            if p.binding is None
                            and p.kind == transceiver.kind
                            and p.source == source
                            and codec_key(p.codec) == codec_key(codec)
                        ),
                        None,
                    )
                    if orphan is not None:
                        self._rebind_producer(orphan, peer.bindings[mid], mid)
                    else:
                        self._add_producer(peer, transceiver, mid, source, codec)
                elif not sending and existing is not None:
                    await self._close_producer(existing, notify_owner=False)
            # Producers of a transport replaced by restartIce that the new offer did not
            # bring back are gone.
            for producer in [p for p in peer.producers.values() if p.binding is None]:
                await self._close_producer(producer, notify_owner=True)
            local_sdp = ice.announce(pc.localDescription.sdp)
        return {
            "sdp": local_sdp,
            "producers": [
                {**p.describe(), "mid": p.mid} for p in peer.producers.values() if not p.closed
            ],
        }

    def _add_producer(
        self,
        peer: Peer,
        transceiver: RTCRtpTransceiver,
        mid: str,
        source: str,
        codec: RTCRtpCodecParameters,
    ) -> Producer:
        producer = Producer(peer, transceiver.kind, source, mid, codec)
        binding = peer.bindings[mid]
        binding.producer = producer
        producer.binding = binding
        peer.producers[producer.id] = producer
        for other in peer.router.peers.values():
            if other is not peer and not other.closed:
                self._add_consumer(other, producer)
                self._schedule_negotiation(other)
        if producer.kind == "audio":
            self._ensure_speaker_task(peer.router)
        return producer

    @staticmethod
    def _rebind_producer(producer: Producer, binding: ReceiverBinding, mid: str) -> None:
        """A producer carried over an ICE restart: new publisher stream, same consumers."""
        producer.binding = binding
        producer.mid = mid
        binding.producer = producer
        for consumer in producer.consumers.values():
            if consumer.forwarding and consumer.slot is not None:
                consumer.slot.restart_stream()
        producer.request_keyframe()

    async def close_producer(self, room: str, peer_id: str, producer_id: str) -> dict:
        peer = self._peer(room, peer_id)
        if producer_id in peer.closed_producers:
            return {}  # a retried request
        await self._close_producer(self._producer(peer, producer_id), notify_owner=False)
        return {}

    async def _close_producer(self, producer: Producer, *, notify_owner: bool) -> None:
        if producer.closed:
            return
        producer.close()
        producer.peer.producers.pop(producer.id, None)
        producer.peer.closed_producers.append(producer.id)
        del producer.peer.closed_producers[:-RECENT_IDS]
        for consumer in list(producer.consumers.values()):
            subscriber = consumer.peer
            self._drop_consumer(consumer)
            if not subscriber.closed:
                await self._event(subscriber, "consumerClosed", {"consumer_id": consumer.id})
                self._schedule_negotiation(subscriber)
        if notify_owner and not producer.peer.closed:
            await self._event(producer.peer, "producerClosed", {"producer_id": producer.id})

    async def pause_producer(self, room: str, peer_id: str, producer_id: str) -> dict:
        await self._set_producer_paused(room, peer_id, producer_id, True)
        return {}

    async def resume_producer(self, room: str, peer_id: str, producer_id: str) -> dict:
        await self._set_producer_paused(room, peer_id, producer_id, False)
        return {}

    async def _set_producer_paused(
        self, room: str, peer_id: str, producer_id: str, paused: bool
    ) -> None:
        producer = self._producer(self._peer(room, peer_id), producer_id)
        if producer.paused == paused:
            return
        producer.paused = paused
        event = "consumerPaused" if paused else "consumerResumed"
        for consumer in list(producer.consumers.values()):
            consumer.update()
            await self._event(consumer.peer, event, {"consumer_id": consumer.id})

    # --- consuming ---------------------------------------------------------------------------
    def _add_consumer(self, peer: Peer, producer: Producer) -> Consumer:
        consumer = Consumer(peer, producer)
        peer.consumers[consumer.id] = consumer
        producer.consumers[consumer.id] = consumer
        peer.needs_negotiation = True
        return consumer

    def _drop_consumer(self, consumer: Consumer) -> None:
        """Forget a consumer; its slot goes idle and the next offer marks it inactive."""
        consumer.closed = True
        consumer.forwarding = False
        consumer.peer.consumers.pop(consumer.id, None)
        consumer.producer.consumers.pop(consumer.id, None)
        if consumer.slot is not None:
            consumer.slot.consumer_id = None
            consumer.slot = None
            consumer.peer.needs_negotiation = True

    async def pause_consumer(self, room: str, peer_id: str, consumer_id: str) -> dict:
        consumer = self._consumer(self._peer(room, peer_id), consumer_id)
        consumer.paused = True
        consumer.update()
        return {}

    async def resume_consumer(self, room: str, peer_id: str, consumer_id: str) -> dict:
        consumer = self._consumer(self._peer(room, peer_id), consumer_id)
        consumer.paused = False
        consumer.update()
        return {}

    async def request_consumer_keyframe(self, room: str, peer_id: str, consumer_id: str) -> dict:
        consumer = self._consumer(self._peer(room, peer_id), consumer_id)
        consumer.keyframe_requests += 1
        consumer.producer.request_keyframe()
        return {}

    # --- the receive transport's negotiation -------------------------------------------------
    def _schedule_negotiation(self, peer: Peer) -> None:
        """One offer in flight per peer; changes meanwhile are batched into the next one."""
        if peer.closed or not peer.needs_negotiation or peer.in_flight is not None:
            return
        if peer.negotiation_task is not None and not peer.negotiation_task.done():
            return
        peer.negotiation_task = asyncio.create_task(self._negotiate(peer))

    async def _negotiate(self, peer: Peer) -> None:
        try:
            async with peer.negotiation_lock:
                if peer.closed or peer.in_flight is not None or not peer.needs_negotiation:
                    return
                peer.needs_negotiation = False
                negotiation = await self._create_offer(peer)
                if negotiation is None:
                    return
                sdp, consumers = negotiation
                peer.in_flight = Negotiation(id=new_id(), consumers=consumers)
            await self._event(
                peer,
                "negotiate",
                {
                    "negotiation_id": peer.in_flight.id,
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

    async def _create_offer(self, peer: Peer) -> tuple[str, list[Consumer]] | None:
        pc = peer.recv_pc
        if pc is None:
            if not peer.consumers:
                return None
            pc = peer.recv_pc = RTCPeerConnection(ice.rtc_configuration(max_bundle=True))
        new_consumers = [c for c in peer.consumers.values() if c.slot is None]
        used = {c.slot for c in peer.consumers.values() if c.slot is not None}
        changed = bool(new_consumers)
        for slot in peer.slots:
            if slot not in used and slot.transceiver.direction != "inactive":
                slot.transceiver.direction = "inactive"
                changed = True
        for consumer in new_consumers:
            key = codec_key(consumer.producer.codec)
            slot = next(
                (
                    s
                    for s in peer.slots
                    if s not in used and s.kind == consumer.kind and s.key == key
                ),
                None,
            )
            if slot is None:
                slot = self._new_slot(peer, pc, consumer)
            used.add(slot)
            slot.consumer_id = consumer.id
            slot.restart_stream()
            consumer.slot = slot
            consumer.slot_retransmissions_before = slot.retransmissions
            sender = slot.transceiver.sender
            sender.replaceTrack(ParkedTrack(consumer.kind, consumer.id))
            sender._stream_id = consumer.producer.peer.id
            slot.transceiver.direction = "sendonly"
        if not changed:
            return None
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        return ice.announce(pc.localDescription.sdp), new_consumers

    def _new_slot(self, peer: Peer, pc: RTCPeerConnection, consumer: Consumer) -> SendSlot:
        codec = consumer.producer.codec
        transceiver = pc.addTransceiver(consumer.kind, direction="sendonly")
        preferences = [capability_for(codec)]
        if consumer.kind == "video":
            preferences.append(
                next(c for c in RTCRtpReceiver.getCapabilities("video").codecs if is_rtx(c))
            )
        transceiver.setCodecPreferences(preferences)
        slot = SendSlot(transceiver, consumer.kind, codec_key(codec))
        sender = transceiver.sender
        hooks.on_sender_start(sender, lambda params, s=slot: self._slot_started(peer, s, params))
        hooks.on_keyframe_request(sender, lambda s=slot: self._slot_keyframe_request(peer, s))
        peer.slots.append(slot)
        return slot

    def _slot_started(self, peer: Peer, slot: SendSlot, parameters: Any) -> None:
        codec = parameters.codecs[0]
        slot.start(codec.payloadType, codec.clockRate, parameters.muxId)
        consumer = peer.consumers.get(slot.consumer_id or "")
        if consumer is not None:
            consumer.update()

    def _slot_keyframe_request(self, peer: Peer, slot: SendSlot) -> None:
        consumer = peer.consumers.get(slot.consumer_id or "")
        if consumer is not None and consumer.forwarding:
            consumer.keyframe_requests += 1
            consumer.producer.request_keyframe()

    async def receive_answer(
        self, room: str, peer_id: str, negotiation_id: str, answer_sdp: str
    ) -> dict:
        peer = self._peer(room, peer_id)
        _parse_sdp(answer_sdp)
        async with peer.negotiation_lock:
            negotiation = peer.in_flight
            if negotiation_id in peer.answered_negotiations:
                return {}  # a retried request
            if negotiation is None or negotiation.id != negotiation_id:
                raise EngineError(
                    "unknown_negotiation", f"no offer {negotiation_id!r} is waiting for an answer"
                )
            assert peer.recv_pc is not None
            try:
                await peer.recv_pc.setRemoteDescription(
                    RTCSessionDescription(sdp=answer_sdp, type="answer")
                )
            except Exception as exc:
                raise EngineError("bad_sdp", f"the answer was refused: {exc}") from None
            peer.in_flight = None
            peer.answered_negotiations.append(negotiation_id)
            del peer.answered_negotiations[:-RECENT_IDS]
            for consumer in negotiation.consumers:
                consumer.negotiated = True
                consumer.update()
        self._schedule_negotiation(peer)
        return {}

    # --- ICE restart -------------------------------------------------------------------------
    async def restart_ice(self, room: str, peer_id: str) -> dict:
        """aiortc has no ICE restart: replace both transports.

        The receive transport is recreated and every consumer is offered again (a `negotiate`
        event follows). The send transport is closed; the producers stay (their consumers
        keep their m-lines) and are re-attached, by mid then by kind and source, when the
        browser calls `produce` with a full offer from a new RTCPeerConnection.
        """
        peer = self._peer(room, peer_id)
        async with peer.send_lock, peer.negotiation_lock:
            old = peer.transports()
            peer.send_pc = peer.recv_pc = None
            for binding in peer.bindings.values():
                binding.producer = None
            peer.bindings.clear()
            for producer in peer.producers.values():
                producer.binding = None
                producer.mid = ""
            peer.slots.clear()
            peer.in_flight = None
            for consumer in peer.consumers.values():
                consumer.slot = None
                consumer.negotiated = False
                consumer.forwarding = False
            peer.needs_negotiation = bool(peer.consumers)
            if peer.negotiation_task is not None and not peer.negotiation_task.done():
                peer.negotiation_task.cancel()
            peer.negotiation_task = None
        for pc in old:
            await pc.close()
        self._schedule_negotiation(peer)
        return {"send_transport": "closed", "receive_transport": "renegotiating"}

    # --- stats / dump ------------------------------------------------------------------------
    async def get_stats(self, room: str, peer_id: str) -> dict:
        peer = self._peer(room, peer_id)
        transports = []
        for direction, pc in (("send", peer.send_pc), ("receive", peer.recv_pc)):
            if pc is None:
                continue
            entry: dict[str, Any] = {
                "direction": direction,
                "connection_state": pc.connectionState,
                "ice_state": pc.iceConnectionState,
                "packets_sent": 0,
                "packets_received": 0,
                "bytes_sent": 0,
                "bytes_received": 0,
            }
            report = await pc.getStats()
            for stat in report.values():
                if stat.type == "transport":
                    entry["packets_sent"] += stat.packetsSent
                    entry["packets_received"] += stat.packetsReceived
                    entry["bytes_sent"] += stat.bytesSent
                    entry["bytes_received"] += stat.bytesReceived
            transports.append(entry)
        producers = []
        for producer in peer.producers.values():
            binding = producer.binding
            stream = binding.streams.get(producer.media_ssrc or -1) if binding else None
            producers.append(
                {
                    **producer.describe(),
                    "mid": producer.mid,
                    "codec": producer.codec.mimeType,
                    "packets": producer.meter.packets,
                    "bytes": producer.meter.bytes,
                    "bitrate_bps": producer.meter.current_bitrate(),
                    "packets_lost": stream.packets_lost if stream else 0,
                    "jitter": stream.jitter if stream else 0,
                    "nacks_sent": binding.nacks_sent if binding else 0,
                    "retransmissions_received": binding.retransmissions if binding else 0,
                    "keyframe_requests": producer.keyframe_requests,
                    "consumers": len(producer.consumers),
                    "rtt_ms": None,
                }
            )
        consumers = []
        for consumer in peer.consumers.values():
            remote: dict[str, Any] = {}
            if consumer.slot is not None and consumer.slot.started:
                report = await consumer.slot.transceiver.sender.getStats()
                for stat in report.values():
                    if stat.type == "remote-inbound-rtp":
                        remote = {
                            "packets_lost": stat.packetsLost,
                            "fraction_lost": stat.fractionLost,
                            "rtt_ms": None
                            if stat.roundTripTime is None
                            else round(stat.roundTripTime * 1000, 2),
                        }
            consumers.append(
                {
                    **consumer.describe(),
                    "forwarding": consumer.forwarding,
                    "packets": consumer.meter.packets,
                    "bytes": consumer.meter.bytes,
                    "bitrate_bps": consumer.meter.current_bitrate(),
                    "packets_lost": remote.get("packets_lost", 0),
                    "fraction_lost": remote.get("fraction_lost", 0),
                    "rtt_ms": remote.get("rtt_ms"),
                    "keyframe_requests": consumer.keyframe_requests,
                    "retransmissions_sent": (
                        consumer.slot.retransmissions - consumer.slot_retransmissions_before
                        if consumer.slot is not None
                        else 0
                    ),
                }
            )
        return {"transports": transports, "producers": producers, "consumers": consumers}

    def dump(self) -> dict[str, Any]:
        per_room = {}
        for room, router in self.routers.items():
            per_room[room] = {
                "peers": len(router.peers),
                "producers": sum(len(p.producers) for p in router.peers.values()),
                "consumers": sum(len(p.consumers) for p in router.peers.values()),
                "transports": sum(len(p.transports()) for p in router.peers.values()),
            }
        totals = {
            key: sum(r[key] for r in per_room.values())
            for key in ("peers", "producers", "consumers", "transports")
        }
        return {"rooms": len(self.routers), **totals, "per_room": per_room}

    def forwarded_streams(self) -> int:
        return sum(
            1
            for router in self.routers.values()
            for peer in router.peers.values()
            for consumer in peer.consumers.values()
            if consumer.forwarding
        )

    # --- active speaker ----------------------------------------------------------------------
    def _ensure_speaker_task(self, router: Router) -> None:
        if router.speaker_task is None or router.speaker_task.done():
            router.speaker_task = asyncio.create_task(self._watch_speaker(router))

    async def _watch_speaker(self, router: Router) -> None:
        while self.routers.get(router.room) is router:
            await asyncio.sleep(SPEAKER_INTERVAL_SECONDS)
            levels = {
                p.peer.id: (None if p.paused else p.levels.take_mean())
                for p in router.producers()
                if p.kind == "audio"
            }
            speaker = loudest(levels)
            if speaker != router.active_speaker:
                router.active_speaker = speaker
                for peer in list(router.peers.values()):
                    await self._event(peer, "activeSpeaker", {"peer_id": speaker})


# --- SDP checks ------------------------------------------------------------------------------
def _parse_sdp(text: str) -> aiortc_sdp.SessionDescription:
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:
        raise EngineError("bad_sdp", f"the SDP could not be parsed: {exc}") from None
    if not description.media:
        raise EngineError("bad_sdp", "the SDP has no media sections")
    for media in description.media:
        if media.kind in ("audio", "video") and not media.rtp.muxId:
            raise EngineError("bad_sdp", "every media section needs a mid")
        if media.kind in ("audio", "video") and (
            media.ice is None or not media.ice.usernameFragment
        ):
            raise EngineError("bad_sdp", "every media section needs ICE credentials")
    return description


def _validate_offer_media(
    description: aiortc_sdp.SessionDescription, sources: dict
) -> dict[str, aiortc_sdp.MediaDescription]:
    media_by_mid = {m.rtp.muxId: m for m in description.media if m.kind in ("audio", "video")}
    for mid, source in sources.items():
        media = media_by_mid.get(mid)
        if media is None:
            raise EngineError("bad_request", f"sources names mid {mid!r}, which the offer lacks")
        if source not in SOURCES_BY_KIND[media.kind]:
            raise EngineError(
                "bad_request", f"source {source!r} does not fit {media.kind} m-line {mid!r}"
            )
    for media in media_by_mid.values():
        if media.direction in ("recvonly",):
            raise EngineError("bad_sdp", "a send-transport offer only sends media")
        if not any(c.mimeType.lower() in FORWARDED_MIME_TYPES for c in media.rtp.codecs):
            raise EngineError(
                "unsupported_codec", f"m-line {media.rtp.muxId!r} offers no VP8, H264 or Opus"
            )
    return media_by_mid


def _primary_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The negotiated codec the browser sends with (first non-RTX of the answer)."""
    for codec in transceiver._codecs:
        if not is_rtx(codec) and codec.mimeType.lower() in FORWARDED_MIME_TYPES:
            return codec
    return None
