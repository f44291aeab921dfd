"""The transcript after the meeting: for its participants only, escaped, downloadable."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from chat import services
from chat.services import ChatAuthor
from chat.tests.support import attend, invite, make_meeting, make_user, present
from rooms import moderation

pytestmark = pytest.mark.django_db

XSS_PAYLOADS = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(2)>',
    "javascript:alert(3)",
]


@pytest.fixture
def host(db):
    return make_user("host")


@pytest.fixture
def meeting(host):
    return make_meeting(host, title="Design <review>")


def post(meeting, user, text: str, client_id: str):
    author = ChatAuthor(display_name=user.display_name, user=user)
    return services.post_message(meeting, author=author, client_id=client_id, text=text)


def test_xss_payloads_render_as_text_on_the_transcript_page(client, host, meeting) -> None:
    for index, payload in enumerate(XSS_PAYLOADS):
        post(meeting, host, payload, f"x{index}")
    moderation.end_meeting(host, meeting)
    client.force_login(host)

    response = client.get(reverse("chat:transcript", args=[meeting.code]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<svg onload" not in page
    assert 'href="javascript:' not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&quot;&gt;&lt;svg onload=alert(2)&gt;" in page
    assert "Design &lt;review&gt;" in page


def test_links_and_line_breaks_survive_escaping(client, host, meeting) -> None:
    post(meeting, host, "notes: https://example.org/a?b=1&c=2\nsecond <line>", "l1")
    client.force_login(host)

    page = client.get(reverse("chat:transcript", args=[meeting.code])).content.decode()

    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow">' in page
    assert "<br>second &lt;line&gt;" in page


def test_deleted_messages_show_as_deleted_without_their_text(client, host, meeting) -> None:
    message = post(meeting, host, "regrettable remark", "d1")
    services.delete_message(host, message)
    client.force_login(host)

    page = client.get(reverse("chat:transcript", args=[meeting.code])).content.decode()
    text = client.get(reverse("chat:transcript_text", args=[meeting.code])).content.decode()

    assert "regrettable remark" not in page
    assert "This message was deleted" in page
    assert "regrettable remark" not in text
    assert "(message deleted)" in text


def test_text_download_lists_every_message_in_order(client, host, meeting) -> None:
    guest = ChatAuthor(display_name="Visitor", guest_key="guest-1")
    post(meeting, host, "first", "t1")
    services.post_message(meeting, author=guest, client_id="t2", text="second\nmore <b>x</b>")
    client.force_login(host)

    response = client.get(reverse("chat:transcript_text", args=[meeting.code]))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="meet-{meeting.code}-chat.txt"'
    )
    lines = response.content.decode().splitlines()
    assert lines[0] == f"Chat of Design <review> ({meeting.code})"
    assert lines[2].endswith(" UTC] Host: first")
    assert lines[2].startswith("[20")
    assert lines[3].endswith(" UTC] Visitor (guest): second")  # a typed name, marked
    assert lines[4] == "    more <b>x</b>"
    assert len(lines) == 5


@pytest.mark.parametrize("relation", ["cohost", "invitee", "was_in_call", "staff"])
def test_participants_can_read_the_transcript(client, host, meeting, relation) -> None:
    reader = make_user("reader", is_staff=relation == "staff")
    post(meeting, host, "for the record", "r1")
    if relation == "cohost":
        meeting.co_hosts.add(reader)
    elif relation == "invitee":
        invite(meeting, reader)
    elif relation == "was_in_call":
        attend(meeting, reader)
    client.force_login(reader)

    page = client.get(reverse("chat:transcript", args=[meeting.code]))
    text = client.get(reverse("chat:transcript_text", args=[meeting.code]))

    assert page.status_code == 200
    assert "for the record" in page.content.decode()
    assert text.status_code == 200


def test_others_cannot_tell_the_transcript_exists(client, host, meeting) -> None:
    post(meeting, host, "private", "p1")
    attend(make_meeting(host, title="Another meeting"), outsider := make_user("outsider"))
    client.force_login(outsider)

    for name in ("chat:transcript", "chat:transcript_text"):
        assert client.get(reverse(name, args=[meeting.code])).status_code == 404
        assert client.get(reverse(name, args=["zzz-zzzz-zzz"])).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, meeting) -> None:
    response = client.get(reverse("chat:transcript", args=[meeting.code]))

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_meeting_page_context_shows_the_transcript_only_to_participants(host, meeting) -> None:
    post(meeting, host, "hello", "c1")

    for_host = services.transcript_context(host, meeting)
    for_outsider = services.transcript_context(make_user("outsider"), meeting)

    assert for_host["show_transcript"] is True
    assert [m.text for m in for_host["transcript_messages"]] == ["hello"]
    assert for_outsider == {"show_transcript": False}


@pytest.mark.parametrize("relation", ["invitee", "was_in_call"])
def test_a_removed_participant_can_no_longer_read_the_transcript(
    client, host, meeting, relation
) -> None:
    reader = make_user("reader")
    if relation == "invitee":
        invite(meeting, reader)
    else:
        # The host stays in the call, so it goes on (and its chat) after the reader left.
        present(meeting, host, peer_id="host-tab", display_name="Host")
        attend(meeting, reader)
    post(meeting, host, "before the removal", "b1")
    moderation.remove_participant(host, meeting, user=reader)
    post(meeting, host, "after the removal", "a1")
    client.force_login(reader)

    for name in ("chat:transcript", "chat:transcript_text"):
        assert client.get(reverse(name, args=[meeting.code])).status_code == 404
    assert services.transcript_context(reader, meeting) == {"show_transcript": False}

    moderation.readmit(host, meeting, user=reader)
    assert client.get(reverse("chat:transcript", args=[meeting.code])).status_code == 200


def test_a_guests_name_is_marked_on_the_transcript_page(client, host, meeting) -> None:
    guest = ChatAuthor(display_name="Host", guest_key="guest-1")  # a guest taking the host's name
    post(meeting, host, "from the host", "t1")
    services.post_message(meeting, author=guest, client_id="t2", text="from a guest")
    client.force_login(host)

    page = client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()

    headers = re.findall(r'<div class="chat-message-header">(.*?)<time', page, flags=re.S)
    marks = [("(guest)" in header, re.sub(r"<[^>]+>|\s+", "", header)) for header in headers]
    assert marks == [(False, "Host"), (True, "Host(guest)")]
