"""The start-up self-test passes on the pinned aiortc and catches a moved hook."""

from __future__ import annotations

from typing import Any

import aiortc
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, rtcrtpreceiver
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics

from sfu import selftest


async def test_selftest_passes_on_the_pinned_aiortc() -> None:
    assert aiortc.__version__ == "1.16.0"
    await selftest.run_selftest()


async def test_selftest_fails_loudly_on_another_aiortc_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aiortc, "__version__", "1.17.0")
    with pytest.raises(selftest.SelfTestFailed, match=r"1\.17\.0"):
        await selftest.run_selftest()


async def test_selftest_fails_when_a_private_hook_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(selftest.SelfTestFailed, match="_send_keyframe"):
        await selftest.run_selftest()


async def test_selftest_fails_when_a_hook_signature_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def retransmit(self: RTCRtpSender, sequence_number: int, rtx: bool) -> None:
        return None

    monkeypatch.setattr(RTCRtpSender, "_retransmit", retransmit)
    with pytest.raises(selftest.SelfTestFailed, match="_retransmit"):
        await selftest.run_selftest()


async def test_selftest_fails_when_rtx_packets_differ_from_aiortcs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiortc import rtp

    def wrap_rtx_with_another_layout(packet, payload_type, sequence_number, ssrc):  # type: ignore[no-untyped-def]
        rtx = rtp.RtpPacket(
            payload_type=payload_type,
            marker=0,  # aiortc keeps the marker bit; the forwarder's RTX must match it
            sequence_number=sequence_number,
            timestamp=packet.timestamp,
            ssrc=ssrc,
            payload=packet.sequence_number.to_bytes(2, "big") + packet.payload,
        )
        rtx.extensions = packet.extensions
        return rtx

    monkeypatch.setattr(selftest, "wrap_rtx", wrap_rtx_with_another_layout)
    with pytest.raises(selftest.SelfTestFailed, match="RTX"):
        await selftest.run_selftest()


async def test_selftest_fails_when_the_send_path_attributes_move(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aioice import ice

    monkeypatch.delattr(ice.CandidatePair, "remote_addr")
    with pytest.raises(selftest.SelfTestFailed, match="remote_addr"):
        await selftest.run_selftest()


def _rename_instance_attribute(
    monkeypatch: pytest.MonkeyPatch, cls: type, name: str, new_name: str
) -> None:
    """Make `cls` instances carry `name` under `new_name`, as a refactoring in aiortc would."""
    original = cls.__init__  # type: ignore[misc]

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        setattr(self, new_name, self.__dict__.pop(name))

    monkeypatch.setattr(cls, "__init__", init)


@pytest.mark.parametrize(
    ("cls", "name", "expected"),
    [
        (RTCRtpTransceiver, "_codecs", "RTCRtpTransceiver instance lacks _codecs"),
        (NackGenerator, "missing", "NackGenerator instance lacks missing"),
    ],
    ids=["negotiated codecs", "missing sequence numbers"],
)
async def test_selftest_fails_when_an_instance_attribute_the_hooks_read_moves(
    monkeypatch: pytest.MonkeyPatch, cls: type, name: str, expected: str
) -> None:
    _rename_instance_attribute(monkeypatch, cls, name, f"{name}_renamed")
    with pytest.raises(selftest.SelfTestFailed, match=expected):
        await selftest.run_selftest()


@pytest.mark.parametrize(
    ("owner", "name", "expected"),
    [
        (RTCRtpReceiver, "_send_rtcp_pli", r"RTCRtpReceiver\._send_rtcp_pli is missing"),
        (RTCRtpReceiver, "_send_rtcp_nack", r"RTCRtpReceiver\._send_rtcp_nack is missing"),
        (rtcrtpreceiver, "NackGenerator", r"aiortc\.rtcrtpreceiver\.NackGenerator is missing"),
        (rtcrtpreceiver, "StreamStatistics", r"rtcrtpreceiver\.StreamStatistics is missing"),
        (StreamStatistics, "jitter", r"StreamStatistics\.jitter is no longer a property"),
    ],
    ids=["PLI", "NACK", "NackGenerator", "StreamStatistics", "jitter"],
)
async def test_selftest_fails_when_a_receive_side_hook_moves(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, expected: str
) -> None:
    monkeypatch.delattr(owner, name)
    with pytest.raises(selftest.SelfTestFailed, match=expected):
        await selftest.run_selftest()
