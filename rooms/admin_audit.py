"""The audit log in the admin (rooms.audit): every moderation and administration action,
read-only for everyone, superusers included. Entries are written only by the domain functions
that act; neither the change form, the delete view nor the bulk "delete selected" action may
touch them (the model refuses as well, rooms.models.AuditEntry)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from rooms.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "meeting_code", "actor_name", "action", "target", "origin")
    list_filter = ("action", "origin", ("created_at", admin.DateFieldListFilter))
    search_fields = ("meeting_code", "actor_name", "target")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    fields = (
        "created_at",
        "meeting",
        "meeting_code",
        "actor",
        "actor_name",
        "action",
        "target",
        "origin",
        "details",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Without delete permission Django hides "delete selected" already; taking it out by
        # name keeps it out should a permission ever be granted by mistake.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
