"""Audio for many (sfu/audible.py): once a room has more open microphones than the limit, each
viewer is sent only the loudest, with a hangover, and a microphone left out costs its viewers
nothing and leaves no hole in their numbering.

The selection's rules on levels; then a real node with aiortc peers whose microphones play a
tone or silence (their RFC 6464 levels are aiortc's, computed from the samples)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from django.test import override_settings

from sfu.audible import HANGOVER_SECONDS, STICKY_DB, AudibleSelection
from sfu.speaker import SPEAKING_LEVEL
from sfu.tests.helpers import Participant, ToneTrack, start_node, stop_node, wait_until

SILENT = 127.0


def test_a_room_within_the_limit_hears_everyone_even_in_silence() -> None:
    selection = AudibleSelection(3)
    assert selection.update({"a": SILENT, "b": None, "c": 20.0}, 0.0) == {"a", "b", "c"}


def test_over_the_limit_the_loudest_speakers_are_heard_and_silence_is_not() -> None:
    selection = AudibleSelection(2)
    levels = {"a": 30.0, "b": 10.0, "c": 20.0, "d": SILENT, "e": None}
    assert selection.update(levels, 0.0) == {"b", "c"}
    # Nobody speaking: those who spoke stay heard for the hangover, nobody else comes in.
    quiet = dict.fromkeys(levels, SILENT)
    assert selection.update(quiet, HANGOVER_SECONDS / 2) == {"b", "c"}
    assert selection.update(quiet, HANGOVER_SECONDS + 0.1) == set()


def test_a_voice_at_the_boundary_keeps_its_place_but_a_clearly_louder_one_takes_it() -> None:
    selection = AudibleSelection(1)
    assert selection.update({"a": 30.0, "b": 40.0, "c": SILENT}, 0.0) == {"a"}
    # b a little louder than a (less than the sticky margin): a stays.
    assert selection.update({"a": 30.0, "b": 30.0 - STICKY_DB / 2, "c": SILENT}, 0.1) == {"a"}
    # b clearly louder: b is heard at once.
    assert selection.update({"a": 30.0, "b": 30.0 - 2 * STICKY_DB, "c": SILENT}, 0.2) == {"b"}


def test_a_new_speaker_takes_the_place_of_one_only_in_its_hangover() -> None:
    selection = AudibleSelection(2)
    assert selection.update({"a": 20.0, "b": 25.0, "c": SILENT}, 0.0) == {"a", "b"}
    # b stops; c starts, quieter than b was: c is heard, a keeps speaking.
    assert selection.update({"a": 20.0, "b": SILENT, "c": SPEAKING_LEVEL - 1}, 0.1) == {"a", "c"}
    # A microphone that closed is forgotten.
    assert selection.update({"a": 20.0, "c": SILENT, "d": SILENT}, 0.2) == {"a", "c"}
    assert "b" not in selection._last_spoke


def test_no_limit_hears_every_microphone() -> None:
    selection = AudibleSelection(0)
    assert selection.update({k: SILENT for k in "abcdef"}, 0.0) == set("abcdef")


async def producer_stats(participant: Participant) -> dict[str, Any]:
    (producer,) = (await participant.call("getStats"))["producers"]
    return producer


def consumer_packets(stats: dict[str, Any], producer_id: str) -> int:
    return next(c["packets"] for c in stats["consumers"] if c["producer_id"] == producer_id)


@pytest.mark.django_db(transaction=True)
@override_settings(SFU_AUDIBLE_SPEAKERS=2)
async def test_a_viewer_is_sent_the_speakers_only_and_hears_one_again_without_losses() -> None:
    node, task = await start_node()
    room = "room-audible"
    viewer = Participant(node.channel, room, "viewer")
    tones = {name: ToneTrack() for name in ("anna", "ben", "cleo")}
    publishers = {name: Participant(node.channel, room, name) for name in tones}
    producer_ids: dict[str, str] = {}

    async def audible() -> dict[str, bool]:
        return {n: (await producer_stats(p))["audible"] for n, p in publishers.items()}

    async def until_audible(expected: dict[str, bool]) -> None:
        deadline = time.monotonic() + 20
        while (now := await audible()) != expected:
            assert time.monotonic() < deadline, now
            await asyncio.sleep(0.05)

    async def sent_in_a_second() -> dict[str, int]:
        first = await viewer.call("getStats")
        await asyncio.sleep(1.0)
        second = await viewer.call("getStats")
        return {
            name: consumer_packets(second, pid) - consumer_packets(first, pid)
            for name, pid in producer_ids.items()
        }

    try:
        await viewer.join()
        for name, publisher in publishers.items():
            tones[name].speaking = name != "ben"
            await publisher.join()
            (producer,) = await publisher.publish([(tones[name], "mic")])
            producer_ids[name] = producer["producer_id"]
        await wait_until(
            lambda: all(viewer.consumer_of(p) for p in producer_ids.values()),
            what="the viewer consumes every microphone",
        )
        # Three open microphones, a limit of two: Anna and Cleo speak, Ben is not sent.
        await until_audible({"anna": True, "ben": False, "cleo": True})
        cleo_consumer = viewer.consumer_of(producer_ids["cleo"])
        assert cleo_consumer is not None
        await wait_until(lambda: viewer.received_for(cleo_consumer) is not None, what="track")
        cleo_heard = viewer.received_for(cleo_consumer)
        assert cleo_heard is not None
        await wait_until(lambda: cleo_heard.audio_frames >= 25, what="Cleo heard")
        sent = await sent_in_a_second()
        assert sent["anna"] >= 25, sent  # Opus: 50 packets a second
        assert sent["cleo"] >= 25, sent
        assert sent["ben"] == 0, sent

        # Cleo falls silent: after the hangover she is not sent either.
        tones["cleo"].speaking = False
        await until_audible({"anna": True, "ben": False, "cleo": False})
        sent = await sent_in_a_second()
        assert sent["cleo"] == sent["ben"] == 0, sent
        assert (await producer_stats(publishers["cleo"]))["inaudible_packets"] > 0

        # She speaks again: sent again, and what the viewer got from her has no hole where
        # her silence was left out (the numbering skipped it).
        tones["cleo"].speaking = True
        await until_audible({"anna": True, "ben": False, "cleo": True})
        before = cleo_heard.audio_frames
        await wait_until(lambda: cleo_heard.audio_frames >= before + 25, what="Cleo again")
        assert viewer.recv_pc is not None
        stats = await viewer.recv_pc.getStats()
        inbound = [s for s in stats.values() if s.type == "inbound-rtp" and s.kind == "audio"]
        assert len(inbound) >= 2
        assert all(s.packetsLost == 0 for s in inbound), [
            (s.ssrc, s.packetsReceived, s.packetsLost) for s in inbound
        ]
    finally:
        for participant in (viewer, *publishers.values()):
            await participant.close()
        await stop_node(node, task)
