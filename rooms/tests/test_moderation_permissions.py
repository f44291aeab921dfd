"""Only the host, co-hosts and staff moderate; participants and guests are refused with a code,
and nothing changes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from chat import services as chat
from chat.models import Message
from chat.services import ChatAuthor
from chat.tests.support import SyncRoomListener, make_meeting, make_user, present
from rooms import moderation
from rooms.models import LobbyRequest, Meeting, Removal
from rooms.moderation import ModerationDenied

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def host(db):
    return make_user("host")


@pytest.fixture
def meeting(host):
    return make_meeting(host)


@pytest.fixture
def listener(meeting):
    listener = SyncRoomListener(meeting.code)
    yield listener
    listener.close()


@pytest.fixture
def participant(db):
    return make_user("pat")


def knock(meeting) -> LobbyRequest:
    return moderation.request_entry(
        meeting, display_name="Visitor", peer_id="guest-peer", guest_key="guest-1"
    )


def every_moderation_call(meeting, participant_user):
    message = chat.post_message(
        meeting,
        author=ChatAuthor(display_name="Pat", user=participant_user),
        client_id="c1",
        text="hello",
    )
    request = knock(meeting)
    present(meeting, make_user("someone"), peer_id="peer-1", display_name="Someone")
    return {
        "mute": lambda actor: moderation.mute_participant(actor, meeting, "peer-1"),
        "remove": lambda actor: moderation.remove_participant(actor, meeting, peer_id="peer-1"),
        "readmit": lambda actor: moderation.readmit(actor, meeting, guest_key="guest-9"),
        "lock": lambda actor: moderation.set_locked(actor, meeting, True),
        "admit": lambda actor: moderation.admit(actor, request),
        "deny": lambda actor: moderation.deny(actor, request),
        "delete_message": lambda actor: chat.delete_message(actor, message),
        "end": lambda actor: moderation.end_meeting(actor, meeting),
    }


@pytest.mark.parametrize(
    "action", ["mute", "remove", "readmit", "lock", "admit", "deny", "delete_message", "end"]
)
@pytest.mark.parametrize("who", ["participant", "guest"])
def test_participants_and_guests_cannot_moderate(
    meeting, participant, listener, action, who
) -> None:
    calls = every_moderation_call(meeting, participant)
    actor = participant if who == "participant" else AnonymousUser()
    listener.receive_event("chatMessage")
    listener.receive_event("lobbyKnock")

    with pytest.raises(ModerationDenied) as refused:
        calls[action](actor)

    assert refused.value.code == "not_moderator"
    meeting.refresh_from_db()
    assert meeting.locked is False
    assert not meeting.is_ended
    assert not Removal.objects.exists()
    assert LobbyRequest.objects.get().state == LobbyRequest.State.WAITING
    assert not Message.objects.get().is_deleted
    listener.assert_silent()


def test_cohost_and_staff_may_moderate(meeting, participant) -> None:
    cohost = make_user("cohost")
    make_cohost(meeting, cohost)
    staff = make_user("staff", is_staff=True)

    assert moderation.check_can_moderate(meeting.host, meeting) == "host"
    assert moderation.check_can_moderate(cohost, meeting) == "cohost"
    assert moderation.check_can_moderate(staff, meeting) == "staff"
    moderation.set_locked(cohost, meeting, True)
    moderation.set_locked(staff, meeting, False)
    assert Meeting.objects.get(pk=meeting.pk).locked is False


def test_nobody_removes_the_host_and_cohosts_do_not_remove_each_other(meeting) -> None:
    cohost, other_cohost = make_user("cohost"), make_user("cohost2")
    make_cohost(meeting, cohost)
    make_cohost(meeting, other_cohost)
    staff = make_user("staff", is_staff=True)

    with pytest.raises(ModerationDenied) as host_removal:
        moderation.remove_participant(staff, meeting, user=meeting.host)
    with pytest.raises(ModerationDenied) as cohost_removal:
        moderation.remove_participant(cohost, meeting, user=other_cohost)
    moderation.remove_participant(meeting.host, meeting, user=other_cohost)

    assert host_removal.value.code == "cannot_remove_host"
    assert cohost_removal.value.code == "cannot_remove_cohost"
    assert moderation.is_removed(meeting, user=other_cohost)


def make_cohost(meeting, user) -> None:
    meeting.co_hosts.add(user)
