"""Chat in the admin: read the messages of any meeting and delete one for everyone.

Messages are never added or edited here: what people wrote is what they wrote. Deleting goes
through chat.services.delete_message (participants see it vanish) and is recorded in the admin
log with who did it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from chat import services
from chat.models import Message
from rooms.audit import Origin


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["sent_at", "meeting", "author_name", "short_text", "is_deleted"]
    list_filter = [("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["text", "author_name", "meeting__code"]
    list_select_related = ["meeting"]
    date_hierarchy = "sent_at"
    readonly_fields = [
        "meeting",
        "author_user",
        "author_name",
        "author_peer_id",
        "client_id",
        "text",
        "sent_at",
        "edited_at",
        "deleted_at",
        "deleted_by",
    ]
    exclude = ["author_guest_key"]
    actions = ["delete_for_everyone"]

    @admin.display(description="text")
    def short_text(self, message: Message) -> str:
        return message.text if len(message.text) <= 80 else message.text[:79] + "…"

    @admin.display(boolean=True, description="deleted")
    def is_deleted(self, message: Message) -> bool:
        return message.is_deleted

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        # Removing rows would leave holes nobody is told about; "delete for everyone" keeps the
        # place in the history and tells the room.
        return False

    @admin.action(description="Delete for everyone", permissions=["change"])
    def delete_for_everyone(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        deleted = 0
        for message in queryset.select_related("meeting"):
            if message.is_deleted:
                continue
            services.delete_message(request.user, message, origin=Origin.ADMIN)
            self.log_change(request, message, "Deleted for everyone")
            deleted += 1
        self.message_user(request, f"Deleted {deleted} message(s) for everyone.", messages.SUCCESS)
