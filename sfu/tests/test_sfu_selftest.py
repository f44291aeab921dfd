"""The start-up self-test passes on the pinned aiortc and catches a moved hook."""

from __future__ import annotations

import aiortc
import pytest
from aiortc import RTCRtpSender

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
