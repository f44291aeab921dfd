"""Meetings settings, read through one object: `from rooms.app_settings import app_settings`
(`as rooms_settings` where another app's object is imported too).

The rule, the same in every app's app_settings module: a setting's default is written here
and nowhere else. meet/settings.py sets a setting only when its environment variable is set,
so an unset variable means the default below. Each property reads django.conf.settings when
asked (never cached), so override_settings and pytest-django's `settings` fixture apply.

SITE_URL is not here: meet/settings.py derives cookie and allauth settings from it, so it is a
project setting with its default there, read from django.conf.settings like Django's own.
"""

from __future__ import annotations

from django.conf import settings


class RoomsSettings:
    @property
    def JOIN_GUESS_RATE(self) -> str:
        """Wrong or forbidden join codes one user (or address) may try before getting 429s, as
        django-ratelimit's count/period: 30/10m is 30 per 10 minutes."""
        return str(getattr(settings, "ROOMS_JOIN_GUESS_RATE", "30/10m"))

    @property
    def PEOPLE_SEARCH_RATE(self) -> str:
        """Completion requests of the schedule form's invitee box one user may make, as
        django-ratelimit's count/period. The box asks at most once per pause in typing (150 ms),
        so a person stays far below 120 a minute; a script walking the directory does not."""
        return str(getattr(settings, "ROOMS_PEOPLE_SEARCH_RATE", "120/m"))

    @property
    def INSTANT_MEETING_EXPIRY_DAYS(self) -> int:
        """Days an instant meeting's link (a "New meeting", started now or created for later)
        keeps working without being used: each call pushes the expiry back to this many days
        after it ended, as Meet does with its own codes. Scheduled meetings do not expire."""
        return int(getattr(settings, "ROOMS_INSTANT_MEETING_EXPIRY_DAYS", 365))

    @property
    def LOBBY_WAIT_SECONDS(self) -> float:
        """Seconds a request to join ("Ask to join") waits for a host's answer before it times
        out and the person is told nobody responded (as Meet's, about 10 minutes)."""
        return float(getattr(settings, "ROOMS_LOBBY_WAIT_SECONDS", 600.0))

    @property
    def PRESENCE_HEARTBEAT_SECONDS(self) -> float:
        """Seconds between a call connection's refreshes of its presence row; a participant
        silent for three of them is made to leave by the beat sweep."""
        return float(getattr(settings, "PRESENCE_HEARTBEAT_SECONDS", 20.0))

    @property
    def FAILOVER_CHECK_SECONDS(self) -> float:
        """Seconds between a web process's checks that the SFU nodes of its calls still live;
        a room whose node died moves to a live one and its participants publish again."""
        return float(getattr(settings, "FAILOVER_CHECK_SECONDS", 1.0))

    @property
    def SIGNALING_RECONNECT_GRACE_SECONDS(self) -> float:
        """Seconds a participant whose socket dropped stays present, waiting for a reconnect."""
        return float(getattr(settings, "SIGNALING_RECONNECT_GRACE_SECONDS", 20.0))

    @property
    def ATTENDANCE_REPORT_DELAY_SECONDS(self) -> float:
        """Seconds after a call's end (its last person left, or it was ended for all) before
        its attendance report is e-mailed to the host and co-hosts; a call started again
        meanwhile (someone rejoined) sends it at its own end instead."""
        return float(getattr(settings, "ROOMS_ATTENDANCE_REPORT_DELAY_SECONDS", 120.0))

    @property
    def SIGNALING_RATE_PER_SECOND(self) -> float:
        """Client frames per second one connection may send on average (the token bucket's
        refill rate)."""
        return float(getattr(settings, "SIGNALING_RATE_PER_SECOND", 30.0))

    @property
    def SIGNALING_RATE_BURST(self) -> int:
        """Client frames one connection may send at once (the token bucket's size)."""
        return int(getattr(settings, "SIGNALING_RATE_BURST", 60))

    @property
    def SIGNALING_RATE_CLOSE_AFTER(self) -> int:
        """Frames refused in a row for the rate after which the connection is closed (4429)."""
        return int(getattr(settings, "SIGNALING_RATE_CLOSE_AFTER", 200))


app_settings = RoomsSettings()
