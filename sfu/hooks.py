"""Every aiortc private hook the SFU relies on, in one place (sfu/selftest.py checks them).

aiortc 1.16.0 decodes every received track and encodes every sent one. The SFU forwards RTP
packets instead, so it:
- replaces `receiver.receive` per instance: the same set-up as aiortc's (codecs, RTX map,
  registration with the transport's RTP router, the RTCP task that sends Receiver Reports)
  but without starting the decoder thread, and also registering the RTX SSRC with the router
  (aiortc's `_register_rtp_receiver` does not, which drops retransmissions when one PC
  receives two video m-lines);
- replaces `receiver._handle_rtp_packet` per instance with the forwarder (no jitter buffer,
  no depayloading, no decoding);
- writes forwarded packets into the subscriber-side RTCRtpSender's NACK history and Sender
  Report counters and sends them with the transport's `_send_rtp`, so aiortc answers NACKs
  (with RTX) and sends correct Sender Reports for them;
- replaces `sender._send_keyframe` per instance to relay PLI/FIR to the publisher.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
)

PINNED_AIORTC_VERSION = "1.16.0"

# Name-mangled private attributes, per class. selftest.py checks each exists on real instances.
RECEIVER_ATTRIBUTES = (
    "_RTCRtpReceiver__started",
    "_RTCRtpReceiver__codecs",
    "_RTCRtpReceiver__rtx_ssrc",
    "_RTCRtpReceiver__rtcp_task",
    "_RTCRtpReceiver__remote_streams",
    "_RTCRtpReceiver__decoder_thread",
    "_RTCRtpReceiver__remote_bitrate_estimator",
    "_RTCRtpReceiver__rtcp_ssrc",
)
SENDER_ATTRIBUTES = (
    "_RTCRtpSender__started",
    "_RTCRtpSender__rtp_history",
    "_RTCRtpSender__rtp_header_extensions_map",
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
    "_ssrc",
    "_rtx_ssrc",
    "_stream_id",
)
# Methods (name → parameter names after self) the hooks call or replace.
RECEIVER_METHODS = {
    "receive": ["parameters"],
    "_handle_rtp_packet": ["packet", "arrival_time_ms"],
    "_run_rtcp": [],
    "_send_rtcp": ["packet"],
    "_send_rtcp_nack": ["media_ssrc", "lost"],
    "_send_rtcp_pli": ["media_ssrc"],
}
SENDER_METHODS = {
    "send": ["parameters"],
    "_send_keyframe": [],
    "_retransmit": ["sequence_number"],
    "_handle_rtcp_packet": ["packet"],
}
DTLS_TRANSPORT_METHODS = {
    "_send_rtp": ["data"],
    "_register_rtp_receiver": ["receiver", "parameters"],
}
ROUTER_METHODS = {"register_receiver": ["receiver", "ssrcs", "payload_types", "mid"]}

PacketHandler = Callable[[RtpPacket, int], Awaitable[None]]


def install_forwarding_receiver(
    receiver: RTCRtpReceiver,
    on_started: Callable[[RTCRtpReceiveParameters], None],
    on_packet: PacketHandler,
) -> None:
    """Make `receiver` hand raw RTP packets to `on_packet` and never start a decoder."""

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        if receiver._RTCRtpReceiver__started:  # type: ignore[attr-defined]
            return
        codecs = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        rtx_ssrc = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
        for codec in parameters.codecs:
            codecs[codec.payloadType] = codec
        for encoding in parameters.encodings:
            if encoding.rtx:
                rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
        transport = receiver.transport
        transport._register_rtp_receiver(receiver, parameters)
        if rtx_ssrc:
            # The fix for aiortc's RTX routing with two video m-lines on one transport.
            transport._rtp_router.register_receiver(
                receiver, ssrcs=list(rtx_ssrc), payload_types=[], mid=None
            )
        receiver._RTCRtpReceiver__rtcp_task = asyncio.ensure_future(  # type: ignore[attr-defined]
            receiver._run_rtcp()
        )
        receiver._RTCRtpReceiver__started = True  # type: ignore[attr-defined]
        on_started(parameters)

    receiver.receive = receive  # type: ignore[method-assign]
    receiver._handle_rtp_packet = on_packet  # type: ignore[method-assign]


def receiver_stream_statistics(receiver: RTCRtpReceiver) -> dict[int, Any]:
    """The per-SSRC statistics aiortc's RTCP task turns into Receiver Reports."""
    return receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined,no-any-return]


def decoder_running(receiver: RTCRtpReceiver) -> bool:
    return receiver._RTCRtpReceiver__decoder_thread is not None  # type: ignore[attr-defined]


async def feed_remb(receiver: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
    """aiortc's receive-side bandwidth estimate (REMB), so browsers ramp their bitrate up."""
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    if estimator is None or packet.extensions.abs_send_time is None or rtcp_ssrc is None:
        return
    remb = estimator.add(
        abs_send_time=packet.extensions.abs_send_time,
        arrival_time_ms=arrival_time_ms,
        payload_size=len(packet.payload) + packet.padding_size,
        ssrc=packet.ssrc,
    )
    if remb is not None:
        await receiver._send_rtcp(
            RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
            )
        )


class SenderOutput:
    """Raw-packet output through an RTCRtpSender that aiortc has started (sender.send ran)."""

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender = sender
        self.ssrc: int = sender._ssrc
        self._history: dict[int, RtpPacket] = sender._RTCRtpSender__rtp_history  # type: ignore[attr-defined]
        self.extensions_map: HeaderExtensionsMap = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
        self._transport = sender.transport

    async def send(self, packet: RtpPacket, data: bytes, ntp_time: int) -> int:
        """Send `data` (`packet` serialized with `extensions_map`); record it for NACKs and
        Sender Reports. `ntp_time` is the send time, taken once per forwarded packet. Returns bytes.
        """
        self._history[packet.sequence_number % RTP_HISTORY_SIZE] = packet
        await self._transport._send_rtp(data)
        sender = self.sender
        sender._RTCRtpSender__ntp_timestamp = ntp_time  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = packet.timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count += len(packet.payload)  # type: ignore[attr-defined]
        sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
        return len(data)


def sender_started(sender: RTCRtpSender) -> bool:
    return bool(sender._RTCRtpSender__started)  # type: ignore[attr-defined]


def on_sender_start(sender: RTCRtpSender, callback: Callable[[Any], None]) -> None:
    """Call `callback(parameters)` when aiortc starts the sender (after DTLS connects)."""
    original = sender.send

    async def send(parameters: Any) -> None:
        first = not sender_started(sender)
        await original(parameters)
        if first:
            callback(parameters)

    sender.send = send  # type: ignore[method-assign]


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """PLI/FIR from the subscriber: aiortc would set a flag its pack() path ignores."""
    sender._send_keyframe = callback  # type: ignore[method-assign]
