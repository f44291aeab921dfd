"""The node's garbage-collection watch logs a collection that held the event loop long."""

from __future__ import annotations

import gc
import logging

import pytest

from sfu import collection_watch
from sfu.collection_watch import CollectionWatch
from sfu.tests.helpers import Participant, SizedVideoTrack, start_node, stop_node, wait_until


def test_a_slow_collection_is_logged_and_a_quick_one_is_not(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = CollectionWatch()
    watch.install()
    try:
        caplog.set_level(logging.WARNING, logger="sfu.collection_watch")
        monkeypatch.setattr(collection_watch, "SLOW_COLLECTION_MS", 1e9)
        gc.collect()
        assert watch.slow == 0
        assert not caplog.records
        # Every collection counts as slow now: a real one is timed and logged.
        monkeypatch.setattr(collection_watch, "SLOW_COLLECTION_MS", 0.0)
        gc.collect()
        assert watch.slow >= 1
        assert watch.longest_ms > 0
        assert "garbage collection (generation 2) held the event loop" in caplog.text
    finally:
        watch.remove()
    assert watch not in gc.callbacks


@pytest.mark.django_db(transaction=True)
async def test_a_viewers_video_slots_hold_no_receive_estimator_and_a_publishers_keeps_it() -> None:
    """aiortc builds a 1,000-object rate counter for every video receiver; the node's slots
    toward a viewer never receive, so theirs is dropped (N(N-1) of them in a meeting of N)."""
    node, task = await start_node()
    alice = Participant(node.channel, "room-estimators", "alice")
    bob = Participant(node.channel, "room-estimators", "bob")
    try:
        await alice.join()
        await bob.join()
        await alice.publish([(SizedVideoTrack(320, 240), "camera")])
        router = node.engine.routers["room-estimators"]
        viewer = router.peers[bob.peer_id]
        await wait_until(lambda: bool(viewer.receive.slots), what="a slot toward Bob")
        for slot in viewer.receive.slots:
            assert slot.transceiver.receiver._RTCRtpReceiver__remote_bitrate_estimator is None
        (producer,) = router.peers[alice.peer_id].producers.values()
        assert producer.binding is not None
        receiver = producer.binding.receiver
        assert receiver._RTCRtpReceiver__remote_bitrate_estimator is not None  # REMB for Alice
    finally:
        await alice.close()
        await bob.close()
        await stop_node(node, task)


def test_start_up_objects_are_kept_out_of_later_collections_until_the_node_stops() -> None:
    from sfu.collection_watch import freeze_start_up, thaw

    try:
        freeze_start_up()
        assert gc.get_freeze_count() > 10_000  # Django, aiortc, PyAV and the test's own
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
