"""The VP8 payload descriptor (RFC 7741 section 4.2) as the layer switch needs it.

Each simulcast layer numbers its pictures (picture id, 7 or 15 bits) and its base-layer frames
(TL0PICIDX) on its own. A viewer switched from one layer to another must see both continue
from where they were, or its decoder takes the jump for lost pictures. `Descriptor` finds the
fields in a packet; `rewrite` writes new values into a copy of the payload (same length).
`keyframe_size` reads the width and height a key frame's first packet announces, so the SFU
knows each layer's real resolution without decoding.
"""

from __future__ import annotations

from typing import NamedTuple

PICTURE_ID_MODULO = {7: 0x80, 15: 0x8000}
TL0PICIDX_MODULO = 0x100
KEYFRAME_START_CODE = b"\x9d\x01\x2a"


class Descriptor(NamedTuple):
    """Where a packet's picture id and TL0PICIDX are (-1: absent), its temporal layer (-1: not
    announced), whether its frame is a layer sync point (it depends on the base layer only:
    a viewer may start receiving this temporal layer there), whether it starts a picture,
    and the descriptor's size."""

    picture_id: int
    picture_id_at: int
    picture_id_bits: int
    tl0picidx: int
    tl0picidx_at: int
    temporal_id: int
    size: int
    layer_sync: bool = False
    starts_picture: bool = False


def parse(payload: bytes) -> Descriptor | None:
    """The descriptor at the start of `payload`, or None when it is truncated."""
    size = len(payload)
    if size < 1:
        return None
    picture_id = picture_id_at = tl0picidx = tl0picidx_at = temporal_id = -1
    bits = 0
    offset = 1
    layer_sync = False
    # S (start of a partition) with partition index 0: the picture's first packet.
    starts_picture = payload[0] & 0x17 == 0x10
    if payload[0] & 0x80:  # X: an extension byte follows
        if size < 2:
            return None
        extension = payload[1]
        offset = 2
        if extension & 0x80:  # I: picture id
            if size <= offset:
                return None
            picture_id_at = offset
            if payload[offset] & 0x80:  # M: 15 bits
                if size <= offset + 1:
                    return None
                picture_id = ((payload[offset] & 0x7F) << 8) | payload[offset + 1]
                bits = 15
                offset += 2
            else:
                picture_id = payload[offset] & 0x7F
                bits = 7
                offset += 1
        if extension & 0x40:  # L: TL0PICIDX
            if size <= offset:
                return None
            tl0picidx_at = offset
            tl0picidx = payload[offset]
            offset += 1
        if extension & 0x30:  # T or K: TID / Y / KEYIDX
            if size <= offset:
                return None
            if extension & 0x20:
                temporal_id = payload[offset] >> 6
                layer_sync = bool(payload[offset] & 0x20)
            offset += 1
    return Descriptor(
        picture_id,
        picture_id_at,
        bits,
        tl0picidx,
        tl0picidx_at,
        temporal_id,
        offset,
        layer_sync,
        starts_picture,
    )


def rewrite(payload: bytes, descriptor: Descriptor, picture_id: int, tl0picidx: int) -> bytes:
    """A copy of `payload` whose picture id and TL0PICIDX (where present) are the given ones,
    taken modulo the field's width."""
    data = bytearray(payload)
    at = descriptor.picture_id_at
    if at >= 0:
        if descriptor.picture_id_bits == 15:
            value = picture_id & 0x7FFF
            data[at] = 0x80 | (value >> 8)
            data[at + 1] = value & 0xFF
        else:
            data[at] = picture_id & 0x7F
    if descriptor.tl0picidx_at >= 0:
        data[descriptor.tl0picidx_at] = tl0picidx & 0xFF
    return bytes(data)


def keyframe_size(payload: bytes, descriptor: Descriptor) -> tuple[int, int] | None:
    """(width, height) from the frame header of a key frame's first packet, else None."""
    start = descriptor.size
    header = payload[start : start + 10]
    if len(header) < 10 or header[0] & 0x01 or header[3:6] != KEYFRAME_START_CODE:
        return None
    width = int.from_bytes(header[6:8], "little") & 0x3FFF
    height = int.from_bytes(header[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None
