"""The meeting page's "Breakout rooms" section (templates/rooms/_breakout_chats.html,
rooms.breakouts.page_context): each breakout room's kept chat under the room's name, for whoever
may read the meeting's chat; typed text escaped; breakout rooms are not listed as meetings."""

from __future__ import annotations

import pytest
from django.test import Client

from chat.models import Message
from rooms import selectors
from rooms.models import Meeting, Removal
from rooms.tests.meetings_support import make_user

pytestmark = pytest.mark.django_db


def _room(meeting: Meeting, name: str) -> Meeting:
    return Meeting.objects.create(
        title=name, host=meeting.host, kind=Meeting.Kind.BREAKOUT, parent=meeting
    )


def test_each_rooms_chat_is_shown_under_its_name() -> None:
    host = make_user("host@example.org", first_name="Hana")
    removed = make_user("removed@example.org", first_name="Remy")
    meeting = Meeting.objects.create(host=host, title="Offsite")
    red, blue = _room(meeting, "Red <team>"), _room(meeting, "Blue")
    Message.objects.create(
        meeting=red, author_user=host, author_name="Hana", client_id="a", text="<b>hi</b> red"
    )
    Message.objects.create(meeting=blue, author_name="Gwen", client_id="b", text="blue here")

    client = Client()
    client.force_login(host)
    page = client.get(meeting.get_absolute_url()).content.decode()
    section = page[page.index('id="breakout-chats-title"') :]
    assert "Red &lt;team&gt;" in section
    assert "&lt;b&gt;hi&lt;/b&gt; red" in section
    assert section.index("Red &lt;team&gt;") < section.index("Blue") < section.index("blue here")
    assert "<b>hi</b>" not in page

    # Nobody who may not read the meeting's chat.
    Removal.objects.create(meeting=meeting, user=removed)
    client.force_login(removed)
    response = client.get(meeting.get_absolute_url())
    assert response.status_code == 404 or "breakout-chats-title" not in response.content.decode()


def test_breakout_rooms_are_not_listed_as_meetings() -> None:
    host = make_user("host@example.org")
    meeting = Meeting.objects.create(host=host, title="Offsite")
    _room(meeting, "Red")
    assert list(selectors.meetings_involving(host)) == [meeting]
