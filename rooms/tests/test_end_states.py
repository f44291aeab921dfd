"""The end states (issue 12.5): the join page shows the one screen the call's own join decision
leads to (removed, locked, a one-off meeting that ended, cancelled) instead of a pre-join with
a camera and "Join now"; the call client gets the same words for the screens it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from rooms import access, end_states, moderation, services
from rooms.models import LobbyRequest, Meeting
from rooms.signaling import admission
from rooms.tests.meetings_support import make_user, schedule

pytestmark = pytest.mark.django_db

CALL_CLIENT = "js/call/main.js"
END_STATES_JS = Path(__file__).resolve().parents[2] / "static/js/call/end-states.js"


@pytest.fixture
def host():
    return make_user("host@example.org", full_name="Hana Host")


@pytest.fixture
def other():
    return make_user("nia@example.org", full_name="Nia Other")


def _page(client, user, meeting: Meeting):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(reverse("rooms:join", args=[meeting.code]))


def _screen(response) -> str | None:
    """The end state the page shows, or None for a pre-join."""
    found = re.search(
        r'class="call-ended end-screen" aria-labelledby="call-ended-message" '
        r'data-end-state="([a-z_]+)"',
        response.content.decode(),
    )
    return found.group(1) if found else None


def _visible(response) -> str:
    """The main content's text, as read on screen (tags and attributes left out)."""
    main = response.content.decode().split("<main", 1)[1].split("</main>", 1)[0]
    main = re.sub(r"<script.*?</script>", " ", main, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main.split(">", 1)[1]))


def _is_prejoin(response) -> bool:
    body = response.content.decode()
    # A guest of a meeting with a lobby is offered "Ask to join" instead (issue 12.3).
    return CALL_CLIENT in body and ("Join now" in body or "Ask to join" in body)


def _assert_end_screen(response, key: str) -> str:
    body = response.content.decode()
    assert _screen(response) == key, body
    # No call client at all: no camera is opened, no "Join now", no live-call lines.
    assert CALL_CLIENT not in body
    assert "Join now" not in body
    assert "Ask to join" not in body
    assert "preview-video" not in body
    assert "The meeting is on now" not in body
    assert "in-call-summary" not in body  # "Ana is in this call" (rooms.in_call)
    title = end_states.SCREENS[key].title.replace("'", "&#x27;")
    assert _visible(response).count(title) == 1, "said once"
    assert f"<title>{title} · meet</title>" in body
    assert "Return to home screen" in body
    assert "Rejoin" not in body
    return body


# --- removed ---------------------------------------------------------------------------------


def test_a_removed_person_reloading_the_page_sees_they_were_removed(client, host, other) -> None:
    meeting = services.create_instant_meeting(host)
    assert _is_prejoin(_page(client, other, meeting))
    moderation.remove_participant(host, meeting, user=other)
    body = _assert_end_screen(_page(client, other, meeting), "removed")
    assert "You&#x27;ve been removed from the meeting" in body
    # The host and anyone else still get the pre-join.
    assert _is_prejoin(_page(client, host, meeting))
    assert _is_prejoin(_page(client, make_user("zoe@example.org"), meeting))


def test_a_removed_guest_reloading_the_page_sees_they_were_removed(client, host) -> None:
    meeting = services.create_instant_meeting(host)
    meeting.access_policy = Meeting.Access.GUESTS
    meeting.save()
    assert _is_prejoin(_page(client, None, meeting))
    guest_key = admission.guest_key_for(client.session)
    assert guest_key
    moderation.remove_participant(host, meeting, guest_key=guest_key)
    response = client.get(reverse("rooms:join", args=[meeting.code]))
    _assert_end_screen(response, "removed")


def test_a_person_let_back_in_from_the_lobby_gets_the_pre_join_again(client, host) -> None:
    meeting = services.create_instant_meeting(host)
    meeting.access_policy = Meeting.Access.GUESTS
    meeting.save()
    _page(client, None, meeting)
    guest_key = admission.guest_key_for(client.session)
    moderation.remove_participant(host, meeting, guest_key=guest_key)
    knock = moderation.request_entry(
        meeting, display_name="Gail", peer_id="tab-1", guest_key=guest_key
    )
    moderation.admit(host, knock)
    assert _is_prejoin(client.get(reverse("rooms:join", args=[meeting.code])))


# --- locked ----------------------------------------------------------------------------------


def test_a_locked_meeting_says_so_once_to_someone_who_never_joined(client, host, other) -> None:
    meeting = services.create_instant_meeting(host)
    moderation.set_locked(host, meeting, True)
    body = _assert_end_screen(_page(client, other, meeting), "locked")
    assert _visible(_page(client, other, meeting)).count("locked") == 1
    assert "Ask to join" not in body  # no knocking on a locked meeting (the call refuses it)
    # The host is not locked out, and is told once that nobody new can join.
    host_page = _page(client, host, meeting)
    assert _is_prejoin(host_page)
    assert host_page.content.decode().count("The meeting is locked") == 1


def test_a_guest_cannot_knock_on_a_locked_meeting_but_one_admitted_passes(client, host) -> None:
    meeting = services.create_instant_meeting(host)
    meeting.access_policy = Meeting.Access.GUESTS
    meeting.save()
    _page(client, None, meeting)
    guest_key = admission.guest_key_for(client.session)
    moderation.set_locked(host, meeting, True)
    # The call refuses the lock before the lobby: there is no knocking on a locked meeting.
    _assert_end_screen(client.get(reverse("rooms:join", args=[meeting.code])), "locked")
    LobbyRequest.objects.create(
        meeting=meeting,
        guest_key=guest_key,
        display_name="Gail",
        peer_id="tab-1",
        state=LobbyRequest.State.ADMITTED,
    )
    assert _is_prejoin(client.get(reverse("rooms:join", args=[meeting.code])))


# --- ended -----------------------------------------------------------------------------------


def test_a_one_off_meeting_that_ended_shows_ended_without_a_camera_or_join(
    client, host, other
) -> None:
    meeting = schedule(host, invitees=[other.email])
    services.mark_live(meeting)
    # On: the pre-join says who is in it (nobody yet: marked live, no one has joined).
    assert "No one else is here." in _page(client, other, meeting).content.decode()
    services.mark_ended(meeting)
    body = _assert_end_screen(_page(client, other, meeting), "ended")
    assert _visible(_page(client, other, meeting)).count("ended") == 1
    assert "Meeting details" in body  # an invitee may still see the meeting's page
    # Its host may start it again (the server's rule): the pre-join, saying so once.
    host_body = _page(client, host, meeting).content.decode()
    assert CALL_CLIENT in host_body
    assert "The call has ended; you can start it again." in host_body
    assert "The meeting is on now" not in host_body
    assert "in-call-summary" not in host_body


def test_an_instant_meeting_whose_call_ended_shows_no_ended_screen(client, host, other) -> None:
    meeting = services.create_instant_meeting(host)
    moderation.end_meeting(host, meeting)
    response = _page(client, other, meeting)
    assert _screen(response) is None
    assert _is_prejoin(response)
    assert "ended" not in _visible(response)


# --- cancelled -------------------------------------------------------------------------------


def test_a_cancelled_meeting_says_so_to_anyone_with_the_link(client, host, other) -> None:
    meeting = schedule(
        host, invitees=[other.email], title="Secret plans", access_policy=Meeting.Access.INVITEES
    )
    services.cancel_meeting(host, meeting)
    outsider = make_user("eve@example.org")
    for person in (host, other, outsider, None):
        response = _page(client, person, meeting)
        assert response.status_code == 410
        body = _assert_end_screen(response, "cancelled")
        assert "This meeting was cancelled" in body
        if person is outsider or person is None:
            assert "Secret plans" not in body  # only those who may see it get its title
            assert meeting.code in body
    assert "Secret plans" in _page(client, other, meeting).content.decode()


def test_an_unknown_code_is_still_not_found(client, other) -> None:
    client.force_login(other)
    assert client.get(reverse("rooms:join", args=["abc-defg-hij"])).status_code == 404


# --- one decision ----------------------------------------------------------------------------


def test_the_page_and_the_call_refuse_alike(host, other) -> None:
    """refusal_on_page is refusal_at_join's decision: what the page shows is what a join gets."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(other.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = other.get_session_auth_hash()
    session.save()

    def both(meeting: Meeting) -> tuple[str | None, str | None]:
        meeting = Meeting.objects.get(pk=meeting.pk)
        page = admission.refusal_on_page(meeting, other, session)
        entry = admission.admit(meeting, other, session)
        assert entry is not None
        call = admission.refusal_at_join(entry, other, "", session)
        return (page and page.code, call and call.code)

    meeting = services.create_instant_meeting(host)
    assert both(meeting) == (None, None)
    moderation.set_locked(host, meeting, True)
    assert both(meeting) == ("meeting_locked", "meeting_locked")
    moderation.remove_participant(host, meeting, user=other)
    assert both(meeting) == ("removed", "removed")
    one_off = schedule(host, invitees=[other.email])
    services.mark_live(one_off)
    services.mark_ended(one_off)
    assert both(one_off) == ("meeting_ended", "meeting_ended")


def test_rejoin_after_an_end_for_all_follows_the_restart_rule(host, other) -> None:
    instant = services.create_instant_meeting(host)
    one_off = schedule(host, invitees=[other.email])
    weekly = schedule(host, invitees=[other.email], recurrence="FREQ=WEEKLY")
    assert access.may_start_next_call(other, instant)
    assert access.may_start_next_call(None, instant)
    assert access.may_start_next_call(other, weekly)
    assert not access.may_start_next_call(other, one_off)
    assert access.may_start_next_call(host, one_off)
    assert access.may_start_next_call(make_user("staff@example.org", is_staff=True), one_off)


def test_the_pre_join_carries_the_words_and_the_rule_for_the_call_client(
    client, host, other
) -> None:
    one_off = schedule(host, invitees=[other.email])
    body = _page(client, other, one_off).content.decode()
    assert 'data-may-start-next-call="false"' in body
    assert 'id="call-end-screens"' in body
    assert "You left the meeting" in body
    assert 'data-may-start-next-call="true"' in _page(client, host, one_off).content.decode()


def test_the_call_client_knows_every_screen_the_server_words() -> None:
    source = END_STATES_JS.read_text()
    listed = re.search(r"END_STATE_KEYS = Object\.freeze\(\[(.*?)\]\)", source, re.S)
    assert listed is not None
    keys = re.findall(r'"([a-z_]+)"', listed.group(1))
    assert sorted(keys) == sorted(end_states.SCREENS)
    assert set(end_states.REFUSAL_SCREENS.values()) <= set(keys)
