"""Attendance (rooms.attendance): every join and leave kept after the call, through the call's
real WebSocket and SFU node: reconnects within the grace period are one session, after it two;
guests; end for all and the presence sweep close sessions; a recurring meeting's occurrences
are kept apart. The report's figures, the page, the CSV (content and who may download it) and
the e-mail to the host and co-hosts.

Time is moved with time-machine (no sleeps): each step of a call happens at a chosen moment,
frozen, so the report's figures are exact. The SFU node's liveness and the presence heartbeat
are stretched for those tests (their wall-clock checks would otherwise take the jumps for
silence); the sweep test keeps a short heartbeat, as the sweep's own tests do.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from rooms import attendance, moderation, presence, tasks
from rooms.models import (
    AttendanceReportDelivery,
    AttendanceSession,
    Invitation,
    LobbyRequest,
    Meeting,
    Participant,
)
from rooms.signaling import protocol
from rooms.tests.meetings_support import eager_celery  # noqa: F401  (fixture)
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)
from rooms.tests.test_signaling_presence_sweep import SILENCE, crash, heartbeat_since

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
EDGE = CHROME + " Edg/131.0.2903.86"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def long_clocks(settings: Any) -> None:
    """Time jumps of minutes or hours are not silence: the node and the connections count as
    alive across them (their wall-clock heartbeats are not what these tests are about)."""
    settings.SFU_NODE_TIMEOUT_SECONDS = 3 * 24 * 3600.0
    settings.PRESENCE_HEARTBEAT_SECONDS = 24 * 3600.0
    settings.SIGNALING_RECONNECT_GRACE_SECONDS = 20.0


@pytest.fixture
def at() -> Iterator[Any]:
    """at(moment): the clock stands still at `moment` until the next at() (or the test's end)."""
    travellers: list[Any] = []

    def move(moment: dt.datetime) -> None:
        if travellers:
            travellers.pop().stop()
        traveller = time_machine.travel(moment, tick=False)
        traveller.start()
        travellers.append(traveller)

    yield move
    if travellers:
        travellers.pop().stop()


def a_minute_ago_rounded(hours_back: int = 20) -> dt.datetime:
    """A start in the past (so every jump forward stays well clear of the real clock)."""
    return (timezone.now() - dt.timedelta(hours=hours_back)).replace(second=0, microsecond=0)


async def connected(meeting: Meeting, cookie: bytes, user_agent: str = CHROME) -> SignalingClient:
    client = SignalingClient(meeting.code, cookie)
    client.communicator.scope["headers"].append((b"user-agent", user_agent.encode()))
    ok, code = await client.connect()
    assert ok, f"connection refused with {code}"
    return client


async def joined(
    meeting: Meeting,
    cookie: bytes,
    name: str,
    user_agent: str = CHROME,
    peer_id: str | None = None,
) -> SignalingClient:
    client = await connected(meeting, cookie, user_agent)
    await client.join(peer_id, name=name)
    return client


async def guest_joined(
    meeting: Meeting, host: User, name: str, user_agent: str
) -> tuple[SignalingClient, bytes]:
    """A guest's browser knocks, the host admits it, and it joins."""
    cookie = await session_cookie(None)
    client = await connected(meeting, cookie, user_agent)
    peer_id = uuid.uuid4().hex
    knock = await client.request_frame("join", {"peerId": peer_id, "displayName": name})
    assert knock["errorCode"] == "lobby"
    request = await LobbyRequest.objects.aget(meeting=meeting, peer_id=peer_id)
    await sync_to_async(moderation.admit)(host, request)
    await wait_until(lambda: client.notified("lobbyAdmitted"), what="lobbyAdmitted")
    await client.join(peer_id, name=name)
    return client, cookie


async def sessions_of(meeting: Meeting, **filters: Any) -> list[AttendanceSession]:
    rows = AttendanceSession.objects.filter(meeting=meeting, **filters).order_by("joined_at", "pk")
    return [row async for row in rows]


async def disconnected(meeting: Meeting, peer_id: str) -> bool:
    return await Participant.objects.filter(
        meeting=meeting, peer_id=peer_id, left_at__isnull=True, disconnected_at__isnull=False
    ).aexists()


async def _left(meeting: Meeting, peer_id: str) -> bool:
    return not await Participant.objects.filter(
        meeting=meeting, peer_id=peer_id, left_at__isnull=True
    ).aexists()


def make_meeting(host: User, start: dt.datetime, **extra: Any) -> Meeting:
    return Meeting.objects.create(
        host=host,
        title=extra.pop("title", "Planning"),
        starts_at=start,
        ends_at=start + dt.timedelta(hours=1),
        **extra,
    )


def attendance_mails() -> list[Any]:
    return [m for m in mail.outbox if m.subject.startswith("Attendance report")]


# --- the browser, the arithmetic, the cells -------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "family"),
    [
        (CHROME, "chrome"),
        (EDGE, "edge"),
        (FIREFOX, "firefox"),
        (SAFARI, "safari"),
        (CHROME + " OPR/114.0.0.0", "opera"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) CriOS/131.0 Safari/604.1",
            "chrome",
        ),
        ("Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0", "firefox"),
        ("curl/8.5.0", "other"),
        ("", "other"),
    ],
)
def test_browser_family(user_agent: str, family: str) -> None:
    assert attendance.browser_family(user_agent) == family


def test_overlapping_stays_count_once() -> None:
    t = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    stays = [
        (t, t + 30 * MINUTE),
        (t + 10 * MINUTE, t + 20 * MINUTE),
        (t + 40 * MINUTE, t + 50 * MINUTE),
    ]
    assert attendance._union_length(stays) == 40 * MINUTE
    assert attendance._union_length([]) == dt.timedelta()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("Ada", "Ada"),
        (12, "12"),
        (None, ""),
    ],
)
def test_csv_cells_are_never_formulas(value: object, shown: str) -> None:
    assert attendance.safe_cell(value) == shown


# --- a whole call, through the real signaling path ------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "long_clocks", "eager_celery")
async def test_a_call_is_kept_with_its_figures_page_csv_and_email(at: Any) -> None:
    host, cora, ivy = await make_user("host"), await make_user("cora"), await make_user("ivy")
    uma = await make_user("uma")
    t0 = a_minute_ago_rounded()
    meeting = await sync_to_async(make_meeting)(host, t0, access_policy=Meeting.Access.GUESTS)
    await sync_to_async(meeting.co_hosts.add)(cora)
    await Invitation.objects.acreate(meeting=meeting, email=ivy.email)
    await Invitation.objects.acreate(
        meeting=meeting, email="dan@example.org", response=Invitation.Response.DECLINED
    )
    uma_cookie = await session_cookie(uma)

    at(t0)
    hosting = await joined(meeting, await session_cookie(host), "Host", CHROME)
    at(t0 + 2 * MINUTE)
    ivy_cookie = await session_cookie(ivy)
    ivy_one = await joined(meeting, ivy_cookie, "Ivy", FIREFOX)
    at(t0 + 5 * MINUTE)
    uma_tab = await joined(meeting, uma_cookie, "Uma", SAFARI)
    at(t0 + 10 * MINUTE)
    ivy_two = await joined(meeting, ivy_cookie, "Ivy", FIREFOX)  # a second tab
    at(t0 + 12 * MINUTE)
    gus, _gus_cookie = await guest_joined(meeting, host, "=Gus", EDGE)
    at(t0 + 20 * MINUTE)
    await ivy_two.request("leave")
    # Uma's network blips: she is back within the grace period, on the same peer.
    at(t0 + 25 * MINUTE)
    await uma_tab.drop()
    await wait_until(lambda: disconnected(meeting, uma_tab.peer_id), what="the drop noted")
    at(t0 + 25 * MINUTE + dt.timedelta(seconds=10))
    uma_back = await connected(meeting, uma_cookie, SAFARI)
    assert (await uma_back.join(uma_tab.peer_id, name="Uma"))["reconnected"] is True
    at(t0 + 30 * MINUTE)
    await ivy_one.request("leave")
    at(t0 + 40 * MINUTE)
    await gus.request("leave")
    at(t0 + 45 * MINUTE)
    await uma_back.request("leave")
    assert attendance_mails() == []  # the call is still on
    at(t0 + 50 * MINUTE)
    await hosting.request("leave")

    # Every stay is kept: one per tab, Uma's reconnect inside hers.
    rows = await sessions_of(meeting)
    assert [(row.display_name, row.joined_at - t0, row.left_at - t0) for row in rows] == [
        ("Host", dt.timedelta(), 50 * MINUTE),
        ("Ivy", 2 * MINUTE, 30 * MINUTE),
        ("Uma", 5 * MINUTE, 45 * MINUTE),
        ("Ivy", 10 * MINUTE, 20 * MINUTE),
        ("=Gus", 12 * MINUTE, 40 * MINUTE),
    ]
    assert [(row.role, row.browser, row.is_guest) for row in rows] == [
        ("host", "chrome", False),
        ("participant", "firefox", False),
        ("participant", "safari", False),
        ("participant", "firefox", False),
        ("guest", "edge", True),
    ]
    assert {row.occurrence_start for row in rows} == {t0}
    assert rows[-1].guest_key
    assert rows[-1].user_id is None

    # The report: who came (invited or not), for how long, and who did not.
    report = await sync_to_async(attendance.report)(meeting, t0)
    assert [(a.name, a.role, a.total, a.sessions) for a in report.invited_came] == [
        ("Host", "Host", 50 * MINUTE, 1),
        ("Ivy", "Participant", 28 * MINUTE, 2),  # two tabs, overlap counted once
    ]
    assert [(a.name, a.is_guest, a.total, a.first_join - t0) for a in report.uninvited] == [
        ("Uma", False, 40 * MINUTE, 5 * MINUTE),
        ("=Gus", True, 28 * MINUTE, 12 * MINUTE),
    ]
    assert report.invited_came[1].last_leave == t0 + 30 * MINUTE
    assert report.invited_came[1].response == "Awaiting response"
    assert [(p.email, p.role, p.response) for p in report.absent] == [
        (cora.email, "Co-host", ""),
        ("dan@example.org", "Invitee", "Declined"),
    ]
    assert report.started_at == t0
    assert report.ended_at == t0 + 50 * MINUTE

    # The e-mail, once, to the host and the co-host, with the CSV.
    mails = attendance_mails()
    assert sorted(m.to[0] for m in mails) == sorted([host.email, cora.email])
    message = next(m for m in mails if m.to == [host.email])
    assert message.subject.startswith("Attendance report: Planning @ ")
    assert "Ivy: " in message.body
    assert "28 min" in message.body
    assert "dan@example.org" in message.body
    html = message.alternatives[0][0]
    assert "Came without an invitation" in html
    assert "=Gus" in html
    (name, content, mimetype) = message.attachments[0]
    assert name == f"attendance-{meeting.code}-{t0:%Y-%m-%d-%H%M}.csv"
    assert mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(content)))
    assert table[0] == list(attendance.CSV_HEADER)
    by_name = {row[0]: row for row in table[1:]}
    assert by_name["Ivy"][2:6] == ["Invited, came", "Participant", "no", "Awaiting response"]
    assert by_name["Ivy"][7] == (t0 + 2 * MINUTE).isoformat(timespec="seconds")
    assert by_name["Ivy"][9:12] == ["28", "28 min", "2"]
    assert by_name["Host"][10] == "50 min"
    # A name that reads as a formula is written as text.
    assert by_name["'=Gus"][2:5] == ["Came, not invited", "Guest", "yes"]
    assert by_name["Uma"][6] == "Safari"
    absent = {row[1]: row[2:6] for row in table[1:] if row[2] == "Invited, did not come"}
    assert absent == {
        cora.email: ["Invited, did not come", "Co-host", "no", ""],
        "dan@example.org": ["Invited, did not come", "Invitee", "no", "Declined"],
    }
    assert (
        await AttendanceReportDelivery.objects.filter(
            meeting=meeting, sent_at__isnull=False
        ).acount()
        == 1
    )
    # Once: a second run of the task (a retry, a second last-leave) sends nothing.
    assert await sync_to_async(tasks.send_attendance_report)(meeting.pk, t0.isoformat()) == 0
    assert len(attendance_mails()) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "long_clocks")
async def test_a_reconnect_after_the_grace_period_is_a_second_session(
    settings: Any, at: Any
) -> None:
    settings.SIGNALING_RECONNECT_GRACE_SECONDS = 1.0
    host, kim = await make_user("host"), await make_user("kim")
    t0 = a_minute_ago_rounded()
    meeting = await sync_to_async(make_meeting)(host, t0)
    at(t0)
    hosting = await joined(meeting, await session_cookie(host), "Host")
    kim_cookie = await session_cookie(kim)
    kim_tab = await joined(meeting, kim_cookie, "Kim", FIREFOX)
    at(t0 + 10 * MINUTE)
    await kim_tab.drop()
    await wait_until(lambda: disconnected(meeting, kim_tab.peer_id), what="the drop noted")
    at(t0 + 12 * MINUTE)  # the grace period runs out on this clock
    await wait_until(
        lambda: hosting.notified("peerClosed", peerId=kim_tab.peer_id), what="grace expiry"
    )
    kim_row = await Participant.objects.aget(meeting=meeting, peer_id=kim_tab.peer_id)
    assert kim_row.left_at == t0 + 12 * MINUTE
    at(t0 + 15 * MINUTE)
    again = await joined(meeting, kim_cookie, "Kim", FIREFOX, peer_id=kim_tab.peer_id)
    at(t0 + 20 * MINUTE)
    await again.request("leave")

    first, second = await sessions_of(meeting, user=kim)
    # She was gone from the moment her socket dropped, not from the grace period's end.
    assert (first.joined_at, first.left_at) == (t0, t0 + 10 * MINUTE)
    assert (second.joined_at, second.left_at) == (t0 + 15 * MINUTE, t0 + 20 * MINUTE)
    report = await sync_to_async(attendance.report)(meeting, t0)
    kim_row = next(a for a in report.attendees if a.name == "Kim")
    assert (kim_row.total, kim_row.sessions) == (15 * MINUTE, 2)
    assert kim_row.last_leave == t0 + 20 * MINUTE


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "long_clocks")
async def test_a_guest_reconnecting_within_grace_keeps_one_session(at: Any) -> None:
    host = await make_user("host")
    t0 = a_minute_ago_rounded()
    meeting = await sync_to_async(make_meeting)(host, t0, access_policy=Meeting.Access.GUESTS)
    at(t0)
    await joined(meeting, await session_cookie(host), "Host")
    guest, cookie = await guest_joined(meeting, host, "Visitor", FIREFOX)
    at(t0 + 3 * MINUTE)
    await guest.drop()
    await wait_until(lambda: disconnected(meeting, guest.peer_id), what="the drop noted")
    back = await connected(meeting, cookie, FIREFOX)
    assert (await back.join(guest.peer_id, name="Visitor again"))["reconnected"] is True
    at(t0 + 8 * MINUTE)
    await back.request("leave")

    (session,) = await sessions_of(meeting, is_guest=True)
    assert (session.joined_at, session.left_at) == (t0, t0 + 8 * MINUTE)
    assert session.display_name == "Visitor again"
    assert session.role == "guest"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "long_clocks", "eager_celery")
async def test_end_for_all_closes_every_session_crashed_ones_included(at: Any) -> None:
    host, kim, lee = await make_user("host"), await make_user("kim"), await make_user("lee")
    t0 = a_minute_ago_rounded()
    meeting = await sync_to_async(make_meeting)(host, t0, title="Retro")
    at(t0)
    hosting = await joined(meeting, await session_cookie(host), "Host")
    kim_tab = await joined(meeting, await session_cookie(kim), "Kim")
    lee_tab = await joined(meeting, await session_cookie(lee), "Lee")
    await crash(lee_tab)  # his web process died: nothing will ever leave for him
    at(t0 + 30 * MINUTE)
    await hosting.request("endMeeting")
    assert await kim_tab.wait_closed() == protocol.CLOSE_ENDED

    rows = await sessions_of(meeting)
    assert [(row.display_name, row.left_at) for row in rows] == [
        ("Host", t0 + 30 * MINUTE),
        ("Kim", t0 + 30 * MINUTE),
        ("Lee", t0 + 30 * MINUTE),
    ]
    # Lee's presence row is still there for the sweep (his SFU peer, peerClosed)...
    assert await Participant.objects.filter(
        meeting=meeting, peer_id=lee_tab.peer_id, left_at__isnull=True
    ).aexists()
    # ...and the report went to the host once, Kim's and the host's departures after the end
    # notwithstanding.
    await wait_until(lambda: _left(meeting, kim_tab.peer_id), what="Kim's departure")
    await wait_until(lambda: _left(meeting, hosting.peer_id), what="the host's departure")
    (message,) = attendance_mails()
    assert message.to == [host.email]
    assert message.subject.startswith("Attendance report: Retro")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "eager_celery")
async def test_the_sweep_closes_a_crashed_processs_session_at_its_last_heartbeat(
    settings: Any,
) -> None:
    settings.PRESENCE_HEARTBEAT_SECONDS = 0.5
    settings.SIGNALING_RECONNECT_GRACE_SECONDS = 20.0
    host, kim = await make_user("host"), await make_user("kim")
    meeting = await sync_to_async(make_meeting)(host, a_minute_ago_rounded(hours_back=0))
    staying = await joined(meeting, await session_cookie(host), "Host")
    crashed = await joined(meeting, await session_cookie(kim), "Kim", FIREFOX)
    await wait_until(lambda: staying.notified("newPeer", peerId=crashed.peer_id), what="newPeer")
    await crash(crashed)
    kim_row = await Participant.objects.aget(meeting=meeting, peer_id=crashed.peer_id)
    (open_session,) = await sessions_of(meeting, user=kim)
    assert open_session.left_at is None

    later = timezone.now() + SILENCE
    with time_machine.travel(later, tick=True):
        await wait_until(
            lambda: heartbeat_since(meeting, staying.peer_id, later), what="a live heartbeat"
        )
        assert (
            await sync_to_async(tasks.sweep_abandoned_participants, thread_sensitive=False)() == 1
        )

    await kim_row.arefresh_from_db()
    (closed,) = await sessions_of(meeting, user=kim)
    assert kim_row.left_at is not None
    # Her stay ends where her connection went silent, not when the sweep came by.
    assert closed.left_at == kim_row.last_seen_at
    assert closed.left_at < kim_row.left_at
    (host_session,) = await sessions_of(meeting, user=host)
    assert host_session.left_at is None
    assert attendance_mails() == []  # the call goes on
    await staying.request("leave")
    (message,) = attendance_mails()
    assert message.to == [host.email]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sfu_node", "long_clocks", "eager_celery")
async def test_a_recurring_meetings_occurrences_are_kept_apart(at: Any) -> None:
    host, kim = await make_user("host"), await make_user("kim")
    first_start = a_minute_ago_rounded(hours_back=20)
    meeting = await sync_to_async(make_meeting)(
        host, first_start, title="Daily", recurrence="FREQ=DAILY"
    )
    second_start = first_start + dt.timedelta(days=1)
    host_cookie, kim_cookie = await session_cookie(host), await session_cookie(kim)

    # The first occurrence: Kim comes a little early.
    at(first_start - 4 * MINUTE)
    kim_early = await joined(meeting, kim_cookie, "Kim")
    at(first_start + 1 * MINUTE)
    hosting = await joined(meeting, host_cookie, "Host")
    at(first_start + 20 * MINUTE)
    await kim_early.request("leave")
    await hosting.request("leave")

    # The next day's: the host a little early; Kim joins after the occurrence's hour is over,
    # while its call is still on: the call's occurrence, not the next one.
    at(second_start - 3 * MINUTE)
    hosting = await joined(meeting, host_cookie, "Host")
    at(second_start + 70 * MINUTE)
    kim_late = await joined(meeting, kim_cookie, "Kim")
    at(second_start + 80 * MINUTE)
    await kim_late.request("leave")
    await hosting.request("leave")

    assert await sync_to_async(attendance.occurrences)(meeting) == [second_start, first_start]
    first = await sync_to_async(attendance.report)(meeting, first_start)
    second = await sync_to_async(attendance.report)(meeting, second_start)
    assert [(a.name, a.total) for a in first.attendees] == [
        ("Kim", 24 * MINUTE),
        ("Host", 19 * MINUTE),
    ]
    assert [(a.name, a.total) for a in second.attendees] == [
        ("Host", 83 * MINUTE),
        ("Kim", 10 * MINUTE),
    ]
    # One report per occurrence.
    mails = attendance_mails()
    assert len(mails) == 2
    names = sorted(m.attachments[0][0] for m in mails)
    assert names == sorted(
        f"attendance-{meeting.code}-{start:%Y-%m-%d-%H%M}.csv"
        for start in (first_start, second_start)
    )


# --- the page and the CSV: who sees them ---------------------------------------------------


@pytest.fixture
def attended_meeting(db: Any, django_user_model: Any) -> dict[str, Any]:
    """A meeting whose call had the host and a guest, through presence (the domain)."""
    from rooms.tests.meetings_support import make_user as make_account

    host = make_account("host@example.org", first_name="Hana")
    cohost = make_account("cohost@example.org")
    invitee = make_account("invitee@example.org")
    other = make_account("other@example.org")
    staff = make_account("staff@example.org", is_staff=True)
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    meeting = make_meeting(host, start, title="Board", access_policy=Meeting.Access.GUESTS)
    meeting.co_hosts.add(cohost)
    Invitation.objects.create(meeting=meeting, email=invitee.email)
    with time_machine.travel(start, tick=False):
        presence.enter(
            meeting,
            peer_id="p-host",
            user=host,
            guest_key="",
            display_name="Hana",
            role="host",
            channel_name="c1",
            user_agent=CHROME,
        )
        presence.enter(
            meeting,
            peer_id="p-guest",
            user=None,
            guest_key="g" * 32,
            display_name="@SUM(A1)",
            role="guest",
            channel_name="c2",
            user_agent=FIREFOX,
        )
    with time_machine.travel(start + 30 * MINUTE, tick=False):
        presence.leave(meeting, "p-guest")
        presence.leave(meeting, "p-host")
    return {
        "meeting": meeting,
        "start": start,
        "host": host,
        "cohost": cohost,
        "invitee": invitee,
        "other": other,
        "staff": staff,
    }


def _client_for(user: Any | None, guest: bool = False) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    elif guest:
        session = client.session
        session["guest"] = True
        session.save()
    return client


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("host", 200),
        ("cohost", 200),
        ("invitee", 403),
        ("staff", 403),  # staff read attendance in the admin
        ("other", 404),
        ("guest", 302),
        ("anonymous", 302),
    ],
)
def test_only_the_host_and_cohosts_download_the_csv(
    attended_meeting: dict[str, Any], who: str, status: int
) -> None:
    meeting = attended_meeting["meeting"]
    client = _client_for(attended_meeting.get(who), guest=who == "guest")
    url = reverse("rooms:attendance_csv", args=[meeting.code])
    response = client.get(url)
    assert response.status_code == status
    if status == 302:
        assert "/accounts/login/" in response["Location"] or "login" in response["Location"]
    if status != 200:
        assert b"Hana" not in response.content
        return
    assert response["Content-Type"].startswith("text/csv")
    start = attended_meeting["start"]
    assert f"attendance-{meeting.code}-{start:%Y-%m-%d-%H%M}.csv" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == list(attendance.CSV_HEADER)
    rows = {row[0]: row for row in table[1:]}
    assert rows["Hana"][2:4] == ["Invited, came", "Host"]
    assert rows["Hana"][9] == "30"
    assert rows["'@SUM(A1)"][2:7] == ["Came, not invited", "Guest", "yes", "", "Firefox"]
    absent = [row for row in table[1:] if row[2] == "Invited, did not come"]
    assert sorted(row[1] for row in absent) == ["cohost@example.org", "invitee@example.org"]


def test_the_csv_of_an_occurrence_nobody_attended_is_404(attended_meeting: dict[str, Any]) -> None:
    meeting = attended_meeting["meeting"]
    client = _client_for(attended_meeting["host"])
    url = reverse("rooms:attendance_csv", args=[meeting.code])
    other_time = (attended_meeting["start"] + dt.timedelta(days=1)).isoformat()
    assert client.get(url, {"occurrence": other_time}).status_code == 404
    assert client.get(url, {"occurrence": "not a time"}).status_code == 404
    chosen = client.get(url, {"occurrence": attended_meeting["start"].isoformat()})
    assert chosen.status_code == 200


@pytest.mark.parametrize(
    ("who", "shown"), [("host", True), ("cohost", True), ("invitee", False), ("staff", False)]
)
def test_the_meeting_page_shows_attendance_to_the_host_and_cohosts_only(
    attended_meeting: dict[str, Any], who: str, shown: bool
) -> None:
    meeting = attended_meeting["meeting"]
    response = _client_for(attended_meeting[who]).get(meeting.get_absolute_url())
    assert response.status_code == 200
    page = response.content.decode()
    assert ('id="attendance-title"' in page) is shown
    assert ("@SUM(A1)" in page) is shown
    if shown:
        assert "30 min" in page
        assert reverse("rooms:attendance_csv", args=[meeting.code]) in page
        assert "Invited, did not come" in page


def test_a_meeting_nobody_joined_has_no_attendance_section(db: Any) -> None:
    from rooms.tests.meetings_support import make_user as make_account

    host = make_account("lonely@example.org")
    meeting = make_meeting(host, timezone.now() + dt.timedelta(days=1))
    page = _client_for(host).get(meeting.get_absolute_url()).content.decode()
    assert 'id="attendance-title"' not in page
    url = reverse("rooms:attendance_csv", args=[meeting.code])
    assert _client_for(host).get(url).status_code == 404


def test_the_page_picks_an_occurrence_of_a_recurring_meeting(db: Any) -> None:
    from rooms.tests.meetings_support import make_user as make_account

    host = make_account("rec-host@example.org", first_name="Rae")
    first = timezone.now().replace(microsecond=0, second=0) - dt.timedelta(days=3)
    meeting = make_meeting(host, first, title="Weekly-ish", recurrence="FREQ=DAILY")
    for day, minutes in ((0, 10), (1, 25)):
        start = first + dt.timedelta(days=day)
        with time_machine.travel(start, tick=False):
            presence.enter(
                meeting,
                peer_id=f"p{day}",
                user=host,
                guest_key="",
                display_name="Rae",
                role="host",
                channel_name=f"c{day}",
            )
        with time_machine.travel(start + minutes * MINUTE, tick=False):
            presence.leave(meeting, f"p{day}")
    client = _client_for(host)
    latest = client.get(meeting.get_absolute_url()).content.decode()
    assert 'name="occurrence"' in latest
    assert "25 min" in latest
    older = client.get(meeting.get_absolute_url(), {"occurrence": first.isoformat()})
    assert "10 min" in older.content.decode()
    assert "25 min" not in older.content.decode()


def test_the_admin_lists_attendance_read_only(attended_meeting: dict[str, Any]) -> None:
    from rooms.tests.meetings_support import make_user as make_account

    admin_user = make_account("root@example.org", is_staff=True, is_superuser=True)
    client = _client_for(admin_user)
    listing = client.get(
        reverse("admin:rooms_attendancesession_changelist"), {"browser": "firefox"}
    )
    assert listing.status_code == 200
    assert "@SUM(A1)" in listing.content.decode()
    session = AttendanceSession.objects.get(display_name="Hana")
    page = client.get(reverse("admin:rooms_attendancesession_change", args=[session.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get(reverse("admin:rooms_attendancesession_add")).status_code == 403
    delete_url = reverse("admin:rooms_attendancesession_delete", args=[session.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert AttendanceSession.objects.filter(pk=session.pk).exists()


def _enter(meeting: Meeting, user: Any, peer_id: str, channel: str = "c") -> presence.Entry:
    return presence.enter(
        meeting,
        peer_id=peer_id,
        user=user,
        guest_key="",
        display_name=user.display_name or "Someone",
        role="host" if user.pk == meeting.host_id else "participant",
        channel_name=channel,
        user_agent=SAFARI,
    )


def test_a_tab_still_present_after_end_for_all_starts_a_new_session_when_it_resumes(
    db: Any,
) -> None:
    from rooms.tests.meetings_support import make_user as make_account

    host = make_account("ender@example.org")
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=3)
    meeting = make_meeting(host, start, recurrence="FREQ=DAILY")
    with time_machine.travel(start, tick=False):
        _enter(meeting, host, "tab")
    with time_machine.travel(start + 10 * MINUTE, tick=False):
        moderation.end_meeting(host, meeting)
    (ended,) = AttendanceSession.objects.filter(meeting=meeting)
    assert ended.left_at == start + 10 * MINUTE
    # The tab's presence row is still there (its consumer had not left yet): it resumes.
    with time_machine.travel(start + 12 * MINUTE, tick=False):
        assert _enter(meeting, host, "tab", channel="c2").resumed
    first, second = AttendanceSession.objects.filter(meeting=meeting).order_by("pk")
    assert first.left_at == start + 10 * MINUTE
    assert (second.joined_at, second.left_at) == (start + 12 * MINUTE, None)
    assert second.occurrence_start == first.occurrence_start == start


def test_the_report_waits_while_its_call_is_on_again(db: Any, mailoutbox: list[Any]) -> None:
    from rooms.tests.meetings_support import make_user as make_account

    host = make_account("waiter@example.org")
    start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=30)
    meeting = make_meeting(host, start)
    with time_machine.travel(start, tick=False):
        _enter(meeting, host, "one")
    with time_machine.travel(start + 5 * MINUTE, tick=False):
        presence.leave(meeting, "one")
        _enter(meeting, host, "two")  # back before the report's delay ran out
    assert tasks.send_attendance_report(meeting.pk, start.isoformat()) == 0
    assert mailoutbox == []
    assert not AttendanceReportDelivery.objects.exists()
    with time_machine.travel(start + 20 * MINUTE, tick=False):
        presence.leave(meeting, "two")
    assert tasks.send_attendance_report(meeting.pk, start.isoformat()) == 1
    (message,) = mailoutbox
    assert "20 min" in message.body
    assert message.alternatives[0][1] == "text/html"
    assert tasks.send_attendance_report(meeting.pk, start.isoformat()) == 0
