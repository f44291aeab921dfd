"""Checks on the SDP the browsers send, before aiortc sees it, and the codec a producer uses.

Offers to the send transport and answers on the receive transport are parsed and refused
with `bad_sdp` / `bad_request` / `unsupported_codec` (EngineError) when they cannot work:
no media, no mid, ICE credentials or direction, a source that does not fit its m-line, no forwarded
codec.
"""

from __future__ import annotations

from aiortc import RTCRtpTransceiver
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from sfu import hooks
from sfu.codecs import FORWARDED_MIME_TYPES
from sfu.errors import EngineError

# The sources a sending m-line may be, per kind; the first is the default.
SOURCES_BY_KIND = {"audio": ("mic",), "video": ("camera", "screen")}


def parse_sdp(text: str) -> aiortc_sdp.SessionDescription:
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:
        raise EngineError("bad_sdp", f"the SDP could not be parsed: {exc}") from None
    if not description.media:
        raise EngineError("bad_sdp", "the SDP has no media sections")
    for media in description.media:
        if media.kind in ("audio", "video") and not media.rtp.muxId:
            raise EngineError("bad_sdp", "every media section needs a mid")
        if media.kind in ("audio", "video") and (
            media.ice is None or not media.ice.usernameFragment
        ):
            raise EngineError("bad_sdp", "every media section needs ICE credentials")
        if media.kind in ("audio", "video") and media.direction is None:
            # RFC 4566 would default to sendrecv, but aiortc fails inside createAnswer without
            # it, and every browser writes it: refuse before touching the transport.
            raise EngineError(
                "bad_sdp", "every media section needs a direction (a=sendonly, sendrecv, ...)"
            )
    return description


def validate_offer_media(
    description: aiortc_sdp.SessionDescription, sources: dict[str, str]
) -> dict[str, aiortc_sdp.MediaDescription]:
    """The audio/video m-lines of a send-transport offer by mid, once `sources` fits them."""
    media_by_mid = {m.rtp.muxId: m for m in description.media if m.kind in ("audio", "video")}
    for mid, source in sources.items():
        media = media_by_mid.get(mid)
        if media is None:
            raise EngineError("bad_request", f"sources names mid {mid!r}, which the offer lacks")
        if source not in SOURCES_BY_KIND[media.kind]:
            raise EngineError(
                "bad_request", f"source {source!r} does not fit {media.kind} m-line {mid!r}"
            )
    for media in media_by_mid.values():
        if media.direction in ("recvonly",):
            raise EngineError("bad_sdp", "a send-transport offer only sends media")
        if not any(c.mimeType.lower() in FORWARDED_MIME_TYPES for c in media.rtp.codecs):
            raise EngineError(
                "unsupported_codec", f"m-line {media.rtp.muxId!r} offers no VP8, H264 or Opus"
            )
    return media_by_mid


def primary_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The negotiated codec the browser sends with (first non-RTX of the answer)."""
    for codec in hooks.negotiated_codecs(transceiver):
        if not is_rtx(codec) and codec.mimeType.lower() in FORWARDED_MIME_TYPES:
            return codec
    return None
