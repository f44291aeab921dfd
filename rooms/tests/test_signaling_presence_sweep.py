"""The presence sweep: a participant whose web process died (its connection stopped
heartbeating, and nothing ran its disconnect) leaves through the beat task, as with a leave;
live connections and reconnects are left alone.

A crashed process is simulated by cancelling the connection's consumer task (the ASGI
application instance) without sending it a disconnect: that is what a killed daphne leaves
behind. Its row was entered the real way, its SFU peer is real, its consumer's code never
runs again and nothing refreshes its row, exactly as after a crash. (Inserting a row with an
old last_seen_at through presence.enter would leave no SFU peer to remove, and would not show
that the heartbeat really stops with the connection.) Time passes with time-machine: a jump
of a little over three heartbeats, small enough that the in-process SFU node, which
heartbeats on the wall clock, still counts as live.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.models import User
from meet.celery import app as celery_app
from rooms import presence, tasks
from rooms.models import Meeting, Participant
from rooms.signaling import protocol
from rooms.tests import signaling_support
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

# Short enough that live connections heartbeat several times a second of the test, long
# enough that a busy machine does not miss three in a row.
HEARTBEAT = 0.5
# A little over SILENT_HEARTBEATS periods of silence.
SILENCE = dt.timedelta(seconds=HEARTBEAT * presence.SILENT_HEARTBEATS + 0.5)


@pytest.fixture
def short_heartbeat(settings: Any) -> None:
    settings.PRESENCE_HEARTBEAT_SECONDS = HEARTBEAT
    settings.SIGNALING_RECONNECT_GRACE_SECONDS = 20.0


async def make_meeting(host: User) -> Meeting:
    return await sync_to_async(Meeting.objects.create)(host=host, title="Stand-up")


@dataclass
class CallWithACrash:
    """Host and Kim in a call; Kim's web process died (her consumer task was cancelled)."""

    meeting: Meeting
    staying: Any
    crashed: Any
    kim_cookie: str


async def call_with_a_crashed_peer() -> CallWithACrash:
    host, kim = await make_user("host"), await make_user("kim")
    meeting = await make_meeting(host)
    staying = await joined(meeting, await session_cookie(host), "Host")
    kim_cookie = await session_cookie(kim)
    crashed = await joined(meeting, kim_cookie, "Kim")
    await wait_until(lambda: staying.notified("newPeer", peerId=crashed.peer_id), what="newPeer")
    await crash(crashed)
    return CallWithACrash(meeting, staying, crashed, kim_cookie)


async def joined(meeting: Meeting, cookie: bytes, name: str, peer_id: str | None = None) -> Any:
    client = SignalingClient(meeting.code, cookie)
    ok, code = await client.connect()
    assert ok, f"connection refused with {code}"
    await client.join(peer_id, name=name)
    return client


async def crash(client: SignalingClient) -> None:
    """The client's web process dies: its consumer task ends without a disconnect."""
    # Nothing left to close at the end of the test (drop() would re-raise the cancellation).
    signaling_support._open_clients.remove(client)
    assert client._reader is not None
    client._reader.cancel()
    future = client.communicator.future
    # Cancelled until it is done: the consumer's clean-up awaits its pending channel-layer
    # receive, which channels_redis can be slow (or fail) to cancel; a dead process would not
    # wait for it either.
    while not future.done():
        future.cancel()
        await asyncio.wait({future}, timeout=0.5)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        future.result()
    # A heartbeat the crash caught inside its database call still finishes in the
    # thread-sensitive executor; were it to run after the test moves the clock, it would stamp
    # the row with the moved time and the peer would look alive. Calls in that executor run in
    # order, so a no-op queued behind it waits it out.
    await sync_to_async(lambda: None)()


async def present_peer_ids(meeting: Meeting) -> list[str]:
    rows = Participant.objects.filter(meeting=meeting, left_at__isnull=True)
    return [p.peer_id async for p in rows.order_by("pk")]


async def heartbeat_since(meeting: Meeting, peer_id: str, moment: dt.datetime) -> bool:
    return await Participant.objects.filter(
        meeting=meeting, peer_id=peer_id, left_at__isnull=True, last_seen_at__gte=moment
    ).aexists()


async def last_seen(meeting: Meeting, peer_id: str) -> dt.datetime:
    row = await Participant.objects.aget(meeting=meeting, peer_id=peer_id, left_at__isnull=True)
    return row.last_seen_at


def sfu_peers(node: Any, code: str) -> set[str]:
    router = node.engine.routers.get(code)
    return set(router.peers) if router is not None else set()


async def status(meeting: Meeting) -> str:
    return str((await Meeting.objects.aget(pk=meeting.pk)).status)


async def sweep() -> int:
    """The beat task, run as the worker runs it: synchronously, in a thread of its own."""
    return await sync_to_async(tasks.sweep_abandoned_participants, thread_sensitive=False)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_heartbeat")
async def test_a_crashed_connection_is_swept_out_and_the_others_get_peerclosed(
    sfu_node: Any,  # noqa: F811
) -> None:
    host, kim = await make_user("host"), await make_user("kim")
    meeting = await make_meeting(host)
    staying = await joined(meeting, await session_cookie(host), "Host")
    crashed = await joined(meeting, await session_cookie(kim), "Kim")
    await wait_until(lambda: staying.notified("newPeer", peerId=crashed.peer_id), what="newPeer")
    assert sfu_peers(sfu_node, meeting.code) == {staying.peer_id, crashed.peer_id}

    await crash(crashed)
    later = timezone.now() + SILENCE
    with time_machine.travel(later, tick=True):
        await wait_until(
            lambda: heartbeat_since(meeting, staying.peer_id, later),
            what="the live connection's next heartbeat",
        )
        assert await sweep() == 1

    await wait_until(
        lambda: staying.notified("peerClosed", peerId=crashed.peer_id), what="peerClosed"
    )
    assert await present_peer_ids(meeting) == [staying.peer_id]
    row = await Participant.objects.aget(meeting=meeting, peer_id=crashed.peer_id)
    assert row.left_at is not None
    assert sfu_peers(sfu_node, meeting.code) == {staying.peer_id}
    assert await status(meeting) == "live"
    # Nothing more to do: a second run is a no-op.
    assert await sweep() == 0
    assert len(staying.notified("peerClosed")) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_heartbeat")
async def test_a_join_that_clears_a_crashed_participant_closes_its_sfu_peer_once(
    sfu_node: Any,  # noqa: F811
) -> None:
    call = await call_with_a_crashed_peer()
    lee = await make_user("lee")
    later = timezone.now() + SILENCE
    with time_machine.travel(later, tick=True):
        await wait_until(
            lambda: heartbeat_since(call.meeting, call.staying.peer_id, later),
            what="the live connection's next heartbeat",
        )
        # Before any sweep: the next one in finds Kim abandoned and lets her go itself.
        newcomer = SignalingClient(call.meeting.code, await session_cookie(lee))
        assert (await newcomer.connect())[0]
        answer = await newcomer.join(name="Lee")

    await wait_until(
        lambda: call.staying.notified("peerClosed", peerId=call.crashed.peer_id),
        what="peerClosed",
    )
    # Her SFU peer is gone with her row: the newcomer gets none of her media, and nothing of
    # hers stays on the node.
    assert sfu_peers(sfu_node, call.meeting.code) == {call.staying.peer_id, newcomer.peer_id}
    assert await present_peer_ids(call.meeting) == [call.staying.peer_id, newcomer.peer_id]
    assert call.crashed.peer_id not in {peer["peerId"] for peer in answer["peers"]}
    # Exactly once: the sweep that comes later finds nobody to let go.
    with time_machine.travel(later, tick=True):
        assert await sweep() == 0
    assert len(call.staying.notified("peerClosed", peerId=call.crashed.peer_id)) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_heartbeat")
async def test_the_meeting_ends_when_the_swept_participant_was_the_last(
    sfu_node: Any,  # noqa: F811
) -> None:
    host = await make_user("host")
    meeting = await make_meeting(host)
    alone = await joined(meeting, await session_cookie(host), "Host")
    assert await status(meeting) == "live"

    await crash(alone)
    with time_machine.travel(timezone.now() + SILENCE, tick=True):
        assert await sweep() == 1

    assert await present_peer_ids(meeting) == []
    assert await status(meeting) == "ended"
    assert alone.peer_id not in sfu_peers(sfu_node, meeting.code)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "short_heartbeat")
async def test_live_connections_keep_heartbeating_and_are_not_swept() -> None:
    host, ana = await make_user("host"), await make_user("ana")
    meeting = await make_meeting(host)
    first = await joined(meeting, await session_cookie(host), "Host")
    second = await joined(meeting, await session_cookie(ana), "Ana")

    # Without heartbeats both rows would be stale by now (their join is over three periods
    # back); they are refreshed, so the sweep leaves them alone.
    for _ in range(3):
        later = timezone.now() + SILENCE
        with time_machine.travel(later, tick=True):
            for client in (first, second):
                await wait_until(
                    lambda client=client, later=later: heartbeat_since(
                        meeting, client.peer_id, later
                    ),
                    what="a heartbeat",
                )
            assert await sweep() == 0

    assert await present_peer_ids(meeting) == [first.peer_id, second.peer_id]
    assert await status(meeting) == "live"
    assert await first.request("getStats") is not None
    assert not first.notified("peerClosed")
    assert not second.notified("peerClosed")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_heartbeat")
async def test_a_reconnect_between_the_sweeps_query_and_its_leave_keeps_the_peer(
    sfu_node: Any,  # noqa: F811
) -> None:
    call = await call_with_a_crashed_peer()
    meeting, staying, crashed, kim_cookie = (
        call.meeting,
        call.staying,
        call.crashed,
        call.kim_cookie,
    )

    later = timezone.now() + SILENCE
    with time_machine.travel(later, tick=True):
        await wait_until(lambda: heartbeat_since(meeting, staying.peer_id, later))
        candidates = await sync_to_async(presence.abandoned_participants)(
            heartbeat_seconds=HEARTBEAT, grace_seconds=20.0
        )
        assert [p.peer_id for p in candidates] == [crashed.peer_id]
        # Kim's browser reconnects (to another web process) while the sweep is between its
        # query and its leaves.
        back = await joined(meeting, kim_cookie, "Kim", peer_id=crashed.peer_id)
        departed = await sync_to_async(presence.leave_all_abandoned)(candidates)

    assert departed == []
    assert await present_peer_ids(meeting) == [staying.peer_id, crashed.peer_id]
    assert crashed.peer_id in sfu_peers(sfu_node, meeting.code)
    assert await back.request("getStats") is not None
    await staying.request("getStats")  # a round trip: pending events have arrived
    assert not staying.notified("peerClosed")
    assert await status(meeting) == "live"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("short_heartbeat")
async def test_a_rejoin_before_the_sweeps_departure_goes_out_keeps_the_new_peer(
    sfu_node: Any,  # noqa: F811
) -> None:
    call = await call_with_a_crashed_peer()
    meeting, staying, crashed, kim_cookie = (
        call.meeting,
        call.staying,
        call.crashed,
        call.kim_cookie,
    )

    later = timezone.now() + SILENCE
    with time_machine.travel(later, tick=True):
        await wait_until(lambda: heartbeat_since(meeting, staying.peer_id, later))
        candidates = await sync_to_async(presence.abandoned_participants)(
            heartbeat_seconds=HEARTBEAT, grace_seconds=20.0
        )
        departed = await sync_to_async(presence.leave_all_abandoned)(candidates)
        assert [p.peer_id for p in departed] == [crashed.peer_id]
        # The browser rejoins after the sweep's leave, before its SFU leave and peerClosed.
        back = await joined(meeting, kim_cookie, "Kim", peer_id=crashed.peer_id)
        await presence.announce_departures(departed)

    assert await present_peer_ids(meeting) == [staying.peer_id, crashed.peer_id]
    # The sweep did not close the rejoined peer's media session, nor tell the others it left.
    assert crashed.peer_id in sfu_peers(sfu_node, meeting.code)
    assert await back.request("getStats") is not None
    await staying.request("getStats")
    assert not staying.notified("peerClosed")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "short_heartbeat")
async def test_two_sweeps_at_once_make_the_peer_leave_once() -> None:
    call = await call_with_a_crashed_peer()
    meeting, staying, crashed = call.meeting, call.staying, call.crashed

    later = timezone.now() + SILENCE
    with time_machine.travel(later, tick=True):
        await wait_until(lambda: heartbeat_since(meeting, staying.peer_id, later))
        counts = await asyncio.gather(sweep(), sweep())

    assert sorted(counts) == [0, 1]
    await wait_until(lambda: staying.notified("peerClosed", peerId=crashed.peer_id))
    await staying.request("getStats")
    assert len(staying.notified("peerClosed")) == 1
    assert await present_peer_ids(meeting) == [staying.peer_id]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "short_heartbeat")
async def test_a_disconnected_peer_whose_grace_nobody_ended_is_swept(settings: Any) -> None:
    settings.SIGNALING_RECONNECT_GRACE_SECONDS = 20.0
    host, kim = await make_user("host"), await make_user("kim")
    meeting = await make_meeting(host)
    staying = await joined(meeting, await session_cookie(host), "Host")
    dropped = await joined(meeting, await session_cookie(kim), "Kim")
    # The socket drops (its grace period starts in this process) ...
    await dropped.drop()
    await wait_until(
        lambda: Participant.objects.filter(
            peer_id=dropped.peer_id, disconnected_at__isnull=False
        ).aexists(),
        what="the drop noted",
    )
    # ... inside the grace period the sweep leaves it alone, however silent it is ...
    later = timezone.now() + SILENCE
    with time_machine.travel(later, tick=True):
        await wait_until(lambda: heartbeat_since(meeting, staying.peer_id, later))
        assert await sweep() == 0
    # ... and once twice the grace period has passed (this process's own grace task is
    # still sleeping: as if the process had died), the sweep ends it.
    later = timezone.now() + dt.timedelta(seconds=20.0 * 2 + 6)
    with time_machine.travel(later, tick=True):
        await wait_until(lambda: heartbeat_since(meeting, staying.peer_id, later))
        assert await sweep() == 1
    await wait_until(lambda: staying.notified("peerClosed", peerId=dropped.peer_id))
    assert await present_peer_ids(meeting) == [staying.peer_id]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "short_heartbeat")
async def test_a_connection_swept_while_alive_is_closed_so_that_it_joins_again() -> None:
    """A web process that stalled for longer than three heartbeats was taken for dead: its
    connection learns so at its next heartbeat and closes with 4500 (the client reconnects
    and joins again). One participant: the whole process stalls, not one connection."""
    host = await make_user("host")
    meeting = await make_meeting(host)
    stalled = await joined(meeting, await session_cookie(host), "Host")

    # Right after one of its heartbeats, so the sweep runs well before the next.
    before = await last_seen(meeting, stalled.peer_id)
    await wait_until(
        lambda: heartbeat_since(meeting, stalled.peer_id, before + dt.timedelta(microseconds=1))
    )
    with time_machine.travel(timezone.now() + SILENCE, tick=True):
        departed = await sync_to_async(presence.sweep_abandoned, thread_sensitive=False)()
    assert [p.peer_id for p in departed] == [stalled.peer_id]
    assert await status(meeting) == "ended"

    assert await stalled.wait_closed() == protocol.CLOSE_SERVER_ERROR


# transaction=True: the scheduler closes the database connection, as the existing beat test
# (test_meetings_worker) also allows for.
@pytest.mark.django_db(transaction=True)
def test_beat_runs_the_sweep_every_30_seconds(settings: Any) -> None:
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    entry = settings.CELERY_BEAT_SCHEDULE["rooms-sweep-abandoned-participants"]
    assert entry["task"] == tasks.sweep_abandoned_participants.name
    assert entry["task"] in celery_app.tasks
    DatabaseScheduler(app=celery_app)  # what `celery beat -S django` does at start-up
    stored = PeriodicTask.objects.get(name="rooms-sweep-abandoned-participants")
    assert (stored.interval.every, stored.interval.period) == (30, "seconds")
    assert stored.expires_ is not None
    assert stored.enabled
