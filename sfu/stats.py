"""Read-only views of the media model: a peer's `getStats`, the node's `dump` and load.

Transport figures come from aiortc's public getStats(); producer figures from the producer's
meter and its ReceiverBinding (aiortc's per-SSRC receive statistics, NACKs, RTX); consumer
figures from the consumer's meter, its slot and the subscriber's Receiver Reports.
"""

from __future__ import annotations

import time
from typing import Any

from aiortc import RTCPeerConnection

from sfu.consumer import Consumer
from sfu.peer import Peer
from sfu.producer import Producer
from sfu.router import Router

COUNTED = ("peers", "producers", "consumers", "transports")


async def peer_stats(peer: Peer) -> dict[str, Any]:
    transports = []
    for direction, pc in (("send", peer.send_pc), ("receive", peer.receive.pc)):
        if pc is not None:
            entry = await _transport_stats(direction, pc)
            if direction == "receive":
                entry["downlink"] = peer.receive.downlink.describe()
            transports.append(entry)
    return {
        "transports": transports,
        "producers": [_producer_stats(p) for p in peer.producers.values()],
        "consumers": [await _consumer_stats(c) for c in peer.consumers.values()],
    }


async def _transport_stats(direction: str, pc: RTCPeerConnection) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "direction": direction,
        "connection_state": pc.connectionState,
        "ice_state": pc.iceConnectionState,
        "packets_sent": 0,
        "packets_received": 0,
        "bytes_sent": 0,
        "bytes_received": 0,
        "downlink": None,
    }
    report = await pc.getStats()
    for stat in report.values():
        if stat.type == "transport":
            entry["packets_sent"] += stat.packetsSent
            entry["packets_received"] += stat.packetsReceived
            entry["bytes_sent"] += stat.bytesSent
            entry["bytes_received"] += stat.bytesReceived
    return entry


def _producer_stats(producer: Producer) -> dict[str, Any]:
    binding = producer.binding
    stream = binding.streams.get(producer.media_ssrc or -1) if binding else None
    return {
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
        "duplicates_dropped": binding.duplicates_dropped if binding else 0,
        "audible": producer.audible,
        "inaudible_packets": producer.inaudible_packets,
        "keyframe_requests": producer.keyframe_requests,
        "consumers": len(producer.consumers),
        "rtt_ms": None,
        "layers": [layer.describe(time.monotonic()) for layer in producer.layers]
        if producer.simulcast
        else [],
    }


async def _consumer_stats(consumer: Consumer) -> dict[str, Any]:
    remote: dict[str, Any] = {}
    slot = consumer.slot
    if slot is not None and slot.started:
        report = await slot.transceiver.sender.getStats()
        for stat in report.values():
            if stat.type == "remote-inbound-rtp":
                remote = {
                    "packets_lost": stat.packetsLost,
                    "fraction_lost": stat.fractionLost,
                    "rtt_ms": None
                    if stat.roundTripTime is None
                    else round(stat.roundTripTime * 1000, 2),
                }
    # Read the slot again after the await: the consumer may have lost it meanwhile.
    slot = consumer.slot
    return {
        **consumer.describe(),
        **consumer.describe_layers(),
        "forwarding": consumer.forwarding,
        "packets": consumer.meter.packets,
        "bytes": consumer.meter.bytes,
        "bitrate_bps": consumer.meter.current_bitrate(),
        "packets_lost": remote.get("packets_lost", 0),
        "fraction_lost": remote.get("fraction_lost", 0),
        "rtt_ms": remote.get("rtt_ms"),
        "keyframe_requests": consumer.keyframe_requests,
        "retransmissions_sent": (
            slot.retransmissions - consumer.slot_retransmissions_before if slot is not None else 0
        ),
        "retransmissions_skipped": (
            slot.retransmissions_skipped - consumer.slot_retransmissions_skipped_before
            if slot is not None
            else 0
        ),
    }


def dump(routers: dict[str, Router]) -> dict[str, Any]:
    """Counts per room and in total (tests check they return to zero: no leaks)."""
    per_room = {room: _room_counts(router) for room, router in routers.items()}
    totals = {key: sum(r[key] for r in per_room.values()) for key in COUNTED}
    return {"rooms": len(routers), **totals, "per_room": per_room}


def _room_counts(router: Router) -> dict[str, int]:
    peers = router.peers.values()
    return {
        "peers": len(peers),
        "producers": sum(len(p.producers) for p in peers),
        "consumers": sum(len(p.consumers) for p in peers),
        "transports": sum(len(p.transports()) for p in peers),
    }


def forwarded_streams(routers: dict[str, Router]) -> int:
    """Consumers forwarding now: the node's load."""
    return sum(
        1
        for router in routers.values()
        for peer in router.peers.values()
        for consumer in peer.consumers.values()
        if consumer.forwarding
    )
