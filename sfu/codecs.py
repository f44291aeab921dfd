"""Codec facts the forwarder needs without decoding: keyframe starts and codec identity."""

from __future__ import annotations

from collections.abc import Callable

from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

FORWARDED_MIME_TYPES = frozenset({"video/vp8", "video/h264", "audio/opus"})

KeyframeDetector = Callable[[bytes], bool]
"""Whether an RTP payload starts a key frame."""


def codec_key(codec: RTCRtpCodecParameters) -> tuple[str, str, str]:
    """What must match for two m-lines to carry the same stream: mime type and H264 profile."""
    mime = codec.mimeType.lower()
    if mime == "video/h264":
        return (
            mime,
            str(codec.parameters.get("profile-level-id", "")).lower(),
            str(codec.parameters.get("packetization-mode", "0")),
        )
    return (mime, "", "")


def capability_for(codec: RTCRtpCodecParameters) -> RTCRtpCodecCapability:
    return RTCRtpCodecCapability(
        mimeType=codec.mimeType,
        clockRate=codec.clockRate,
        channels=codec.channels,
        parameters=dict(codec.parameters),
    )


def is_vp8_keyframe_start(payload: bytes) -> bool:
    """First packet of a VP8 key frame (RFC 7741 payload descriptor, then the frame tag)."""
    size = len(payload)
    if size < 1:
        return False
    first = payload[0]
    # S bit set and partition index 0: this packet starts a frame.
    if not first & 0x10 or first & 0x07:
        return False
    offset = 1
    if first & 0x80:  # X: extension byte follows
        if size < 2:
            return False
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if size <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            offset += 1
    if size <= offset:
        return False
    # Frame tag: the P bit (bit 0) is 0 for key frames.
    return not payload[offset] & 0x01


_H264_KEY_NAL_TYPES = frozenset({5, 7})  # IDR slice, SPS


def is_h264_keyframe_start(payload: bytes) -> bool:
    """A packet that starts a key frame: an SPS or IDR NAL, alone, aggregated or fragmented."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in _H264_KEY_NAL_TYPES:
        return True
    if nal_type == 24:  # STAP-A
        offset = 1
        while offset + 2 < len(payload):
            length = (payload[offset] << 8) | payload[offset + 1]
            if length == 0 or offset + 2 >= len(payload):
                break
            if payload[offset + 2] & 0x1F in _H264_KEY_NAL_TYPES:
                return True
            offset += 2 + length
        return False
    if nal_type == 28 and len(payload) >= 2:  # FU-A: only its start fragment
        return bool(payload[1] & 0x80) and (payload[1] & 0x1F) in _H264_KEY_NAL_TYPES
    return False


def keyframe_detector(codec: RTCRtpCodecParameters) -> KeyframeDetector | None:
    """None for audio: every audio packet can start a stream."""
    mime = codec.mimeType.lower()
    if mime == "video/vp8":
        return is_vp8_keyframe_start
    if mime == "video/h264":
        return is_h264_keyframe_start
    return None
