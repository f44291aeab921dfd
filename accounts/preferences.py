"""The preferences form: the name others see, time zone and reminder lead time."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import User
from accounts.names import FullNameField
from rooms.forms import time_zone_choices
from rooms.reminders import MAX_REMINDER_MINUTES


class PreferencesForm(forms.ModelForm):
    full_name = FullNameField()
    time_zone = forms.ChoiceField(choices=time_zone_choices, label="Time zone")
    reminder_minutes = forms.IntegerField(
        min_value=0,
        max_value=MAX_REMINDER_MINUTES,
        label="Reminder email, minutes before a meeting",
        help_text="0 turns reminders off.",
    )

    class Meta:
        model = User
        fields = ("full_name", "time_zone", "reminder_minutes")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.full_name:
            # An account from before names were asked (or made by an admin with a first and
            # last name) starts from the name it is shown by, if any.
            self.initial["full_name"] = self.instance.get_full_name()

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        if "time_zone" in self.changed_data:
            user.time_zone_chosen = True  # a zone picked here is never proposed over
        if commit:
            user.save()
        return user
