"""The home page's "New meeting", as in Meet: "Create a meeting for later" (a link to share, no
call started), "Start an instant meeting" (into the call) and "Schedule in calendar"."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from rooms.models import Meeting
from rooms.tests.meetings_support import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    return make_user("host@example.org")


@pytest.fixture
def signed_in(client, host):
    client.force_login(host)
    return client


def test_the_home_page_offers_the_three_choices_as_a_menu(signed_in) -> None:
    body = signed_in.get(reverse("home")).content.decode()
    menu = re.search(
        r'<ul class="menu" id="new-meeting-menu" role="menu"[^>]*hidden>(.*?)</ul>', body, re.S
    )
    assert menu is not None
    items = re.findall(r'role="menuitem"[^>]*>\s*<svg.*?</svg>\s*([^<]+?)\s*<', menu.group(1), re.S)
    assert items == [
        "Create a meeting for later",
        "Start an instant meeting",
        "Schedule in calendar",
    ]
    # The two POSTs are forms of their own with the CSRF token; the menu items submit them.
    assert 'form="new-meeting-later-form"' in menu.group(1)
    assert 'form="new-meeting-instant-form"' in menu.group(1)
    assert f'href="{reverse("rooms:schedule")}"' in menu.group(1)
    for form_id, url in (
        ("new-meeting-later-form", reverse("rooms:later")),
        ("new-meeting-instant-form", reverse("rooms:new")),
    ):
        form = re.search(
            rf'<form id="{form_id}" method="post" action="{url}" hidden>(.*?)</form>', body, re.S
        )
        assert form is not None
        assert "csrfmiddlewaretoken" in form.group(1)
    # Without the script, "New meeting" is a link to the same choices on their own page.
    assert re.search(rf'<a [^>]*id="new-meeting-button" href="{reverse("rooms:new")}"', body)
    assert "new-meeting-menu.js" in body


def test_without_script_the_new_meeting_page_has_the_same_three_choices(signed_in) -> None:
    response = signed_in.get(reverse("rooms:new"))
    assert response.status_code == 200
    body = response.content.decode()
    assert f'action="{reverse("rooms:later")}"' in body
    assert f'action="{reverse("rooms:new")}"' in body
    assert f'href="{reverse("rooms:schedule")}"' in body
    for label in ("Create a meeting for later", "Start an instant meeting", "Schedule in calendar"):
        assert label in body
    assert not Meeting.objects.exists()


def test_create_a_meeting_for_later_shows_its_link_once_and_starts_no_call(signed_in, host) -> None:
    response = signed_in.post(reverse("rooms:later"))
    meeting = Meeting.objects.get()
    assert (meeting.host, meeting.kind, meeting.status) == (
        host,
        Meeting.Kind.INSTANT,
        Meeting.Status.SCHEDULED,
    )
    assert not meeting.participants.exists()
    assert response.status_code == 302
    assert response["Location"] == reverse("home")

    home = signed_in.get(response["Location"])
    body = home.content.decode()
    dialog = re.search(r'<dialog class="later-dialog"[^>]*>(.*?)</dialog>', body, re.S)
    assert dialog is not None
    assert "Here's the link to your meeting" in dialog.group(1)
    # The link on the address the page was served on, a copy button, and the code.
    assert f'value="http://testserver/{meeting.code}"' in dialog.group(1)
    assert 'data-copy-target="later-link"' in dialog.group(1)
    assert f'<strong class="meeting-code">{meeting.code}</strong>' in dialog.group(1)
    assert "meetings.js" in body  # the copy button's script
    # Once: a reload shows the plain home page.
    assert "later-dialog" not in signed_in.get(reverse("home")).content.decode()


def test_start_an_instant_meeting_still_goes_into_the_call(signed_in) -> None:
    response = signed_in.post(reverse("rooms:new"))
    meeting = Meeting.objects.get()
    assert (meeting.kind, meeting.status) == (Meeting.Kind.INSTANT, Meeting.Status.LIVE)
    assert response["Location"] == f"/{meeting.code}"


def test_creating_for_later_needs_the_csrf_token(host) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(host)
    assert client.post(reverse("rooms:later")).status_code == 403
    assert not Meeting.objects.exists()


def test_the_link_card_is_shown_only_to_its_host(client, host) -> None:
    client.force_login(host)
    client.post(reverse("rooms:later"))
    meeting = Meeting.objects.get()
    # Someone else's session naming that code (it cannot, but the check must not rely on it).
    other = make_user("other@example.org")
    client.force_login(other)
    session = client.session
    session["rooms.created_for_later"] = meeting.code
    session.save()
    assert "later-dialog" not in client.get(reverse("home")).content.decode()


def test_signed_out_visitors_see_no_new_meeting_menu(client) -> None:
    body = client.get(reverse("home")).content.decode()
    assert "new-meeting-menu" not in body
    assert "Enter a code or link" in body
