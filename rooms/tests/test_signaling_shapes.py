"""What the browser gets for what the SFU node says: the exact JSON (keys, their order, values)
of each shape in rooms/signaling/shapes.py, from data as the node sends it."""

from __future__ import annotations

import json

from rooms.models import Participant
from rooms.signaling import shapes
from sfu.contract import (
    ConsumerInfo,
    ConsumerStats,
    JoinReply,
    NegotiateData,
    OpenProducer,
    ProduceReply,
    ProducerStats,
    StatsReply,
    TransportStats,
)

CAMERA: OpenProducer = {
    "producer_id": "p1",
    "kind": "video",
    "source": "camera",
    "paused": False,
    "mid": "0",
}
CONSUMER: ConsumerInfo = {
    "consumer_id": "c1",
    "producer_id": "p1",
    "producer_peer_id": "alice",
    "kind": "video",
    "source": "camera",
    "mid": None,
    "paused": False,
    "producer_paused": True,
}


def as_json(value: object) -> str:
    return json.dumps(value)


def test_produce_gives_the_answer_and_every_producer_with_its_mid_last() -> None:
    reply: ProduceReply = {"sdp": "v=0", "producers": [CAMERA]}
    assert as_json(shapes.produce_for_client(reply)) == as_json(
        {
            "sdp": "v=0",
            "producers": [
                {
                    "producerId": "p1",
                    "kind": "video",
                    "source": "camera",
                    "paused": False,
                    "mid": "0",
                }
            ],
        }
    )


def test_new_consumer_names_the_producers_peer_peer_id() -> None:
    negotiate: NegotiateData = {"negotiation_id": "n1", "sdp": "v=0", "consumers": [CONSUMER]}
    assert as_json(shapes.new_consumer_for_client(negotiate)) == as_json(
        {
            "negotiationId": "n1",
            "sdp": "v=0",
            "consumers": [
                {
                    "consumerId": "c1",
                    "producerId": "p1",
                    "peerId": "alice",
                    "kind": "video",
                    "source": "camera",
                    "mid": None,
                    "paused": False,
                    "producerPaused": True,
                }
            ],
        }
    )


def test_events_restart_ice_and_the_active_speaker() -> None:
    assert shapes.consumer_event_for_client({"consumer_id": "c1"}) == {"consumerId": "c1"}
    assert shapes.producer_closed_for_client({"producer_id": "p1"}) == {"producerId": "p1"}
    assert shapes.active_speaker_for_client({"peer_id": None}) == {"peerId": None}
    assert shapes.downlink_limited_for_client({"limited": True, "estimate_bps": 600_000}) == {
        "limited": True,
        "estimateBps": 600_000,
    }
    assert as_json(
        shapes.restart_ice_for_client(
            {"send_transport": "closed", "receive_transport": "renegotiating"}
        )
    ) == as_json({"sendTransport": "closed", "receiveTransport": "renegotiating"})


def test_stats_are_camel_cased_field_by_field() -> None:
    transport: TransportStats = {
        "direction": "send",
        "connection_state": "connected",
        "ice_state": "completed",
        "packets_sent": 1,
        "packets_received": 2,
        "bytes_sent": 3,
        "bytes_received": 4,
        "downlink": None,
    }
    receive: TransportStats = {
        "direction": "receive",
        "connection_state": "connected",
        "ice_state": "completed",
        "packets_sent": 30,
        "packets_received": 31,
        "bytes_sent": 32,
        "bytes_received": 33,
        "downlink": {
            "estimating": True,
            "estimate_bps": 800_000,
            "acknowledged_bps": 650_000,
            "delay_state": "overusing",
            "loss_fraction": 0.25,
            "feedback_packets": 34,
            "feedback_at_arrival": 33,
            "bad_feedback": 35,
            "probes": 36,
            "probes_succeeded": 37,
        },
    }
    producer: ProducerStats = {
        "producer_id": "p1",
        "kind": "video",
        "source": "camera",
        "paused": False,
        "mid": "0",
        "codec": "video/VP8",
        "packets": 5,
        "bytes": 6,
        "bitrate_bps": 7,
        "packets_lost": 8,
        "jitter": 9,
        "nacks_sent": 10,
        "retransmissions_received": 11,
        "duplicates_dropped": 38,
        "audible": True,
        "inaudible_packets": 0,
        "keyframe_requests": 12,
        "consumers": 13,
        "rtt_ms": None,
        "layers": [
            {
                "rid": "q",
                "ssrc": 1234,
                "width": 320,
                "height": 180,
                "active": True,
                "bitrate_bps": 20,
                "keyframe_requests": 21,
                "temporal_layers": 3,
            }
        ],
    }
    consumer: ConsumerStats = {
        **CONSUMER,
        "forwarding": True,
        "packets": 14,
        "bytes": 15,
        "bitrate_bps": 16,
        "packets_lost": 17,
        "fraction_lost": 0.5,
        "rtt_ms": 1.5,
        "keyframe_requests": 18,
        "retransmissions_sent": 19,
        "retransmissions_skipped": 23,
        "layer": 0,
        "target_layer": 2,
        "layer_switches": 22,
        "loss_cap": 1,
        "bandwidth_cap": 0,
        "temporal_layer": 1,
        "temporal_target": 2,
        "view_width": 640,
        "view_height": 360,
    }
    stats: StatsReply = {
        "transports": [transport, receive],
        "producers": [producer],
        "consumers": [consumer],
    }
    assert as_json(shapes.stats_for_client(stats)) == as_json(
        {
            "transports": [
                {
                    "direction": "send",
                    "connectionState": "connected",
                    "iceState": "completed",
                    "packetsSent": 1,
                    "packetsReceived": 2,
                    "bytesSent": 3,
                    "bytesReceived": 4,
                    "downlink": None,
                },
                {
                    "direction": "receive",
                    "connectionState": "connected",
                    "iceState": "completed",
                    "packetsSent": 30,
                    "packetsReceived": 31,
                    "bytesSent": 32,
                    "bytesReceived": 33,
                    "downlink": {
                        "estimating": True,
                        "estimateBps": 800_000,
                        "acknowledgedBps": 650_000,
                        "delayState": "overusing",
                        "lossFraction": 0.25,
                        "feedbackPackets": 34,
                        "feedbackAtArrival": 33,
                        "badFeedback": 35,
                        "probes": 36,
                        "probesSucceeded": 37,
                    },
                },
            ],
            "producers": [
                {
                    "producerId": "p1",
                    "kind": "video",
                    "source": "camera",
                    "paused": False,
                    "mid": "0",
                    "codec": "video/VP8",
                    "packets": 5,
                    "bytes": 6,
                    "bitrateBps": 7,
                    "packetsLost": 8,
                    "jitter": 9,
                    "nacksSent": 10,
                    "retransmissionsReceived": 11,
                    "duplicatesDropped": 38,
                    "audible": True,
                    "inaudiblePackets": 0,
                    "keyframeRequests": 12,
                    "consumers": 13,
                    "rttMs": None,
                    "layers": [
                        {
                            "rid": "q",
                            "width": 320,
                            "height": 180,
                            "active": True,
                            "bitrateBps": 20,
                            "keyframeRequests": 21,
                            "temporalLayers": 3,
                        }
                    ],
                }
            ],
            "consumers": [
                {
                    "consumerId": "c1",
                    "producerId": "p1",
                    "producerPeerId": "alice",
                    "kind": "video",
                    "source": "camera",
                    "mid": None,
                    "paused": False,
                    "producerPaused": True,
                    "forwarding": True,
                    "packets": 14,
                    "bytes": 15,
                    "bitrateBps": 16,
                    "packetsLost": 17,
                    "fractionLost": 0.5,
                    "rttMs": 1.5,
                    "keyframeRequests": 18,
                    "retransmissionsSent": 19,
                    "retransmissionsSkipped": 23,
                    "layer": 0,
                    "targetLayer": 2,
                    "layerSwitches": 22,
                    "lossCap": 1,
                    "bandwidthCap": 0,
                    "temporalLayer": 1,
                    "temporalTarget": 2,
                    "viewWidth": 640,
                    "viewHeight": 360,
                }
            ],
        }
    )


def test_peer_list_is_everyone_else_with_the_producers_the_sfu_reported() -> None:
    present = [
        Participant(peer_id="me", display_name="Me", role="host"),
        Participant(peer_id="alice", display_name="Alice", role="participant"),
        Participant(peer_id="bob", display_name="Bob", role="guest", is_guest=True),
    ]
    join: JoinReply = {
        "peers": [
            {
                "peer_id": "alice",
                "display_name": "Alice",
                "producers": [
                    {"producer_id": "p1", "kind": "audio", "source": "mic", "paused": True}
                ],
            }
        ]
    }
    assert as_json(shapes.peer_list(present, "me", join)) == as_json(
        [
            {
                "peerId": "alice",
                "displayName": "Alice",
                "isGuest": False,
                "role": "participant",
                "producers": [
                    {"producerId": "p1", "kind": "audio", "source": "mic", "paused": True}
                ],
            },
            {
                "peerId": "bob",
                "displayName": "Bob",
                "isGuest": True,
                "role": "guest",
                "producers": [],
            },
        ]
    )
