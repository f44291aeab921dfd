"""Media through a real SFU node: aiortc publishers and subscribers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from sfu import hooks
from sfu.node import SfuNodeServer
from sfu.tests.helpers import Participant, SizedVideoTrack, ToneTrack, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def room_name() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


async def test_two_subscribers_decode_the_forwarded_video_at_its_size(
    sfu_node: SfuNodeServer,
) -> None:
    room = room_name()
    alice = Participant(sfu_node.channel, room, "alice")
    bob = Participant(sfu_node.channel, room, "bob")
    carol = Participant(sfu_node.channel, room, "carol")
    try:
        assert (await alice.join())["peers"] == []
        (camera,) = await alice.publish([(SizedVideoTrack(640, 480), "camera")])
        assert camera["kind"] == "video"
        assert camera["source"] == "camera"
        joined = await bob.join()
        assert joined["peers"][0]["producers"][0]["producer_id"] == camera["producer_id"]
        await carol.join()

        for viewer in (bob, carol):
            await wait_until(lambda v=viewer: v.consumer_of(camera["producer_id"]) is not None)
            consumer_id = viewer.consumer_of(camera["producer_id"])
            await wait_until(
                lambda v=viewer, c=consumer_id: (
                    (r := v.received_for(c)) is not None and len(r.frames) >= 30
                ),
                what="30 decoded frames",
            )
            received = viewer.received_for(consumer_id)
            assert {(w, h) for _, w, h in received.frames} == {(640, 480)}

        # Forwarded, not decoded: no decoder thread behind any producer.
        producers = [
            p
            for r in sfu_node.engine.routers.values()
            for peer in r.peers.values()
            for p in peer.producers.values()
        ]
        assert producers
        assert all(not hooks.decoder_running(p.binding.receiver) for p in producers)

        # Full frame rate at both subscribers over a two-second window.
        start = time.monotonic()
        await wait_until(lambda: time.monotonic() - start > 2.0, what="a 2 s window")
        for viewer in (bob, carol):
            received = viewer.received_for(viewer.consumer_of(camera["producer_id"]))
            assert received.frames_since(start) >= 45

        stats = await bob.call("getStats")
        (consumer,) = stats["consumers"]
        assert consumer["forwarding"] is True
        assert consumer["packets"] > 0
        assert consumer["bitrate_bps"] > 0
        assert {t["direction"] for t in stats["transports"]} == {"receive"}
        publisher_stats = await alice.call("getStats")
        assert publisher_stats["producers"][0]["packets"] > 0
    finally:
        for p in (alice, bob, carol):
            await p.close()


def frames_of(viewer: Participant, producer_id: str) -> int:
    consumer_id = viewer.consumer_of(producer_id)
    received = viewer.received_for(consumer_id) if consumer_id else None
    return len(received.frames) if received else 0


async def wait_frames_stop(viewer: Participant, producer_id: str, quiet: float = 1.0) -> None:
    """Wait (bounded) until no frame arrived for `quiet` seconds."""
    last = (frames_of(viewer, producer_id), time.monotonic())

    def quiet_enough() -> bool:
        nonlocal last
        count = frames_of(viewer, producer_id)
        if count != last[0]:
            last = (count, time.monotonic())
        return time.monotonic() - last[1] >= quiet

    await wait_until(quiet_enough, what="frames to stop")


async def test_producer_pause_and_resume_reach_consumers_and_stop_and_restart_media(
    sfu_node: SfuNodeServer,
) -> None:
    room = room_name()
    alice = Participant(sfu_node.channel, room, "alice")
    bob = Participant(sfu_node.channel, room, "bob")
    try:
        await alice.join()
        await bob.join()
        (camera,) = await alice.publish([(SizedVideoTrack(320, 240), "camera")])
        producer_id = camera["producer_id"]
        await wait_until(lambda: frames_of(bob, producer_id) >= 10, what="first frames")
        consumer_id = bob.consumer_of(producer_id)

        await alice.call("pauseProducer", producer_id=producer_id)
        await wait_until(lambda: bob.saw("consumerPaused", consumer_id=consumer_id))
        await wait_frames_stop(bob, producer_id)
        paused_at = frames_of(bob, producer_id)
        assert (await bob.call("getStats"))["consumers"][0]["producer_paused"] is True

        await alice.call("resumeProducer", producer_id=producer_id)
        await wait_until(lambda: bob.saw("consumerResumed", consumer_id=consumer_id))
        await wait_until(
            lambda: frames_of(bob, producer_id) >= paused_at + 15, what="frames after resume"
        )

        # The subscriber's own pause and resume (resume asks for a key frame).
        await bob.call("pauseConsumer", consumer_id=consumer_id)
        await wait_frames_stop(bob, producer_id)
        paused_at = frames_of(bob, producer_id)
        requests_before = (await alice.call("getStats"))["producers"][0]["keyframe_requests"]
        await bob.call("resumeConsumer", consumer_id=consumer_id)
        await wait_until(
            lambda: frames_of(bob, producer_id) >= paused_at + 15, what="frames after resume"
        )
        stats = await alice.call("getStats")
        assert stats["producers"][0]["keyframe_requests"] > requests_before
        await bob.call("requestConsumerKeyFrame", consumer_id=consumer_id)
    finally:
        for p in (alice, bob):
            await p.close()


async def test_closing_a_producer_closes_its_consumers(sfu_node: SfuNodeServer) -> None:
    room = room_name()
    alice = Participant(sfu_node.channel, room, "alice")
    bob = Participant(sfu_node.channel, room, "bob")
    try:
        await alice.join()
        await bob.join()
        camera, _mic = await alice.publish(
            [(SizedVideoTrack(320, 240), "camera"), (ToneTrack(), "mic")]
        )
        await wait_until(lambda: frames_of(bob, camera["producer_id"]) >= 5, what="frames")
        consumer_id = bob.consumer_of(camera["producer_id"])
        await alice.call("closeProducer", producer_id=camera["producer_id"])
        await alice.call("closeProducer", producer_id=camera["producer_id"])  # retried: no error
        await wait_until(lambda: bob.saw("consumerClosed", consumer_id=consumer_id))
        counts = await sfu_node_dump(sfu_node)
        assert counts["producers"] == 1
        assert counts["consumers"] == 1
        # The freed m-line goes inactive in the next offer.
        await wait_until(
            lambda: any(t.currentDirection == "inactive" for t in bob.recv_pc.getTransceivers()),
            what="the freed m-line to go inactive",
        )
    finally:
        for p in (alice, bob):
            await p.close()


async def sfu_node_dump(node: SfuNodeServer) -> dict:
    from sfu import client

    return await client.dump(node.channel)


async def test_a_late_joiner_gets_a_key_frame_and_decodes_quickly(sfu_node: SfuNodeServer) -> None:
    room = room_name()
    alice = Participant(sfu_node.channel, room, "alice")
    early = Participant(sfu_node.channel, room, "early")
    late = Participant(sfu_node.channel, room, "late")
    try:
        await alice.join()
        await early.join()
        (camera,) = await alice.publish([(SizedVideoTrack(640, 480), "camera")])
        # Long after the publisher's first key frame.
        await wait_until(lambda: frames_of(early, camera["producer_id"]) >= 60, what="frames")
        joined_at = time.monotonic()
        await late.join()
        await wait_until(lambda: frames_of(late, camera["producer_id"]) >= 1, timeout=10)
        first_frame_after = time.monotonic() - joined_at
        assert first_frame_after < 5.0
        consumer_id = late.consumer_of(camera["producer_id"])
        received = late.received_for(consumer_id)
        assert received.frames[0][1:] == (640, 480)
    finally:
        for p in (alice, early, late):
            await p.close()


RETRANSMITTED_STREAMS = ("camera", "screen", "to bob: camera", "to bob: screen")


async def test_three_percent_loss_on_both_legs_still_decodes_camera_and_screen_at_full_rate(
    sfu_node: SfuNodeServer,
) -> None:
    room = room_name()
    alice = Participant(sfu_node.channel, room, "alice")
    bob = Participant(sfu_node.channel, room, "bob")
    bob.incoming_loss = 0.03
    try:
        await alice.join()
        await bob.join()
        camera, screen = await alice.publish(
            [(SizedVideoTrack(640, 480), "camera"), (SizedVideoTrack(480, 360), "screen")],
            outgoing_loss=0.03,
        )
        assert screen["source"] == "screen"
        for producer in (camera, screen):
            await wait_until(lambda p=producer: frames_of(bob, p["producer_id"]) >= 10)
        start = time.monotonic()
        await wait_until(lambda: time.monotonic() - start > 3.0, what="a 3 s window")
        for producer, size in ((camera, (640, 480)), (screen, (480, 360))):
            received = bob.received_for(bob.consumer_of(producer["producer_id"]))
            assert received.frames_since(start) >= 70, producer["source"]
            assert received.frames[-1][1:] == size
        # Retransmissions recovered the lost packets for both m-lines of one PC (the RTX fix)
        # on the publisher's leg, and the SFU answered the subscriber's NACKs on the other.
        retransmitted: dict[str, int] = {}

        async def poll_retransmissions() -> None:
            stats = await alice.call("getStats")
            for p in stats["producers"]:
                retransmitted[p["source"]] = p["retransmissions_received"]
            stats = await bob.call("getStats")
            for c in stats["consumers"]:
                retransmitted[f"to bob: {c['source']}"] = c["retransmissions_sent"]

        deadline = time.monotonic() + 20
        await poll_retransmissions()
        while not all(retransmitted.get(name, 0) > 0 for name in RETRANSMITTED_STREAMS):
            assert time.monotonic() < deadline, retransmitted
            await asyncio.sleep(0.2)
            await poll_retransmissions()
    finally:
        for p in (alice, bob):
            await p.close()


async def test_restart_ice_replaces_both_transports_and_media_flows_again(
    sfu_node: SfuNodeServer,
) -> None:
    room = room_name()
    alice = Participant(sfu_node.channel, room, "alice")
    bob = Participant(sfu_node.channel, room, "bob")
    try:
        await alice.join()
        await bob.join()
        (camera,) = await alice.publish([(SizedVideoTrack(320, 240), "camera")])
        producer_id = camera["producer_id"]
        await wait_until(lambda: frames_of(bob, producer_id) >= 5, what="frames")
        # The SFU only gathered on 127.0.0.1.
        answer = alice.send_pc.remoteDescription.sdp
        candidates = [line for line in answer.splitlines() if line.startswith("a=candidate")]
        assert candidates
        assert all(" 127.0.0.1 " in line for line in candidates)

        # The subscriber restarts: a fresh receive transport, the same consumer ids.
        consumers_before = set(bob.consumers)
        negotiations = sum(e["event"] == "negotiate" for e in bob.events)
        old_pc = bob.recv_pc
        bob.recv_pc = None
        await bob.call("restartIce")
        await old_pc.close()
        await wait_until(lambda: sum(e["event"] == "negotiate" for e in bob.events) > negotiations)
        assert set(bob.consumers) == consumers_before
        seen = frames_of(bob, producer_id)
        await wait_until(lambda: frames_of(bob, producer_id) >= seen + 5, what="frames again")

        # The publisher restarts: a new send PC, produce again; the producer id survives.
        await alice.call("restartIce")
        await alice.send_pc.close()
        alice.send_pc = None
        (again,) = await alice.publish([(SizedVideoTrack(320, 240), "camera")])
        assert again["producer_id"] == producer_id
        seen = frames_of(bob, producer_id)
        await wait_until(lambda: frames_of(bob, producer_id) >= seen + 5, what="frames again")
        assert not bob.saw("consumerClosed")
    finally:
        for p in (alice, bob):
            await p.close()


async def test_h264_is_forwarded_and_decodes_at_its_size(sfu_node: SfuNodeServer) -> None:
    room = room_name()
    alice = Participant(sfu_node.channel, room, "alice")
    bob = Participant(sfu_node.channel, room, "bob")
    try:
        await alice.join()
        await bob.join()
        (camera,) = await alice.publish(
            [(SizedVideoTrack(320, 240), "camera")], video_codec="video/H264"
        )
        producer_id = camera["producer_id"]
        await wait_until(lambda: frames_of(bob, producer_id) >= 20, what="H264 frames")
        received = bob.received_for(bob.consumer_of(producer_id))
        assert {(w, h) for _, w, h in received.frames} == {(320, 240)}
        (producer,) = (await alice.call("getStats"))["producers"]
        assert producer["codec"] == "video/H264"
    finally:
        for p in (alice, bob):
            await p.close()


async def test_re_offers_add_and_remove_producers(sfu_node: SfuNodeServer) -> None:
    room = room_name()
    alice = Participant(sfu_node.channel, room, "alice")
    bob = Participant(sfu_node.channel, room, "bob")
    try:
        await alice.join()
        await bob.join()
        (camera,) = await alice.publish([(SizedVideoTrack(320, 240), "camera")])
        await wait_until(lambda: frames_of(bob, camera["producer_id"]) >= 5, what="camera")
        # A screen share added later: a re-offer of the same PC with one more m-line.
        (screen,) = await alice.publish([(SizedVideoTrack(480, 360), "screen")])
        assert screen["source"] == "screen"
        assert screen["mid"] != camera["mid"]
        await wait_until(lambda: frames_of(bob, screen["producer_id"]) >= 5, what="screen")
        received = bob.received_for(bob.consumer_of(screen["producer_id"]))
        assert received.frames[-1][1:] == (480, 360)
        # The share stops: its m-line goes inactive, the producer and its consumer close.
        screen_consumer = bob.consumer_of(screen["producer_id"])
        remaining = await alice.stop_sending(screen["producer_id"])
        assert [p["producer_id"] for p in remaining] == [camera["producer_id"]]
        await wait_until(lambda: bob.saw("consumerClosed", consumer_id=screen_consumer))
        seen = frames_of(bob, camera["producer_id"])
        await wait_until(lambda: frames_of(bob, camera["producer_id"]) >= seen + 10, what="camera")
    finally:
        for p in (alice, bob):
            await p.close()
