"""People's names: the one form field that takes a full name (sign-up, social sign-up,
settings) and the clean-up every name gets (trimmed, runs of spaces and line breaks made one
space, cut to the model's length). How a person is shown is `User.display_name`."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import MAX_FULL_NAME_LENGTH

FULL_NAME_HELP = "Your name is what others see in calls, chat and invitations."


def collapse_spaces(value: object) -> str:
    """Words joined by single spaces: no leading, trailing or repeated spaces, no line breaks."""
    return " ".join(value.split()) if isinstance(value, str) else ""


def clean_name(value: object) -> str:
    """A name from elsewhere (a provider) as stored: spaces collapsed, cut to
    MAX_FULL_NAME_LENGTH. (Typed names longer than that are refused, not cut.)"""
    return collapse_spaces(value)[:MAX_FULL_NAME_LENGTH].strip()


class FullNameField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", "Full name")
        kwargs.setdefault("help_text", FULL_NAME_HELP)
        kwargs.setdefault("error_messages", {"required": "Enter your name."})
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"autocomplete": "name", "placeholder": "Your name"}),
        )
        super().__init__(max_length=MAX_FULL_NAME_LENGTH, required=True, **kwargs)

    def to_python(self, value: Any) -> str:
        return collapse_spaces(super().to_python(value))


def user_display(user: object) -> str:
    """allauth's name for a person (ACCOUNT_USER_DISPLAY: "Successfully signed in as …" and
    the like): the same display name as everywhere else."""
    return str(getattr(user, "display_name", "") or user)
