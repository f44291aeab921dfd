"""The web ↔ SFU-node contract: the node's methods, what each request carries, what each reply
and event holds. Keys are snake_case, as on the channel layer (the browser's camelCase is
rooms/signaling/shapes.py's business).

Both sides read this one module: sfu.client builds requests and types replies with it, the
node's sfu.handlers checks every request against it and dispatches by `SfuMethod`. The envelope
around the data (ids, reply channels, error responses) is sfu.channel_api's. docs/sfu.md
describes the semantics.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NotRequired, TypedDict, TypeGuard


class SfuMethod(StrEnum):
    """The node's methods; the value is the name on the wire."""

    PING = "ping"
    JOIN = "join"
    PRODUCE = "produce"
    CLOSE_PRODUCER = "closeProducer"
    PAUSE_PRODUCER = "pauseProducer"
    RESUME_PRODUCER = "resumeProducer"
    RECEIVE_ANSWER = "receiveAnswer"
    PAUSE_CONSUMER = "pauseConsumer"
    RESUME_CONSUMER = "resumeConsumer"
    REQUEST_CONSUMER_KEY_FRAME = "requestConsumerKeyFrame"
    SET_CONSUMER_VIEW = "setConsumerView"
    GET_STATS = "getStats"
    RESTART_ICE = "restartIce"
    LEAVE = "leave"
    DUMP = "dump"


Kind = Literal["audio", "video"]
Source = Literal["mic", "camera", "screen"]
SOURCES: tuple[Source, ...] = ("mic", "camera", "screen")


def is_source(value: object) -> TypeGuard[Source]:
    return value in SOURCES


# --- requests (`data` of an sfu.request) ---------------------------------------------------
# ping and dump carry no data; every other request names the room and the peer.
class RoomPeer(TypedDict):
    room: str
    peer_id: str


class JoinRequest(RoomPeer):
    peer_channel: str  # a Channels channel name: the peer's events go there
    display_name: str
    # Replace the peer even from the same channel (the room was placed anew: the client
    # publishes again). Without it, a join from the peer's own channel is a retried request.
    fresh: NotRequired[bool]


class ProduceRequest(RoomPeer):
    sdp: str  # the send transport's offer, ICE fully gathered
    sources: dict[str, Source]  # by mid; a missing mid defaults by kind


class ProducerRequest(RoomPeer):
    """closeProducer, pauseProducer, resumeProducer."""

    producer_id: str


class ConsumerRequest(RoomPeer):
    """pauseConsumer, resumeConsumer, requestConsumerKeyFrame."""

    consumer_id: str


class ConsumerViewRequest(ConsumerRequest):
    """setConsumerView: how the subscriber shows the consumer's video, in device pixels
    (0 x 0: not shown, so not sent). Picks a simulcast producer's layer."""

    width: int
    height: int


class AnswerRequest(RoomPeer):
    """receiveAnswer: the browser's answer to a `negotiate` offer."""

    negotiation_id: str
    sdp: str


# --- replies (`data` of an ok sfu.response) ------------------------------------------------
# closeProducer, pauseProducer, resumeProducer, receiveAnswer, the consumer methods and leave
# reply {}.
class PingReply(TypedDict):
    node: str


class ProducerInfo(TypedDict):
    producer_id: str
    kind: Kind
    source: Source
    paused: bool


class PeerInfo(TypedDict):
    peer_id: str
    display_name: str
    producers: list[ProducerInfo]


class JoinReply(TypedDict):
    peers: list[PeerInfo]  # the room's other peers


class OpenProducer(ProducerInfo):
    mid: str


class ProduceReply(TypedDict):
    sdp: str  # the answer
    producers: list[OpenProducer]  # all of the peer's open producers


class DownlinkStats(TypedDict):
    """A receive transport's downlink estimate (sfu/downlink.py)."""

    estimating: bool  # feedback arrived within the last 2 s (else nothing is capped by it)
    estimate_bps: int  # what the subscriber's link carries without building a queue
    acknowledged_bps: int  # what the subscriber reported receiving lately
    delay_state: str  # "normal", "overusing" (a queue grows) or "underusing"
    loss_fraction: float  # of the packets its last feedback covered
    feedback_packets: int
    # of those received, read as they arrived (alone in their datagram, as browsers send them)
    # rather than through aiortc's receive queue
    feedback_at_arrival: int
    bad_feedback: int  # malformed feedback packets dropped
    probes: int
    probes_succeeded: int


class TransportStats(TypedDict):
    direction: Literal["send", "receive"]
    connection_state: str
    ice_state: str
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    downlink: DownlinkStats | None  # the receive transport's; None for the send transport


class LayerStats(TypedDict):
    """One simulcast layer of a producer, as received."""

    rid: str | None
    ssrc: int | None
    width: int | None  # from the layer's last key frame (VP8); None until known
    height: int | None
    active: bool  # sent something in the last second
    bitrate_bps: int
    keyframe_requests: int
    temporal_layers: int  # highest VP8 temporal layer id seen + 1 (0: none announced)


class ProducerStats(ProducerInfo):
    mid: str
    codec: str
    packets: int
    bytes: int
    bitrate_bps: int
    packets_lost: int
    jitter: int
    nacks_sent: int
    retransmissions_received: int
    duplicates_dropped: int  # retransmissions of packets already received (probes, padding)
    audible: bool  # sent to viewers now (a microphone among the room's loudest; video: true)
    inaudible_packets: int  # not sent to anyone: the microphone was not among the loudest
    keyframe_requests: int
    consumers: int
    rtt_ms: None  # a receiving leg has no RTT measurement in aiortc
    layers: list[LayerStats]  # lowest first; empty unless the producer is simulcast


class ConsumerInfo(TypedDict):
    consumer_id: str
    producer_id: str
    producer_peer_id: str
    kind: Kind
    source: Source
    mid: str | None  # None until the consumer has a slot on the receive transport
    paused: bool  # by the subscriber
    producer_paused: bool


class ConsumerStats(ConsumerInfo):
    forwarding: bool
    packets: int
    bytes: int
    bitrate_bps: int
    packets_lost: int
    fraction_lost: float
    rtt_ms: float | None
    keyframe_requests: int
    retransmissions_sent: int
    retransmissions_skipped: int  # NACKs not answered: resent within an RTT, or over budget
    layer: int  # the producer's layer forwarded now (-1: none; a one-layer producer's is 0)
    target_layer: int  # the layer it moves to at that layer's next key frame
    layer_switches: int
    loss_cap: int | None  # the highest layer the viewer's losses allow now (None: any)
    bandwidth_cap: int | None  # the highest its share of the downlink estimate allows (None: any)
    temporal_layer: int  # the highest VP8 temporal layer forwarded now (2: all)
    temporal_target: int  # the one it moves to (its share of the downlink)
    view_width: int | None  # as setConsumerView reported (None: never)
    view_height: int | None


class StatsReply(TypedDict):
    transports: list[TransportStats]
    producers: list[ProducerStats]
    consumers: list[ConsumerStats]


class RestartIceReply(TypedDict):
    send_transport: Literal["closed"]
    receive_transport: Literal["renegotiating"]


class RoomCounts(TypedDict):
    peers: int
    producers: int
    consumers: int
    transports: int


class DumpReply(TypedDict):
    rooms: int
    peers: int
    producers: int
    consumers: int
    transports: int
    per_room: dict[str, RoomCounts]


# --- events (to the peer's channel) --------------------------------------------------------
EVENT_TYPE = "sfu.event"
EventName = Literal[
    "negotiate",
    "consumerClosed",
    "consumerPaused",
    "consumerResumed",
    "activeSpeaker",
    "producerClosed",
    "downlinkLimited",
]
EVENT_NAMES: tuple[EventName, ...] = (
    "negotiate",
    "consumerClosed",
    "consumerPaused",
    "consumerResumed",
    "activeSpeaker",
    "producerClosed",
    "downlinkLimited",
)


class NegotiateData(TypedDict):
    negotiation_id: str
    sdp: str  # the SFU's offer on the receive transport
    consumers: list[ConsumerInfo]  # the consumers new in this offer


class ConsumerEventData(TypedDict):
    consumer_id: str


class ProducerClosedData(TypedDict):
    producer_id: str


class ActiveSpeakerData(TypedDict):
    peer_id: str | None


class DownlinkLimitedData(TypedDict):
    limited: bool  # the viewer's downlink estimate holds a video below what its tile needs
    estimate_bps: int  # the estimate now (0: none)


class _Event(TypedDict):
    type: Literal["sfu.event"]
    room: str
    peer_id: str  # the peer the event is for
    node: NotRequired[str]  # the node that sent it (added as it leaves the node)


class NegotiateEvent(_Event):
    event: Literal["negotiate"]
    data: NegotiateData


class ConsumerEvent(_Event):
    event: Literal["consumerClosed", "consumerPaused", "consumerResumed"]
    data: ConsumerEventData


class ProducerClosedEvent(_Event):
    event: Literal["producerClosed"]
    data: ProducerClosedData


class ActiveSpeakerEvent(_Event):
    event: Literal["activeSpeaker"]
    data: ActiveSpeakerData


class DownlinkLimitedEvent(_Event):
    event: Literal["downlinkLimited"]
    data: DownlinkLimitedData


SfuEvent = (
    NegotiateEvent | ConsumerEvent | ProducerClosedEvent | ActiveSpeakerEvent | DownlinkLimitedEvent
)
