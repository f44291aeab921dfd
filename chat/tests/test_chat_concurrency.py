"""A burst of messages from several clients at once, with retries racing their originals: each
message is stored once and every listener receives them in stored-id order."""

from __future__ import annotations

import asyncio
import random

import pytest
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from chat.services import ChatAuthor
from chat.tests.support import RoomListener, make_meeting, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 4
MESSAGES_PER_CLIENT = 6


async def test_concurrent_burst_is_stored_once_each_and_delivered_in_id_order() -> None:
    host = await sync_to_async(make_user)("host")
    meeting = await sync_to_async(make_meeting)(host)
    authors = [
        ChatAuthor(display_name=f"Client {n}", user=await sync_to_async(make_user)(f"client{n}"))
        for n in range(CLIENTS)
    ]
    listeners = [await RoomListener(meeting.code).join() for _ in range(2)]
    # Every message is sent twice at the same moment: the original and a retry that races it.
    posts = [
        (author, f"{index}-{n}", f"message {n} from client {index}")
        for index, author in enumerate(authors)
        for n in range(MESSAGES_PER_CLIENT)
        for _attempt in range(2)
    ]
    random.Random(6).shuffle(posts)
    post = sync_to_async(services.post_message, thread_sensitive=False)

    results = await asyncio.gather(
        *(post(meeting, author=a, client_id=cid, text=text) for a, cid, text in posts)
    )

    stored = [m async for m in Message.objects.filter(meeting=meeting).order_by("id")]
    expected_count = CLIENTS * MESSAGES_PER_CLIENT
    assert len(stored) == expected_count
    assert len({(m.author_user_id, m.client_id) for m in stored}) == expected_count
    by_attempt: dict[str, set[int]] = {}
    for (_author, cid, _text), message in zip(posts, results, strict=True):
        by_attempt.setdefault(cid, set()).add(message.pk)
    assert all(len(ids) == 1 for ids in by_attempt.values()), "a retry got a second message"
    stored_ids = [m.pk for m in stored]
    for listener in listeners:
        delivered = [
            (await listener.receive_event("chatMessage"))["data"]["message"]["id"]
            for _ in range(expected_count)
        ]
        assert delivered == stored_ids
        await listener.assert_silent()
