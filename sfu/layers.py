"""A simulcast producer's layers and the choice of one per viewer.

A browser that publishes with simulcast sends the same camera two or three times (about 180p,
360p and 720p), each encoding its own RTP stream (SSRC) named by a rid. A `Layer` is one of
them as the SFU sees it: its SSRC once the first packet names it, when it last sent (a browser
stops sending its top layers when its CPU or uplink cannot keep up), and its resolution as its
last key frame announced it.

`choose_layer` picks what a viewer should get: the smallest layer at least as tall as the
viewer shows the video (the client reports each video's size on screen), never a layer that
has gone quiet. A viewer that has not said how it shows the video gets the top layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from sfu.forwarding import RateMeter

# A layer that has sent nothing for this long is taken for stopped (the browser dropped it).
LAYER_SILENT_SECONDS = 1.0
# Before a layer's first key frame tells its size, the top layer is taken for 720 lines and
# each layer below for half the one above (the call client's scaleResolutionDownBy 4, 2, 1).
ASSUMED_TOP_HEIGHT = 720
# Temporal layers the SFU tells apart (browsers' VP8 simulcast sends three per layer).
MAX_TEMPORAL_LAYERS = 3
# A layer up to this much shorter than the video's height on screen still serves it (scaling a
# 640x360 picture up to a 400-line tile looks better than paying for 720p).
HEIGHT_SLACK = 0.8


class Layer:
    """One encoding of a simulcast producer (or the only one of any other producer)."""

    __slots__ = (
        "height",
        "index",
        "keyframe_requests",
        "last_keyframe_request",
        "last_packet",
        "meter",
        "rid",
        "ssrc",
        "temporal_layers",
        "temporal_meters",
        "width",
    )

    def __init__(self, index: int, rid: str | None) -> None:
        self.index = index
        self.rid = rid
        self.ssrc: int | None = None
        self.last_packet = float("-inf")
        self.width: int | None = None
        self.height: int | None = None
        self.meter = RateMeter()
        self.last_keyframe_request = float("-inf")
        self.keyframe_requests = 0
        # Temporal layers seen in its VP8 descriptors (highest TID + 1; 0: none announced):
        # what a temporal-layer cap would have to choose from.
        self.temporal_layers = 0
        # What each temporal layer sends (TID 0, 1, 2 and above), for the downlink's shares.
        self.temporal_meters = [RateMeter() for _ in range(MAX_TEMPORAL_LAYERS)]

    def active(self, now: float, first_packet: float | None = None) -> bool:
        """Sending now; a layer not seen yet counts as sending during the producer's first
        LAYER_SILENT_SECONDS (`first_packet`: when the producer's first packet came), since a
        browser starts its layers a few packets apart."""
        if self.last_packet == float("-inf") and first_packet is not None:
            return now - first_packet < LAYER_SILENT_SECONDS
        return now - self.last_packet < LAYER_SILENT_SECONDS

    def describe(self, now: float) -> dict[str, object]:
        return {
            "rid": self.rid,
            "ssrc": self.ssrc,
            "width": self.width,
            "height": self.height,
            "active": self.active(now),
            "bitrate_bps": self.meter.current_bitrate(),
            "keyframe_requests": self.keyframe_requests,
            "temporal_layers": self.temporal_layers,
        }


def expected_height(layers: Sequence[Layer], index: int) -> int:
    """The layer's height as its key frames announce it, else as assumed."""
    known = layers[index].height
    if known is not None:
        return known
    return ASSUMED_TOP_HEIGHT >> (len(layers) - 1 - index)


def choose_layer(
    layers: Sequence[Layer],
    view_height: int | None,
    now: float,
    current: int = -1,
    first_packet: float | None = None,
    highest: int | None = None,
) -> int:
    """The layer a viewer showing the video `view_height` device pixels tall should get, not
    above `highest` (the viewer's caps: its losses, its share of its downlink).

    Only layers sending now are candidates (see Layer.active for `first_packet`); when none
    is, the current choice stands (or the top layer, which a key-frame request will wake);
    when none at or below `highest` is, the lowest that is.
    """
    active = [layer.index for layer in layers if layer.active(now, first_packet)]
    if not active:
        choice = current if current >= 0 else len(layers) - 1
        return choice if highest is None else max(0, min(choice, highest))
    if highest is not None:
        active = [index for index in active if index <= highest] or active[:1]
    if view_height is None:
        return active[-1]
    for index in active:
        if expected_height(layers, index) >= view_height * HEIGHT_SLACK:
            return index
    return active[-1]
