"""Posting a chat message: stored first, then broadcast to the room; retries are idempotent;
bad input gets a clear error code."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from chat import services
from chat.models import Message
from chat.services import ChatAuthor, ChatError
from chat.tests.support import RoomListener, client_id, make_meeting, make_user
from rooms import moderation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ada(db):
    return make_user("ada")


@pytest.fixture
def meeting(ada):
    return make_meeting(ada)


def author_for(user) -> ChatAuthor:
    return ChatAuthor(display_name=user.display_name, user=user, peer_id="peer-" + str(user.pk))


async def test_posted_message_is_stored_and_reaches_the_room_group(ada, meeting) -> None:
    listener = await RoomListener(meeting.code).join()
    cid = client_id()

    message = await sync_to_async(services.post_message)(
        meeting, author=author_for(ada), client_id=cid, text="  hello, room  "
    )

    stored = await Message.objects.aget(pk=message.pk)
    assert stored.text == "hello, room"
    assert stored.client_id == cid
    assert stored.author_user_id == ada.pk
    event = await listener.receive_event("chatMessage")
    assert "target_peer_id" not in event
    assert event["data"] == {"message": services.message_dict(stored)}
    assert event["data"]["message"]["text"] == "hello, room"
    assert event["data"]["message"]["authorName"] == "Ada"
    assert event["data"]["message"]["authorPeerId"] == f"peer-{ada.pk}"
    await listener.assert_silent()


async def test_retry_with_the_same_client_id_returns_the_first_message_and_sends_nothing(
    ada, meeting
) -> None:
    listener = await RoomListener(meeting.code).join()
    cid = client_id()
    post = sync_to_async(services.post_message)

    first = await post(meeting, author=author_for(ada), client_id=cid, text="once")
    await listener.receive_event("chatMessage")
    retry = await post(meeting, author=author_for(ada), client_id=cid, text="once")

    assert retry.pk == first.pk
    assert await Message.objects.filter(meeting=meeting).acount() == 1
    await listener.assert_silent()


def test_same_client_id_from_different_authors_are_different_messages(ada, meeting) -> None:
    bob = make_user("bob")
    cid = client_id()
    guest = ChatAuthor(display_name="Visitor", guest_key="guest-1")

    messages = [
        services.post_message(meeting, author=author_for(ada), client_id=cid, text="a"),
        services.post_message(meeting, author=author_for(bob), client_id=cid, text="b"),
        services.post_message(meeting, author=guest, client_id=cid, text="c"),
        services.post_message(meeting, author=guest, client_id=cid, text="c again"),
    ]

    assert len({message.pk for message in messages}) == 3
    assert messages[3].pk == messages[2].pk
    assert messages[2].author_guest_key == "guest-1"
    assert messages[2].author_user is None


def test_message_dict_has_the_protocol_fields(ada, meeting) -> None:
    message = services.post_message(
        meeting, author=author_for(ada), client_id="c-1", text="<b>hi</b>"
    )

    data = services.message_dict(message)

    assert set(data) == {
        "id",
        "clientId",
        "authorName",
        "authorIsGuest",
        "authorPeerId",
        "text",
        "sentAt",
        "deleted",
    }
    assert data["id"] == message.pk
    assert data["clientId"] == "c-1"
    assert data["text"] == "<b>hi</b>"  # stored as typed; escaping is the renderer's job
    assert data["sentAt"].endswith("Z")
    assert data["deleted"] is False
    assert data["authorIsGuest"] is False


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty_message"),
        ("   \n\t ", "empty_message"),
        ("\x00\x07", "empty_message"),
        ("x" * 2001, "message_too_long"),
        (None, "invalid_text"),
        (42, "invalid_text"),
    ],
)
def test_bad_text_is_refused_with_a_code_and_nothing_is_stored(ada, meeting, text, code) -> None:
    with pytest.raises(ChatError) as refused:
        services.post_message(meeting, author=author_for(ada), client_id=client_id(), text=text)

    assert refused.value.code == code
    assert refused.value.message
    assert not Message.objects.exists()


@pytest.mark.parametrize("bad_client_id", ["", "x" * 65, None, 7])
def test_bad_client_id_is_refused(ada, meeting, bad_client_id) -> None:
    with pytest.raises(ChatError) as refused:
        services.post_message(meeting, author=author_for(ada), client_id=bad_client_id, text="hi")

    assert refused.value.code == "invalid_client_id"


def test_longest_message_is_accepted_and_control_characters_are_dropped(ada, meeting) -> None:
    longest = services.post_message(
        meeting, author=author_for(ada), client_id=client_id(), text="y" * 2000
    )
    cleaned = services.post_message(
        meeting, author=author_for(ada), client_id=client_id(), text="a\x00b\r\nc\td"
    )

    assert len(longest.text) == 2000
    assert cleaned.text == "ab\nc\td"


@override_settings(CHAT_RATE_LIMIT_MESSAGES=3, CHAT_RATE_LIMIT_SECONDS=60)
def test_author_over_the_rate_limit_is_refused_but_retries_still_answer(ada, meeting) -> None:
    bob = make_user("bob")
    sent = [
        services.post_message(meeting, author=author_for(ada), client_id=f"m{n}", text=f"{n}")
        for n in range(3)
    ]

    with pytest.raises(ChatError) as refused:
        services.post_message(meeting, author=author_for(ada), client_id="m3", text="too many")
    retry = services.post_message(meeting, author=author_for(ada), client_id="m0", text="0")
    other_author = services.post_message(meeting, author=author_for(bob), client_id="b0", text="ok")

    assert refused.value.code == "rate_limited"
    assert retry.pk == sent[0].pk
    assert other_author.pk
    assert Message.objects.filter(author_user=ada).count() == 3


def test_removed_participant_cannot_post(ada, meeting) -> None:
    bob = make_user("bob")
    moderation.remove_participant(ada, meeting, user=bob)

    with pytest.raises(ChatError) as refused:
        services.post_message(meeting, author=author_for(bob), client_id=client_id(), text="hi")

    assert refused.value.code == "removed"


def test_nobody_posts_after_the_meeting_ended(ada, meeting) -> None:
    moderation.end_meeting(ada, meeting)
    meeting.refresh_from_db()

    with pytest.raises(ChatError) as refused:
        services.post_message(meeting, author=author_for(ada), client_id=client_id(), text="hi")

    assert refused.value.code == "meeting_ended"
