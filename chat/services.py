"""Chat's domain layer: post, read and delete messages. The signaling consumer, the transcript
views and the admin call these; none of them touches Message rows directly.

Posting stores the message first and broadcasts it after the commit ("chatMessage" {message} to
the group `room.<code>`), so whatever a participant sees is already in the history that
reconnecting and late participants read.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from redis.exceptions import LockError

from accounts.models import User
from chat.app_settings import app_settings
from chat.models import MAX_MESSAGE_LENGTH, Message
from chat.rate_limit import take_message_slot
from chat.redis_client import redis_client, redis_key
from rooms import access, audit, moderation, presence
from rooms.access import Actor
from rooms.audit import Action, Origin
from rooms.events import send_after_commit
from rooms.models import Meeting

MAX_CLIENT_ID_LENGTH = 64
MAX_AUTHOR_NAME_LENGTH = 100
# C0 control characters other than tab and newline: invisible, and PostgreSQL refuses NUL.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Posting holds the meeting's lock from insert to broadcast; this is far above that time.
_POST_LOCK_SECONDS = 10


class ChatError(ValidationError):
    """A message or request that chat refuses. `code` is the consumer's errorCode (see
    docs/chat-and-moderation.md for the list), `message` its human-readable reason."""


@dataclass(frozen=True)
class ChatAuthor:
    """Who sends a message: a signed-in user, or a guest known by `guest_key` (a stable,
    non-secret id of the guest's browser session). `display_name` is shown with the message;
    `peer_id` is the sending tab's call id."""

    display_name: str
    user: User | None = None
    guest_key: str = ""
    peer_id: str = ""

    @property
    def rate_limit_key(self) -> str:
        return f"user:{self.user.pk}" if self.user is not None else f"guest:{self.guest_key}"


# --- serialisation ------------------------------------------------------------------------


def message_dict(message: Message) -> dict[str, Any]:
    """The chat message object of the signaling protocol (contract 1). A deleted message keeps
    its place in the history but not its text."""
    data: dict[str, Any] = {
        "id": message.pk,
        "clientId": message.client_id,
        "authorName": message.author_name,
        "authorIsGuest": message.by_guest,
        "text": "" if message.is_deleted else message.text,
        "sentAt": iso_utc(message),
        "deleted": message.is_deleted,
    }
    if message.author_peer_id:
        data["authorPeerId"] = message.author_peer_id
    return data


def iso_utc(message: Message) -> str:
    sent_at = message.sent_at.astimezone(datetime.UTC)
    return sent_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- posting ------------------------------------------------------------------------------


def check_message_text(text: object) -> str:
    """The text to store: outer whitespace and invisible control characters removed; ChatError
    when nothing is left (code empty_message) or it is too long (message_too_long)."""
    if not isinstance(text, str):
        raise ChatError("The message must be text.", code="invalid_text")
    cleaned = _CONTROL_CHARACTERS.sub("", text.replace("\r\n", "\n")).strip()
    if not cleaned:
        raise ChatError("The message is empty.", code="empty_message")
    if len(cleaned) > MAX_MESSAGE_LENGTH:
        raise ChatError(
            f"Messages can be at most {MAX_MESSAGE_LENGTH} characters.", code="message_too_long"
        )
    return cleaned


def check_client_id(client_id: object) -> str:
    if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID_LENGTH:
        raise ChatError(
            f"clientId must be a string of 1 to {MAX_CLIENT_ID_LENGTH} characters.",
            code="invalid_client_id",
        )
    return client_id


def check_author(meeting: Meeting, author: ChatAuthor) -> None:
    if (author.user is None) == (not author.guest_key):
        raise ChatError("A message needs one author: a user or a guest.", code="invalid_author")
    if meeting.is_ended:
        raise ChatError("The meeting has ended.", code="meeting_ended")
    if moderation.is_removed(meeting, user=author.user, guest_key=author.guest_key):
        raise ChatError("You were removed from this meeting.", code="removed")


def post_message(
    meeting: Meeting, *, author: ChatAuthor, client_id: object, text: object
) -> Message:
    """Store a message and, after the commit, send "chatMessage" {message} to the room.

    Idempotent per (meeting, author, client_id): a retry returns the stored message and sends
    nothing (nor counts against the rate limit). Refusals are ChatError with code
    invalid_client_id, invalid_text, empty_message, message_too_long, rate_limited, busy,
    meeting_ended, removed or invalid_author.

    Call outside a transaction: messages of one meeting are posted one at a time under a
    Redis lock held from the insert to the broadcast, so ids grow in commit order (history
    `since_id` never skips a late commit) and every participant receives messages in id order.
    Inside a caller's transaction the broadcast waits for the caller's commit, outside the lock.
    """
    client_id = check_client_id(client_id)
    cleaned_text = check_message_text(text)
    check_author(meeting, author)
    existing = _find_by_client_id(meeting, author, client_id)
    if existing is not None:
        return existing
    if not take_message_slot(author.rate_limit_key):
        raise ChatError(
            "You are sending messages too quickly; wait a few seconds.", code="rate_limited"
        )
    lock = redis_client().lock(
        redis_key("post", meeting.pk),
        timeout=_POST_LOCK_SECONDS,
        blocking_timeout=_POST_LOCK_SECONDS,
    )
    if not lock.acquire():
        raise ChatError("Chat is busy; try again.", code="busy")
    try:
        return _store_and_broadcast(meeting, author, client_id, cleaned_text)
    finally:
        # LockError: it expired meanwhile and the next poster already took it over.
        with contextlib.suppress(LockError):
            lock.release()


def _store_and_broadcast(
    meeting: Meeting, author: ChatAuthor, client_id: str, text: str
) -> Message:
    existing = _find_by_client_id(meeting, author, client_id)
    if existing is not None:
        return existing  # a concurrent retry of the same message got the lock first
    try:
        with transaction.atomic():
            message = Message.objects.create(
                meeting=meeting,
                author_user=author.user,
                author_guest_key="" if author.user is not None else author.guest_key,
                author_name=author.display_name.strip()[:MAX_AUTHOR_NAME_LENGTH] or "Guest",
                author_peer_id=author.peer_id[:64],
                client_id=client_id,
                text=text,
            )
            send_after_commit(meeting.code, "chatMessage", {"message": message_dict(message)})
    except IntegrityError:
        # The same retry raced in through another process between our look-up and insert.
        existing = _find_by_client_id(meeting, author, client_id)
        if existing is None:
            raise
        return existing
    return message


def _find_by_client_id(meeting: Meeting, author: ChatAuthor, client_id: str) -> Message | None:
    messages = Message.objects.filter(meeting=meeting, client_id=client_id)
    if author.user is not None:
        return messages.filter(author_user=author.user).first()
    return messages.filter(author_user=None, author_guest_key=author.guest_key).first()


# --- reading ------------------------------------------------------------------------------


def check_since_id(since_id: object) -> int | None:
    if since_id is None:
        return None
    if isinstance(since_id, bool) or not isinstance(since_id, int) or since_id < 0:
        raise ChatError("sinceId must be a message id.", code="invalid_since_id")
    return since_id


def history(meeting: Meeting, since_id: object = None, limit: int | None = None) -> list[Message]:
    """Messages after `since_id` (all without one), oldest first, at most `limit` (default
    CHAT_HISTORY_LIMIT); a full page means there may be more: ask again from its last id."""
    after = check_since_id(since_id)
    messages = Message.objects.filter(meeting=meeting).order_by("id")
    if after is not None:
        messages = messages.filter(id__gt=after)
    return list(messages[: limit or app_settings.HISTORY_LIMIT])


def recent_messages(meeting: Meeting, limit: int | None = None) -> list[Message]:
    """The latest messages, oldest first: what a joining participant is shown."""
    latest = Message.objects.filter(meeting=meeting).order_by("-id")
    return list(reversed(latest[: limit or app_settings.RECENT_LIMIT]))


def message_in_meeting(meeting: Meeting, message_id: object) -> Message:
    """The meeting's message with this id (a client names messages by id), or ChatError."""
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        raise ChatError("messageId must be a message id.", code="invalid_message_id")
    message = Message.objects.filter(meeting=meeting, pk=message_id).first()
    if message is None:
        raise ChatError("There is no such message in this meeting.", code="message_not_found")
    return message


# --- deleting -----------------------------------------------------------------------------


def delete_message(
    actor: Actor, message: Message, *, origin: Origin | str = Origin.CALL
) -> Message:
    """Delete a message for everyone (host, co-hosts and staff only; others get
    moderation.ModerationDenied): it stays in the history marked deleted, without its text, and
    "chatMessageDeleted" {messageId} goes to the room. Deleting twice changes nothing (and
    records nothing: the audit log has the first deletion, with `origin` the caller's layer)."""
    moderator, _role = moderation.check_moderator(actor, message.meeting)
    with transaction.atomic():
        current = Message.objects.select_for_update().get(pk=message.pk)
        if current.is_deleted:
            return current
        current.deleted_at = timezone.now()
        current.deleted_by = moderator
        current.save(update_fields=["deleted_at", "deleted_by"])
        # Who wrote it and its id, never its text: a deleted message must not live on here.
        audit.record(
            Action.CHAT_DELETE,
            meeting=current.meeting,
            actor=moderator,
            origin=origin,
            target=f"message {current.pk} by {_author_label(current)}",
            details={"message_id": current.pk, "author_user_id": current.author_user_id},
        )
        send_after_commit(current.meeting.code, "chatMessageDeleted", {"messageId": current.pk})
    return current


def _author_label(message: Message) -> str:
    if message.author_user_id is not None:
        return f"{message.author_name} (user {message.author_user_id})"
    return audit.guest_target(message.author_name)


# --- the transcript -----------------------------------------------------------------------


def can_read_transcript(user: Actor, meeting: Meeting) -> bool:
    """Whether a signed-in user may read the meeting's chat afterwards: whoever may see the
    meeting's page (host, co-hosts, invitees, staff) and anyone who was in the call. Nobody
    else, and nobody a moderator removed from the meeting (from the removal on, until they are
    re-admitted)."""
    person = access.signed_in(user)
    if person is None or moderation.is_removed(meeting, user=person):
        return False
    return access.can_view_details(person, meeting) or presence.was_in_the_call(person, meeting)


def transcript_meeting_or_404(user: Actor, code: str) -> Meeting:
    """The meeting with this code when the user may read its chat; Http404 otherwise, so that
    outsiders cannot tell a meeting they may not see from one that does not exist."""
    meeting = Meeting.objects.filter(code=code).first()
    if meeting is None or not can_read_transcript(user, meeting):
        raise Http404("No such meeting.")
    return meeting


def history_for_transcript(meeting: Meeting) -> list[Message]:
    return list(Message.objects.filter(meeting=meeting).order_by("id"))


def transcript_context(user: Actor, meeting: Meeting) -> dict[str, Any]:
    """What the meeting page adds to its context to show "chat/_transcript.html":

    context.update(chat.services.transcript_context(request.user, meeting))
    {% if show_transcript %}{% include "chat/_transcript.html" %}{% endif %}
    """
    if not can_read_transcript(user, meeting):
        return {"show_transcript": False}
    return {"show_transcript": True, "transcript_messages": history_for_transcript(meeting)}


def transcript_text(meeting: Meeting) -> str:
    """The chat as plain text, one message per entry, times in UTC:

    [2026-11-24 12:00:05 UTC] Ada: first line
        second line
    [2026-11-24 12:00:09 UTC] Visitor (guest): hello
    """
    lines = [f"Chat of {meeting.title} ({meeting.code})", ""]
    for message in history_for_transcript(meeting):
        sent_at = message.sent_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        text = "(message deleted)" if message.is_deleted else message.text
        first, *rest = text.split("\n")
        author = f"{message.author_name} (guest)" if message.by_guest else message.author_name
        lines.append(f"[{sent_at}] {author}: {first}")
        lines.extend(f"    {line}" for line in rest)
    return "\n".join(lines) + "\n"
