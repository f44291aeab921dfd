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
- sends forwarded packets itself (SRTP protect with the DTLS transport's session, then the
  datagram on aioice's nominated pair: what `_send_rtp` does, without its four coroutine
  layers), keeps them in its own NACK history (replacing the sender's `_retransmit`, RTX
  included) and updates the sender's Sender Report counters, so subscribers' NACKs are
  answered and their Sender Reports are right;
- replaces `sender._send_keyframe` per instance to relay PLI/FIR to the publisher;
- negotiates the rid header extensions (aiortc parses them but never offers or accepts them)
  and routes a packet whose SSRC no SDP line names by its MID extension (simulcast layers
  and their RTX have no a=ssrc lines; aiortc would drop them whenever two m-lines of a
  transport share a payload type);
- takes a publisher's packet arrival times from the kernel (SO_TIMESTAMPNS, read with
  recvmsg in place of the selector datagram transport's recvfrom) rather than from when the
  event loop gets round to the packet: aiortc's REMB estimator reads the loop's own lag as
  network delay and cut every publisher's bitrate whenever the node was busy;
- negotiates transport-wide congestion control (the transport-wide-cc header extension and
  rtcp-fb "transport-cc") on the video m-lines of the SFU's own offers, never in its answers
  to publishers (REMB stays their feedback), and hands the feedback a subscriber's browser
  sends to the downlink estimate (sfu/downlink.py) before aiortc's RTCP parser, which would
  read it as a generic NACK; a datagram that holds nothing but one feedback packet (how
  libwebrtc sends them, 20 a second per viewer) is read as it arrives, in aioice's
  `Connection.data_received`, without aiortc's receive queue and task; numbers every packet
  sent to a subscriber with the transport-wide sequence number (retransmissions and probes
  included);
- sends PLI and NACK to the publisher with the receiver's private RTCP senders, sets the
  sender's stream id (the first half of a=msid), reads a transceiver's negotiated codecs, and
  uses aiortc's receive statistics and NACK bookkeeping (`StreamStatistics`, `NackGenerator`,
  from the non-public module aiortc.rtcrtpreceiver): the rest of sfu/ imports them from here.

Every `type: ignore` in this module marks one of these touches: aiortc's types declare neither
its name-mangled attributes nor methods replaced on an instance, which is the point here.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import socket
import struct
import sys
import time
from asyncio import selector_events
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import aioice
import aioice.ice
import pylibsrtp
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import CODECS, HEADER_EXTENSIONS, is_rtx
from aiortc.rtcdtlstransport import RtpRouter
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)

# Not aiortc's public API, so imported here only (the redundant aliases mark the re-export);
# selftest.py checks the module still has them with the methods and attributes used.
from aiortc.rtcrtpreceiver import NackGenerator as NackGenerator
from aiortc.rtcrtpreceiver import StreamStatistics as StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB,
    RTP_HISTORY_SIZE,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
)
from aiortc.utils import uint16_add

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
    "_RTCRtpSender__rtx_payload_type",
    "_RTCRtpSender__rtx_sequence_number",
    "_RTCRtpSender__rtt",
    "_ssrc",
    "_rtx_ssrc",
    "_stream_id",
)
# The direct send path (SenderOutput): the DTLS transport's state, SRTP session and counters,
# its ICE transport's aioice connection and that connection's nominated candidate pairs.
DTLS_TRANSPORT_ATTRIBUTES = (
    "_state",
    "_tx_srtp",
    "_RTCDtlsTransport__tx_bytes",
    "_RTCDtlsTransport__tx_packets",
    "transport",
    # Lone transport-wide feedback read at arrival (read_lone_feedback_at_arrival).
    "_rx_srtp",
    "_RTCDtlsTransport__rx_bytes",
    "_RTCDtlsTransport__rx_packets",
)
ICE_TRANSPORT_ATTRIBUTES = ("_connection",)
TRANSCEIVER_ATTRIBUTES = ("_codecs", "_headerExtensions")
# aiortc.rtcrtpreceiver's helpers: NackGenerator().missing is an instance attribute,
# StreamStatistics' packets_lost and jitter are properties (read by getStats).
NACK_GENERATOR_ATTRIBUTES = ("missing", "max_seq")
STREAM_STATISTICS_PROPERTIES = ("packets_lost", "jitter")
ICE_CONNECTION_ATTRIBUTES = ("_nominated",)
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
    "_handle_rtp_data": ["data", "arrival_time_ms"],
    "_handle_rtcp_data": ["data"],
    "_register_rtp_receiver": ["receiver", "parameters"],
}
ROUTER_METHODS = {
    "register_receiver": ["receiver", "ssrcs", "payload_types", "mid"],
    "route_rtp": ["packet"],
}
ROUTER_ATTRIBUTES = ("mid_table", "ssrc_table")
# Kernel arrival times: the selector loop's UDP transport (read path and registration) and
# aioice's per-connection list of its protocols (use_kernel_arrival_times).
SELECTOR_DATAGRAM_ATTRIBUTES = ("_sock", "_sock_fd", "_conn_lost", "_loop", "max_size")
SELECTOR_DATAGRAM_METHODS = {"_read_ready": [], "_fatal_error": ["exc", "message"]}
SELECTOR_LOOP_METHODS = {"_add_reader": ["fd", "callback", "args"], "_remove_reader": ["fd"]}
# The rid header extensions (RFC 8852) simulcast needs, with ids for the SFU's own offers that
# aiortc's video extensions (1: mid, 3: abs-send-time) and audio's (2: level) leave free.
RID_HEADER_EXTENSIONS = (
    RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
    RTCRtpHeaderExtensionParameters(
        id=5, uri="urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
    ),
)
# Transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-extensions-01),
# offered with an id the others leave free.
TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
TRANSPORT_CC_EXTENSION = RTCRtpHeaderExtensionParameters(id=6, uri=TRANSPORT_CC_URI)
TRANSPORT_CC_FEEDBACK = RTCRtcpFeedback(type="transport-cc")
RTCP_TRANSPORT_FEEDBACK_FMT = 15
CANDIDATE_PAIR_METHODS = {"__init__": ["protocol", "remote_candidate"]}
STUN_PROTOCOL_METHODS = {"send_data": ["data", "addr"]}
ICE_CONNECTION_METHODS = {"data_received": ["data", "component"]}
NACK_GENERATOR_METHODS = {"add": ["packet"]}
STREAM_STATISTICS_METHODS = {"__init__": ["clockrate"], "add": ["packet"]}

PacketHandler = Callable[[RtpPacket, int], Coroutine[Any, Any, None]]


class TransportSequence(Protocol):
    """What SenderOutput needs of a receive transport's downlink (sfu/downlink.py): the next
    transport-wide sequence number, and each numbered packet as it leaves."""

    def next_sequence(self) -> int: ...

    def sent(self, sequence: int, size: int, now: float) -> None: ...


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
        route_unknown_ssrcs_by_mid(transport._rtp_router)
        use_kernel_arrival_times(transport)
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
    receiver._handle_rtp_packet = on_packet  # type: ignore[method-assign,assignment]


def negotiate_rid_extensions() -> None:
    """Offer and accept the rid header extensions on video m-lines, process-wide (aiortc
    negotiates only the extensions in its HEADER_EXTENSIONS table). Idempotent."""
    video = HEADER_EXTENSIONS["video"]
    known = {extension.uri for extension in video}
    for extension in RID_HEADER_EXTENSIONS:
        if extension.uri not in known:
            video.append(extension)


def negotiate_transport_cc() -> None:
    """Offer transport-wide congestion control on video m-lines, process-wide: the extension in
    aiortc's HEADER_EXTENSIONS table and rtcp-fb "transport-cc" on its video codecs. Answers to
    publishers must take it out again (`refuse_transport_cc`). Idempotent."""
    video = HEADER_EXTENSIONS["video"]
    if all(extension.uri != TRANSPORT_CC_URI for extension in video):
        video.append(TRANSPORT_CC_EXTENSION)
    for codec in CODECS["video"]:
        if not is_rtx(codec) and TRANSPORT_CC_FEEDBACK not in codec.rtcpFeedback:
            codec.rtcpFeedback.append(TRANSPORT_CC_FEEDBACK)


def refuse_transport_cc(transceiver: RTCRtpTransceiver) -> None:
    """Leave transport-wide congestion control out of the answer to a publisher's offer (call
    between setRemoteDescription and createAnswer): a browser that negotiated it would expect
    transport-wide feedback from the SFU, which answers publishers with REMB."""
    transceiver._headerExtensions = [
        extension
        for extension in transceiver._headerExtensions
        if extension.uri != TRANSPORT_CC_URI
    ]
    for codec in transceiver._codecs:
        # aiortc's negotiated codecs are its own copies (find_common_codecs deep-copies them).
        codec.rtcpFeedback = [f for f in codec.rtcpFeedback if f.type != "transport-cc"]


def on_transport_feedback(dtls: RTCDtlsTransport, callback: Callable[[bytes, bool], None]) -> None:
    """Hand each transport-wide feedback packet (RTCP RTPFB FMT 15) received on `dtls` to
    `callback` (with True where it was read as it arrived, `read_lone_feedback_at_arrival`),
    and the rest of the compound packet to aiortc (whose parser would read the feedback as a
    generic NACK). Idempotent: the last callback wins."""
    if getattr(dtls, "_meet_transport_feedback", None) is not None:
        dtls._meet_transport_feedback = callback  # type: ignore[attr-defined]
        return
    dtls._meet_transport_feedback = callback  # type: ignore[attr-defined]
    handle_rtcp_data = dtls._handle_rtcp_data

    def from_queue(packet: bytes) -> None:
        dtls._meet_transport_feedback(packet, False)  # type: ignore[attr-defined]

    async def handle_rtcp(data: bytes) -> None:
        rest = split_transport_feedback(data, from_queue)
        if rest:
            await handle_rtcp_data(rest)

    dtls._handle_rtcp_data = handle_rtcp  # type: ignore[method-assign]
    read_lone_feedback_at_arrival(dtls)


# What follows the RTCP packets in an SRTCP datagram: the E flag with the 31-bit index (4
# bytes), then the authentication tag: 10 bytes with AES_CM_128_HMAC_SHA1_80, 16 with the AEAD
# (GCM) profiles (RFC 3711 section 3.4, RFC 7714 section 9). RTCP packets are whole 32-bit
# words of at least 4 bytes, so a datagram whose first packet is followed by exactly one of
# these holds that packet alone, whichever profile DTLS chose.
SRTCP_TRAILER_LENGTHS = (4 + 10, 4 + 16)
_TRANSPORT_FEEDBACK_FIRST_BYTE_MASK = 0xDF  # version and FMT; the padding bit may be set
_TRANSPORT_FEEDBACK_FIRST_BYTE = 0x80 | RTCP_TRANSPORT_FEEDBACK_FMT


def is_lone_transport_feedback(datagram: bytes) -> bool:
    """Whether the SRTCP `datagram` holds one transport-wide feedback packet and nothing else:
    read from its first 4 bytes, which SRTCP leaves in the clear."""
    return (
        len(datagram) > 4
        and datagram[1] == RTCP_RTPFB
        and datagram[0] & _TRANSPORT_FEEDBACK_FIRST_BYTE_MASK == _TRANSPORT_FEEDBACK_FIRST_BYTE
        and len(datagram) - 4 * (((datagram[2] << 8) | datagram[3]) + 1) in SRTCP_TRAILER_LENGTHS
    )


def read_lone_feedback_at_arrival(dtls: RTCDtlsTransport) -> None:
    """Read a datagram of `dtls` that holds one transport-wide feedback packet alone (libwebrtc
    sends every report so, 20 a second per viewer) as soon as aioice has it: unprotected and
    handed to the feedback callback in aioice's `Connection.data_received`, where aiortc would
    queue it and wake the DTLS transport's task for it, then route it through two coroutines.
    The queue and the task were most of what a report cost the node (they are paid per
    datagram; the report itself is parsed in microseconds). Everything else keeps aiortc's
    path, in order. Idempotent."""
    connection = dtls.transport._connection
    if getattr(connection, "_meet_lone_feedback", False):
        return
    enqueue = connection.data_received

    def at_arrival(packet: bytes) -> None:
        dtls._meet_transport_feedback(packet, True)  # type: ignore[attr-defined]

    def data_received(data: bytes, component: int) -> None:
        srtp = dtls._rx_srtp
        if (
            srtp is None
            or dtls._state is not DtlsState.CONNECTED
            or not is_lone_transport_feedback(data)
        ):
            enqueue(data, component)
            return
        # What RTCDtlsTransport._recv_next does with the datagram, without the queue.
        dtls._RTCDtlsTransport__rx_bytes += len(data)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]
        try:
            plain = srtp.unprotect_rtcp(data)
        except pylibsrtp.Error:
            return  # as aiortc: a datagram that fails authentication is dropped
        rest = split_transport_feedback(plain, at_arrival)
        if rest:  # not reachable by is_lone_transport_feedback's arithmetic; kept for aiortc
            task = asyncio.ensure_future(dtls._handle_rtcp_data(rest))
            _pending_rtcp.add(task)
            task.add_done_callback(_pending_rtcp.discard)

    connection.data_received = data_received  # type: ignore[method-assign]
    connection._meet_lone_feedback = True  # type: ignore[attr-defined]


# Tasks handing aiortc RTCP that came with a lone feedback packet, kept until done (the event
# loop holds only weak references to tasks).
_pending_rtcp: set[asyncio.Task[None]] = set()


def split_transport_feedback(data: bytes, callback: Callable[[bytes], None]) -> bytes:
    """Pass each transport-wide feedback packet of the compound RTCP packet `data` to
    `callback`; return the other packets, in order (all of `data` when it holds none)."""
    position = 0
    found = False
    kept: list[bytes] = []
    while position + 4 <= len(data):
        end = position + 4 * (int.from_bytes(data[position + 2 : position + 4], "big") + 1)
        if end > len(data):
            break  # truncated: aiortc's parser refuses it, as it would anyway
        if (
            data[position + 1] == RTCP_RTPFB
            and data[position] & 0x1F == RTCP_TRANSPORT_FEEDBACK_FMT
        ):
            found = True
            callback(data[position:end])
        else:
            kept.append(data[position:end])
        position = end
    if not found:
        return data
    kept.append(data[position:])
    return b"".join(kept)


def route_unknown_ssrcs_by_mid(router: RtpRouter) -> None:
    """Make `router` route a packet of an SSRC it does not know by the packet's MID extension
    (and remember the SSRC), where aiortc would route it only by a payload type no other
    m-line uses. Idempotent."""
    if getattr(router, "_meet_routes_by_mid", False):
        return
    route_by_ssrc = router.route_rtp
    mid_table = router.mid_table
    ssrc_table = router.ssrc_table

    def route_rtp(packet: RtpPacket) -> Any:
        receiver = route_by_ssrc(packet)
        if receiver is None:
            mid = packet.extensions.mid
            if mid is not None:
                receiver = mid_table.get(mid)
                if receiver is not None:
                    ssrc_table[packet.ssrc] = receiver
        return receiver

    router.route_rtp = route_rtp  # type: ignore[method-assign]
    router._meet_routes_by_mid = True  # type: ignore[attr-defined]


# SO_TIMESTAMPNS's control message: a struct timespec (seconds, nanoseconds) of CLOCK_REALTIME.
# Python's socket module does not export the option; its value is Linux's asm-generic one
# (include/uapi/asm-generic/socket.h), which x86-64 and arm64 use (some other architectures
# number it differently: there the loop's own arrival times stay).
SO_TIMESTAMPNS: int | None = getattr(socket, "SO_TIMESTAMPNS", None)
if (
    SO_TIMESTAMPNS is None
    and sys.platform == "linux"
    and platform.machine() in ("x86_64", "aarch64")
):
    SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
# aiortc's clock counts milliseconds from the NTP epoch (1900); the kernel from 1970.
_NTP_EPOCH_OFFSET_MS = 2208988800 * 1000


# The standard library's selector event loop's UDP transport (not exported by asyncio).
SELECTOR_DATAGRAM_TRANSPORT: type = selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]


class TimedDatagram(bytes):
    """A received datagram and when the kernel received it, on aiortc's clock (ms since 1900).

    Travels as the datagram itself through aioice's queue to the DTLS transport, which takes
    the time off it (`use_kernel_arrival_times`)."""

    arrival_ms: int | None = None


def use_kernel_arrival_times(dtls: RTCDtlsTransport) -> bool:
    """Give the RTP of `dtls` the kernel's receive time as its arrival time (what aiortc's
    REMB estimator reads); False where the event loop's datagram transports are not the
    selector's (uvloop), which keeps aiortc's own times. Idempotent."""
    if getattr(dtls, "_meet_kernel_times", False):
        return True
    if SO_TIMESTAMPNS is None:
        return False
    ice = dtls.transport
    protocols = list(ice._connection._protocols)
    if not protocols or not all(_timestamp_datagrams(p) for p in protocols):
        return False
    receive = ice._recv
    arrival: list[int | None] = [None]

    async def recv() -> bytes:
        data: bytes = await receive()
        arrival[0] = getattr(data, "arrival_ms", None)
        return data

    handle_rtp_data = dtls._handle_rtp_data

    async def handle_timed_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        # _recv_next handles one datagram at a time: the last one received is this one.
        kernel_ms = arrival[0]
        await handle_rtp_data(
            data, arrival_time_ms=arrival_time_ms if kernel_ms is None else kernel_ms
        )

    ice._recv = recv
    dtls._handle_rtp_data = handle_timed_rtp_data  # type: ignore[method-assign]
    dtls._meet_kernel_times = True  # type: ignore[attr-defined]
    return True


def _timestamp_datagrams(protocol: Any) -> bool:
    """Read `protocol`'s socket with recvmsg and hand it TimedDatagrams (the selector event
    loop's datagram transport, re-registered with the loop)."""
    if getattr(protocol.transport, "_meet_timed", False):
        return True
    if not isinstance(protocol.transport, SELECTOR_DATAGRAM_TRANSPORT):
        return False
    transport: Any = protocol.transport
    sock = transport._sock
    assert SO_TIMESTAMPNS is not None
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    max_size = transport.max_size

    def read_ready() -> None:
        # asyncio's _SelectorDatagramTransport._read_ready, with recvmsg for the timestamp.
        if transport._conn_lost:
            return
        try:
            data, ancillary, _flags, addr = sock.recvmsg(max_size, _ANCILLARY_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            transport._fatal_error(exc, "Fatal read error on datagram transport")
            return
        datagram = TimedDatagram(data)
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                datagram.arrival_ms = (
                    seconds * 1000 + nanoseconds // 1_000_000 + _NTP_EPOCH_OFFSET_MS
                )
        protocol.datagram_received(datagram, addr)

    loop = transport._loop
    transport._read_ready = read_ready
    loop._remove_reader(transport._sock_fd)
    loop._add_reader(transport._sock_fd, read_ready)
    transport._meet_timed = True
    return True


def receiver_stream_statistics(receiver: RTCRtpReceiver) -> dict[int, StreamStatistics]:
    """The per-SSRC statistics aiortc's RTCP task turns into Receiver Reports."""
    streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    return streams


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> Coroutine[Any, Any, None]:
    """A Picture Loss Indication (key-frame request) to the publisher of `media_ssrc`."""
    return receiver._send_rtcp_pli(media_ssrc)


def send_nack(
    receiver: RTCRtpReceiver, media_ssrc: int, lost: list[int]
) -> Coroutine[Any, Any, None]:
    """A generic NACK to the publisher of `media_ssrc` for the `lost` sequence numbers.

    Returns aiortc's coroutine itself (no wrapper coroutine): it runs on the receive path.
    """
    return receiver._send_rtcp_nack(media_ssrc, lost)


def drop_receive_estimator(receiver: RTCRtpReceiver) -> None:
    """Drop the receive-side bandwidth estimator aiortc builds for every video receiver, for a
    receiver that will never receive: that of a transceiver the node only sends on (a slot
    toward a viewer). The estimator's rate counter is 1,000 objects, and the node has a slot
    for every video of every viewer, N(N-1) in a meeting of N: at 40 publishers 940,000 such
    objects were most of what each full garbage collection walked, which then held the event
    loop (every forwarded packet) for 0.3 s, and 1.1 s at 80 (bench/renegotiation.py's
    process). aiortc reads it only for received RTP (`_handle_rtp_packet`)."""
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]


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


# Retransmission restraint (issue 13): a packet is sent again at most once per round trip
# (aiortc's smoothed RTT from the subscriber's reports; this until it has one), and
# retransmissions may use at most this share of what the slot sent as media (a token bucket
# filled by every media packet, so a viewer whose link is full gets a lower layer, not a storm).
RETRANSMIT_UNKNOWN_RTT_SECONDS = 0.1
RETRANSMIT_MIN_INTERVAL_SECONDS = 0.01
RETRANSMIT_SHARE = 0.5
RETRANSMIT_BUDGET_BYTES = 60_000
monotonic = time.monotonic  # tests step it


class SenderOutput:
    """Raw-packet output through an RTCRtpSender that aiortc has started (sender.send ran).

    aiortc's own send path (`RTCDtlsTransport._send_rtp` → `RTCIceTransport._send` → aioice
    `Connection.send` → `sendto` → `StunProtocol.send_data`) is four coroutines deep and
    re-checks the same state for every packet; the forwarder sends K copies of every packet,
    so it does the same work directly: SRTP protect with the transport's session, then the
    datagram on aioice's nominated pair. The NACK history keeps the plaintext bytes (not
    aiortc `RtpPacket`s, which cost an object per copy and keep the garbage collector busy),
    so `_retransmit` is replaced per sender to answer NACKs from it (with RTX when negotiated),
    producing the bytes aiortc's own `_retransmit` would (sfu/selftest.py compares them).
    """

    def __init__(
        self,
        sender: RTCRtpSender,
        downlink: TransportSequence | None = None,
        transport_cc_id: int | None = None,
    ) -> None:
        self.sender = sender
        self.ssrc: int = sender._ssrc
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.extensions_map: HeaderExtensionsMap = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
        self._dtls: RTCDtlsTransport = sender.transport
        self._ice_connection: aioice.Connection = self._dtls.transport._connection
        self._history: dict[int, bytes] = {}
        self._pair: aioice.ice.CandidatePair | None = None
        self._remote_addr: tuple[str, int] = ("", 0)
        self.retransmissions = 0  # NACKed packets sent again (as RTX where negotiated)
        self.retransmissions_skipped = 0  # NACKs not answered: resent within an RTT, or over budget
        self._resent_at: dict[int, float] = {}
        self._retransmit_budget = float(RETRANSMIT_BUDGET_BYTES) * RETRANSMIT_SHARE
        # The transport-wide sequence number's extension id where the subscriber negotiated it
        # (it then numbers every packet, retransmissions and probes included).
        self.transport_cc_id = transport_cc_id if downlink is not None else None
        self.downlink = downlink if transport_cc_id is not None else None
        self._last_sequence: int | None = None
        self.padding_packets = 0
        sender._retransmit = self._retransmit  # type: ignore[method-assign]

    def send(
        self,
        sequence_number: int,
        timestamp: int,
        payload_size: int,
        data: bytes,
        ntp_time: int,
        transport_sequence: int = -1,
        now: float = 0.0,
    ) -> int:
        """Send `data` (a plaintext RTP packet with these sequence number and timestamp, and
        transport-wide sequence number when ≥ 0); record it for NACKs, Sender Reports and the
        downlink estimate. `ntp_time` and `now` (monotonic) are the send time, taken once per
        forwarded packet. Returns the bytes sent; ConnectionError when not connected.
        """
        self._send_datagram(data)
        if transport_sequence >= 0 and self.downlink is not None:
            self.downlink.sent(transport_sequence, len(data), now)
        self._history[sequence_number % RTP_HISTORY_SIZE] = data
        self._last_sequence = sequence_number
        budget = self._retransmit_budget + len(data) * RETRANSMIT_SHARE
        self._retransmit_budget = (
            budget if budget < RETRANSMIT_BUDGET_BYTES else RETRANSMIT_BUDGET_BYTES
        )
        sender = self.sender
        sender._RTCRtpSender__ntp_timestamp = ntp_time  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count += payload_size  # type: ignore[attr-defined]
        sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
        return len(data)

    def _send_datagram(self, data: bytes) -> None:
        """What `RTCDtlsTransport._send_rtp(data)` does for RTP, without its coroutine layers."""
        dtls = self._dtls
        if dtls._state is not DtlsState.CONNECTED:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        pair = self._ice_connection._nominated.get(1)
        # `is None` too: before the first pair, `pair` and `self._pair` are both None.
        if pair is not self._pair or pair is None:
            if pair is None:
                raise ConnectionError("Cannot send data, not connected")
            self._pair = pair
            self._remote_addr = pair.remote_addr
        protected = dtls._tx_srtp.protect(data)
        pair.protocol.transport.sendto(protected, self._remote_addr)
        # The transport's counters feed getStats() (bytesSent / packetsSent of the transport).
        dtls._RTCDtlsTransport__tx_bytes += len(protected)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]

    async def _retransmit(self, sequence_number: int) -> None:
        """aiortc's `RTCRtpSender._retransmit`, from the plaintext history, with restraint:
        not again within a round trip of the last time, not beyond the retransmission budget."""
        data = self._history.get(sequence_number % RTP_HISTORY_SIZE)
        if data is None or int.from_bytes(data[2:4], "big") != sequence_number:
            return
        sender = self.sender
        now = monotonic()
        rtt = sender._RTCRtpSender__rtt  # type: ignore[attr-defined]
        interval = RETRANSMIT_UNKNOWN_RTT_SECONDS if rtt is None else rtt
        last = self._resent_at.get(sequence_number)
        if last is not None and now - last < max(interval, RETRANSMIT_MIN_INTERVAL_SECONDS):
            self.retransmissions_skipped += 1
            return
        if self._retransmit_budget < len(data):
            self.retransmissions_skipped += 1
            return
        self._retransmit_budget -= len(data)
        if len(self._resent_at) >= 2 * RTP_HISTORY_SIZE:
            # Bounded: forget what is past any round trip.
            self._resent_at = {seq: at for seq, at in self._resent_at.items() if now - at < 1.0}
        self._resent_at[sequence_number] = now
        with contextlib.suppress(ConnectionError):
            self._send_again(data, now)
            self.retransmissions += 1

    def send_padding(self, now: float) -> int:
        """A probe's padding (sfu/downlink.py): the last packet sent, again, as an RTX
        retransmission the subscriber's jitter buffer drops as a duplicate (libwebrtc pads
        the same way). Returns the bytes sent; 0 where there is nothing to send it with (no
        RTX, nothing sent yet, not connected)."""
        sequence = self._last_sequence
        if sequence is None or self.sender._RTCRtpSender__rtx_payload_type is None:  # type: ignore[attr-defined]
            return 0
        data = self._history.get(sequence % RTP_HISTORY_SIZE)
        if data is None:
            return 0
        try:
            sent = self._send_again(data, now)
        except ConnectionError:
            return 0
        self.padding_packets += 1
        return sent

    def _send_again(self, data: bytes, now: float) -> int:
        """Send the history's packet `data` again: a new transport-wide sequence number where
        negotiated, as RTX where negotiated. Returns the bytes sent."""
        sender = self.sender
        transport_sequence = -1
        if self.downlink is not None and self.transport_cc_id is not None:
            transport_sequence = self.downlink.next_sequence()
            data = with_transport_sequence(data, self.transport_cc_id, transport_sequence)
        rtx_payload_type = sender._RTCRtpSender__rtx_payload_type  # type: ignore[attr-defined]
        if rtx_payload_type is not None:
            rtx_sequence_number = sender._RTCRtpSender__rtx_sequence_number  # type: ignore[attr-defined]
            data = rtx_packet(data, rtx_payload_type, rtx_sequence_number, self.rtx_ssrc)
            sender._RTCRtpSender__rtx_sequence_number = uint16_add(rtx_sequence_number, 1)  # type: ignore[attr-defined]
        self._send_datagram(data)
        if transport_sequence >= 0 and self.downlink is not None:
            self.downlink.sent(transport_sequence, len(data), now)
        return len(data)


_RTX_HEADER = struct.Struct("!BBHLL")
ONE_BYTE_EXTENSIONS = 0xBEDE


def with_transport_sequence(data: bytes, extension_id: int, sequence: int) -> bytes:
    """The plaintext RTP packet `data` with its transport-wide sequence number (one-byte
    header extension `extension_id`, as the forwarder writes them) set to `sequence`; `data`
    unchanged when it carries none."""
    first = data[0]
    start = 12 + 4 * (first & 0x0F)
    if not first & 0x10 or len(data) < start + 4:
        return data
    if int.from_bytes(data[start : start + 2], "big") != ONE_BYTE_EXTENSIONS:
        return data
    position = start + 4
    end = min(position + 4 * int.from_bytes(data[start + 2 : start + 4], "big"), len(data))
    while position < end:
        header = data[position]
        if header == 0:  # padding between elements
            position += 1
            continue
        element_id, length = header >> 4, (header & 0x0F) + 1
        if element_id == 15:
            return data
        if element_id == extension_id and length == 2:
            return data[: position + 1] + sequence.to_bytes(2, "big") + data[position + 3 :]
        position += 1 + length
    return data


def rtx_packet(data: bytes, payload_type: int, sequence_number: int, ssrc: int) -> bytes:
    """The RTX retransmission (RFC 4588) of the plaintext RTP packet `data`: aiortc's
    `wrap_rtx(...).serialize(map)` for the packets the forwarder builds (no CSRCs, no padding):
    same marker, timestamp and header extensions, the original sequence number before the
    payload."""
    first = data[0]
    body = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        body += 4 + 4 * int.from_bytes(data[body + 2 : body + 4], "big")
    header = _RTX_HEADER.pack(
        first,
        (data[1] & 0x80) | payload_type,
        sequence_number,
        int.from_bytes(data[4:8], "big"),
        ssrc,
    )
    return header + data[12:body] + data[2:4] + data[body:]


def sender_started(sender: RTCRtpSender) -> bool:
    return bool(sender._RTCRtpSender__started)  # type: ignore[attr-defined]


def on_sender_start(sender: RTCRtpSender, callback: Callable[[RTCRtpSendParameters], None]) -> None:
    """Call `callback(parameters)` when aiortc starts the sender (after DTLS connects)."""
    original = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        first = not sender_started(sender)
        await original(parameters)
        if first:
            callback(parameters)

    sender.send = send  # type: ignore[method-assign]


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """PLI/FIR from the subscriber: aiortc would set a flag its pack() path ignores."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """The stream id in the sender's a=msid (aiortc has no public setter; the first offer
    takes the connection's own)."""
    sender._stream_id = stream_id


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs the last offer/answer settled on for this m-line, in the answer's order."""
    return transceiver._codecs


# aioice asks this module-level function for the machine's addresses whenever it gathers host
# candidates; there is no per-connection setting (sfu/ice.py install_listen_ips).
aioice_host_addresses = aioice.ice.get_host_addresses


def gather_host_candidates_on(ips: list[str] | None) -> None:
    """Make aioice gather host candidates only on `ips` (IPv4 and IPv6 as asked), process-wide;
    None restores aioice's own gathering (every non-loopback address)."""
    if ips is None:
        aioice.ice.get_host_addresses = aioice_host_addresses
        return
    addresses = list(ips)

    def configured_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [ip for ip in addresses if (":" in ip and use_ipv6) or (":" not in ip and use_ipv4)]

    aioice.ice.get_host_addresses = configured_host_addresses
