"""The call survives its SFU node in real Chromium: two node processes, the room's node killed
(SIGKILL) mid-call; the web side moves the room to the live node and says `mediaReset`, and
each browser publishes again on fresh peer connections without anyone pressing anything.

Heartbeats and the failover check are shortened here (a node is taken for dead after 2 s of
silence instead of 6 s) so the test waits less; the path is the production one.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection
from playwright.sync_api import expect

from sfu import registry
from tests.e2e.call_page import Participant, poll
from tests.e2e.conftest import node_process
from tests.e2e.netns import LoopbackNamespace
from tests.e2e.stack import (
    SCREENSHOT_DIR,
    SfuNodeProcess,
    child_env,
    database_url,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MEDIA_TIMEOUT = 30.0
NODE_TIMEOUT_SECONDS = 2.0
# What the issue asks of the client: media back within 5 s of being told.
MEDIA_BACK_AFTER_TOLD_SECONDS = 5.0

Make = Callable[..., Participant]


@pytest.fixture
def stack_env(transactional_db: None) -> dict[str, str]:
    """daphne and both nodes: quick heartbeats, and a node dead after 2 s of silence."""
    return child_env(
        database_url(connection.settings_dict),
        SFU_HEARTBEAT_SECONDS="0.3",
        SFU_NODE_TIMEOUT_SECONDS=str(NODE_TIMEOUT_SECONDS),
        FAILOVER_CHECK_SECONDS="0.25",
    )


@pytest.fixture
def second_sfu_node(
    stack_env: dict[str, str],
    loopback_network: LoopbackNamespace | None,
    request: pytest.FixtureRequest,
) -> Iterator[SfuNodeProcess]:
    yield from node_process(stack_env, loopback_network, request, "sfu2")


def _received_video_track_ids(person: Participant) -> set[str]:
    return {s["trackIdentifier"] for s in person.media_stats()["videoInbound"]}


def test_when_the_rooms_sfu_node_dies_the_browsers_reconnect_media_on_a_live_node(
    sfu_node: SfuNodeProcess,
    second_sfu_node: SfuNodeProcess,
    participants: Make,
    meeting_url: Callable[[Participant], str],
) -> None:
    alice, bob = participants("Alice"), participants("Bob")
    url = meeting_url(alice)
    alice.join(url)
    bob.join(url)
    bob.wait_for_frames_from("Alice", 5, timeout=MEDIA_TIMEOUT)
    alice.wait_for_frames_from("Bob", 5, timeout=MEDIA_TIMEOUT)
    code = url.rstrip("/").rsplit("/", 1)[-1]
    placement = registry.node_for_room(code)
    assert placement is not None
    nodes = {node.node_name: node for node in (sfu_node, second_sfu_node)}
    doomed = nodes.pop(placement.name)
    (survivor,) = nodes
    tracks_before = {p.name: _received_video_track_ids(p) for p in (alice, bob)}
    peer_ids = {p.name: p.page.evaluate("window.meetCall.peerId") for p in (alice, bob)}

    assert doomed.process is not None
    killed_at = time.monotonic()
    os.kill(doomed.process.pid, signal.SIGKILL)

    # Each browser decodes the other again, on new receive tracks from the live node.
    for person, other in ((alice, "Bob"), (bob, "Alice")):
        poll(
            lambda person=person, other=other: (
                person.video_track_id_of(other) not in (None, *tracks_before[person.name])
                and person.frames_from(other) > 10
            ),
            MEDIA_TIMEOUT,
            f"{person.name} to decode {other} from the live node",
        )
    back_after = time.monotonic() - killed_at
    placed = registry.node_for_room(code)
    assert placed is not None
    assert placed.name == survivor
    # Heartbeat silence (2 s here) + the watch + publishing again; the client's own part,
    # after mediaReset, is what the issue bounds at 5 s.
    assert back_after < NODE_TIMEOUT_SECONDS + MEDIA_BACK_AFTER_TOLD_SECONDS + 3, back_after
    # Nobody left: the same participants, one tile each, no banner left up.
    for person in (alice, bob):
        assert person.page.evaluate("window.meetCall.peerId") == peer_ids[person.name]
        expect(person.tiles()).to_have_count(2)
        expect(person.page.locator("#call-banner")).to_be_hidden(timeout=10_000)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    bob.page.screenshot(path=str(SCREENSHOT_DIR / "failover-bob.png"))
