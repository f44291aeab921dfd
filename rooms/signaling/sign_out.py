"""Signing out ends the user's call: django.contrib.auth's `user_logged_out` (allauth's sign-out
sends it too) tells every call connection of that user, through the group `user.<pk>`
(rooms.events.user_group_name), to leave and close with 4401. Without it a socket opened while
signed in would stay in the call, and could join again, after the sign-out.

Connected in rooms.apps.RoomsConfig.ready().
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import HttpRequest

from rooms import access, events

logger = logging.getLogger(__name__)

SIGNED_OUT_TYPE = "signaling.signed_out"


def signed_out_message(session_key: str | None) -> dict[str, Any]:
    """The group message. `session_key`: only connections opened with that Django session
    leave (the user's other browsers and devices stay signed in); None: all of them."""
    return {"type": SIGNED_OUT_TYPE, "session_key": session_key}


def on_user_logged_out(
    sender: object, request: HttpRequest | None = None, user: access.Actor = None, **_: object
) -> None:
    person = access.signed_in(user)
    if person is None:
        return  # signing out while not signed in: no call connection to reach
    session = getattr(request, "session", None) if request is not None else None
    session_key = getattr(session, "session_key", None)
    layer = get_channel_layer()
    if layer is None:
        logger.error(
            "No channel layer: user %s's call connections not told of the sign-out", person.pk
        )
        return
    try:
        # Sent now, before logout() flushes the session: the connections leave whatever the
        # session store says meanwhile (a join re-checks the session anyway).
        async_to_sync(layer.group_send)(
            events.user_group_name(person.pk), signed_out_message(session_key)
        )
    except Exception:
        # The sign-out itself must succeed; a socket that missed this is still refused at its
        # next join, which reads the session again.
        logger.exception("could not tell user %s's call connections of the sign-out", person.pk)
