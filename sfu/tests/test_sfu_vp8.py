"""The VP8 payload descriptor: where picture id and TL0PICIDX are, rewriting them in place,
and the size a key frame announces."""

from __future__ import annotations

from sfu import vp8
from sfu.codecs import is_vp8_keyframe_start


def descriptor_bytes(picture_id: int | None, bits: int = 15, tl0: int | None = None) -> bytes:
    """X=1, S=1, PID=0, then I (with M for 15 bits), L and T as asked."""
    extension = (0x80 if picture_id is not None else 0) | (0x40 if tl0 is not None else 0) | 0x20
    out = bytes([0x90, extension])
    if picture_id is not None:
        out += (
            bytes([0x80 | (picture_id >> 8), picture_id & 0xFF])
            if bits == 15
            else bytes([picture_id & 0x7F])
        )
    if tl0 is not None:
        out += bytes([tl0])
    return out + bytes([0x40])  # TID 1


def keyframe_header(width: int, height: int) -> bytes:
    # Frame tag (P=0: key frame, first partition size), start code, 14-bit sizes (scale 0).
    return (
        bytes([0x10, 0x02, 0x00])
        + vp8.KEYFRAME_START_CODE
        + width.to_bytes(2, "little")
        + (height.to_bytes(2, "little"))
    )


def test_a_15_bit_picture_id_and_tl0picidx_are_found_and_rewritten_in_place() -> None:
    payload = descriptor_bytes(0x1234, 15, tl0=200) + b"frame data"
    descriptor = vp8.parse(payload)
    assert descriptor is not None
    assert (descriptor.picture_id, descriptor.picture_id_bits, descriptor.tl0picidx) == (
        0x1234,
        15,
        200,
    )
    assert descriptor.temporal_id == 1
    rewritten = vp8.rewrite(payload, descriptor, 0x7FFF + 3, 256 + 7)  # wraps
    again = vp8.parse(rewritten)
    assert again is not None
    assert (again.picture_id, again.tl0picidx) == (2, 7)
    assert len(rewritten) == len(payload)
    assert rewritten[again.size :] == payload[descriptor.size :]


def test_a_7_bit_picture_id_wraps_at_128() -> None:
    payload = descriptor_bytes(100, 7) + b"x"
    descriptor = vp8.parse(payload)
    assert descriptor is not None
    assert descriptor.picture_id_bits == 7
    again = vp8.parse(vp8.rewrite(payload, descriptor, 130, -1))
    assert again is not None
    assert again.picture_id == 2


def test_a_descriptor_without_picture_id_is_left_alone() -> None:
    payload = bytes([0x10]) + b"abc"
    descriptor = vp8.parse(payload)
    assert descriptor is not None
    assert descriptor.picture_id == -1
    assert descriptor.tl0picidx == -1
    assert descriptor.size == 1
    assert vp8.rewrite(payload, descriptor, 5, 5) == payload


def test_truncated_descriptors_are_none() -> None:
    assert vp8.parse(b"") is None
    assert vp8.parse(bytes([0x90])) is None
    assert vp8.parse(bytes([0x90, 0x80, 0x81])) is None  # 15-bit id cut short
    assert vp8.parse(bytes([0x90, 0x40])) is None  # TL0PICIDX missing


def test_a_key_frame_announces_its_size_and_a_delta_frame_does_not() -> None:
    head = descriptor_bytes(7, 15, tl0=1)
    key = head + keyframe_header(1280, 720) + b"rest"
    descriptor = vp8.parse(key)
    assert descriptor is not None
    assert is_vp8_keyframe_start(key)
    assert vp8.keyframe_size(key, descriptor) == (1280, 720)
    delta = head + bytes([0x11, 0x02, 0x00]) + b"\x00" * 10
    delta_descriptor = vp8.parse(delta)
    assert delta_descriptor is not None
    assert vp8.keyframe_size(delta, delta_descriptor) is None
    assert vp8.keyframe_size(head + keyframe_header(1280, 720)[:8], descriptor) is None
