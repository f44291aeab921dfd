"""Breakout rooms over the signaling socket (rooms.breakouts through
rooms.signaling.breakout_requests), with several peers: the host opens rooms and assigns people,
each is sent to their room and may join it while nobody else may; participants cannot run
breakouts; broadcasts reach every room; closing counts down and sends everyone back; removal,
the lock, guests, reconnects and late joins; bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from rooms import moderation
from rooms.models import BreakoutAssignment, LobbyRequest, Meeting
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sfu_node")]


class Person:
    """One browser: its session cookie (kept, as a browser keeps it, across its sockets) and
    its tab's peer id (kept, as call/main.js keeps it, across rooms)."""

    def __init__(self, user: User | None, name: str, cookie: bytes) -> None:
        self.user = user
        self.name = name
        self.cookie = cookie
        self.peer_id = uuid.uuid4().hex
        self.client: SignalingClient | None = None

    @property
    def socket(self) -> SignalingClient:
        assert self.client is not None
        return self.client

    async def enter(self, code: str) -> dict[str, Any]:
        """Open a socket to the room with this code and join it; the join's response."""
        client = SignalingClient(code, self.cookie)
        ok, close_code = await client.connect()
        assert ok, close_code
        self.client = client
        return await client.join(self.peer_id, name=self.name)

    async def refused_from(self, code: str) -> str:
        """Try to enter; the close code or errorCode it was refused with."""
        client = SignalingClient(code, self.cookie)
        ok, close_code = await client.connect()
        if not ok:
            return f"closed {close_code}"
        try:
            frame = await client.request_frame("join", {"peerId": self.peer_id, "displayName": "X"})
        except ConnectionError:
            # Refused at connect: the server accepts, then closes with the code that says why.
            return f"closed {await client.wait_closed()}"
        assert not frame["ok"], "let in"
        await client.drop()
        return str(frame["errorCode"])

    async def move(self, code: str) -> dict[str, Any]:
        """What the browser does on moveTo: leave this room's call, join the other's."""
        await self.socket.request("leave")
        await self.socket.drop()
        return await self.enter(code)


async def person(name: str, user: User | None = None) -> Person:
    return Person(user, name, await session_cookie(user))


async def call_of(count: int, **meeting_fields: Any) -> tuple[Meeting, Person, list[Person]]:
    """A meeting with its host and `count` signed-in participants in the call."""
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(
        host=host_user, title="Team", **meeting_fields
    )
    host = await person("Host", host_user)
    await host.enter(meeting.code)
    people = []
    for index in range(count):
        name = f"P{index}"
        someone = await person(name, await make_user(name))
        await someone.enter(meeting.code)
        people.append(someone)
    return meeting, host, people


async def moved_to(someone: Person, method: str = "moveTo") -> dict[str, Any]:
    await wait_until(lambda: someone.socket.notified(method), what=f"{someone.name}: {method}")
    return someone.socket.notified(method)[-1]


async def open_two(host: Person, first: Person, second: Person, **extra: Any) -> dict[str, Any]:
    return await host.socket.request(
        "openBreakouts",
        {
            "rooms": ["Red", "Blue"],
            "assignments": {first.peer_id: 0, second.peer_id: 1},
            **extra,
        },
    )


async def test_each_assigned_person_is_sent_to_their_room_and_only_they_get_in() -> None:
    meeting, host, (pat, sam, una) = await call_of(3)
    opened = await open_two(host, pat, sam)
    rooms = opened["breakouts"]["rooms"]
    assert [room["name"] for room in rooms] == ["Red", "Blue"]
    assert [room["assigned"] for room in rooms] == [["P0"], ["P1"]]
    red, blue = rooms[0]["code"], rooms[1]["code"]
    assert red != blue != meeting.code

    assert await moved_to(pat) == {"code": red, "name": "Red"}
    assert await moved_to(sam) == {"code": blue, "name": "Blue"}
    for client in (host, pat, sam, una):
        await wait_until(lambda c=client: c.socket.notified("breakoutsOpened"), what="opened")
    assert not una.socket.notified("moveTo")  # unassigned: stays in the main room

    joined_red = await pat.move(red)
    assert joined_red["breakouts"]["current"] == {"code": red, "name": "Red"}
    assert joined_red["breakouts"]["main"] == {"code": meeting.code, "name": "Team"}
    await sam.move(blue)
    # Its own room: Pat sees nobody from the main room or from Blue.
    assert joined_red["peers"] == []

    # Nobody else gets in: not the unassigned, not someone assigned elsewhere.
    assert await una.refused_from(red) == "closed 4404"
    assert await Person(sam.user, "P1", sam.cookie).refused_from(red) == "closed 4404"

    # The host visits Red: Pat hears of them there.
    visitor = Person(host.user, "Host", host.cookie)
    visit = await visitor.enter(red)
    assert [peer["peerId"] for peer in visit["peers"]] == [pat.peer_id]
    await wait_until(lambda: pat.socket.notified("newPeer", peerId=visitor.peer_id), what="host")


async def test_participants_cannot_run_breakout_rooms() -> None:
    _, host, (pat, sam) = await call_of(2)
    refused = await pat.socket.request_frame(
        "openBreakouts", {"rooms": ["A"], "assignments": {sam.peer_id: 0}}
    )
    assert refused["errorCode"] == "not_moderator"
    await open_two(host, pat, sam)
    red = (await moved_to(pat))["code"]
    for method, data in [
        ("assignBreakout", {"peerId": sam.peer_id, "code": red}),
        ("broadcastToBreakouts", {"text": "hi"}),
        ("closeBreakouts", {"seconds": 0}),
    ]:
        assert (await sam.socket.request_frame(method, data))["errorCode"] == "not_moderator"
    # Not even from inside their room.
    await pat.move(red)
    frame = await pat.socket.request_frame("closeBreakouts", {"seconds": 0})
    assert frame["errorCode"] == "not_moderator"


async def test_a_co_host_runs_them_and_a_broadcast_reaches_every_room() -> None:
    meeting, host, (pat, sam, una) = await call_of(3)
    cora_user = await make_user("cora")
    await sync_to_async(meeting.co_hosts.add)(cora_user)
    cora = await person("Cora", cora_user)
    await cora.enter(meeting.code)

    await open_two(cora, pat, sam)
    await pat.move((await moved_to(pat))["code"])
    await sam.move((await moved_to(sam))["code"])
    sent = await host.socket.request("broadcastToBreakouts", {"text": "  Five minutes left  "})
    assert sent == {"text": "Five minutes left", "from": "Host"}
    for someone in (host, cora, pat, sam, una):
        await wait_until(
            lambda s=someone: s.socket.notified("breakoutBroadcast", text="Five minutes left"),
            what=f"{someone.name} hears the broadcast",
        )


async def test_closing_counts_down_then_sends_everyone_back() -> None:
    meeting, host, (pat, sam) = await call_of(2)
    await open_two(host, pat, sam)
    red = (await moved_to(pat))["code"]
    await pat.move(red)
    assert await host.socket.request("closeBreakouts", {"seconds": 1}) == {"seconds": 1}
    await wait_until(lambda: pat.socket.notified("moveTo"), what="moveTo the main room")
    methods = [n["method"] for n in pat.socket.notifications]
    assert methods.index("breakoutsClosing") < methods.index("moveTo")
    assert pat.socket.notified("breakoutsClosing")[0] == {
        "seconds": 1,
        "code": meeting.code,
        "name": "Team",
    }
    assert pat.socket.notified("moveTo")[0] == {"code": meeting.code, "name": "Team"}
    await pat.move(meeting.code)
    # Closed: nobody goes back in, and a join of the main room stays there.
    assert await Person(pat.user, "P0", pat.cookie).refused_from(red) == "closed 4404"
    assert not pat.socket.notified("moveTo")
    state = await host.socket.request("getBreakouts")
    assert state["breakouts"]["rooms"] == []
    # Closing again: there is nothing to close.
    assert (await host.socket.request_frame("closeBreakouts", {}))["errorCode"] == "no_breakouts"
    # And new rooms may be opened.
    await open_two(host, pat, sam)


async def test_a_reconnect_and_a_late_join_find_the_assignment_again() -> None:
    meeting, host, (pat, sam) = await call_of(2)
    await open_two(host, pat, sam)
    red = (await moved_to(pat))["code"]
    # Pat's socket drops before they move; the reconnect joins the main room again.
    await pat.socket.drop()
    again = await pat.enter(meeting.code)
    assert again["breakouts"]["rooms"][0]["code"] == red
    assert await moved_to(pat) == {"code": red, "name": "Red"}

    # A late joiner is put in Blue by hand, and is sent there.
    late = await person("Lee", await make_user("lee"))
    await late.enter(meeting.code)
    blue = (await host.socket.request("getBreakouts"))["breakouts"]["rooms"][1]["code"]
    state = await host.socket.request("assignBreakout", {"peerId": late.peer_id, "code": blue})
    assert state["breakouts"]["rooms"][1]["assigned"] == ["P1", "Lee"]
    assert await moved_to(late) == {"code": blue, "name": "Blue"}
    await late.move(blue)
    # Moved from Blue to Red while in Blue: told there, and Blue no longer lets them in.
    await host.socket.request("assignBreakout", {"peerId": late.peer_id, "code": red})
    await wait_until(lambda: late.socket.notified("moveTo", code=red), what="moveTo Red")
    await late.move(red)
    assert await Person(late.user, "Lee", late.cookie).refused_from(blue) == "closed 4404"


async def test_random_assignment_and_ask_mode() -> None:
    _, host, people = await call_of(4)
    opened = await host.socket.request(
        "openBreakouts", {"rooms": ["A", "B"], "assignments": "random", "mode": "ask"}
    )
    rooms = opened["breakouts"]["rooms"]
    assert sorted(len(room["assigned"]) for room in rooms) == [2, 2]
    assert "Host" not in rooms[0]["assigned"] + rooms[1]["assigned"]
    codes = {room["code"] for room in rooms}
    for someone in people:
        invite = await moved_to(someone, "breakoutInvite")
        assert invite["code"] in codes
        assert not someone.socket.notified("moveTo")


async def test_removal_and_the_lock_apply_in_breakout_rooms() -> None:
    meeting, host, (pat, sam) = await call_of(2)
    await open_two(host, pat, sam)
    red = (await moved_to(pat))["code"]
    blue = (await moved_to(sam))["code"]
    await sam.move(blue)
    # Removed from the meeting while in the main room: Red refuses them.
    await sync_to_async(moderation.remove_participant)(host.user, meeting, user=pat.user)
    assert await pat.socket.wait_closed() == 4403
    assert await Person(pat.user, "P0", pat.cookie).refused_from(red) == "removed"
    # Removed while in Blue, by the host visiting Blue: out of Blue, and of the main room.
    visitor = Person(host.user, "Host", host.cookie)
    await visitor.enter(blue)
    await visitor.socket.request("removeParticipant", {"peerId": sam.peer_id})
    assert await sam.socket.wait_closed() == 4403
    assert await Person(sam.user, "P1", sam.cookie).refused_from(meeting.code) == "removed"

    # The meeting's lock: those assigned were let in already and still get in.
    lee = await person("Lee", await make_user("lee"))
    await lee.enter(meeting.code)
    await host.socket.request("assignBreakout", {"peerId": lee.peer_id, "code": red})
    await sync_to_async(moderation.set_locked)(host.user, meeting, True)
    await lee.move(red)


async def test_a_guest_follows_the_same_rules() -> None:
    meeting, host, (pat,) = await call_of(1, access_policy=Meeting.Access.GUESTS)
    guest = await person("Gwen")
    client = SignalingClient(meeting.code, guest.cookie)
    assert (await client.connect())[0]
    knock = await client.request_frame("join", {"peerId": guest.peer_id, "displayName": "Gwen"})
    assert knock["errorCode"] == "lobby"
    request = await LobbyRequest.objects.aget(meeting=meeting, peer_id=guest.peer_id)
    await sync_to_async(moderation.admit)(meeting.host, request)
    await wait_until(lambda: client.notified("lobbyAdmitted"), what="lobbyAdmitted")
    await client.join(guest.peer_id, name="Gwen")
    guest.client = client

    await open_two(host, guest, pat)
    red = (await moved_to(guest))["code"]
    blue = (await moved_to(pat))["code"]
    assignment = await BreakoutAssignment.objects.aget(breakout__code=red)
    assert assignment.user_id is None
    assert assignment.guest_key
    joined = await guest.move(red)
    assert joined["isGuest"] is True
    # Another guest (another browser) is not let in, nor this one into Blue.
    assert await (await person("Otto")).refused_from(red) == "closed 4401"
    assert await Person(None, "Gwen", guest.cookie).refused_from(blue) == "closed 4401"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"rooms": []}, "invalid_data"),
        ({"rooms": [f"Room {n}" for n in range(51)]}, "invalid_data"),
        ({"rooms": ["x" * 61]}, "invalid_data"),
        ({"rooms": ["  "]}, "invalid_data"),
        ({"rooms": ["Same", "same"]}, "invalid_data"),
        ({"rooms": "Red"}, "invalid_data"),
        ({"rooms": [1, 2]}, "invalid_data"),
        ({}, "invalid_data"),
        ({"rooms": ["A"], "assignments": ["x"]}, "invalid_data"),
        ({"rooms": ["A"], "assignments": "everyone"}, "invalid_data"),
        ({"rooms": ["A"], "assignments": {"no such peer": 0}}, "invalid_data"),
        ({"rooms": ["A"], "assignments": {"nosuchpeer": 0}}, "unknown_peer"),
        ({"rooms": ["A"], "assignments": {"PAT": True}}, "invalid_data"),
        ({"rooms": ["A"], "assignments": {"PAT": 1}}, "unknown_room"),
        ({"rooms": ["A"], "timerSeconds": "60"}, "invalid_data"),
        ({"rooms": ["A"], "timerSeconds": -1}, "invalid_data"),
        ({"rooms": ["A"], "mode": "teleport"}, "invalid_data"),
        ({"rooms": ["A"], "mode": 3}, "invalid_data"),
    ],
)
async def test_bad_input_is_refused(data: dict[str, Any], code: str) -> None:
    meeting, host, (pat,) = await call_of(1)
    if isinstance(data.get("assignments"), dict):
        data = {
            **data,
            "assignments": {
                (pat.peer_id if key == "PAT" else key): value
                for key, value in data["assignments"].items()
            },
        }
    frame = await host.socket.request_frame("openBreakouts", data)
    assert frame["errorCode"] == code, frame
    assert not await Meeting.objects.filter(parent=meeting).aexists()
    for method, bad in [
        ("broadcastToBreakouts", {"text": 5}),
        ("closeBreakouts", {"seconds": "soon"}),
        ("assignBreakout", {"peerId": pat.peer_id, "code": 7}),
    ]:
        assert (await host.socket.request_frame(method, bad))["errorCode"] == "invalid_data"


async def test_the_call_goes_on_in_the_rooms_while_the_main_room_is_empty() -> None:
    # A one-off scheduled meeting: once its call ends only moderators may start it again.
    meeting, host, (pat,) = await call_of(1)
    opened = await host.socket.request(
        "openBreakouts", {"rooms": ["Red"], "assignments": {pat.peer_id: 0}}
    )
    red = opened["breakouts"]["rooms"][0]["code"]
    await pat.move((await moved_to(pat))["code"])
    await host.move(red)  # the host visits: nobody is left in the main room
    await meeting.arefresh_from_db()
    assert meeting.status == Meeting.Status.LIVE
    await host.socket.request("closeBreakouts", {"seconds": 0})
    for someone in (host, pat):
        await wait_until(lambda s=someone: s.socket.notified("moveTo"), what="moveTo main")
        await someone.move(meeting.code)  # back in, not refused as "meeting_ended"

    # Everyone leaves from a room: the meeting's call is over too.
    await host.socket.request("openBreakouts", {"rooms": ["Blue"], "assignments": {pat.peer_id: 0}})
    blue = (await moved_to(pat, "moveTo"))["code"]
    await pat.move(blue)
    await host.socket.request("leave")
    await meeting.arefresh_from_db()
    assert meeting.status == Meeting.Status.LIVE
    await pat.socket.request("leave")
    await meeting.arefresh_from_db()
    assert meeting.status == Meeting.Status.ENDED


async def test_ending_the_meeting_for_all_ends_its_rooms() -> None:
    meeting, host, (pat, sam) = await call_of(2)
    await open_two(host, pat, sam)
    red = (await moved_to(pat))["code"]
    await pat.move(red)
    await host.socket.request("endMeeting")
    assert await pat.socket.wait_closed() == 4410
    assert pat.socket.notified("meetingEnded")
    assert await Person(pat.user, "P0", pat.cookie).refused_from(red) == "closed 4404"
    await meeting.arefresh_from_db()
    assert meeting.status == Meeting.Status.ENDED
