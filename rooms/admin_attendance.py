"""Attendance in the admin (rooms.attendance): every stay in every call, read-only for
everyone, superusers included: the record is written only by presence, never by hand."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from rooms.models import AttendanceSession
from rooms.templatetags.meeting_format import format_duration


@admin.register(AttendanceSession)
class AttendanceSessionAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "meeting",
        "occurrence_start",
        "role",
        "is_guest",
        "browser",
        "joined_at",
        "left_at",
        "time_in_call",
    )
    list_filter = (
        "role",
        "is_guest",
        "browser",
        ("joined_at", admin.DateFieldListFilter),
        ("occurrence_start", admin.DateFieldListFilter),
    )
    list_select_related = ("meeting",)
    search_fields = ("display_name", "email", "meeting__title", "meeting__code")
    date_hierarchy = "joined_at"
    ordering = ("-joined_at", "-pk")
    fields = (
        "meeting",
        "occurrence_start",
        "display_name",
        "email",
        "user",
        "is_guest",
        "guest_key",
        "role",
        "browser",
        "joined_at",
        "left_at",
        "time_in_call",
        "participant",
    )
    readonly_fields = fields

    @admin.display(description="Time in call")
    def time_in_call(self, session: AttendanceSession) -> str:
        duration = session.duration
        return format_duration(duration) if duration is not None else "in the call"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
