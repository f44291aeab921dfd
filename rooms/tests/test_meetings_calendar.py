"""The personal calendar feed, the .ics download, add-to-calendar links and RSVP links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from django.urls import reverse
from icalendar import Calendar

from rooms import calendar, services
from rooms.emails import rsvp_token
from rooms.models import Invitation, Meeting
from rooms.tests.meetings_support import (
    eager_celery,  # noqa: F401  (fixture)
    make_user,
    schedule,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _feed(client, user) -> Calendar:
    response = client.get(reverse("rooms:calendar_feed", args=[user.calendar_token]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


@time_machine.travel(NOW, tick=False)
def test_feed_lists_exactly_the_users_upcoming_meetings(client) -> None:
    me, other = make_user("me@example.org"), make_user("other@example.org")
    hosted = schedule(me, title="Hosted")
    invited = schedule(other, title="Invited", invitees=["ME@example.org"])
    cohosted = schedule(other, title="Co-hosted", co_hosts=[me])
    weekly = schedule(me, title="Weekly", recurrence="FREQ=WEEKLY")
    declined = schedule(other, title="Declined", invitees=["me@example.org"])
    services.respond_to_invitation(declined.invitations.get(), Invitation.Response.DECLINED)
    cancelled = schedule(me, title="Cancelled")
    services.cancel_meeting(me, cancelled)
    schedule(other, title="Someone else's", invitees=["x@example.org"])
    with time_machine.travel(NOW - timedelta(days=3), tick=False):
        past = schedule(me, title="Past")
        past_weekly = schedule(me, title="Past weekly", recurrence="FREQ=DAILY;COUNT=2")
    ended = services.create_instant_meeting(me)
    services.mark_ended(ended)

    events = _feed(client, me).walk("VEVENT")
    uids = {str(event["uid"]) for event in events}
    expected = {m.ical_uid for m in (hosted, invited, cohosted, weekly)}
    assert uids == expected
    assert past.ical_uid not in uids
    assert past_weekly.ical_uid not in uids
    by_uid = {str(event["uid"]): event for event in events}
    assert str(by_uid[weekly.ical_uid]["rrule"].to_ical().decode()) == "FREQ=WEEKLY"
    # The feed is fetched over a request: its links are on the address it came to.
    assert str(by_uid[invited.ical_uid]["url"]) == "http://testserver" + invited.join_path
    # The other person's feed is theirs alone.
    other_uids = {str(e["uid"]) for e in _feed(client, other).walk("VEVENT")}
    assert hosted.ical_uid not in other_uids
    assert invited.ical_uid in other_uids


def test_feed_token_reset_and_tampering(client) -> None:
    me = make_user("me@example.org")
    old = me.calendar_token
    assert client.get(reverse("rooms:calendar_feed", args=[old])).status_code == 200
    tampered = old[:-1] + ("A" if old[-1] != "A" else "B")
    assert client.get(reverse("rooms:calendar_feed", args=[tampered])).status_code == 404
    assert client.get("/calendar/.ics").status_code == 404
    new = services.reset_calendar_token(me)
    assert new != old
    assert client.get(reverse("rooms:calendar_feed", args=[old])).status_code == 404
    assert client.get(reverse("rooms:calendar_feed", args=[new])).status_code == 200


def test_ics_download_and_calendar_links(client) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, invitees=["a@example.org"], description="Bring ideas")
    client.force_login(host)
    response = client.get(reverse("rooms:ics", args=[meeting.code]))
    assert response.status_code == 200
    assert f'filename="{meeting.code}.ics"' in response["Content-Disposition"]
    parsed = Calendar.from_ical(response.content)
    (event,) = parsed.walk("VEVENT")
    assert str(event["uid"]) == meeting.ical_uid
    assert "Bring ideas" in str(event["description"])
    google = parse_qs(urlparse(calendar.google_calendar_url(meeting)).query)
    start = meeting.starts_at.strftime("%Y%m%dT%H%M%SZ")
    assert google["dates"] == [f"{start}/{meeting.ends_at:%Y%m%dT%H%M%SZ}"]
    assert google["location"] == [meeting.join_url]
    outlook = parse_qs(urlparse(calendar.outlook_calendar_url(meeting)).query)
    assert outlook["subject"] == [meeting.title]
    assert outlook["startdt"][0].startswith(meeting.starts_at.strftime("%Y-%m-%dT%H:%M"))
    detail = client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()
    assert "calendar.google.com" in detail
    assert "outlook.live.com" in detail
    assert "http://testserver" + meeting.join_path in detail  # the page's own address
    assert 'data-copy-target="join-link"' in detail


@pytest.mark.usefixtures("eager_celery")
def test_rsvp_link_from_the_email_updates_the_invitation(
    client, mailoutbox, django_capture_on_commit_callbacks
) -> None:
    host = make_user("host@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        meeting = schedule(host, invitees=["guest@example.net"])
    (message,) = mailoutbox
    links = re.findall(r"http://\S+/rsvp/\S+", message.body)
    accept = next(link for link in links if link.endswith("response=accepted"))
    path = urlparse(accept).path + "?" + urlparse(accept).query
    page = client.get(path)  # a mail scanner following the link changes nothing
    assert page.status_code == 200
    invitation = meeting.invitations.get()
    assert invitation.response == Invitation.Response.NEEDS_ACTION
    assert page.context["form"].initial == {"response": "accepted"}
    assert re.search(r'<input[^>]*value="accepted"[^>]*checked', page.content.decode())
    done = client.post(urlparse(accept).path, {"response": "accepted"})
    assert done.status_code == 200
    invitation.refresh_from_db()
    assert invitation.response == Invitation.Response.ACCEPTED
    assert invitation.responded_at is not None
    client.post(urlparse(accept).path, {"response": "declined"})
    invitation.refresh_from_db()
    assert invitation.response == Invitation.Response.DECLINED
    bad = client.post(urlparse(accept).path, {"response": "needs-action"})
    assert bad.status_code == 200
    invitation.refresh_from_db()
    assert invitation.response == Invitation.Response.DECLINED


def test_tampered_or_foreign_rsvp_tokens_are_404(client) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, invitees=["a@example.org"])
    token = rsvp_token(meeting.invitations.get())
    for bad in (token[:-2] + "xx", "nonsense", token.replace(":", ":A", 1), "a" * 300):
        assert client.get(reverse("rooms:rsvp", args=[bad])).status_code == 404
        assert (
            client.post(reverse("rooms:rsvp", args=[bad]), {"response": "accepted"}).status_code
            == 404
        )
    assert meeting.invitations.get().response == Invitation.Response.NEEDS_ACTION
    meeting.invitations.all().delete()
    assert client.get(reverse("rooms:rsvp", args=[token])).status_code == 404


def test_rsvp_on_a_cancelled_meeting_is_a_form_error(client) -> None:
    host = make_user("host@example.org")
    meeting = schedule(host, invitees=["a@example.org"])
    token = rsvp_token(meeting.invitations.get())
    services.cancel_meeting(host, meeting)
    response = client.post(reverse("rooms:rsvp", args=[token]), {"response": "accepted"})
    assert response.status_code == 200
    assert "cancelled" in response.content.decode()
    assert meeting.invitations.get().response == Invitation.Response.NEEDS_ACTION


def test_a_signed_in_invitee_answers_on_the_detail_page(client) -> None:
    host = make_user("host@example.org")
    ana = make_user("ana@example.org")
    meeting = schedule(host, invitees=["ana@example.org"])
    client.force_login(ana)
    response = client.post(reverse("rooms:respond", args=[meeting.code]), {"response": "tentative"})
    assert response.status_code == 302
    assert meeting.invitations.get().response == Invitation.Response.TENTATIVE
    detail = client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()
    assert "Maybe" in detail
    client.force_login(host)  # the host has no invitation to answer
    assert (
        client.post(
            reverse("rooms:respond", args=[meeting.code]), {"response": "accepted"}
        ).status_code
        == 404
    )
    assert Meeting.objects.get(pk=meeting.pk).invitations.get().response == "tentative"
