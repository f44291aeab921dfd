"""Reading the chat back: everything after an id, in order; the latest page for joiners."""

from __future__ import annotations

import pytest
from django.test import override_settings

from chat import services
from chat.services import ChatAuthor, ChatError
from chat.tests.support import make_meeting, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(db):
    return make_user("ada")


@pytest.fixture
def meeting(ada):
    return make_meeting(ada)


@override_settings(CHAT_RATE_LIMIT_MESSAGES=1000)
def post_many(meeting, user, count: int, prefix: str = "m") -> list[int]:
    author = ChatAuthor(display_name=user.display_name, user=user)
    return [
        services.post_message(meeting, author=author, client_id=f"{prefix}{n}", text=f"{n}").pk
        for n in range(count)
    ]


def test_history_since_an_id_is_everything_after_it_in_order(ada, meeting) -> None:
    ids = post_many(meeting, ada, 8)
    other = make_meeting(ada, title="Another meeting")
    post_many(other, ada, 3, prefix="o")

    assert [m.pk for m in services.history(meeting)] == ids
    assert [m.pk for m in services.history(meeting, since_id=ids[2])] == ids[3:]
    assert services.history(meeting, since_id=ids[-1]) == []
    assert [m.pk for m in services.history(meeting, since_id=0)] == ids


def test_history_pages_through_everything_when_limited(ada, meeting) -> None:
    ids = post_many(meeting, ada, 7)

    seen: list[int] = []
    since = None
    while page := services.history(meeting, since_id=since, limit=3):
        seen.extend(message.pk for message in page)
        since = page[-1].pk

    assert seen == ids


def test_recent_messages_are_the_latest_oldest_first(ada, meeting) -> None:
    ids = post_many(meeting, ada, 6)

    assert [m.pk for m in services.recent_messages(meeting, limit=4)] == ids[2:]


@pytest.mark.parametrize("since_id", [-1, "3", 1.5, True])
def test_history_refuses_a_since_id_that_is_not_a_message_id(meeting, since_id) -> None:
    with pytest.raises(ChatError) as refused:
        services.history(meeting, since_id=since_id)

    assert refused.value.code == "invalid_since_id"


def test_deleted_message_keeps_its_place_without_its_text(ada, meeting) -> None:
    ids = post_many(meeting, ada, 3)
    services.delete_message(ada, services.message_in_meeting(meeting, ids[1]))

    listed = [services.message_dict(m) for m in services.history(meeting)]

    assert [m["id"] for m in listed] == ids
    assert listed[1]["deleted"] is True
    assert listed[1]["text"] == ""
    assert listed[0]["deleted"] is False


def test_message_lookup_is_limited_to_the_meeting(ada, meeting) -> None:
    other = make_meeting(ada, title="Another meeting")
    [foreign_id] = post_many(other, ada, 1)

    with pytest.raises(ChatError) as missing:
        services.message_in_meeting(meeting, foreign_id)
    with pytest.raises(ChatError) as malformed:
        services.message_in_meeting(meeting, "1")

    assert missing.value.code == "message_not_found"
    assert malformed.value.code == "invalid_message_id"
