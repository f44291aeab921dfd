"""The full name at sign-up (ACCOUNT_SIGNUP_FORM_CLASS): allauth builds its sign-up form, and
the form of a third-party sign-up that needs one, on top of this class, and calls `signup`
once the user is saved.

Kept apart from accounts.forms: allauth imports this module while it builds its own forms, so
it must not import allauth's forms itself."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest

from accounts.models import User
from accounts.names import FullNameField


class FullNameSignupForm(forms.Form):
    full_name = FullNameField()

    # First, as in Meet's sign-up; fields a form lacks (a third-party sign-up has no password)
    # are skipped.
    field_order = ["full_name", "email", "password1", "password2"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A third-party sign-up that asks for more (no address from the provider, say) starts
        # with the name the provider gave (accounts.social.SocialAccountAdapter.populate_user).
        sociallogin = getattr(self, "sociallogin", None)
        user = getattr(sociallogin, "user", None)
        if isinstance(user, User) and user.full_name and not self.is_bound:
            self.initial.setdefault("full_name", user.full_name)

    def signup(self, request: HttpRequest, user: User) -> None:
        user.full_name = self.cleaned_data["full_name"]
        user.save(update_fields=["full_name"])
