"""The admin's "Live now" page (issue 12.10): each meeting whose call is on, with who is in it
(from rooms.presence), for staff who may see meetings; read-only; linked from the admin index,
where the technical tables are listed apart from the everyday ones."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from chat.tests.support import make_meeting, make_user, present
from rooms import presence

pytestmark = pytest.mark.django_db

LIVE_NOW = "/admin/live/"


@pytest.fixture
def superuser():
    return make_user("boss", is_staff=True, is_superuser=True)


def _section(html: str, code: str) -> str:
    sections = [
        part.split("</section>")[0] for part in html.split('<section class="module live-call"')[1:]
    ]
    found = [section for section in sections if f"<code>{code}</code>" in section]
    assert len(found) == 1, f"{code} listed {len(found)} times"
    return found[0]


def test_live_now_is_routed_in_the_admin() -> None:
    assert reverse("admin:live_now") == LIVE_NOW


def test_live_now_lists_who_is_in_which_live_meeting_and_not_ended_ones(client, superuser) -> None:
    ann, bob = make_user("ann", full_name="Ann Lee"), make_user("bob", full_name="Bob Stone")
    standup = make_meeting(ann, title="Standup")
    review = make_meeting(bob, title="Design review")
    finished = make_meeting(bob, title="Finished call")
    present(standup, ann, peer_id="p-ann", display_name="Ann Lee")
    present(standup, None, peer_id="p-guest", display_name="Visiting Vera")
    present(review, bob, peer_id="p-bob", display_name="Bob Stone")
    present(finished, bob, peer_id="p-bob-2", display_name="Bob Stone")
    presence.leave(finished, "p-bob-2")  # the last one left: that call ended
    quiet = make_meeting(ann, title="Nobody came", live=False)

    client.force_login(superuser)
    response = client.get(LIVE_NOW)
    assert response.status_code == 200
    html = response.content.decode()
    assert "2 calls on, 3 people in them" in html

    standup_html = _section(html, standup.code)
    assert "Standup" in standup_html
    assert "hosted by Ann Lee" in standup_html
    assert "Ann Lee" in standup_html
    assert "ann@example.org" in standup_html
    assert "Visiting Vera" in standup_html
    assert "(1 guest)" in standup_html
    assert "Bob Stone" not in standup_html
    review_html = _section(html, review.code)
    assert "Bob Stone" in review_html
    assert "Ann Lee" not in review_html
    assert reverse("admin:rooms_meeting_participants", args=[review.pk]) in review_html

    assert "Finished call" not in html
    assert finished.code not in html
    assert "Nobody came" not in html
    assert quiet.code not in html


def test_live_now_says_so_when_no_call_is_on(client, superuser) -> None:
    client.force_login(superuser)
    assert "No call is on." in client.get(LIVE_NOW).content.decode()


def test_live_now_is_read_only(client, superuser) -> None:
    meeting = make_meeting(superuser)
    present(meeting, superuser, peer_id="p-1", display_name="Boss")
    client.force_login(superuser)
    html = client.get(LIVE_NOW).content.decode()
    main = html[html.index('id="content-main"') :]
    assert "<form" not in main
    assert "<button" not in main
    assert client.post(LIVE_NOW).status_code == 200  # nothing to post: the same page
    assert len(presence.present_participants(meeting.pk)) == 1


def test_live_now_is_for_staff_only(client) -> None:
    assert client.get(LIVE_NOW).status_code == 302  # to the admin's sign-in
    client.force_login(make_user("someone"))
    response = client.get(LIVE_NOW)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_meetings_permission_are_refused(client) -> None:
    clerk = make_user("clerk", is_staff=True)
    client.force_login(clerk)
    assert client.get(LIVE_NOW).status_code == 403
    assert reverse("admin:live_now") not in client.get("/admin/").content.decode()


def test_staff_who_may_view_meetings_see_it_without_moderation_links(client) -> None:
    moderator = make_user("moderator", is_staff=True)
    moderator.user_permissions.add(Permission.objects.get(codename="view_meeting"))
    meeting = make_meeting(moderator)
    present(meeting, moderator, peer_id="p-1", display_name="Moderator")
    client.force_login(moderator)
    html = client.get(LIVE_NOW).content.decode()
    assert meeting.code in html
    assert reverse("admin:rooms_meeting_participants", args=[meeting.pk]) not in html


def test_admin_index_links_live_now_and_lists_technical_tables_apart(client, superuser) -> None:
    client.force_login(superuser)
    html = client.get("/admin/").content.decode()
    assert f'href="{LIVE_NOW}"' in html
    everyday, technical = html.split('<h2 class="technical-heading">Technical</h2>')
    for app in ("app-rooms", "app-accounts", "app-chat"):
        assert app in everyday, app
        assert app not in technical, app
    for app in ("app-django_celery_beat", "app-socialaccount", "app-sfu", "app-sites"):
        assert app in technical, app
        assert app not in everyday, app
    # The everyday tables first, meetings at the top.
    assert everyday.index("app-rooms") < everyday.index("app-accounts")
