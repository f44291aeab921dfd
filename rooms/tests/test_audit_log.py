"""The audit log (issue 15): every moderation and administration action, done through its real
path (the call's signaling requests, the admin, the meeting's edit page), leaves one entry with
the right actor, target and origin; a refused action leaves none; nothing changes or deletes
an entry (the ORM, the admin, superusers included); the host and co-hosts read the log on the
meeting's page, nobody else does."""

from __future__ import annotations

import uuid
import zoneinfo
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.urls import reverse

from accounts.models import User
from chat import services as chat
from chat.tests.support import client_id, invite, make_meeting, present
from chat.tests.support import make_user as make_sync_user
from rooms import audit, moderation
from rooms.models import AuditEntry, AuditLogIsAppendOnly, LobbyRequest, Meeting, Removal
from rooms.signaling import protocol
from rooms.tests.signaling_support import (
    SignalingClient,
    make_user,
    session_cookie,
    sfu_node,  # noqa: F401  (fixture)
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)
Action = AuditEntry.Action


def entries(meeting: Meeting | None = None) -> list[AuditEntry]:
    """Oldest first, which is how a test reads what it did."""
    rows = AuditEntry.objects.order_by("created_at", "pk").select_related("actor")
    return list(rows.filter(meeting=meeting) if meeting is not None else rows)


def summary(meeting: Meeting) -> list[tuple[str, int | None, str]]:
    return [(e.action, e.actor_id, e.origin) for e in entries(meeting)]


# --- in the call (signaling requests) ------------------------------------------------------


async def joined(meeting: Meeting, user: User | None, name: str) -> SignalingClient:
    client = SignalingClient(meeting.code, await session_cookie(user))
    ok, code = await client.connect()
    assert ok, code
    await client.join(name=name)
    return client


async def knocking(meeting: Meeting, name: str) -> SignalingClient:
    guest = SignalingClient(meeting.code, await session_cookie(None))
    assert (await guest.connect())[0]
    guest.peer_id = uuid.uuid4().hex
    answer = await guest.request_frame("join", {"peerId": guest.peer_id, "displayName": name})
    assert answer["errorCode"] == "lobby", answer
    return guest


@pytest.mark.usefixtures("sfu_node")
async def test_call_actions_are_recorded_with_actor_target_and_origin() -> None:
    host_user, pat_user = await make_user("host"), await make_user("pat")
    meeting = await sync_to_async(Meeting.objects.create)(host=host_user, title="Audited")
    host = await joined(meeting, host_user, "Host")
    pat = await joined(meeting, pat_user, "Pat")
    message = (await pat.request("chatMessage", {"clientId": client_id(), "text": "oops"}))[
        "message"
    ]

    assert await host.request("muteParticipant", {"peerId": pat.peer_id}) == {}
    assert await host.request("lockMeeting", {"locked": True}) == {"locked": True}
    assert await host.request("lockMeeting", {"locked": True}) == {"locked": True}  # no change
    assert await host.request("lockMeeting", {"locked": False}) == {"locked": False}
    assert await host.request("deleteChatMessage", {"messageId": message["id"]}) == {}
    assert await host.request("deleteChatMessage", {"messageId": message["id"]}) == {}  # again
    assert await host.request("removeParticipant", {"peerId": pat.peer_id}) == {}
    assert await pat.wait_closed() == protocol.CLOSE_REMOVED
    await host.send_text('{"request":true,"id":"end","method":"endMeeting","data":{}}')
    assert await host.wait_closed() == protocol.CLOSE_ENDED

    rows = await sync_to_async(entries)(meeting)
    assert [(e.action, e.actor_id, e.origin) for e in rows] == [
        (Action.MUTE, host_user.pk, "call"),
        (Action.LOCK, host_user.pk, "call"),
        (Action.UNLOCK, host_user.pk, "call"),
        (Action.CHAT_DELETE, host_user.pk, "call"),
        (Action.REMOVE, host_user.pk, "call"),
        (Action.END_FOR_ALL, host_user.pk, "call"),
    ]
    mute, lock, _unlock, deletion, removal, end = rows
    assert f"(user {pat_user.pk})" in mute.target
    assert pat_user.email in mute.target
    assert mute.details == {"peer_id": pat.peer_id}
    assert host_user.email in mute.actor_name
    assert lock.target == ""
    assert lock.meeting_code == meeting.code
    assert deletion.target == f"message {message['id']} by Pat (user {pat_user.pk})"
    assert "oops" not in str(deletion.details)  # the deleted text does not live on here
    assert f"(user {pat_user.pk})" in removal.target
    assert end.details == {"waiting_denied": 0}


@pytest.mark.usefixtures("sfu_node")
async def test_lobby_decisions_and_guest_access_are_recorded() -> None:
    host_user = await make_user("host")
    meeting = await sync_to_async(Meeting.objects.create)(
        host=host_user, title="Open house", access_policy=Meeting.Access.GUESTS
    )
    host = await joined(meeting, host_user, "Host")
    gail = await knocking(meeting, "Gail")
    vic = await knocking(meeting, "Vic")
    gail_request = await LobbyRequest.objects.aget(peer_id=gail.peer_id)
    vic_request = await LobbyRequest.objects.aget(peer_id=vic.peer_id)

    await host.request("admitEntry", {"requestId": gail_request.pk})
    await host.request("denyEntry", {"requestId": vic_request.pk})
    await wait_until(lambda: vic.notified("lobbyDenied"), what="lobbyDenied")
    await knocking(meeting, "Walt")  # waiting when guests are turned off
    await host.request("setGuestAccess", {"allowed": False})
    await host.request("setGuestAccess", {"allowed": True})

    rows = await sync_to_async(entries)(meeting)
    assert [(e.action, e.target, e.origin) for e in rows] == [
        (Action.LOBBY_ADMIT, "Gail (guest)", "call"),
        (Action.LOBBY_DENY, "Vic (guest)", "call"),
        (Action.GUESTS_REFUSED, "", "call"),
        (Action.GUESTS_ALLOWED, "", "call"),
    ]
    assert {e.actor_id for e in rows} == {host_user.pk}
    assert rows[0].details == {"request_id": gail_request.pk, "peer_id": gail.peer_id}
    # Turning guests off denied Walt's waiting knock as part of the same action.
    assert rows[2].details == {"waiting_guests_denied": 1}


@pytest.mark.usefixtures("sfu_node")
async def test_a_refused_action_leaves_no_entry() -> None:
    host_user, pat_user = await make_user("host"), await make_user("pat")
    meeting = await sync_to_async(Meeting.objects.create)(
        host=host_user, title="Audited", access_policy=Meeting.Access.GUESTS
    )
    host = await joined(meeting, host_user, "Host")
    pat = await joined(meeting, pat_user, "Pat")
    message = (await host.request("chatMessage", {"clientId": client_id(), "text": "hi"}))[
        "message"
    ]
    guest = await knocking(meeting, "Gail")
    request = await LobbyRequest.objects.aget(peer_id=guest.peer_id)

    for method, data in [
        ("muteParticipant", {"peerId": host.peer_id}),
        ("removeParticipant", {"peerId": host.peer_id}),
        ("lockMeeting", {"locked": True}),
        ("setGuestAccess", {"allowed": False}),
        ("admitEntry", {"requestId": request.pk}),
        ("denyEntry", {"requestId": request.pk}),
        ("deleteChatMessage", {"messageId": message["id"]}),
        ("endMeeting", {}),
    ]:
        response = await pat.request_frame(method, data)
        assert response["errorCode"] == "not_moderator", method
    # A moderator's request that fails (nobody with that peer id) records nothing either.
    assert (await host.request_frame("removeParticipant", {"peerId": "nobody"}))["errorCode"] == (
        "not_in_call"
    )

    assert await AuditEntry.objects.acount() == 0
    await guest.request("cancelKnock")


# --- in the admin --------------------------------------------------------------------------


@pytest.fixture
def staff(db):
    return make_sync_user("staff", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def run_action(client, url_name: str, action: str, pk: int):
    return client.post(reverse(url_name), {"action": action, "_selected_action": [pk]}, follow=True)


def test_admin_actions_are_recorded_with_origin_admin(admin_client, staff) -> None:
    meeting = make_meeting(make_sync_user("host"))
    pat = make_sync_user("pat")
    participant = present(meeting, pat, peer_id="pat-tab", display_name="Pat")
    message = chat.post_message(
        meeting,
        author=chat.ChatAuthor(display_name="Pat", user=pat, peer_id="pat-tab"),
        client_id=client_id(),
        text="hello",
    )
    participants_url = reverse("admin:rooms_meeting_participants", args=[meeting.pk])

    run_action(admin_client, "admin:rooms_meeting_changelist", "lock_meetings", meeting.pk)
    run_action(admin_client, "admin:rooms_meeting_changelist", "unlock_meetings", meeting.pk)
    admin_client.post(participants_url, {"action": "mute", "participant": participant.pk})
    run_action(admin_client, "admin:chat_message_changelist", "delete_for_everyone", message.pk)
    admin_client.post(participants_url, {"action": "remove", "participant": participant.pk})
    removal = Removal.objects.get(meeting=meeting, user=pat)
    admin_client.post(participants_url, {"action": "readmit", "removal": removal.pk})
    run_action(
        admin_client, "admin:rooms_meeting_changelist", "end_meetings_for_everyone", meeting.pk
    )

    assert summary(meeting) == [
        (Action.LOCK, staff.pk, "admin"),
        (Action.UNLOCK, staff.pk, "admin"),
        (Action.MUTE, staff.pk, "admin"),
        (Action.CHAT_DELETE, staff.pk, "admin"),
        (Action.REMOVE, staff.pk, "admin"),
        (Action.READMIT, staff.pk, "admin"),
        (Action.END_FOR_ALL, staff.pk, "admin"),
    ]
    readmitted = entries(meeting)[5]
    assert readmitted.target == f"Pat <{pat.email}> (user {pat.pk})"


def test_co_host_and_host_changes_in_the_admin_are_recorded(admin_client, staff) -> None:
    host, cora, new_host = make_sync_user("host"), make_sync_user("cora"), make_sync_user("nina")
    meeting = make_meeting(host, live=False)
    url = reverse("admin:rooms_meeting_change", args=[meeting.pk])
    data: dict[str, Any] = {
        "title": meeting.title,
        "description": "",
        "host": new_host.pk,
        "co_hosts": [cora.pk],
        "starts_at_0": meeting.starts_at.strftime("%Y-%m-%d"),
        "starts_at_1": meeting.starts_at.strftime("%H:%M:%S"),
        "ends_at_0": "",
        "ends_at_1": "",
        "time_zone": "UTC",
        "recurrence": "",
        "access_policy": meeting.access_policy,
        "invitations-TOTAL_FORMS": "0",
        "invitations-INITIAL_FORMS": "0",
        "reminders-TOTAL_FORMS": "0",
        "reminders-INITIAL_FORMS": "0",
    }

    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    data["co_hosts"] = []
    assert admin_client.post(url, data).status_code == 302

    assert summary(meeting) == [
        (Action.HOST_CHANGE, staff.pk, "admin"),
        (Action.COHOST_ADD, staff.pk, "admin"),
        (Action.COHOST_REMOVE, staff.pk, "admin"),
    ]
    host_change, made, unmade = entries(meeting)
    assert host_change.details == {"previous_host_id": host.pk, "host_id": new_host.pk}
    assert made.target == unmade.target == f"Cora <{cora.email}> (user {cora.pk})"


def test_co_host_changes_on_the_edit_page_are_recorded_with_origin_page(client) -> None:
    host, cora = make_sync_user("host"), make_sync_user("cora")
    meeting = make_meeting(host, live=False)
    client.force_login(host)
    edit_url = reverse("rooms:edit", args=[meeting.code])
    form = client.get(edit_url).context["form"]
    data = {name: form.initial.get(name) or "" for name in form.fields}
    data["start"] = data["start"].strftime("%Y-%m-%dT%H:%M")
    data["co_hosts"] = cora.email

    assert client.post(edit_url, data).status_code == 302
    data["co_hosts"] = cora.email
    assert client.post(edit_url, data).status_code == 302  # nothing changed: nothing recorded

    assert summary(meeting) == [(Action.COHOST_ADD, host.pk, "page")]
    assert entries(meeting)[0].target == f"Cora <{cora.email}> (user {cora.pk})"


# --- append-only ---------------------------------------------------------------------------


def an_entry() -> AuditEntry:
    meeting = make_meeting(make_sync_user("host"))
    moderation.set_locked(meeting.host, meeting, True, origin=audit.Origin.PAGE)
    return AuditEntry.objects.get()


def test_no_orm_path_changes_or_deletes_an_entry() -> None:
    entry = an_entry()

    entry.target = "someone else"
    with pytest.raises(AuditLogIsAppendOnly):
        entry.save()
    with pytest.raises(AuditLogIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(target="rewritten")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.all().delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEntry.objects.bulk_update([entry], ["target"])

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.action, stored.target, stored.origin) == (Action.LOCK, "", "page")


def test_an_entry_outlives_its_meeting_and_its_actor() -> None:
    entry = an_entry()
    code, actor_name = entry.meeting_code, entry.actor_name
    host = entry.actor
    assert host is not None

    Meeting.objects.filter(pk=entry.meeting_id).delete()
    User.objects.filter(pk=host.pk).delete()

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.meeting_id, stored.actor_id) == (None, None)
    assert (stored.meeting_code, stored.actor_name) == (code, actor_name)
    assert host.email in actor_name


def test_recording_outside_the_actions_transaction_is_refused() -> None:
    meeting = make_meeting(make_sync_user("host"))
    with pytest.raises(RuntimeError, match="inside the action's transaction"):
        audit.record(Action.LOCK, meeting=meeting, actor=meeting.host, origin="page")
    with pytest.raises(ValueError, match="elsewhere"), transaction.atomic():
        audit.record(Action.LOCK, meeting=meeting, actor=meeting.host, origin="elsewhere")
    assert AuditEntry.objects.count() == 0


def test_the_admin_shows_entries_but_changes_or_deletes_none_even_for_a_superuser(
    admin_client,
) -> None:
    entry = an_entry()
    change_url = reverse("admin:rooms_auditentry_change", args=[entry.pk])
    changelist = reverse("admin:rooms_auditentry_changelist")

    listing = admin_client.get(changelist, {"q": entry.meeting_code, "origin__exact": "page"})
    assert listing.status_code == 200
    assert entry.meeting_code in listing.content.decode()
    assert "delete_selected" not in listing.content.decode()
    assert admin_client.get(change_url).status_code == 200  # read-only view
    assert admin_client.post(change_url, {"target": "rewritten"}).status_code == 403
    delete_url = reverse("admin:rooms_auditentry_delete", args=[entry.pk])
    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:rooms_auditentry_add")).status_code == 403
    admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.target, stored.action) == ("", Action.LOCK)


# --- the meeting page ----------------------------------------------------------------------


def test_the_host_and_co_hosts_read_the_log_on_the_meeting_page(client) -> None:
    host = make_sync_user("host", time_zone="Asia/Tokyo")
    cora = make_sync_user("cora")
    meeting = make_meeting(host)
    meeting.co_hosts.add(cora)
    mallory = make_sync_user("mallory", last_name="<script>alert(1)</script>")
    present(meeting, mallory, peer_id="m-tab", display_name=mallory.display_name)
    moderation.remove_participant(host, meeting, peer_id="m-tab")
    entry = AuditEntry.objects.get()

    client.force_login(host)
    page = client.get(meeting.get_absolute_url()).content.decode()

    assert "Moderation log" in page
    assert "Removed from the meeting" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    in_tokyo = entry.created_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert in_tokyo.strftime("%H:%M:%S") in page
    client.force_login(cora)
    assert "Moderation log" in client.get(meeting.get_absolute_url()).content.decode()


def test_participants_and_other_people_do_not_see_the_log(client) -> None:
    host, pat = make_sync_user("host"), make_sync_user("pat")
    meeting = make_meeting(host)
    invite(meeting, pat)
    moderation.set_locked(host, meeting, True)

    client.force_login(pat)
    invitee_page = client.get(meeting.get_absolute_url())
    assert invitee_page.status_code == 200
    assert "Moderation log" not in invitee_page.content.decode()
    client.force_login(make_sync_user("other"))
    outsider_page = client.get(meeting.get_absolute_url())
    assert "Moderation log" not in outsider_page.content.decode()
    assert audit.page_context(make_sync_user("staffer", is_staff=True), meeting) == {
        "moderation_log": None
    }
