"""Forms for scheduling and editing meetings: a local date-time plus a zone in, UTC out."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format

from rooms.models import Meeting
from rooms.recurrence import (
    MAX_OCCURRENCES,
    NEVER,
    RecurrenceEnd,
    split_end,
    upcoming_occurrences,
    with_end,
)
from rooms.services import MAX_INVITEES, MeetingDetails, normalize_emails

DURATION_CHOICES = [
    (15, "15 minutes"),
    (30, "30 minutes"),
    (45, "45 minutes"),
    (60, "1 hour"),
    (90, "1½ hours"),
    (120, "2 hours"),
    (180, "3 hours"),
    (240, "4 hours"),
    (480, "8 hours"),
]
_EMAIL_SEPARATORS = re.compile(r"[\s,;]+")
ENDS_CHOICES = [("never", "Never"), ("on", "On"), ("after", "After")]
END_DATE_FORMAT = "%Y-%m-%d"  # what <input type="date"> sends, whatever the browser shows


DEFAULT_DURATION_MINUTES = 60  # as Google Calendar's, from which Meet schedules


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


def time_zone_names() -> list[str]:
    """The zones the schedule form's searchable box proposes (its <datalist>)."""
    return sorted(zoneinfo.available_timezones())


def next_half_hour(now: datetime, zone_name: str) -> datetime:
    """The wall-clock time (naive, in the zone) of the next :00 or :30 strictly after `now`,
    as Meet proposes a start: 10:05 → 10:30, 10:30 → 11:00."""
    local = now.astimezone(zoneinfo.ZoneInfo(zone_name)).replace(tzinfo=None)
    floor = local.replace(minute=30 if local.minute >= 30 else 0, second=0, microsecond=0)
    return floor + timedelta(minutes=30)


class TimeZoneInput(forms.TextInput):
    """A text box with the zones as suggestions (`list` names the <datalist> that
    templates/rooms/schedule.html renders): the browser filters them as one types."""

    def __init__(self) -> None:
        super().__init__(
            attrs={
                "list": "time-zone-names",
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "Type to search, e.g. Berlin",
                "aria-describedby": "time-zone-help",
            }
        )


def split_emails(text: str) -> list[str]:
    return [part for part in _EMAIL_SEPARATORS.split(text) if part]


def localize(naive: datetime, zone_name: str) -> datetime:
    """The aware datetime for a wall-clock time in a zone; ValidationError for a time the
    zone skips (the hour lost when DST starts)."""
    zone = zoneinfo.ZoneInfo(zone_name)
    aware = naive.replace(tzinfo=zone)
    round_trip = aware.astimezone(zoneinfo.ZoneInfo("UTC")).astimezone(zone)
    if round_trip.replace(tzinfo=None) != naive:
        raise ValidationError(
            "That time does not exist in %(zone)s (the clocks change).", params={"zone": zone_name}
        )
    return aware


_END_DATE_FIELD = forms.DateField(
    input_formats=[END_DATE_FORMAT],
    error_messages={
        "required": "Choose the day the repetition ends.",
        "invalid": "Enter the end date as YYYY-MM-DD, e.g. 2026-12-15.",
    },
)
_END_COUNT_FIELD = forms.IntegerField(
    min_value=1,
    max_value=MAX_OCCURRENCES,
    error_messages={
        "required": "Enter how many times the meeting happens.",
        "invalid": f"Enter a whole number of occurrences, from 1 to {MAX_OCCURRENCES}.",
        "min_value": f"Enter a number of occurrences from 1 to {MAX_OCCURRENCES}.",
        "max_value": f"Enter a number of occurrences from 1 to {MAX_OCCURRENCES}.",
    },
)


class WallClockDateTimeField(forms.DateTimeField):
    """A date and time as typed, with no zone: the form's time_zone field gives it one. (The
    stock field reads it in the viewer's zone, which may skip that hour when another does not.)
    """

    def to_python(self, value: Any) -> datetime | None:
        with timezone.override(UTC):
            result = super().to_python(value)
        return result.replace(tzinfo=None) if result is not None else None


class MeetingForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 4})
    )
    start = WallClockDateTimeField(
        label="Starts",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    duration = forms.TypedChoiceField(
        choices=DURATION_CHOICES, coerce=int, initial=DEFAULT_DURATION_MINUTES
    )
    time_zone = forms.CharField(label="Time zone", max_length=64, widget=TimeZoneInput())
    recurrence = forms.ChoiceField(
        choices=Meeting.Recurrence.choices, required=False, label="Repeats"
    )
    # "Ends" applies only when the meeting repeats. The date and count are read in clean(),
    # and only for the choice that uses them: a stale value left in the other box (or in a
    # meeting that no longer repeats) is no error.
    ends = forms.ChoiceField(
        choices=ENDS_CHOICES, required=False, initial="never", widget=forms.RadioSelect
    )
    end_date = forms.CharField(
        required=False,
        label="End date",
        widget=forms.DateInput(
            attrs={"type": "date", "aria-label": "End date"}, format=END_DATE_FORMAT
        ),
    )
    end_count = forms.CharField(
        required=False,
        label="Number of occurrences",
        widget=forms.NumberInput(
            attrs={"min": 1, "max": MAX_OCCURRENCES, "aria-label": "Number of occurrences"}
        ),
    )
    access_policy = forms.ChoiceField(
        choices=Meeting.Access.choices, initial=Meeting.Access.SIGNED_IN, label="Who can join"
    )
    invitees = forms.CharField(
        required=False,
        label="Invite people",
        help_text=f"Email addresses, separated by commas or new lines (at most {MAX_INVITEES}).",
        # static/js/invitee-chips.js turns this box into chips with completion; the box stays
        # what is submitted (and what works without script).
        widget=forms.Textarea(attrs={"rows": 3, "data-invitee-chips": ""}),
    )
    co_hosts = forms.CharField(
        required=False,
        label="Co-hosts",
        help_text="Email addresses of people with an account who may moderate the call.",
    )

    @classmethod
    def initial_for_new(cls, user: Any, now: datetime | None = None) -> dict[str, Any]:
        """A new meeting: at the next half hour in the host's zone, an hour long."""
        zone = user.time_zone
        return {
            "time_zone": zone,
            "start": next_half_hour(now or timezone.now(), zone),
            "duration": DEFAULT_DURATION_MINUTES,
        }

    def clean_time_zone(self) -> str:
        """A zone zoneinfo knows, as the list writes it; typed in another case or with spaces
        for underscores ("europe/berlin", "America/New York") it is read as that zone."""
        typed = " ".join(self.cleaned_data.get("time_zone", "").split())
        names = time_zone_names()
        if typed in names:
            return typed
        wanted = typed.replace(" ", "_").casefold()
        for name in names:
            if name.casefold() == wanted:
                return name
        raise ValidationError(
            "Unknown time zone: %(zone)s. Choose one from the list, e.g. Europe/Berlin.",
            params={"zone": typed[:64]},
        )

    def clean_invitees(self) -> list[str]:
        return normalize_emails(split_emails(self.cleaned_data.get("invitees", "")))

    def clean_co_hosts(self) -> list[Any]:
        emails = normalize_emails(split_emails(self.cleaned_data.get("co_hosts", "")))
        users = list(get_user_model().objects.filter(email__in=emails))
        found = {user.email.lower() for user in users}
        missing = [email for email in emails if email not in found]
        if missing:
            raise ValidationError(
                "No account for: %(missing)s", params={"missing": ", ".join(missing)}
            )
        return users

    # The "Ends" group, rendered together under "Repeats" (templates/rooms/schedule.html).
    RECURRENCE_END_FIELDS = ("ends", "end_date", "end_count")

    def _recurrence_end(self, data: dict[str, Any]) -> RecurrenceEnd | None:
        """The chosen end; None (with the error on its field) when it is not valid."""
        ends = data.get("ends") or "never"
        if ends == "on":
            try:
                last_day = _END_DATE_FIELD.clean(data.get("end_date", ""))
            except ValidationError as exc:
                self.add_error("end_date", exc)
                return None
            start = data.get("start")
            if start is not None and last_day < start.date():
                self.add_error(
                    "end_date",
                    ValidationError(
                        "The repetition cannot end before the first meeting, on %(first)s.",
                        params={"first": date_format(start.date(), "j M Y")},
                    ),
                )
                return None
            return RecurrenceEnd(last_day=last_day)
        if ends == "after":
            try:
                return RecurrenceEnd(count=_END_COUNT_FIELD.clean(data.get("end_count", "")))
            except ValidationError as exc:
                self.add_error("end_count", exc)
                return None
        return NEVER

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, zone = data.get("start"), data.get("time_zone")
        if start is not None and zone:
            try:
                data["starts_at"] = localize(start, zone)
            except ValidationError as exc:
                self.add_error("start", exc)
        base_rule = data.get("recurrence", "")
        if base_rule:
            end = self._recurrence_end(data)
            if end is not None and zone:
                data["rule"] = with_end(base_rule, end, zone)
        else:
            data["rule"] = ""
        return data

    def details(self) -> MeetingDetails:
        data = self.cleaned_data
        starts_at = data["starts_at"]
        return MeetingDetails(
            title=data["title"],
            description=data.get("description", ""),
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=data["duration"]),
            time_zone=data["time_zone"],
            access_policy=data["access_policy"],
            recurrence=data["rule"],
            invitee_emails=data.get("invitees", []),
            co_hosts=data.get("co_hosts", []),
        )

    def add_domain_errors(self, error: ValidationError) -> None:
        """Put the service's errors on the matching fields (they share names or near)."""
        field_for = {"starts_at": "start", "ends_at": "duration", "invitee_emails": "invitees"}
        if hasattr(error, "error_dict"):
            for name, errors in error.message_dict.items():
                field = field_for.get(name, name)
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, error)

    @classmethod
    def initial_for(cls, meeting: Meeting) -> dict[str, Any]:
        zone = zoneinfo.ZoneInfo(meeting.time_zone)
        minutes = int(meeting.duration.total_seconds() // 60)
        base_rule, end = split_end(meeting.recurrence, meeting.time_zone)
        return {
            "title": meeting.title,
            "description": meeting.description,
            "start": meeting.starts_at.astimezone(zone).replace(tzinfo=None),
            "duration": minutes,
            "time_zone": meeting.time_zone,
            "recurrence": base_rule,
            "ends": end.kind,
            "end_date": end.last_day,
            "end_count": end.count,
            "access_policy": meeting.access_policy,
            "invitees": "\n".join(meeting.invitations.values_list("email", flat=True)),
            "co_hosts": ", ".join(meeting.co_hosts.values_list("email", flat=True)),
        }


class RsvpForm(forms.Form):
    response = forms.ChoiceField(
        choices=[
            ("accepted", "Yes"),
            ("tentative", "Maybe"),
            ("declined", "No"),
        ],
        widget=forms.RadioSelect,
    )


CANCEL_OCCURRENCE_CHOICES = 12  # how many coming occurrences "This occurrence" offers


class CancelForm(forms.Form):
    """The confirmation before "Cancel meeting". A repeating meeting asks which: one
    occurrence (of the next few, the one the page showed first) or the whole series."""

    scope = forms.ChoiceField(
        choices=[("occurrence", "This occurrence"), ("series", "The whole series")],
        initial="occurrence",
        widget=forms.RadioSelect,
        required=False,
        label="Cancel",
    )
    # Read in clean(), only when one occurrence is cancelled (a stale value is no error then).
    occurrence = forms.CharField(required=False, label="Which occurrence", widget=forms.Select)

    def __init__(self, *args: Any, meeting: Meeting, now: datetime | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.meeting = meeting
        self.repeats = bool(meeting.recurrence)
        starts = (
            upcoming_occurrences(meeting, now or timezone.now(), CANCEL_OCCURRENCE_CHOICES)
            if self.repeats
            else []
        )
        self.starts = {start.isoformat(): start for start in starts}
        self.fields["occurrence"].widget.choices = [
            (key, date_format(timezone.localtime(start), "l j F Y, H:i"))
            for key, start in self.starts.items()
        ]
        if not starts:
            # Nothing left to cancel one by one: only the whole series.
            self.fields["scope"].initial = "series"

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not self.repeats or data.get("scope") != "occurrence":
            data["scope"] = "series"
            return data
        start = self.starts.get(data.get("occurrence") or "")
        if start is None:
            self.add_error("occurrence", "Choose the occurrence to cancel.")
        data["occurrence_start"] = start
        return data
