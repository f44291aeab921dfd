"""Chat messages that are kept: stored before anyone sees them, readable after the meeting."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

MAX_MESSAGE_LENGTH = 2000


class Message(models.Model):
    """One chat message in one meeting.

    The author is a signed-in user, or a guest known by their session key; `author_name` is the
    name shown when it was sent (people rename themselves mid-call). `client_id` is the sender's
    id for the message: a retry with the same one finds the stored message instead of adding a
    second, which the two conditional unique constraints guarantee even across processes.
    """

    meeting = models.ForeignKey(
        "rooms.Meeting", on_delete=models.CASCADE, related_name="chat_messages"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="chat_messages",
    )
    author_guest_key = models.CharField(
        max_length=64, blank=True, default="", help_text="Session key of a guest author."
    )
    author_name = models.CharField(max_length=100)
    author_peer_id = models.CharField(max_length=64, blank=True, default="")
    client_id = models.CharField(max_length=64)
    text = models.TextField(max_length=MAX_MESSAGE_LENGTH)
    sent_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["meeting", "id"], name="chat_message_meeting_id")]
        constraints = [
            models.UniqueConstraint(
                fields=["meeting", "author_user", "client_id"],
                condition=Q(author_user__isnull=False),
                name="chat_message_unique_user_client_id",
            ),
            models.UniqueConstraint(
                fields=["meeting", "author_guest_key", "client_id"],
                condition=Q(author_user__isnull=True),
                name="chat_message_unique_guest_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.text[:40]}"

    @property
    def by_guest(self) -> bool:
        """Written by a guest (a name they typed, not an account's): marked where shown."""
        return self.author_user_id is None and bool(self.author_guest_key)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None
