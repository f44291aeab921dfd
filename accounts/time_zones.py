"""A person's time zone: the browser's zone is proposed once, on first use.

A signed-in page carries the proposal while `User.time_zone_chosen` is false (base.html,
static/js/time-zone.js): the script reads the browser's zone and, where it differs from the
stored one, asks "Use <zone> as your time zone?". Either answer is posted here (the zone to
use, or the one kept) and marks the zone chosen, as saving a new zone in settings does; from
then on nothing is proposed."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from accounts.models import MAX_TIME_ZONE_LENGTH, User, validate_time_zone


def should_propose(user: User) -> bool:
    return not user.time_zone_chosen


def choose_time_zone(user: User, zone_name: object) -> None:
    """Store the zone the person answered with; ValidationError (nothing stored) for anything
    that is not one of zoneinfo's zones."""
    if not isinstance(zone_name, str) or not zone_name.strip():
        raise ValidationError("Choose a time zone.", code="required")
    zone_name = zone_name.strip()
    if len(zone_name) > MAX_TIME_ZONE_LENGTH:
        raise ValidationError("Unknown time zone.", code="invalid")
    validate_time_zone(zone_name)
    user.time_zone = zone_name
    user.time_zone_chosen = True
    user.save(update_fields=["time_zone", "time_zone_chosen"])
