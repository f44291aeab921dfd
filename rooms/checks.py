"""Start-up checks of the meetings settings (rooms/app_settings.py), registered by
rooms.apps.RoomsConfig. Values the code would misbehave with are reported by every management
command (migrate in `make run` included) instead of by the first call or join that meets them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning
from django_ratelimit.core import rate_re

from rooms.app_settings import app_settings


def check_presence(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    heartbeat = app_settings.PRESENCE_HEARTBEAT_SECONDS
    if heartbeat <= 0:
        # Every connection would refresh its row in a loop without pause, and the sweep would
        # take every participant for gone at once.
        messages.append(
            Error(
                f"PRESENCE_HEARTBEAT_SECONDS must be greater than 0 (it is {heartbeat}).",
                hint="Each call connection refreshes its presence row once per this many "
                "seconds; a participant silent for three of them is made to leave.",
                id="rooms.E001",
            )
        )
    grace = app_settings.SIGNALING_RECONNECT_GRACE_SECONDS
    if grace < 0:
        messages.append(
            Error(
                f"SIGNALING_RECONNECT_GRACE_SECONDS must not be negative (it is {grace}).",
                hint="0 makes a participant whose socket dropped leave at once; the seconds "
                "they stay present waiting for a reconnect otherwise.",
                id="rooms.E002",
            )
        )
    return messages


def check_signaling_rate(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    rate = app_settings.SIGNALING_RATE_PER_SECOND
    if rate <= 0:
        # The bucket would never refill: a connection is cut off after its first burst.
        messages.append(
            Error(
                f"SIGNALING_RATE_PER_SECOND must be greater than 0 (it is {rate}).",
                hint="Client frames per second one call connection may send on average.",
                id="rooms.E003",
            )
        )
    burst = app_settings.SIGNALING_RATE_BURST
    if burst < 1:
        # A bucket that cannot hold one token refuses every frame, the join included.
        messages.append(
            Error(
                f"SIGNALING_RATE_BURST must be at least 1 (it is {burst}).",
                hint="Client frames one call connection may send at once.",
                id="rooms.E004",
            )
        )
    close_after = app_settings.SIGNALING_RATE_CLOSE_AFTER
    if close_after < 0:
        messages.append(
            Error(
                f"SIGNALING_RATE_CLOSE_AFTER must not be negative (it is {close_after}).",
                hint="Frames refused for the rate (since the budget was last full) before the "
                "connection is closed; 0 closes it at the first refusal.",
                id="rooms.E005",
            )
        )
    return messages


JOIN_GUESS_RATE_HINT = (
    "django-ratelimit's count/period: a count, '/', then an optional multiplier and one of "
    "s, m, h, d in lower case, e.g. 30/10m for 30 per 10 minutes."
)


def check_join_guess_rate(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    rate = app_settings.JOIN_GUESS_RATE
    # django-ratelimit parses with rate_re.match: it fails (every join page answers 500) when
    # the start does not match, and silently ignores whatever follows the part that does.
    match = rate_re.match(rate)
    if match is None or int(match.group(1)) < 1:
        return [
            Error(
                f"ROOMS_JOIN_GUESS_RATE {rate!r} is not a rate of at least one guess.",
                hint=JOIN_GUESS_RATE_HINT,
                id="rooms.E006",
            )
        ]
    if match.end() != len(rate):
        return [
            Warning(
                f"ROOMS_JOIN_GUESS_RATE {rate!r} is read as {match.group(0)!r}: the rest is "
                "ignored.",
                hint=JOIN_GUESS_RATE_HINT,
                id="rooms.W001",
            )
        ]
    return []


def check_instant_meeting_expiry(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    days = app_settings.INSTANT_MEETING_EXPIRY_DAYS
    if days < 1:
        # Every instant meeting's link would be expired the moment its call ended (and a
        # meeting created for later before anyone could use it).
        return [
            Error(
                f"ROOMS_INSTANT_MEETING_EXPIRY_DAYS must be at least 1 (it is {days}).",
                hint="Days an instant meeting's link keeps working after its last call.",
                id="rooms.E007",
            )
        ]
    return []
