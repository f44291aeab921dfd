"""Chat in the admin: staff delete a message for everyone, and the admin log says who did."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from chat import services
from chat.models import Message
from chat.services import ChatAuthor
from chat.tests.support import SyncRoomListener, make_meeting, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff(db):
    return make_user("staff", is_staff=True, is_superuser=True)


def test_delete_for_everyone_marks_deleted_tells_the_room_and_is_logged(client, staff) -> None:
    host = make_user("host")
    meeting = make_meeting(host)
    author = ChatAuthor(display_name="Host", user=host)
    kept = services.post_message(meeting, author=author, client_id="k", text="keep me")
    doomed = services.post_message(meeting, author=author, client_id="d", text="delete me")
    listener = SyncRoomListener(meeting.code)
    client.force_login(staff)

    try:
        response = client.post(
            reverse("admin:chat_message_changelist"),
            {"action": "delete_for_everyone", "_selected_action": [doomed.pk]},
            follow=True,
        )

        assert response.status_code == 200
        assert listener.receive_event("chatMessageDeleted")["data"] == {"messageId": doomed.pk}
        listener.assert_silent()
    finally:
        listener.close()
    doomed.refresh_from_db()
    assert doomed.is_deleted
    assert doomed.deleted_by == staff
    assert not Message.objects.get(pk=kept.pk).is_deleted
    entry = LogEntry.objects.get(object_id=str(doomed.pk))
    assert entry.user == staff
    assert entry.action_flag == CHANGE
    assert entry.get_change_message() == "Deleted for everyone"
    assert entry.action_time is not None


def test_message_list_and_page_show_but_never_edit_or_hard_delete(client, staff) -> None:
    host = make_user("host")
    meeting = make_meeting(host)
    message = services.post_message(
        meeting, author=ChatAuthor(display_name="Host", user=host), client_id="c", text="<b>hi"
    )
    client.force_login(staff)

    listing = client.get(reverse("admin:chat_message_changelist"))
    page = client.get(reverse("admin:chat_message_change", args=[message.pk]))

    assert listing.status_code == 200
    assert "&lt;b&gt;hi" in listing.content.decode()
    assert page.status_code == 200
    assert client.get(reverse("admin:chat_message_add")).status_code == 403
    assert client.get(reverse("admin:chat_message_delete", args=[message.pk])).status_code == 403


def test_non_staff_cannot_reach_the_chat_admin(client) -> None:
    client.force_login(make_user("pat"))

    response = client.get(reverse("admin:chat_message_changelist"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
