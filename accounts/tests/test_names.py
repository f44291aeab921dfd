"""People's names: a full name at sign-up (and a third-party sign-up), in settings, and the one
display name (the full name, else the address's local part) used wherever a person is shown:
the default meeting title, the call, the meeting page's people, the invitation e-mail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialLogin
from django.contrib.auth import get_user_model
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sites.models import Site
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import MAX_FULL_NAME_LENGTH
from accounts.social import SocialAccountAdapter, name_from_provider
from rooms import access, emails, services
from rooms.tests.meetings_support import make_user, schedule

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "a-long-enough-passphrase-42"


def sign_up(client, **fields):
    data = {"email": "grace@example.org", "password1": PASSWORD, "password2": PASSWORD}
    data.update(fields)
    return client.post(reverse("account_signup"), data)


# --- sign-up ---------------------------------------------------------------------------------


def test_sign_up_asks_for_a_full_name_first(client) -> None:
    form = client.get(reverse("account_signup")).context["form"]
    assert list(form.fields)[:2] == ["full_name", "email"]
    assert form.fields["full_name"].label == "Full name"
    assert form.fields["full_name"].required
    assert form.fields["full_name"].widget.attrs["autocomplete"] == "name"


def test_sign_up_stores_the_full_name_trimmed(client) -> None:
    response = sign_up(client, full_name="  Grace \n  Brewster   Hopper  ")
    assert response.status_code == 302
    user = User.objects.get(email="grace@example.org")
    assert user.full_name == "Grace Brewster Hopper"
    assert user.display_name == "Grace Brewster Hopper"


@pytest.mark.parametrize("full_name", ["", "    "])
def test_sign_up_without_a_name_is_refused(client, full_name) -> None:
    response = sign_up(client, full_name=full_name)
    assert response.status_code == 200
    assert response.context["form"].errors["full_name"] == ["Enter your name."]
    assert not User.objects.filter(email="grace@example.org").exists()


def test_sign_up_refuses_a_name_longer_than_the_limit(client) -> None:
    response = sign_up(client, full_name="x" * (MAX_FULL_NAME_LENGTH + 1))
    assert response.status_code == 200
    assert "full_name" in response.context["form"].errors
    assert not User.objects.filter(email="grace@example.org").exists()


def test_the_sign_in_message_greets_by_name(client) -> None:
    sign_up(client, full_name="Grace Hopper")
    page = client.get(reverse("home")).content.decode()
    assert "Successfully signed in as Grace Hopper." in page


# --- settings --------------------------------------------------------------------------------


def test_settings_edit_the_full_name(client) -> None:
    user = make_user("grace@example.org", full_name="Grace")
    client.force_login(user)
    response = client.post(
        reverse("accounts:preferences"),
        {"full_name": " Grace  Hopper ", "time_zone": "UTC", "reminder_minutes": "10"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.full_name == "Grace Hopper"


def test_settings_refuse_an_empty_name_and_keep_the_old_one(client) -> None:
    user = make_user("grace@example.org", full_name="Grace Hopper")
    client.force_login(user)
    response = client.post(
        reverse("accounts:preferences"),
        {"full_name": "  ", "time_zone": "UTC", "reminder_minutes": "10"},
    )
    assert response.status_code == 200
    assert "full_name" in response.context["form"].errors
    user.refresh_from_db()
    assert user.full_name == "Grace Hopper"


def test_settings_start_from_an_older_first_and_last_name(client) -> None:
    user = make_user("grace@example.org", first_name="Grace", last_name="Hopper")
    client.force_login(user)
    page = client.get(reverse("accounts:preferences")).content.decode()
    assert 'value="Grace Hopper"' in page


# --- a third-party sign-in's name ------------------------------------------------------------


def _request():
    request = RequestFactory().get("/accounts/github/login/callback/")
    SessionMiddleware(lambda r: None).process_request(request)
    request.user = None
    return request


def _github_app() -> SocialApp:
    app = SocialApp.objects.create(provider="github", name="GitHub", client_id="id", secret="s")
    app.sites.add(Site.objects.get_current())
    return app


def test_a_third_party_sign_up_takes_the_providers_name() -> None:
    _github_app()
    request = _request()
    provider = SocialAccountAdapter(request).get_provider(request, "github")
    profile = {"id": 7, "login": "ada", "name": "  Ada  King Lovelace ", "email": "ada@x.org"}
    sociallogin = provider.sociallogin_from_response(request, profile)
    assert sociallogin.user.full_name == "Ada King Lovelace"


def test_a_third_party_sign_up_that_shows_a_form_starts_from_the_providers_name() -> None:
    from allauth.socialaccount.forms import SignupForm as SocialSignupForm

    user = User(email="", full_name="Ada Lovelace")
    account = SocialAccount(provider="github", uid="7", extra_data={"name": "Ada Lovelace"})
    form = SocialSignupForm(sociallogin=SocialLogin(user=user, account=account))
    assert list(form.fields)[:2] == ["full_name", "email"]
    assert form["full_name"].value() == "Ada Lovelace"


@pytest.mark.parametrize(
    ("common", "extra", "expected"),
    [
        ({"name": "Ada Lovelace"}, {}, "Ada Lovelace"),  # GitHub: one-piece name
        ({"first_name": "Ada", "last_name": "Lovelace"}, {"name": "Ada L."}, "Ada L."),  # Google
        ({"first_name": "Ada", "last_name": "Lovelace"}, {"displayName": "Ada"}, "Ada"),  # MS
        ({"first_name": " Ada ", "last_name": ""}, {}, "Ada"),
        ({"email": "ada@x.org"}, {"login": "ada"}, ""),  # no name given: none made up
        ({"name": "x" * 300}, {}, "x" * MAX_FULL_NAME_LENGTH),
    ],
)
def test_the_providers_name_is_read_from_its_fields(common, extra, expected) -> None:
    assert name_from_provider(common, extra) == expected


def test_a_later_third_party_sign_in_fills_a_missing_name_but_never_replaces_one() -> None:
    nameless = make_user("ada@example.org")
    named = make_user("grace@example.org", full_name="Grace Hopper")
    request = _request()
    adapter = SocialAccountAdapter(request)
    for user, profile_name in ((nameless, "Ada Lovelace"), (named, "G. H.")):
        account = SocialAccount.objects.create(
            user=user, provider="github", uid=user.email, extra_data={"name": profile_name}
        )
        adapter.pre_social_login(request, SocialLogin(user=user, account=account))
    nameless.refresh_from_db()
    named.refresh_from_db()
    assert nameless.full_name == "Ada Lovelace"
    assert named.full_name == "Grace Hopper"


# --- one display name, everywhere -------------------------------------------------------------


def test_the_display_name_is_the_full_name_else_the_address_local_part() -> None:
    assert User(email="bob.martin@example.org").display_name == "bob.martin"
    assert User(email="bob.martin@example.org", full_name="Bob Martin").display_name == (
        "Bob Martin"
    )
    older = User(email="bob.martin@example.org", first_name="Bob", last_name="Martin")
    assert older.display_name == "Bob Martin"
    assert User(email="bob@example.org", full_name="Robert", first_name="Bob").display_name == (
        "Robert"
    )


def test_the_default_meeting_title_and_the_call_use_the_name() -> None:
    named = make_user("bob.martin@example.org", full_name="Bob Martin")
    nameless = make_user("ann.lee@example.org")
    assert services.create_meeting_for_later(named).title == "Bob Martin's meeting"
    assert services.create_meeting_for_later(nameless).title == "ann.lee's meeting"
    assert access.call_name(named, "typed in the page") == "Bob Martin"
    assert access.call_name(None, "Visitor") == "Visitor"


def test_the_meeting_page_lists_people_by_name_with_their_address(client) -> None:
    host = make_user("bob.martin@example.org", full_name="Bob Martin")
    make_user("ann@example.org", full_name="Ann Lee")
    make_user("unconfirmed@example.org", full_name="Not Really Them", confirmed=False)
    meeting = schedule(
        host, invitees=["ann@example.org", "unconfirmed@example.org", "nobody@example.org"]
    )
    client.force_login(host)
    page = client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()
    people = page[page.index("attendee-list") :]
    assert '<span class="person-name">Bob Martin</span>' in people
    assert '<span class="person-name">Ann Lee</span>' in people
    assert '<span class="muted person-email">ann@example.org</span>' in people
    # An address nobody has confirmed, or with no account, is listed as the address alone.
    assert "Not Really Them" not in page
    assert '<span class="person-name">unconfirmed@example.org</span>' in people
    assert '<span class="person-name">nobody@example.org</span>' in people
    assert "Hosted by Bob Martin" in page
    assert "bob.martin&#x27;s meeting" not in page


def test_names_are_escaped_on_pages(client) -> None:
    host = make_user("host@example.org", full_name='<script>alert("x")</script>')
    meeting = schedule(host)
    client.force_login(host)
    page = client.get(reverse("rooms:detail", args=[meeting.code])).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_the_invitation_email_names_the_host(settings) -> None:
    host = make_user("bob.martin@example.org", full_name="Bob Martin")
    meeting = schedule(
        host, invitees=["ann@example.org"], starts_at=datetime(2030, 1, 15, 9, tzinfo=UTC)
    )
    message = emails.calendar_email(meeting, "ann@example.org", "invitation")
    assert "by Bob Martin (bob.martin@example.org)" in message.body
    assert 'ORGANIZER;CN="Bob Martin"' in message.attachments[0][1]


def test_the_navigation_shows_the_name_with_the_address_as_its_title(client) -> None:
    user = make_user("bob.martin@example.org", full_name="Bob Martin")
    client.force_login(user)
    page = client.get(reverse("home")).content.decode()
    assert 'title="bob.martin@example.org">Bob Martin</span>' in page


def test_an_unconfirmed_address_owner_keeps_their_name_to_themselves() -> None:
    # The names lookup for meeting pages matches confirmed addresses only.
    from rooms.selectors import names_by_email

    owner = make_user("a@example.org", full_name="Real Owner")
    make_user("b@example.org", full_name="Squatter", confirmed=False)
    EmailAddress.objects.create(user=owner, email="c@example.org", verified=True)
    assert names_by_email(["A@example.org", "b@example.org", "c@example.org"]) == {
        "a@example.org": "Real Owner",
        "c@example.org": "Real Owner",
    }
