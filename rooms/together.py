"""Together in the call: raised hands and reactions (docs/chat-and-moderation.md, "Raised hands
and reactions"; the requests are rooms.signaling.together_requests).

Raised hands are state every web process shares: `Participant.hand_raised_at` on the presence
row of the peer (rooms.presence). The meeting's hand queue is its present rows with a hand
raised, in the order raised, so:

- the order is the server's, the same for everyone; each change is made under the meeting's row
  lock (as presence's joins and leaves are) and announced with the whole queue;
- a reconnect within the grace period resumes the same row, so it keeps the hand and its place;
- a participant who leaves (leave, removal, the end of the grace period, the sweep) is no longer
  present, so their hand is gone from the queue; clients drop it on `peerClosed`.

Every `handsChanged` carries a revision from a counter in the shared cache (Redis), taken under
the meeting's lock: two changes committed by different processes may reach a client in either
order, and the client keeps the snapshot with the higher revision.

Reactions are not stored: a reaction is announced to the room (`reaction`) and forgotten. Each
person (a signed-in user across their tabs, or a guest key) may send REACTIONS_PER_WINDOW in a
window of REACTION_WINDOW_SECONDS, counted in the shared cache so every web process counts
alike. The host or a co-host can turn reactions off for the meeting (`Meeting.reactions_enabled`).

Who may act: a participant present in the call and not removed raises and lowers their own hand
and reacts; the meeting's moderators (rooms.moderation: host, co-hosts, staff) also lower
anyone's hand, lower all hands, and switch reactions on or off.

The synchronous functions use the ORM: async callers go through database_sync_to_async.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from rooms import moderation, presence
from rooms.access import Actor, signed_in
from rooms.events import send_after_commit
from rooms.models import Meeting, Participant

# A raised hand lowers itself once its owner has been the active speaker (the SFU's
# `activeSpeaker`) for this long in all since raising it, as Meet's does (pauses in speech add
# up: the SFU names nobody for each pause longer than its 300 ms window). The speaker's own
# client does it (it hears `activeSpeaker` naming itself) with an ordinary `lowerHand`.
LOWER_AFTER_SPEAKING_SECONDS = 3

# Meet's reactions, in Meet's order, with the names screen readers and buttons use.
REACTIONS: dict[str, str] = {
    "💖": "Sparkling heart",
    "👍": "Thumbs up",
    "🎉": "Party popper",
    "👏": "Clapping hands",
    "😂": "Face with tears of joy",
    "😮": "Face with open mouth",
    "😢": "Crying face",
    "🤔": "Thinking face",
    "👎": "Thumbs down",
}
REACTIONS_PER_WINDOW = 5
REACTION_WINDOW_SECONDS = 5

HANDS_CHANGED = "handsChanged"
REACTION = "reaction"
REACTIONS_ENABLED = "reactionsEnabled"


class TogetherError(ValidationError):
    """The request cannot be carried out (not in the call, an unknown reaction). Django's
    ValidationError carries `message` and `code`, which become the error response's."""


class TogetherDenied(moderation.ModerationDenied):
    """Refused for who the actor is or what the meeting allows now (`removed`, `reactions_off`,
    `too_many_reactions`); moderators' actions refuse others with `not_moderator`."""


# --- who may act ----------------------------------------------------------------------------


def participant_in_call(
    meeting: Meeting, peer_id: str, *, user: User | None, guest_key: str
) -> Participant:
    """The actor's own presence row: present in the call, and not removed since (a removal is
    stored before the removed person's socket closes: nothing they send meanwhile counts)."""
    if moderation.is_removed(meeting, user=user, guest_key=guest_key):
        raise TogetherDenied("You were removed from this meeting.", "removed")
    participant = presence.present_participant(meeting.pk, peer_id)
    if participant is None:
        raise TogetherError("You are not in the call.", code="not_in_call")
    return participant


# --- raised hands ---------------------------------------------------------------------------


def _present_hands(meeting: Meeting) -> list[Participant]:
    return list(
        Participant.objects.filter(
            meeting=meeting, left_at__isnull=True, hand_raised_at__isnull=False
        ).order_by("hand_raised_at", "pk")
    )


def hand_queue(meeting: Meeting) -> list[dict[str, Any]]:
    """The raised hands, first raised first: a hand's position is its index + 1."""
    return [
        {"peerId": p.peer_id, "raisedAt": _iso(p.hand_raised_at)} for p in _present_hands(meeting)
    ]


def hands_state(meeting: Meeting) -> dict[str, Any]:
    """The queue as a newcomer (the join response) or a request's response sees it. The revision
    is read before the queue: a change between the two reads then comes with a higher revision,
    which the client takes, rather than this queue being labelled newer than it is."""
    revision = cache.get(_revision_key(meeting)) or 0
    return {"queue": hand_queue(meeting), "revision": int(revision)}


def raise_hand(
    meeting: Meeting, peer_id: str, *, user: User | None, guest_key: str
) -> dict[str, Any]:
    """Raise the peer's hand at the end of the queue (raising it again keeps its place).
    Everyone gets `handsChanged` with the new queue."""
    with transaction.atomic():
        _lock(meeting)
        participant = participant_in_call(meeting, peer_id, user=user, guest_key=guest_key)
        if participant.hand_raised_at is not None:
            return hands_state(meeting)
        participant.hand_raised_at = _next_raise_time(meeting)
        participant.save(update_fields=["hand_raised_at"])
        return _announce(meeting, raised=[peer_id], lowered=[], by=peer_id)


def lower_hand(
    actor: Actor,
    meeting: Meeting,
    *,
    by_peer_id: str,
    peer_id: str,
    guest_key: str,
) -> dict[str, Any]:
    """Lower `peer_id`'s hand: one's own (by_peer_id == peer_id), or, for a moderator, anyone's.
    A hand already down is no change (two moderators clicking at once, or the hand lowering
    itself as a moderator lowers it)."""
    user = signed_in(actor)
    with transaction.atomic():
        _lock(meeting)
        participant_in_call(meeting, by_peer_id, user=user, guest_key=guest_key)
        if peer_id != by_peer_id:
            moderation.check_can_moderate(actor, meeting)
        target = presence.present_participant(meeting.pk, peer_id)
        if target is None:
            raise TogetherError("That participant is not in the call.", code="not_in_call")
        if target.hand_raised_at is None:
            return hands_state(meeting)
        target.hand_raised_at = None
        target.save(update_fields=["hand_raised_at"])
        return _announce(meeting, raised=[], lowered=[peer_id], by=by_peer_id)


def lower_all_hands(actor: Actor, meeting: Meeting, *, by_peer_id: str) -> dict[str, Any]:
    """A moderator lowers every raised hand ("Lower all hands")."""
    moderation.check_can_moderate(actor, meeting)
    user = signed_in(actor)
    with transaction.atomic():
        _lock(meeting)
        participant_in_call(meeting, by_peer_id, user=user, guest_key="")
        raised = [p.peer_id for p in _present_hands(meeting)]
        if not raised:
            return hands_state(meeting)
        Participant.objects.filter(
            meeting=meeting, left_at__isnull=True, peer_id__in=raised
        ).update(hand_raised_at=None)
        return _announce(meeting, raised=[], lowered=raised, by=by_peer_id)


def _announce(
    meeting: Meeting, *, raised: list[str], lowered: list[str], by: str
) -> dict[str, Any]:
    """Under the meeting's lock: the next revision and the queue as it is now, sent to the
    room once the transaction commits."""
    state = {"queue": hand_queue(meeting), "revision": _next_revision(meeting)}
    send_after_commit(
        meeting.code, HANDS_CHANGED, {**state, "raised": raised, "lowered": lowered, "by": by}
    )
    return state


def _next_raise_time(meeting: Meeting) -> dt.datetime:
    """Now, or just after the last hand raised if this process's clock is behind the one that
    raised it: a hand raised later is always behind it in the queue."""
    now = timezone.now()
    last = (
        Participant.objects.filter(
            meeting=meeting, left_at__isnull=True, hand_raised_at__isnull=False
        )
        .order_by("-hand_raised_at")
        .values_list("hand_raised_at", flat=True)
        .first()
    )
    if last is not None and last >= now:
        return last + dt.timedelta(microseconds=1)
    return now


def _revision_key(meeting: Meeting) -> str:
    return f"rooms:hands-revision:{meeting.code}"


def _next_revision(meeting: Meeting) -> int:
    """The counter starts at the current time in microseconds, so a counter the cache lost
    (evicted, Redis restarted) starts again above anything it handed out before."""
    key = _revision_key(meeting)
    cache.add(key, time.time_ns() // 1000, timeout=None)
    try:
        return int(cache.incr(key))
    except ValueError:  # gone between add and incr
        revision = time.time_ns() // 1000
        cache.set(key, revision, timeout=None)
        return revision


# --- reactions ------------------------------------------------------------------------------


def reactions_state(meeting: Meeting) -> dict[str, Any]:
    """What the join response says about reactions: on or off, which, and the rate limit."""
    enabled = Meeting.objects.filter(pk=meeting.pk).values_list("reactions_enabled", flat=True)
    return {
        "enabled": bool(enabled.first()),
        "emoji": [{"emoji": emoji, "name": name} for emoji, name in REACTIONS.items()],
        "perWindow": REACTIONS_PER_WINDOW,
        "windowSeconds": REACTION_WINDOW_SECONDS,
    }


def send_reaction(
    meeting: Meeting, peer_id: str, *, user: User | None, guest_key: str, emoji: str
) -> dict[str, Any]:
    """Show `emoji` from this peer to everyone (`reaction {peerId, emoji}`, the sender too).
    Refused when reactions are off for the meeting, and past the person's rate limit (nothing is
    sent then)."""
    if emoji not in REACTIONS:
        raise TogetherError("That is not one of the reactions.", code="unknown_emoji")
    participant_in_call(meeting, peer_id, user=user, guest_key=guest_key)
    if not Meeting.objects.filter(pk=meeting.pk, reactions_enabled=True).exists():
        raise TogetherDenied("The host turned reactions off.", "reactions_off")
    if not _may_react(meeting, user, guest_key):
        raise TogetherDenied(
            f"At most {REACTIONS_PER_WINDOW} reactions every {REACTION_WINDOW_SECONDS} seconds.",
            "too_many_reactions",
        )
    reaction = {"peerId": peer_id, "emoji": emoji}
    send_after_commit(meeting.code, REACTION, reaction)
    return reaction


def _may_react(meeting: Meeting, user: User | None, guest_key: str) -> bool:
    """REACTIONS_PER_WINDOW per person in a window that starts with their first reaction (the
    count expires with it; Redis's INCR keeps the key's expiry)."""
    person = f"user-{user.pk}" if user is not None else f"guest-{guest_key}"
    key = f"rooms:reactions:{meeting.code}:{person}"
    cache.add(key, 0, timeout=REACTION_WINDOW_SECONDS)
    try:
        count = int(cache.incr(key))
    except ValueError:  # the window ended between add and incr: this one starts a new one
        cache.add(key, 1, timeout=REACTION_WINDOW_SECONDS)
        count = 1
    return count <= REACTIONS_PER_WINDOW


def set_reactions_enabled(actor: Actor, meeting: Meeting, enabled: bool) -> bool:
    """A moderator turns reactions on or off for the meeting; everyone gets
    `reactionsEnabled {enabled}` when it changes."""
    moderation.check_can_moderate(actor, meeting)
    with transaction.atomic():
        current = Meeting.objects.select_for_update().get(pk=meeting.pk)
        if current.reactions_enabled != enabled:
            current.reactions_enabled = enabled
            current.save(update_fields=["reactions_enabled", "updated_at"])
            send_after_commit(meeting.code, REACTIONS_ENABLED, {"enabled": enabled})
    meeting.reactions_enabled = enabled
    return enabled


# --- the join response ----------------------------------------------------------------------


def call_state(meeting: Meeting) -> dict[str, Any]:
    """`hands` and `reactions` for the join response (docs/protocol.md)."""
    return {
        "hands": {
            **hands_state(meeting),
            "lowerAfterSpeakingSeconds": LOWER_AFTER_SPEAKING_SECONDS,
        },
        "reactions": reactions_state(meeting),
    }


# --- helpers --------------------------------------------------------------------------------


def _lock(meeting: Meeting) -> None:
    Meeting.objects.select_for_update().filter(pk=meeting.pk).first()


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
