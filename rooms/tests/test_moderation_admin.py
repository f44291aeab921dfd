"""Moderating from the admin: lock, unlock, end for everyone, and mute / remove / re-admit on a
live meeting's participants page. Each takes effect, tells the room, and lands in the admin log."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from chat.tests.support import SyncRoomListener, make_meeting, make_user, present
from rooms import moderation
from rooms.models import Meeting

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(db):
    return make_user("staff", is_staff=True, is_superuser=True)


@pytest.fixture
def meeting(db):
    return make_meeting(make_user("host"))


@pytest.fixture
def listener(meeting):
    listener = SyncRoomListener(meeting.code)
    yield listener
    listener.close()


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def run_action(client, action: str, meeting: Meeting):
    return client.post(
        reverse("admin:rooms_meeting_changelist"),
        {"action": action, "_selected_action": [meeting.pk]},
        follow=True,
    )


def log_messages(meeting: Meeting) -> list[str]:
    entries = LogEntry.objects.filter(object_id=str(meeting.pk)).order_by("pk")
    return [entry.get_change_message() for entry in entries]


def test_lock_and_unlock_actions(admin_client, staff, meeting, listener) -> None:
    assert run_action(admin_client, "lock_meetings", meeting).status_code == 200
    assert Meeting.objects.get(pk=meeting.pk).locked is True
    assert listener.receive_event("meetingLocked")["data"] == {"locked": True}

    run_action(admin_client, "unlock_meetings", meeting)
    assert Meeting.objects.get(pk=meeting.pk).locked is False
    assert listener.receive_event("meetingLocked")["data"] == {"locked": False}

    assert log_messages(meeting) == ["Locked", "Unlocked"]
    assert set(LogEntry.objects.values_list("user", flat=True)) == {staff.pk}


def test_end_for_everyone_action(admin_client, meeting, listener) -> None:
    run_action(admin_client, "end_meetings_for_everyone", meeting)

    assert Meeting.objects.get(pk=meeting.pk).is_ended
    listener.receive_event("meetingEnded")
    assert log_messages(meeting) == ["Ended for everyone"]


def test_participants_page_lists_who_is_in_the_call(admin_client, meeting) -> None:
    pat = make_user("pat")
    present(meeting, pat, peer_id="pat-tab", display_name="Pat <the tester>")

    page = admin_client.get(reverse("admin:rooms_meeting_participants", args=[meeting.pk]))
    change = admin_client.get(reverse("admin:rooms_meeting_change", args=[meeting.pk]))

    assert page.status_code == 200
    assert "Pat &lt;the tester&gt;" in page.content.decode()
    assert reverse("admin:rooms_meeting_participants", args=[meeting.pk]) in change.content.decode()


def test_mute_from_the_participants_page(admin_client, meeting, listener) -> None:
    participant = present(meeting, make_user("pat"), peer_id="pat-tab", display_name="Pat")
    url = reverse("admin:rooms_meeting_participants", args=[meeting.pk])

    response = admin_client.post(url, {"action": "mute", "participant": participant.pk})

    assert response.status_code == 302
    assert listener.receive_event("muteRequested")["target_peer_id"] == "pat-tab"
    assert log_messages(meeting) == ["Muted Pat"]


def test_remove_and_readmit_from_the_participants_page(admin_client, meeting, listener) -> None:
    pat = make_user("pat")
    participant = present(meeting, pat, peer_id="pat-tab", display_name="Pat")
    url = reverse("admin:rooms_meeting_participants", args=[meeting.pk])

    admin_client.post(url, {"action": "remove", "participant": participant.pk})

    assert moderation.is_removed(meeting, user=pat)
    assert listener.receive_event("removed")["target_user_id"] == pat.pk
    removal = meeting.removals.get()
    admin_client.post(url, {"action": "readmit", "removal": removal.pk})
    assert not moderation.is_removed(meeting, user=pat)
    assert log_messages(meeting) == ["Removed Pat", "Re-admitted Pat"]


def test_removing_the_host_from_the_admin_is_refused_and_not_logged(admin_client, meeting) -> None:
    participant = present(meeting, meeting.host, peer_id="host-tab", display_name="Host")
    url = reverse("admin:rooms_meeting_participants", args=[meeting.pk])

    response = admin_client.post(
        url, {"action": "remove", "participant": participant.pk}, follow=True
    )

    assert "The host cannot be removed" in response.content.decode()
    assert not moderation.is_removed(meeting, user=meeting.host)
    assert log_messages(meeting) == []


def test_non_staff_cannot_reach_the_participants_page(client, meeting) -> None:
    client.force_login(meeting.host)

    response = client.get(reverse("admin:rooms_meeting_participants", args=[meeting.pk]))

    assert response.status_code == 302
