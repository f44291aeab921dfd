"""The shapes the browser sees for what the SFU and presence know: the SFU contract's snake_case
(sfu/contract.py) turned into the browser protocol's camelCase (docs/protocol.md), field by
field, in the order the browser has always received them.

The one place that converts: a field the node adds reaches the browser only once it is named
here.
"""

from __future__ import annotations

from collections.abc import Sequence

from rooms.models import Participant
from sfu.app_settings import app_settings as sfu_settings
from sfu.contract import (
    ActiveSpeakerData,
    ConsumerEventData,
    ConsumerInfo,
    ConsumerStats,
    DownlinkLimitedData,
    DownlinkStats,
    JoinReply,
    NegotiateData,
    ProducerClosedData,
    ProduceReply,
    ProducerInfo,
    ProducerStats,
    RestartIceReply,
    StatsReply,
    TransportStats,
)
from sfu.ice_servers import parse_ice_server_urls

Shape = dict[str, object]


def ice_servers_for_browsers() -> list[dict[str, str | list[str]]]:
    servers = []
    for server in parse_ice_server_urls(sfu_settings.ICE_SERVERS):
        entry: dict[str, str | list[str]] = {"urls": server.urls}
        if server.username:
            entry["username"] = server.username
        if server.credential:
            entry["credential"] = server.credential
        servers.append(entry)
    return servers


# --- join ------------------------------------------------------------------------------------
def producer_for_client(producer: ProducerInfo) -> Shape:
    return {
        "producerId": producer["producer_id"],
        "kind": producer["kind"],
        "source": producer["source"],
        "paused": producer["paused"],
    }


def peer_list(
    participants: Sequence[Participant], own_peer_id: str, sfu_join: JoinReply
) -> list[Shape]:
    """Everyone present but oneself, with their producers as the SFU's join reported them."""
    producers_by_peer = {
        peer["peer_id"]: [producer_for_client(p) for p in peer["producers"]]
        for peer in sfu_join["peers"]
    }
    return [
        {
            "peerId": participant.peer_id,
            "displayName": participant.display_name,
            "isGuest": participant.is_guest,
            "role": participant.role,
            "producers": producers_by_peer.get(participant.peer_id, []),
        }
        for participant in participants
        if participant.peer_id != own_peer_id
    ]


# --- produce ---------------------------------------------------------------------------------
def produce_for_client(reply: ProduceReply) -> Shape:
    return {
        "sdp": reply["sdp"],
        "producers": [{**producer_for_client(p), "mid": p["mid"]} for p in reply["producers"]],
    }


# --- the receive transport -------------------------------------------------------------------
def consumer_for_client(consumer: ConsumerInfo) -> Shape:
    return {
        "consumerId": consumer["consumer_id"],
        "producerId": consumer["producer_id"],
        "peerId": consumer["producer_peer_id"],
        "kind": consumer["kind"],
        "source": consumer["source"],
        "mid": consumer["mid"],
        "paused": consumer["paused"],
        "producerPaused": consumer["producer_paused"],
    }


def new_consumer_for_client(negotiate: NegotiateData) -> Shape:
    """The `newConsumer` server request's data for a `negotiate` event."""
    return {
        "negotiationId": negotiate["negotiation_id"],
        "sdp": negotiate["sdp"],
        "consumers": [consumer_for_client(c) for c in negotiate["consumers"]],
    }


def restart_ice_for_client(reply: RestartIceReply) -> Shape:
    return {
        "sendTransport": reply["send_transport"],
        "receiveTransport": reply["receive_transport"],
    }


# --- events ----------------------------------------------------------------------------------
def consumer_event_for_client(data: ConsumerEventData) -> Shape:
    """consumerClosed, consumerPaused, consumerResumed."""
    return {"consumerId": data["consumer_id"]}


def producer_closed_for_client(data: ProducerClosedData) -> Shape:
    return {"producerId": data["producer_id"]}


def downlink_limited_for_client(data: DownlinkLimitedData) -> Shape:
    return {"limited": data["limited"], "estimateBps": data["estimate_bps"]}


def active_speaker_for_client(data: ActiveSpeakerData) -> Shape:
    return {"peerId": data["peer_id"]}


# --- getStats --------------------------------------------------------------------------------
def stats_for_client(stats: StatsReply) -> Shape:
    return {
        "transports": [_transport_stats(t) for t in stats["transports"]],
        "producers": [_producer_stats(p) for p in stats["producers"]],
        "consumers": [_consumer_stats(c) for c in stats["consumers"]],
    }


def _transport_stats(transport: TransportStats) -> Shape:
    return {
        "direction": transport["direction"],
        "connectionState": transport["connection_state"],
        "iceState": transport["ice_state"],
        "packetsSent": transport["packets_sent"],
        "packetsReceived": transport["packets_received"],
        "bytesSent": transport["bytes_sent"],
        "bytesReceived": transport["bytes_received"],
        "downlink": _downlink_stats(transport["downlink"]),
    }


def _downlink_stats(downlink: DownlinkStats | None) -> Shape | None:
    if downlink is None:
        return None
    return {
        "estimating": downlink["estimating"],
        "estimateBps": downlink["estimate_bps"],
        "acknowledgedBps": downlink["acknowledged_bps"],
        "delayState": downlink["delay_state"],
        "lossFraction": downlink["loss_fraction"],
        "feedbackPackets": downlink["feedback_packets"],
        "feedbackAtArrival": downlink["feedback_at_arrival"],
        "badFeedback": downlink["bad_feedback"],
        "probes": downlink["probes"],
        "probesSucceeded": downlink["probes_succeeded"],
    }


def _producer_stats(producer: ProducerStats) -> Shape:
    return {
        **producer_for_client(producer),
        "mid": producer["mid"],
        "codec": producer["codec"],
        "packets": producer["packets"],
        "bytes": producer["bytes"],
        "bitrateBps": producer["bitrate_bps"],
        "packetsLost": producer["packets_lost"],
        "jitter": producer["jitter"],
        "nacksSent": producer["nacks_sent"],
        "retransmissionsReceived": producer["retransmissions_received"],
        "duplicatesDropped": producer["duplicates_dropped"],
        "audible": producer["audible"],
        "inaudiblePackets": producer["inaudible_packets"],
        "keyframeRequests": producer["keyframe_requests"],
        "consumers": producer["consumers"],
        "rttMs": producer["rtt_ms"],
        "layers": [
            {
                "rid": layer["rid"],
                "width": layer["width"],
                "height": layer["height"],
                "active": layer["active"],
                "bitrateBps": layer["bitrate_bps"],
                "keyframeRequests": layer["keyframe_requests"],
                "temporalLayers": layer["temporal_layers"],
            }
            for layer in producer["layers"]
        ],
    }


def _consumer_stats(consumer: ConsumerStats) -> Shape:
    # Not consumer_for_client: getStats has always named the producer's peer producerPeerId,
    # where newConsumer says peerId.
    return {
        "consumerId": consumer["consumer_id"],
        "producerId": consumer["producer_id"],
        "producerPeerId": consumer["producer_peer_id"],
        "kind": consumer["kind"],
        "source": consumer["source"],
        "mid": consumer["mid"],
        "paused": consumer["paused"],
        "producerPaused": consumer["producer_paused"],
        "forwarding": consumer["forwarding"],
        "packets": consumer["packets"],
        "bytes": consumer["bytes"],
        "bitrateBps": consumer["bitrate_bps"],
        "packetsLost": consumer["packets_lost"],
        "fractionLost": consumer["fraction_lost"],
        "rttMs": consumer["rtt_ms"],
        "keyframeRequests": consumer["keyframe_requests"],
        "retransmissionsSent": consumer["retransmissions_sent"],
        "retransmissionsSkipped": consumer["retransmissions_skipped"],
        "layer": consumer["layer"],
        "targetLayer": consumer["target_layer"],
        "layerSwitches": consumer["layer_switches"],
        "lossCap": consumer["loss_cap"],
        "bandwidthCap": consumer["bandwidth_cap"],
        "temporalLayer": consumer["temporal_layer"],
        "temporalTarget": consumer["temporal_target"],
        "viewWidth": consumer["view_width"],
        "viewHeight": consumer["view_height"],
    }
