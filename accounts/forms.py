"""Admin forms for the email-based user model, and the password-reset request form."""

from allauth.account import forms as allauth_forms
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError

from accounts.models import User


class UserCreationByEmailForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeByEmailForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class ResetPasswordForm(allauth_forms.ResetPasswordForm):
    """allauth's password-reset request, answering alike for addresses with and without an
    account: both go on to the "we sent you a mail" page. An unknown address gets allauth's
    "no account with this address" mail (no link into any account, only the sign-up page),
    so only the mailbox's owner learns the answer. allauth's reset_password rate limit (per
    address and per client) keeps this from being used to flood anyone's mailbox.

    ACCOUNT_PREVENT_ENUMERATION would do this too, but it also changes sign-up (meet/settings.py
    keeps sign-up's "email taken" error), so only the reset form is changed here."""

    def clean_email(self) -> str:
        self.users = None
        try:
            return super().clean_email()
        except ValidationError:
            # allauth refuses an address with no account, after finding no users for it; any
            # other refusal (a malformed address, say) stands.
            if self.users == []:
                return str(self.cleaned_data["email"])
            raise
