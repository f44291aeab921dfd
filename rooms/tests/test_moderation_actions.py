"""Each moderation function changes what it should and then tells the room (contract 3)."""

from __future__ import annotations

import contextlib

import pytest

from chat import services as chat
from chat.services import ChatAuthor
from chat.tests.support import SyncRoomListener, make_meeting, make_user, present
from rooms import moderation
from rooms.models import LobbyRequest, Meeting
from rooms.moderation import ModerationError

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


def test_mute_asks_only_the_target_peer_to_mute(host, meeting, listener) -> None:
    present(meeting, make_user("pat"), peer_id="peer-7", display_name="Pat")

    moderation.mute_participant(host, meeting, "peer-7")

    event = listener.receive_event("muteRequested")
    assert event["target_peer_id"] == "peer-7"
    listener.assert_silent()


@pytest.mark.parametrize(
    ("peer_id", "code"),
    [
        ("not-here", "not_in_call"),
        ("", "invalid_peer_id"),
        (7, "invalid_peer_id"),
    ],
)
def test_mute_or_remove_someone_not_in_the_call_is_refused(host, meeting, peer_id, code) -> None:
    present(meeting, make_user("pat"), peer_id="pat-tab", display_name="Pat")

    with pytest.raises(ModerationError) as mute:
        moderation.mute_participant(host, meeting, peer_id)
    with pytest.raises(ModerationError) as remove:
        moderation.remove_participant(host, meeting, peer_id=peer_id)

    assert mute.value.code == code
    assert remove.value.code == code


def test_remove_naming_nobody_is_refused(host, meeting) -> None:
    with pytest.raises(ModerationError) as refused:
        moderation.remove_participant(host, meeting)

    assert refused.value.code == "invalid_participant"


def test_remove_by_peer_refuses_the_user_until_readmitted(host, meeting, listener) -> None:
    pat = make_user("pat")
    present(meeting, pat, peer_id="pat-tab", display_name="Pat in the call")

    removal = moderation.remove_participant(host, meeting, peer_id="pat-tab")

    assert removal.removed_by == host
    assert removal.user == pat
    assert removal.display_name == "Pat in the call"
    assert moderation.is_removed(meeting, user=pat)
    assert not moderation.is_removed(meeting, user=make_user("other"))
    assert not moderation.is_removed(make_meeting(host), user=pat)
    event = listener.receive_event("removed")
    assert event["target_user_id"] == pat.pk  # every tab of theirs goes
    assert "target_peer_id" not in event

    assert moderation.readmit(host, meeting, user=pat) is True
    assert not moderation.is_removed(meeting, user=pat)
    assert moderation.readmit(host, meeting, user=pat) is False


def test_removing_a_guest_closes_their_tabs_and_remembers_their_key(
    host, meeting, listener
) -> None:
    present(meeting, None, peer_id="g-tab", display_name="Visitor")
    guest_key = "guest-g-tab"  # what support.present gives a guest

    removal = moderation.remove_participant(host, meeting, peer_id="g-tab")

    assert removal.guest_key == guest_key
    assert removal.user is None
    assert moderation.is_removed(meeting, guest_key=guest_key)
    assert not moderation.is_removed(meeting, guest_key="guest-other")
    assert listener.receive_event("removed")["target_peer_id"] == "g-tab"
    listener.assert_silent()


def test_removing_a_user_who_is_not_in_the_call(host, meeting, listener) -> None:
    pat = make_user("pat")

    moderation.remove_participant(host, meeting, user=pat)

    assert moderation.is_removed(meeting, user=pat)
    assert listener.receive_event("removed")["target_user_id"] == pat.pk


def test_lock_and_unlock_change_the_meeting_and_tell_the_room(host, meeting, listener) -> None:
    moderation.set_locked(host, meeting, True)
    assert Meeting.objects.get(pk=meeting.pk).locked is True
    assert listener.receive_event("meetingLocked")["data"] == {"locked": True}

    moderation.set_locked(host, meeting, True)  # no change, no event
    moderation.set_locked(host, meeting, False)
    assert Meeting.objects.get(pk=meeting.pk).locked is False
    assert listener.receive_event("meetingLocked")["data"] == {"locked": False}
    listener.assert_silent()


def test_knock_tells_the_moderators_and_admit_lets_the_guest_in(host, meeting, listener) -> None:
    request = moderation.request_entry(
        meeting, display_name="  Visitor  ", peer_id="guest-tab", guest_key="guest-1"
    )

    knock = listener.receive_event("lobbyKnock")
    assert knock["audience"] == "moderators"
    assert knock["data"]["request"]["displayName"] == "Visitor"
    assert knock["data"]["request"]["peerId"] == "guest-tab"
    assert knock["data"]["request"]["isGuest"] is True
    assert "guest-1" not in str(knock["data"])
    assert moderation.waiting_requests(meeting) == [request]
    assert not moderation.is_admitted(meeting, guest_key="guest-1")

    moderation.admit(host, request)

    admitted = listener.receive_event("lobbyAdmitted")
    assert admitted["target_peer_id"] == "guest-tab"
    assert admitted["data"] == {"requestId": request.pk}
    resolved = listener.receive_event("lobbyResolved")
    assert resolved["audience"] == "moderators"
    assert resolved["data"]["request"]["state"] == "admitted"
    assert moderation.is_admitted(meeting, guest_key="guest-1")
    assert moderation.waiting_requests(meeting) == []


def test_knocking_again_while_waiting_updates_the_same_request(host, meeting, listener) -> None:
    first = moderation.request_entry(meeting, display_name="Vis", peer_id="t1", guest_key="g")
    again = moderation.request_entry(meeting, display_name="Visitor", peer_id="t2", guest_key="g")
    moderation.request_entry(meeting, display_name="Visitor", peer_id="t2", guest_key="g")

    assert again.pk == first.pk
    assert LobbyRequest.objects.get().peer_id == "t2"
    assert listener.receive_event("lobbyKnock")["data"]["request"]["peerId"] == "t1"
    assert listener.receive_event("lobbyKnock")["data"]["request"]["displayName"] == "Visitor"
    listener.assert_silent()  # the identical third knock tells nobody


def test_a_guest_renaming_in_a_loop_cannot_flood_the_host_with_knocks(
    host, meeting, listener
) -> None:
    for number in range(50):
        moderation.request_entry(
            meeting, display_name=f"Visitor {number}", peer_id="t1", guest_key="g"
        )

    knocks = 0
    with contextlib.suppress(AssertionError, TimeoutError):
        while True:
            listener.receive_event("lobbyKnock", timeout=0.5)
            knocks += 1
    assert 1 <= knocks <= moderation.KNOCK_NOTICES_PER_WINDOW
    # What the moderators see when they look is the latest, all the same.
    (waiting,) = moderation.waiting_requests(meeting)
    assert waiting.display_name == "Visitor 49"


def test_deny_tells_the_waiting_peer_and_a_decision_is_final(host, meeting, listener) -> None:
    request = moderation.request_entry(meeting, display_name="Vis", peer_id="t1", guest_key="g")
    listener.receive_event("lobbyKnock")

    denied = moderation.deny(host, request)
    moderation.deny(host, request)  # a second click changes nothing

    assert denied.state == LobbyRequest.State.DENIED
    assert denied.decided_by == host
    assert listener.receive_event("lobbyDenied")["target_peer_id"] == "t1"
    listener.receive_event("lobbyResolved")
    listener.assert_silent()
    assert not moderation.is_admitted(meeting, guest_key="g")
    with pytest.raises(ModerationError) as decided:
        moderation.admit(host, request)
    assert decided.value.code == "already_decided"


def test_admitting_a_removed_person_lifts_the_removal(host, meeting) -> None:
    pat = make_user("pat")
    moderation.remove_participant(host, meeting, user=pat)

    request = moderation.request_entry(meeting, display_name="Pat", peer_id="p", user=pat)
    moderation.admit(host, request)

    assert not moderation.is_removed(meeting, user=pat)
    assert moderation.is_admitted(meeting, user=pat)


def test_knock_without_a_name_is_refused(meeting) -> None:
    with pytest.raises(ModerationError) as refused:
        moderation.request_entry(meeting, display_name="   ", peer_id="t", guest_key="g")

    assert refused.value.code == "invalid_display_name"


def test_delete_message_marks_it_deleted_and_tells_the_room(host, meeting, listener) -> None:
    pat = make_user("pat")
    message = chat.post_message(
        meeting, author=ChatAuthor(display_name="Pat", user=pat), client_id="c", text="oops"
    )
    listener.receive_event("chatMessage")

    deleted = chat.delete_message(host, message)

    assert deleted.is_deleted
    assert deleted.deleted_by == host
    assert listener.receive_event("chatMessageDeleted")["data"] == {"messageId": message.pk}
    chat.delete_message(host, message)
    listener.assert_silent()


def test_end_meeting_ends_it_for_everyone(host, meeting, listener) -> None:
    waiting = moderation.request_entry(meeting, display_name="Vis", peer_id="t", guest_key="g")
    listener.receive_event("lobbyKnock")

    moderation.end_meeting(host, meeting)

    meeting.refresh_from_db()
    assert meeting.is_ended
    waiting.refresh_from_db()
    assert waiting.state == LobbyRequest.State.DENIED
    event = listener.receive_event("meetingEnded")
    assert "target_peer_id" not in event
    # The one asking to join is told too: they are not in the call to hear the room's event.
    told = listener.receive_event("meetingEnded")
    assert told["target_peer_id"] == "t"
    moderation.end_meeting(host, meeting)
    listener.assert_silent()
    with pytest.raises(ModerationError) as ended:
        moderation.set_locked(host, meeting, True)
    assert ended.value.code == "meeting_ended"


def test_ending_a_meeting_that_is_not_live_changes_nothing(host, listener) -> None:
    scheduled = make_meeting(host, live=False)

    moderation.end_meeting(host, scheduled)

    assert Meeting.objects.get(pk=scheduled.pk).status == Meeting.Status.SCHEDULED
    listener.assert_silent()


def test_ending_a_recurring_meeting_readies_its_next_occurrence(host, listener) -> None:
    weekly = make_meeting(host, recurrence="FREQ=WEEKLY")
    weekly_listener = SyncRoomListener(weekly.code)
    try:
        moderation.end_meeting(host, weekly)

        weekly_listener.receive_event("meetingEnded")
    finally:
        weekly_listener.close()
    assert Meeting.objects.get(pk=weekly.pk).status == Meeting.Status.SCHEDULED


def test_lobby_requests_are_found_only_in_their_meeting(host, meeting) -> None:
    request = moderation.request_entry(meeting, display_name="Vis", peer_id="t", guest_key="g")
    other = make_meeting(host)

    assert moderation.lobby_request_in_meeting(meeting, request.pk) == request
    with pytest.raises(ModerationError) as elsewhere:
        moderation.lobby_request_in_meeting(other, request.pk)
    with pytest.raises(ModerationError) as malformed:
        moderation.lobby_request_in_meeting(meeting, str(request.pk))

    assert elsewhere.value.code == "request_not_found"
    assert malformed.value.code == "invalid_request_id"
