"""The receive half of the per-packet path: a publisher's RTP as it arrives at the SFU.

One `ReceiverBinding` per receiver of a send transport (one per publisher m-line) takes over
aiortc's packet handling (hooks.install_forwarding_receiver: no jitter buffer, no decoder):
REMB estimate, RTX unwrap, per-SSRC statistics for aiortc's Receiver Reports, NACK
generation, then the packet goes to the send half (forwarding.fan_out) for its producer. A
retransmission of a packet already received is dropped: browsers resend old packets on RTX as
bandwidth probes and padding (hundreds of kbit/s while their estimate ramps up), and those
would otherwise reach every viewer of the layer as duplicates.

A simulcast m-line brings one SSRC per layer (and one more per layer for RTX); no SDP line
names them, so the first packets' rid (`rtp-stream-id`, or `repaired-rtp-stream-id` on RTX)
tells which layer an SSRC carries. Packets of an SSRC no rid has named yet are dropped.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from aiortc import RTCRtpReceiver
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtp import RtpPacket, unwrap_rtx
from aiortc.utils import uint16_gt

from sfu import hooks
from sfu.codecs import codec_key
from sfu.forwarding import fan_out
from sfu.hooks import NackGenerator, StreamStatistics

if TYPE_CHECKING:
    from sfu.producer import Producer

logger = logging.getLogger(__name__)

# aiortc NACKs only when a new gap appears; the binding repeats it this often while packets
# are still missing.
NACK_RETRY_SECONDS = 0.1


class ReceiverBinding:
    """The forwarding state of one receiver on a send transport; points at its producer."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str) -> None:
        self.receiver = receiver
        self.kind = kind
        self.producer: Producer | None = None
        self.codecs: dict[int, RTCRtpCodecParameters] = {}
        self.rtx_ssrc: dict[int, int] = {}
        # NACK bookkeeping per SSRC (a simulcast m-line has one per layer).
        self.nacks: dict[int, NackGenerator] = {}
        self.streams: dict[int, StreamStatistics] = {}
        self.layer_of_ssrc: dict[int, int] = {}
        self.retransmissions = 0
        # Retransmissions of packets already received (a browser's bandwidth probes and padding
        # resend old packets on RTX): dropped, not forwarded to every viewer again.
        self.duplicates_dropped = 0
        self.nacks_sent = 0
        self._last_nack = 0.0
        hooks.install_forwarding_receiver(receiver, self.on_started, self.on_packet)

    def on_started(self, parameters: RTCRtpReceiveParameters) -> None:
        for codec in parameters.codecs:
            if codec.payloadType is not None:
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
        producer = self.producer
        retransmission = is_rtx(codec)
        if retransmission:
            original_ssrc = self.rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None and producer is not None and producer.simulcast:
                original_ssrc = self._learn_rtx_ssrc(producer, packet)
            elif original_ssrc is None and len(self.rtx_ssrc) == 0 and self.kind == "video":
                original_ssrc = next(iter(self.streams), None)
            if original_ssrc is None or len(packet.payload) < 2 or not isinstance(apt, int):
                return
            original_codec = self.codecs.get(apt)
            if original_codec is None:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = original_codec
            self.retransmissions += 1
        layer_index = 0
        if producer is not None and producer.simulcast:
            found = self.layer_of_ssrc.get(packet.ssrc)
            if found is None:
                found = self._learn_layer(producer, packet)
                if found is None:
                    return  # no rid has named this SSRC's layer yet
            layer_index = found
        nack = self.nacks.get(packet.ssrc)
        if retransmission and not _repairs_a_loss(nack, packet.sequence_number):
            self.duplicates_dropped += 1
            return
        stream = self.streams.get(packet.ssrc)
        if stream is None:
            stream = self.streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        if nack is None and self.kind == "video":
            nack = self.nacks[packet.ssrc] = NackGenerator()
        if nack is not None:
            new_gap = nack.add(packet)
            # Repeat the NACK for what is still missing every interval: a lost retransmission
            # would otherwise wait for the next gap.
            now = time.monotonic()
            if nack.missing and (new_gap or now - self._last_nack >= NACK_RETRY_SECONDS):
                self._last_nack = now
                self.nacks_sent += 1
                await hooks.send_nack(self.receiver, packet.ssrc, sorted(nack.missing))
        if producer is not None and codec_key(codec) == codec_key(producer.codec):
            await fan_out(producer, packet, layer_index)

    def _learn_layer(self, producer: Producer, packet: RtpPacket) -> int | None:
        rid = packet.extensions.rtp_stream_id
        layer = producer.layer_of_rid(rid) if rid else None
        if layer is None:
            return None
        self.layer_of_ssrc[packet.ssrc] = layer.index
        layer.ssrc = packet.ssrc
        return layer.index

    def _learn_rtx_ssrc(self, producer: Producer, packet: RtpPacket) -> int | None:
        """The media SSRC a simulcast RTX stream repairs, from its repaired-rtp-stream-id."""
        rid = packet.extensions.repaired_rtp_stream_id
        layer = producer.layer_of_rid(rid) if rid else None
        if layer is None or layer.ssrc is None:
            return None
        self.rtx_ssrc[packet.ssrc] = layer.ssrc
        return layer.ssrc


def _repairs_a_loss(nack: NackGenerator | None, sequence_number: int) -> bool:
    """Whether a retransmitted packet is one this SSRC is missing (or newer than any seen),
    rather than a copy of one already received and forwarded."""
    if nack is None or nack.max_seq is None:
        return True
    return sequence_number in nack.missing or uint16_gt(sequence_number, nack.max_seq)
