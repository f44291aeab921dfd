"""The audit log of moderation and administration (issue 15): who did what to whom, when, and
from where (the call, the admin, a task, a meeting page).

The domain functions that act (rooms.moderation, chat.services.delete_message, the co-host
changes of rooms.services and the meetings admin) call `record` inside the transaction that
makes the change, so an entry exists if and only if the action happened: a refused action
raises before it, a rolled-back one takes its entry with it. The caller layer says where the
action came from (`origin`); nothing here guesses it.

Entries are append-only for the application (rooms.models.AuditEntry); the host and co-hosts
read their meeting's log on its page (`page_context`), staff read every entry in the admin.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TypeAlias

from django.db import transaction

from accounts.models import User
from rooms import access
from rooms.access import Actor
from rooms.models import AuditEntry, LobbyRequest, Meeting

Action = AuditEntry.Action
Origin = AuditEntry.Origin

JsonScalar: TypeAlias = str | int | float | bool | None
# The entry's details are a few ids and counts, not a copy of what was acted on (a deleted chat
# message's text, for one, must not survive in the log).
MAX_DETAILS_LENGTH = 2000
# The meeting page shows the newest entries only; the admin has all of them.
PAGE_LIMIT = 200


def record(
    action: Action,
    *,
    meeting: Meeting | None,
    actor: Actor,
    origin: Origin | str,
    target: str = "",
    details: Mapping[str, JsonScalar] | None = None,
) -> AuditEntry:
    """Append one entry. Call it inside the action's transaction.atomic block, after the action's
    own checks: that is what makes "recorded iff it happened" hold."""
    if not transaction.get_connection().in_atomic_block:
        # Outside a transaction the entry could survive an action that then fails (or the
        # reverse); refusing here catches a caller that forgot, in tests, at once.
        raise RuntimeError("audit.record belongs inside the action's transaction.")
    origin = Origin(origin)  # ValueError for a layer nobody knows
    data = dict(details or {})
    if len(json.dumps(data)) > MAX_DETAILS_LENGTH:
        raise ValueError("Audit details are for a few ids and counts.")
    person = access.signed_in(actor)
    return AuditEntry.objects.create(
        meeting=meeting,
        meeting_code=meeting.code if meeting is not None else "",
        actor=person,
        actor_name=person_label(person) if person is not None else "",
        action=action,
        target=target[: AuditEntry._meta.get_field("target").max_length],
        origin=origin,
        details=data,
    )


# --- how targets are named -----------------------------------------------------------------


def person_label(user: User) -> str:
    """ "Name <address>": who a user was, readable after the account is gone."""
    name = user.display_name
    return f"{name} <{user.email}>" if user.email and name != user.email else user.email


def user_target(user: User, name_in_call: str = "") -> str:
    """A signed-in person acted on, with their id (the name in the call may differ from the
    account's, and both help a reader)."""
    label = person_label(user)
    if name_in_call and name_in_call != user.display_name:
        label = f"{name_in_call} — {label}"
    return f"{label} (user {user.pk})"


def guest_target(display_name: str) -> str:
    return f"{display_name or 'A guest'} (guest)"


def participant_target(user: User | None, display_name: str) -> str:
    return user_target(user, display_name) if user is not None else guest_target(display_name)


def lobby_request_target(request: LobbyRequest) -> str:
    return participant_target(request.user, request.display_name)


def record_co_host_changes(
    actor: Actor,
    meeting: Meeting,
    *,
    before: Iterable[int],
    after: Iterable[int],
    origin: Origin | str,
) -> None:
    """One entry per person made co-host or no longer co-host (ids of users, before and after
    the change, which the caller has just made in the same transaction)."""
    before_ids, after_ids = set(before), set(after)
    changed = before_ids ^ after_ids
    if not changed:
        return
    people = User.objects.in_bulk(changed)
    for user_id in sorted(changed):
        user = people.get(user_id)
        record(
            Action.COHOST_ADD if user_id in after_ids else Action.COHOST_REMOVE,
            meeting=meeting,
            actor=actor,
            origin=origin,
            target=user_target(user) if user is not None else f"user {user_id}",
            details={"user_id": user_id},
        )


# --- the meeting page ----------------------------------------------------------------------


def can_read_meeting_log(user: Actor, meeting: Meeting) -> bool:
    """The host and co-hosts read their meeting's log on its page; staff read it in the admin
    (as the attendance report)."""
    person = access.signed_in(user)
    return person is not None and access.call_role(person, meeting) in access.MODERATOR_ROLES


def meeting_log(meeting: Meeting, limit: int = PAGE_LIMIT) -> list[AuditEntry]:
    """The meeting's newest entries first."""
    return list(AuditEntry.objects.filter(meeting=meeting).order_by("-created_at", "-pk")[:limit])


def page_context(user: Actor, meeting: Meeting) -> dict[str, object]:
    """What the meeting page adds to show its "Moderation log" section:

    context.update(rooms.audit.page_context(request.user, meeting))
    {% if moderation_log %}{% include "rooms/_moderation_log.html" %}{% endif %}

    None for anyone but the host and co-hosts; otherwise the newest PAGE_LIMIT entries and
    whether there are more (read one more than shown to know)."""
    if not can_read_meeting_log(user, meeting):
        return {"moderation_log": None}
    entries = meeting_log(meeting, PAGE_LIMIT + 1)
    return {
        "moderation_log": {
            "entries": entries[:PAGE_LIMIT],
            "more": len(entries) > PAGE_LIMIT,
            "limit": PAGE_LIMIT,
        }
    }
