"""The host's spotlight for everyone (issue 14.1; docs/protocol.md, "Spotlight").

A host, co-host or staff member puts one participant on everyone's stage ("Spotlight for
everyone" in People) or takes them off ("Remove spotlight"). Each client's layout honours it,
except that a person's own pin wins for that person (static/js/call/layout.js).

State: in the shared cache (Redis), so every web process sees the same one and a late joiner
gets it in the join response. It is no meeting setting (nothing to keep after the call), hence
no database column. It names the spotlit person's presence row as well as their peer id, and
counts only while that row is present: a reconnect inside the grace period resumes the row and
keeps the spotlight; leaving (a leave, a removal, the grace period's end, the sweep) lets the
row go, and the spotlight with it. Nothing has to run at the departure (rooms.presence knows
nothing of this module): clients drop the spotlight on that person's `peerClosed`, as they drop
a raised hand, and a rejoin (a new row) is not spotlit again.

The synchronous functions use the ORM: async callers go through database_sync_to_async.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from rooms import events, moderation, presence
from rooms.access import Actor
from rooms.models import Meeting

SPOTLIGHT_CHANGED = "spotlightChanged"
# How long the cache keeps a spotlight: longer than any call, and not forever for meetings whose
# call ended with someone spotlit (the row check makes an old one harmless anyway).
SPOTLIGHT_KEEP_SECONDS = 24 * 60 * 60


class SpotlightError(ValidationError):
    """The request cannot be carried out (that participant is not in the call). Django's
    ValidationError carries `message` and `code`, which become the error response's."""


def _key(meeting: Meeting) -> str:
    return f"rooms:spotlight:{meeting.pk}"


def spotlit_peer(meeting: Meeting) -> str | None:
    """The peer on everyone's stage, while that person's presence row is in the call."""
    stored = cache.get(_key(meeting))
    if not isinstance(stored, dict):
        return None
    peer_id, row = stored.get("peerId"), stored.get("participant")
    if not isinstance(peer_id, str) or not isinstance(row, int):
        return None
    participant = presence.present_participant_by_pk(meeting.pk, row)
    if participant is None or participant.peer_id != peer_id:
        return None
    return peer_id


def spotlight_state(meeting: Meeting) -> dict[str, Any]:
    """`spotlight` of the join response: {peerId} (null: nobody)."""
    return {"peerId": spotlit_peer(meeting)}


def set_spotlight(
    actor: Actor, meeting: Meeting, peer_id: str | None, *, by_peer_id: str
) -> dict[str, Any]:
    """A moderator spotlights `peer_id` for everyone (None: removes the spotlight). Everyone
    gets `spotlightChanged {peerId, by}` when it changes. Refused for anyone but a moderator
    (`not_moderator`) and for someone not in the call (`not_in_call`)."""
    moderation.check_can_moderate(actor, meeting)
    with transaction.atomic():
        # Under the meeting's row lock, as presence's joins and leaves are: two moderators'
        # changes are stored and announced in the order they were made.
        Meeting.objects.select_for_update().filter(pk=meeting.pk).first()
        target = None
        if peer_id is not None:
            target = presence.present_participant(meeting.pk, peer_id)
            if target is None:
                raise SpotlightError("That participant is not in the call.", code="not_in_call")
        if spotlit_peer(meeting) == peer_id:
            return {"peerId": peer_id}
        if target is None:
            cache.delete(_key(meeting))
        else:
            cache.set(
                _key(meeting),
                {"peerId": peer_id, "participant": target.pk},
                timeout=SPOTLIGHT_KEEP_SECONDS,
            )
        events.send_after_commit(
            meeting.code, SPOTLIGHT_CHANGED, {"peerId": peer_id, "by": by_peer_id}
        )
    return {"peerId": peer_id}
