"""The preferences form: the name others see, time zone and reminder lead time."""

from __future__ import annotations

from django import forms

from accounts.models import User
from rooms.forms import time_zone_choices
from rooms.reminders import MAX_REMINDER_MINUTES


class PreferencesForm(forms.ModelForm):
    first_name = forms.CharField(
        max_length=150,
        required=False,
        label="First name",
        help_text="Your name is what others see in calls, chat and invitations.",
    )
    last_name = forms.CharField(max_length=150, required=False, label="Last name")
    time_zone = forms.ChoiceField(choices=time_zone_choices, label="Time zone")
    reminder_minutes = forms.IntegerField(
        min_value=0,
        max_value=MAX_REMINDER_MINUTES,
        label="Reminder email, minutes before a meeting",
        help_text="0 turns reminders off.",
    )

    class Meta:
        model = User
        fields = ("first_name", "last_name", "time_zone", "reminder_minutes")
