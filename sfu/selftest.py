"""Start-up self-test: fail loudly if an aiortc private hook the SFU uses has moved.

Run by SfuNodeServer.run() (so by `manage.py runsfu`) before the node registers, and by
sfu/tests/test_sfu_selftest.py. It checks the pinned version, then looks for each private
attribute and method signature listed in sfu/hooks.py on real instances.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import inspect

import aioice.ice
import aiortc
import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc import codecs as aiortc_codecs
from aiortc import rtcrtpreceiver as aiortc_receiver_module
from aiortc.rtcconfiguration import RTCConfiguration
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket, wrap_rtx

from sfu import hooks
from sfu.forwarding import ExtensionBlock, rtp_bytes

ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


class SelfTestFailed(RuntimeError):
    """aiortc is not the version, or not the shape, the SFU was written against."""


def _check_methods(cls: type, methods: dict[str, list[str]], problems: list[str]) -> None:
    for name, expected in methods.items():
        method = getattr(cls, name, None)
        if method is None or not callable(method):
            problems.append(f"{cls.__name__}.{name} is missing")
            continue
        params = [p for p in inspect.signature(method).parameters if p != "self"]
        if params != expected:
            problems.append(f"{cls.__name__}.{name}{tuple(params)} expected {tuple(expected)}")


def check_static() -> list[str]:
    problems: list[str] = []
    if aiortc.__version__ != hooks.PINNED_AIORTC_VERSION:
        problems.append(
            f"aiortc {aiortc.__version__} is installed; the SFU is pinned to "
            f"{hooks.PINNED_AIORTC_VERSION}"
        )
    _check_methods(RTCRtpReceiver, hooks.RECEIVER_METHODS, problems)
    _check_methods(RTCRtpSender, hooks.SENDER_METHODS, problems)
    _check_methods(RTCDtlsTransport, hooks.DTLS_TRANSPORT_METHODS, problems)
    _check_methods(RtpRouter, hooks.ROUTER_METHODS, problems)
    _check_methods(hooks.SELECTOR_DATAGRAM_TRANSPORT, hooks.SELECTOR_DATAGRAM_METHODS, problems)
    _check_methods(
        asyncio.selector_events.BaseSelectorEventLoop, hooks.SELECTOR_LOOP_METHODS, problems
    )
    if hooks.SO_TIMESTAMPNS is None:
        problems.append("no SO_TIMESTAMPNS here: publishers' arrival times would be the loop's")
    _check_methods(aioice.ice.CandidatePair, hooks.CANDIDATE_PAIR_METHODS, problems)
    _check_methods(aioice.ice.StunProtocol, hooks.STUN_PROTOCOL_METHODS, problems)
    _check_methods(aioice.ice.Connection, hooks.ICE_CONNECTION_METHODS, problems)
    if not (isinstance(pylibsrtp.Error, type) and issubclass(pylibsrtp.Error, Exception)):
        problems.append("pylibsrtp.Error is no longer an exception class")
    if not isinstance(getattr(aioice.ice.CandidatePair, "remote_addr", None), property):
        problems.append("aioice CandidatePair.remote_addr is no longer a property")
    if not hasattr(DtlsState, "CONNECTED"):
        problems.append("aiortc.rtcdtlstransport.State.CONNECTED is missing")
    host_params = list(inspect.signature(hooks.aioice_host_addresses).parameters)
    if host_params != ["use_ipv4", "use_ipv6"]:
        problems.append(f"aioice.ice.get_host_addresses{tuple(host_params)} changed")
    problems.extend(check_receive_statistics())
    video_extensions = getattr(aiortc_codecs, "HEADER_EXTENSIONS", {}).get("video")
    if not isinstance(video_extensions, list):
        problems.append("aiortc.codecs.HEADER_EXTENSIONS['video'] is no longer a list")
    video_codecs = getattr(aiortc_codecs, "CODECS", {}).get("video")
    if not isinstance(video_codecs, list) or not all(
        isinstance(getattr(codec, "rtcpFeedback", None), list) for codec in video_codecs
    ):
        problems.append("aiortc.codecs.CODECS['video'] no longer lists codecs with rtcpFeedback")
    if not callable(getattr(aiortc_codecs, "is_rtx", None)):
        problems.append("aiortc.codecs.is_rtx is missing")
    for name in (
        "mid",
        "abs_send_time",
        "audio_level",
        "rtp_stream_id",
        "repaired_rtp_stream_id",
        "transport_sequence_number",
    ):
        if not hasattr(HeaderExtensions(), name):
            problems.append(f"HeaderExtensions.{name} is missing")
    problems.extend(check_forwarded_serialization())
    problems.extend(check_retransmission_serialization())
    return problems


def check_receive_statistics() -> list[str]:
    """aiortc.rtcrtpreceiver's NackGenerator and StreamStatistics (hooks re-exports them; the
    receive path and getStats use them) are still there, with what the SFU uses of them."""
    problems: list[str] = []
    nack_generator = getattr(aiortc_receiver_module, "NackGenerator", None)
    stream_statistics = getattr(aiortc_receiver_module, "StreamStatistics", None)
    if not isinstance(nack_generator, type):
        problems.append("aiortc.rtcrtpreceiver.NackGenerator is missing")
    else:
        _check_methods(nack_generator, hooks.NACK_GENERATOR_METHODS, problems)
        instance = nack_generator()
        for name in hooks.NACK_GENERATOR_ATTRIBUTES:
            if not hasattr(instance, name):
                problems.append(f"NackGenerator instance lacks {name}")
    if not isinstance(stream_statistics, type):
        problems.append("aiortc.rtcrtpreceiver.StreamStatistics is missing")
    else:
        _check_methods(stream_statistics, hooks.STREAM_STATISTICS_METHODS, problems)
        for name in hooks.STREAM_STATISTICS_PROPERTIES:
            if not isinstance(getattr(stream_statistics, name, None), property):
                problems.append(f"StreamStatistics.{name} is no longer a property")
    return problems


def _extensions_map(transport_cc: bool = False) -> HeaderExtensionsMap:
    """The header extensions a browser negotiates (mid, abs-send-time, audio level, and the
    transport-wide sequence number where the SFU offered it)."""
    extensions = [
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME_URI),
        RTCRtpHeaderExtensionParameters(id=4, uri=AUDIO_LEVEL_URI),
    ]
    if transport_cc:
        extensions.append(hooks.TRANSPORT_CC_EXTENSION)
    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(RTCRtpParameters(headerExtensions=extensions))
    return extensions_map


def check_forwarded_serialization() -> list[str]:
    """The forwarder serializes packets itself (sfu/forwarding.py): same bytes as aiortc's?"""
    problems: list[str] = []
    extensions_map = _extensions_map()
    cases = {
        "abs-send-time": (
            ExtensionBlock(
                extensions_map,
                HeaderExtensions(mid="1", abs_send_time=0),
                HeaderExtensions(mid="1", abs_send_time=0xFFFFFF),
                HeaderExtensions(mid="1"),
            ),
            HeaderExtensions(mid="1", abs_send_time=0x123456),
            bytes.fromhex("123456"),
        ),
        "audio level": (
            ExtensionBlock(
                extensions_map,
                HeaderExtensions(mid="1", audio_level=(False, 0)),
                HeaderExtensions(mid="1", audio_level=(True, 127)),
                HeaderExtensions(mid="1"),
            ),
            HeaderExtensions(mid="1", audio_level=(True, 42)),
            bytes([0x80 | 42]),
        ),
    }
    numbered_map = _extensions_map(transport_cc=True)
    numbered = ExtensionBlock(
        numbered_map,
        HeaderExtensions(mid="1", abs_send_time=0),
        HeaderExtensions(mid="1", abs_send_time=0xFFFFFF),
        HeaderExtensions(mid="1"),
    )
    checks: list[tuple[str, HeaderExtensionsMap, bytes, HeaderExtensions]] = [
        (name, extensions_map, block.with_value(value), extensions)
        for name, (block, extensions, value) in cases.items()
    ]
    checks.append(
        (
            "abs-send-time and transport-wide sequence number",
            numbered_map,
            numbered.with_value(bytes.fromhex("123456"), 0xBEEF),
            HeaderExtensions(mid="1", abs_send_time=0x123456, transport_sequence_number=0xBEEF),
        )
    )
    for name, used_map, block_bytes, extensions in checks:
        packet = RtpPacket(
            payload_type=96, marker=1, sequence_number=65000, timestamp=4000000000, ssrc=1234
        )
        packet.payload = b"payload"
        packet.extensions = extensions
        built = rtp_bytes(
            packet.marker,
            packet.payload_type,
            packet.sequence_number,
            packet.timestamp,
            packet.ssrc,
            block_bytes,
            packet.payload,
        )
        if built != packet.serialize(used_map):
            problems.append(f"the forwarder's RTP serialization ({name}) differs from aiortc's")
        if name.endswith("sequence number"):
            renumbered = hooks.with_transport_sequence(
                built, hooks.TRANSPORT_CC_EXTENSION.id, 0x0102
            )
            packet.extensions.transport_sequence_number = 0x0102
            if renumbered != packet.serialize(used_map):
                problems.append("the forwarder renumbers transport-wide sequence numbers wrongly")
    return problems


def check_retransmission_serialization() -> list[str]:
    """The forwarder builds RTX retransmissions itself (hooks.rtx_packet): same bytes as
    aiortc's `wrap_rtx(packet, ...).serialize(map)`?"""
    extensions_map = _extensions_map()
    problems: list[str] = []
    for marker, extensions in ((1, HeaderExtensions(mid="2", abs_send_time=0xABCDEF)), (0, None)):
        packet = RtpPacket(
            payload_type=96, marker=marker, sequence_number=65535, timestamp=123456789, ssrc=42
        )
        packet.payload = b"\x90\x80\x12vp8 payload"
        if extensions is not None:
            packet.extensions = extensions
        expected = wrap_rtx(packet, payload_type=97, sequence_number=7, ssrc=43).serialize(
            extensions_map
        )
        built = hooks.rtx_packet(packet.serialize(extensions_map), 97, 7, 43)
        if built != expected:
            problems.append("the forwarder's RTX packets differ from aiortc's wrap_rtx")
    return problems


async def check_instances() -> list[str]:
    """The name-mangled attributes exist only on instances: build a throwaway connection."""
    problems: list[str] = []
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        try:
            transceiver = pc.addTransceiver("video", direction="sendrecv")
        except Exception as exc:
            # Where a class the hooks use has gone, aiortc's own constructors may fail too:
            # report it with the static problems rather than instead of them.
            return [f"aiortc could not build a transceiver: {exc!r}"]
        for name in hooks.RECEIVER_ATTRIBUTES:
            if not hasattr(transceiver.receiver, name):
                problems.append(f"RTCRtpReceiver instance lacks {name}")
        for name in hooks.SENDER_ATTRIBUTES:
            if not hasattr(transceiver.sender, name):
                problems.append(f"RTCRtpSender instance lacks {name}")
        for name in hooks.TRANSCEIVER_ATTRIBUTES:
            if not hasattr(transceiver, name):
                problems.append(f"RTCRtpTransceiver instance lacks {name}")
        transport = transceiver.receiver.transport
        for name in hooks.DTLS_TRANSPORT_ATTRIBUTES:
            if not hasattr(transport, name):
                problems.append(f"RTCDtlsTransport instance lacks {name}")
        ice_transport = getattr(transport, "transport", None)
        for name in hooks.ICE_TRANSPORT_ATTRIBUTES:
            if not hasattr(ice_transport, name):
                problems.append(f"RTCIceTransport instance lacks {name}")
        connection = getattr(ice_transport, "_connection", None)
        for name in hooks.ICE_CONNECTION_ATTRIBUTES:
            if not isinstance(getattr(connection, name, None), dict):
                problems.append(f"aioice Connection instance lacks the dict {name}")
        if not isinstance(getattr(connection, "_protocols", None), list):
            problems.append("aioice Connection instance lacks the list _protocols")
        problems.extend(await check_datagram_transport())
        router = getattr(transport, "_rtp_router", None)
        if not isinstance(router, RtpRouter):
            problems.append("RTCDtlsTransport instance lacks _rtp_router")
        for name in hooks.ROUTER_ATTRIBUTES:
            if not isinstance(getattr(router, name, None), dict):
                problems.append(f"RtpRouter instance lacks the dict {name}")
    finally:
        await pc.close()
    return problems


async def check_datagram_transport() -> list[str]:
    """The running loop's UDP transport has what use_kernel_arrival_times replaces (uvloop's
    does not, and is not touched: nothing to check there)."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return []
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        if not isinstance(transport, hooks.SELECTOR_DATAGRAM_TRANSPORT):
            return [
                "the selector loop's datagram transport is no longer _SelectorDatagramTransport"
            ]
        return [
            f"the selector loop's datagram transport lacks {name}"
            for name in hooks.SELECTOR_DATAGRAM_ATTRIBUTES
            if not hasattr(transport, name)
        ]
    finally:
        transport.close()


async def run_selftest() -> None:
    problems = check_static() + await check_instances()
    if problems:
        raise SelfTestFailed("aiortc hooks used by the SFU have moved:\n- " + "\n- ".join(problems))
