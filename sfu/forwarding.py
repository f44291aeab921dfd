"""The send half of the per-packet path: one incoming packet to K consumers, rewritten per
consumer and sent.

`fan_out` takes a producer's packet from the receive half (sfu/receiving.py) and sends a copy
through each forwarding consumer's `SendSlot`. No jitter buffer, no depayloading, no
decoding. Per consumer the slot rewrites SSRC, payload type, sequence number and timestamp
(offsets recomputed whenever the stream restarts: resume, new slot, publisher reconnect),
header extensions (the subscriber's ids; mid, abs-send-time, audio level kept), and starts
video only at a key frame. `hooks.SenderOutput` puts the bytes on the wire. Also here: the
bitrate meter (`RateMeter`) producers and consumers count with.

A simulcast producer's packets arrive from several layers: each consumer takes the packets of
its own layer and moves to its target layer at that layer's first key frame (`_fan_out_layers`);
the slot then continues sequence numbers, timestamps and, for VP8, picture ids and TL0PICIDX
across the move (sfu/vp8.py), so the viewer's decoder sees one stream.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket
from aiortc.utils import uint16_gt

from sfu import vp8

if TYPE_CHECKING:
    from aiortc import RTCRtpTransceiver

    from sfu.consumer import Consumer
    from sfu.hooks import SenderOutput
    from sfu.producer import Producer

logger = logging.getLogger(__name__)

# Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_UNIX_OFFSET = 2208988800
RTP_HEADER = struct.Struct("!BBHLL")
RTP_VERSION_BITS = 0x80
RTP_EXTENSION_BIT = 0x10


def ntp_now() -> int:
    """The 64-bit NTP time aiortc's clock.current_ntp_time() gives, without building datetimes
    (which cost about 1 µs; the forwarder needs it once per forwarded packet)."""
    now = time.time()
    seconds = int(now)
    return ((seconds + NTP_UNIX_OFFSET) << 32) | int((now - seconds) * 4294967296.0)


def rtp_bytes(
    marker: int,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    extension: bytes,
    payload: bytes,
) -> bytes:
    """A forwarded packet (no CSRCs, no padding) whose extension block (from
    ExtensionBlock.with_value) is already serialized: the bytes aiortc's
    `RtpPacket.serialize(extensions_map)` gives (sfu/selftest.py checks they are equal)."""
    header = RTP_HEADER.pack(
        RTP_VERSION_BITS | (RTP_EXTENSION_BIT if extension else 0),
        (marker << 7) | payload_type,
        sequence_number,
        timestamp,
        ssrc,
    )
    return header + extension + payload


def extension_value(packet: RtpPacket, kind: str, ntp_time: int) -> bytes | None:
    """The per-packet header-extension value every copy of `packet` carries: abs-send-time
    (3 bytes, from the send time) for video, the publisher's audio level (1 byte) for audio."""
    if kind == "video":
        return ((ntp_time >> 14) & 0x00FFFFFF).to_bytes(3, "big")
    level = packet.extensions.audio_level
    if level is None:
        return None
    return bytes(((0x80 if level[0] else 0) | (level[1] & 0x7F),))


class ExtensionBlock:
    """A subscriber's header-extension block, serialized once with aiortc's own map.

    The forwarder's extensions are the slot's fixed mid plus one value that changes per packet
    (abs-send-time, 3 bytes, or audio level, 1 byte) and, where the subscriber negotiated
    transport-wide congestion control, the transport-wide sequence number (2 bytes). aiortc's
    map lays them out the same way every time, so the bytes are cached with the positions of
    the changing values and each packet only splices its values in (rather than aiortc's
    per-packet list building and packing).
    """

    __slots__ = ("after", "before", "middle", "transport_cc", "varies", "without", "without_after")

    def __init__(
        self,
        extensions_map: HeaderExtensionsMap,
        low: HeaderExtensions,
        high: HeaderExtensions,
        bare: HeaderExtensions,
    ) -> None:
        low_bytes = self._block(extensions_map, replace(low, transport_sequence_number=0))
        high_bytes = self._block(extensions_map, replace(high, transport_sequence_number=0))
        numbered = self._block(extensions_map, replace(low, transport_sequence_number=0xFFFF))
        # Where two probes differ is where a per-packet value goes.
        value_start, value_end = _difference(low_bytes, high_bytes)
        # False when the subscriber did not negotiate the changing extension: nothing to splice.
        self.varies = low_bytes != high_bytes
        self.transport_cc = numbered != low_bytes
        sequence_start, sequence_end = _difference(low_bytes, numbered)
        if not self.transport_cc:
            sequence_start = sequence_end = len(low_bytes)
        if self.varies and value_end > sequence_start:
            raise ValueError("the transport-wide sequence number precedes the varying value")
        self.before = low_bytes[:value_start]
        self.middle = low_bytes[value_end:sequence_start]
        self.after = low_bytes[sequence_end:]
        # The block when the value is absent (audio without a level) or not negotiated.
        without = self._block(extensions_map, replace(bare, transport_sequence_number=0))
        bare_numbered = self._block(extensions_map, replace(bare, transport_sequence_number=0xFFFF))
        if self.transport_cc:
            start, end = _difference(without, bare_numbered)
            self.without, self.without_after = without[:start], without[end:]
        else:
            self.without, self.without_after = without, b""

    def with_value(self, value: bytes | None, transport_sequence: int = -1) -> bytes:
        """The block with this packet's `value` and, where negotiated, `transport_sequence`."""
        if self.transport_cc:
            sequence = (transport_sequence & 0xFFFF).to_bytes(2, "big")
            if value is None or not self.varies:
                return self.without + sequence + self.without_after
            return self.before + value + self.middle + sequence + self.after
        if value is None or not self.varies:
            return self.without
        return self.before + value + self.middle + self.after

    @staticmethod
    def _block(extensions_map: HeaderExtensionsMap, values: HeaderExtensions) -> bytes:
        profile, value = extensions_map.set(values)
        if not value:
            return b""
        return struct.pack("!HH", profile, len(value) >> 2) + value


def _difference(a: bytes, b: bytes) -> tuple[int, int]:
    """The span [start, end) outside which the equally long `a` and `b` are equal."""
    start = 0
    while start < len(a) and a[start] == b[start]:
        start += 1
    end = len(a)
    while end > start and a[end - 1] == b[end - 1]:
        end -= 1
    return start, end


class RateMeter:
    """Packets, bytes and a bitrate over the last second or so."""

    __slots__ = ("_window_bytes", "_window_start", "bitrate_bps", "bytes", "packets")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.bitrate_bps = 0
        self._window_start = time.monotonic()
        self._window_bytes = 0

    def add(self, size: int, now: float) -> None:
        """Count a packet of `size` bytes seen at `now` (time.monotonic(), read once per
        incoming packet by the caller rather than once per copy)."""
        self.packets += 1
        self.bytes += size
        elapsed = now - self._window_start
        if elapsed >= 1.0:
            self.bitrate_bps = int((self.bytes - self._window_bytes) * 8 / elapsed)
            self._window_start = now
            self._window_bytes = self.bytes

    def current_bitrate(self) -> int:
        # A stream that stopped has no packets to close its window: report it as idle.
        return 0 if time.monotonic() - self._window_start > 2.0 else self.bitrate_bps


class SendSlot:
    """One sendonly m-line of a subscriber's receive transport, reused by successive consumers.

    Sequence numbers and timestamps continue across the consumers that use the slot, so the
    subscriber sees one continuous RTP stream per SSRC.
    """

    def __init__(self, transceiver: RTCRtpTransceiver, kind: str, key: tuple[str, str, str]):
        self.transceiver = transceiver
        self.kind = kind
        self.key = key
        self.consumer_id: str | None = None
        self.output: SenderOutput | None = None
        self.payload_type: int | None = None
        self.clock_rate = 90000 if kind == "video" else 48000
        self.mid: str | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq: int | None = None
        self._last_ts: int | None = None
        self._last_time = 0.0
        self._needs_sync = True
        self.waiting_keyframe = kind == "video"
        self._extensions: ExtensionBlock | None = None
        # VP8 picture-id and TL0PICIDX continuity across layer switches (simulcast only): the
        # offsets added, what was last sent, and whether the next run comes from another layer.
        self._picture_id_offset = 0
        self._tl0picidx_offset = 0
        self._last_picture_id: int | None = None
        self._last_tl0picidx: int | None = None
        self._source: tuple[str, int] | None = None
        self._new_source = False
        # Temporal layers left out (`skip`): the newest publisher sequence number of this run,
        # the one last skipped (packets older than it arriving late cannot be numbered any
        # more) and the picture last skipped (a picture is taken out of the numbering once).
        self._last_input_seq: int | None = None
        self._skipped_seq: int | None = None
        self._skipped_picture = -1

    @property
    def started(self) -> bool:
        return self.output is not None

    @property
    def retransmissions(self) -> int:
        """Packets this slot has sent again because the subscriber NACKed them."""
        return 0 if self.output is None else self.output.retransmissions

    @property
    def retransmissions_skipped(self) -> int:
        """NACKed packets not sent again: resent within a round trip already, or over the
        retransmission budget."""
        return 0 if self.output is None else self.output.retransmissions_skipped

    def start(
        self, output: SenderOutput, payload_type: int | None, clock_rate: int, mid: str | None
    ) -> None:
        """aiortc started the slot's sender: forward through `output` with what the subscriber
        negotiated (payload type, clock rate, its header-extension ids, the m-line's mid)."""
        self.output = output
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.mid = mid
        extensions_map = output.extensions_map
        if self.kind == "video":
            self._extensions = ExtensionBlock(
                extensions_map,
                HeaderExtensions(mid=mid, abs_send_time=0),
                HeaderExtensions(mid=mid, abs_send_time=0xFFFFFF),
                HeaderExtensions(mid=mid),
            )
        else:
            self._extensions = ExtensionBlock(
                extensions_map,
                HeaderExtensions(mid=mid, audio_level=(False, 0)),
                HeaderExtensions(mid=mid, audio_level=(True, 127)),
                HeaderExtensions(mid=mid),
            )

    def restart_stream(self) -> None:
        """The next packet starts a new run: recompute offsets, wait for a key frame."""
        self._needs_sync = True
        self.waiting_keyframe = self.kind == "video"

    def switch_source(self, source: tuple[str, int]) -> None:
        """The next packet, a key frame's first, starts a run from `source` (producer id,
        layer): continue the numbering from what was sent, picture ids included when the
        source is not the one sent last."""
        self._needs_sync = True
        self.waiting_keyframe = False
        self._new_source = source != self._source
        self._source = source

    def send(
        self,
        packet: RtpPacket,
        keyframe_start: bool,
        extension_value: bytes | None,
        ntp_time: int,
        now: float,
        descriptor: vp8.Descriptor | None = None,
    ) -> int:
        """Rewrite and send; returns bytes sent, 0 when dropped, -1 when a key frame is needed.

        Everything that is the same for every copy of a packet is computed once by the caller:
        `extension_value` (extension_value()), `ntp_time` (ntp_now()), `now` (monotonic) and,
        for a simulcast VP8 producer, the payload's `descriptor` (whose picture ids the slot
        keeps continuous).
        Raises ConnectionError when the subscriber's transport is not connected.
        """
        if self.waiting_keyframe:
            if not keyframe_start:
                return -1
            self.waiting_keyframe = False
        sequence_number = packet.sequence_number
        if self._needs_sync:
            self._needs_sync = False
            self._last_input_seq = self._skipped_seq = None
            self._skipped_picture = -1
            next_seq = random.randint(0, 32767) if self._last_seq is None else (self._last_seq + 1)
            self._seq_offset = (next_seq - packet.sequence_number) & 0xFFFF
            if self._last_ts is None:
                next_ts = random.getrandbits(32)
            else:
                elapsed = max(now - self._last_time, 0.001)
                next_ts = self._last_ts + int(elapsed * self.clock_rate)
            self._ts_offset = (next_ts - packet.timestamp) & 0xFFFFFFFF
            if descriptor is not None:
                self._sync_picture_ids(descriptor)
        elif self._skipped_seq is not None and not uint16_gt(sequence_number, self._skipped_seq):
            return 0  # late, from before packets were left out: its number is gone
        if self._last_input_seq is None or uint16_gt(sequence_number, self._last_input_seq):
            self._last_input_seq = sequence_number
        seq = (sequence_number + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        payload = packet.payload
        picture_id = tl0picidx = -1
        if descriptor is not None:
            picture_id = descriptor.picture_id
            if picture_id >= 0:
                picture_id = (picture_id + self._picture_id_offset) % vp8.PICTURE_ID_MODULO[
                    descriptor.picture_id_bits
                ]
            tl0picidx = descriptor.tl0picidx
            if tl0picidx >= 0:
                tl0picidx = (tl0picidx + self._tl0picidx_offset) & 0xFF
            if self._picture_id_offset or self._tl0picidx_offset:
                payload = vp8.rewrite(payload, descriptor, picture_id, tl0picidx)
        output = self.output
        block = self._extensions
        assert output is not None
        assert block is not None
        downlink = output.downlink
        transport_sequence = -1
        if downlink is not None and block.transport_cc:
            transport_sequence = downlink.next_sequence()
        data = rtp_bytes(
            packet.marker,
            self.payload_type or 0,
            seq,
            timestamp,
            output.ssrc,
            block.with_value(extension_value, transport_sequence),
            payload,
        )
        if self._last_seq is None or uint16_gt(seq, self._last_seq):
            self._last_seq = seq
            self._last_ts = timestamp
            self._last_time = now
            if picture_id >= 0:
                self._last_picture_id = picture_id
            if tl0picidx >= 0:
                self._last_tl0picidx = tl0picidx
        return output.send(seq, timestamp, len(payload), data, ntp_time, transport_sequence, now)

    def skip(self, packet: RtpPacket, descriptor: vp8.Descriptor) -> None:
        """Leave `packet` out (a temporal layer above what the viewer is sent): the packets
        after it are numbered as if it had never been, and so are the pictures (VP8 picture
        ids), so the viewer sees a stream at a lower frame rate, not losses."""
        if self._needs_sync or self.waiting_keyframe:
            return  # nothing sent in this run yet: the next run's numbering starts afresh
        sequence_number = packet.sequence_number
        if self._last_input_seq is not None and not uint16_gt(
            sequence_number, self._last_input_seq
        ):
            return  # late: the numbering has moved past it already
        self._last_input_seq = self._skipped_seq = sequence_number
        self._seq_offset = (self._seq_offset - 1) & 0xFFFF
        picture_id = descriptor.picture_id
        if picture_id >= 0 and picture_id != self._skipped_picture:
            self._skipped_picture = picture_id
            self._picture_id_offset -= 1

    def _sync_picture_ids(self, descriptor: vp8.Descriptor) -> None:
        """At the start of a run from another layer: offsets that make its picture ids and
        TL0PICIDX follow the last ones sent. A run from the same layer keeps its offsets (the
        publisher's own numbering already moved on by the pictures not sent)."""
        if not self._new_source:
            return
        self._new_source = False
        if descriptor.picture_id >= 0 and self._last_picture_id is not None:
            modulo = vp8.PICTURE_ID_MODULO[descriptor.picture_id_bits]
            self._picture_id_offset = (self._last_picture_id + 1 - descriptor.picture_id) % modulo
        if descriptor.tl0picidx >= 0 and self._last_tl0picidx is not None:
            self._tl0picidx_offset = (self._last_tl0picidx + 1 - descriptor.tl0picidx) & 0xFF


async def fan_out(producer: Producer, packet: RtpPacket, layer_index: int = 0) -> None:
    """Forward one packet of `producer` (from its layer `layer_index`) to each of its
    forwarding consumers."""
    if producer.paused:
        return
    now = time.monotonic()
    producer.meter.add(len(packet.payload), now)
    if producer.simulcast:
        _fan_out_layers(producer, packet, layer_index, now)
        return
    producer.media_ssrc = packet.ssrc
    producer.layers[0].last_packet = now
    if producer.kind == "audio":
        level = packet.extensions.audio_level
        if level is not None:
            producer.levels.add(level[1])
            producer.recent_levels.add(level[1])
        if not producer.audible:
            _leave_out(producer, packet)
            return
    keyframe_start: bool | None = None
    detect = producer.detect_keyframe
    # The same for every copy: one send time and one extension value per incoming packet.
    ntp_time = ntp_now()
    value = extension_value(packet, producer.kind, ntp_time)
    # Synchronous from here: K copies without an await between them (nothing else runs
    # in between, so the consumer set cannot change under the loop either).
    for consumer in list(producer.consumers.values()):
        slot = consumer.slot
        if not consumer.forwarding or slot is None:
            continue
        if slot.waiting_keyframe and keyframe_start is None:
            keyframe_start = detect is not None and detect(packet.payload)
        # Inline rather than through _send: this loop runs K times per packet.
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
            producer.request_keyframe()


# Where a packet has no VP8 descriptor (audio): SendSlot.skip renumbers only its sequence.
NO_DESCRIPTOR = vp8.Descriptor(
    picture_id=-1,
    picture_id_at=-1,
    picture_id_bits=0,
    tl0picidx=-1,
    tl0picidx_at=-1,
    temporal_id=-1,
    size=0,
)


def _leave_out(producer: Producer, packet: RtpPacket) -> None:
    """A packet of a microphone not among the room's loudest (sfu/audible.py): sent to no
    one, and numbered out of every viewer's stream, so they see a pause, not losses."""
    producer.inaudible_packets += 1
    for consumer in producer.consumers.values():
        slot = consumer.slot
        if consumer.forwarding and slot is not None:
            slot.skip(packet, NO_DESCRIPTOR)


def _fan_out_layers(producer: Producer, packet: RtpPacket, layer_index: int, now: float) -> None:
    """fan_out for a simulcast producer: each consumer gets the packets of its layer and moves
    to its target layer at that layer's first key frame."""
    layer = producer.layers[layer_index]
    layer.last_packet = now
    if producer.first_packet is None:
        producer.first_packet = now
    layer.meter.add(len(packet.payload), now)
    detect = producer.detect_keyframe
    keyframe_start = detect is not None and detect(packet.payload)
    descriptor = vp8.parse(packet.payload) if producer.rewrites_vp8 else None
    temporal_id = -1 if descriptor is None else descriptor.temporal_id
    if temporal_id >= 0:
        if temporal_id >= layer.temporal_layers:
            layer.temporal_layers = temporal_id + 1
        meters = layer.temporal_meters
        meters[min(temporal_id, len(meters) - 1)].add(len(packet.payload), now)
    if keyframe_start and descriptor is not None:
        size = vp8.keyframe_size(packet.payload, descriptor)
        if size is not None:
            layer.width, layer.height = size
    if now >= producer.next_layer_check:
        producer.check_layers(now)
    ntp_time = ntp_now()
    value = extension_value(packet, producer.kind, ntp_time)
    for consumer in list(producer.consumers.values()):
        slot = consumer.slot
        if not consumer.forwarding or slot is None:
            continue
        if consumer.layer != layer_index:
            if consumer.target_layer != layer_index or not keyframe_start:
                continue
            # The target layer's key frame: move here, continuing the viewer's stream.
            if consumer.layer >= 0:
                consumer.layer_switches += 1
            slot.switch_source((producer.id, layer_index))
            consumer.layer = layer_index
            consumer.temporal_layer = consumer.temporal_target
        if temporal_id > consumer.temporal_layer or (
            temporal_id >= 0 and consumer.temporal_target != consumer.temporal_layer
        ):
            assert descriptor is not None
            if not _within_temporal_layer(consumer, descriptor):
                slot.skip(packet, descriptor)
                continue
        sent = _send(consumer, slot, packet, keyframe_start, value, ntp_time, now, descriptor)
        if sent < 0:
            producer.request_keyframe(layer_index)


def _within_temporal_layer(consumer: Consumer, descriptor: vp8.Descriptor) -> bool:
    """Whether this packet's temporal layer is forwarded to `consumer`, moving it toward its
    temporal target where the stream allows: down at the start of any picture, up one layer
    at a time at a sync frame of that layer (which depends on the base layer only)."""
    temporal_id = descriptor.temporal_id
    current, target = consumer.temporal_layer, consumer.temporal_target
    if descriptor.starts_picture:
        if target < current:
            consumer.temporal_layer = current = target
        elif current < temporal_id <= target and descriptor.layer_sync:
            consumer.temporal_layer = current = temporal_id
    return temporal_id <= current


def _send(
    consumer: Consumer,
    slot: SendSlot,
    packet: RtpPacket,
    keyframe_start: bool,
    value: bytes | None,
    ntp_time: int,
    now: float,
    descriptor: vp8.Descriptor | None,
) -> int:
    try:
        sent = slot.send(packet, keyframe_start, value, ntp_time, now, descriptor)
    except ConnectionError:
        return 0  # the subscriber's transport is not (or no longer) connected
    except Exception:
        # Never let one consumer break the publisher's receive loop.
        logger.exception("forwarding to consumer %s failed", consumer.id)
        return 0
    if sent > 0:
        consumer.meter.add(sent, now)
    return sent
