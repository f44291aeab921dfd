"""Meetings in the admin: search, filters, invitations inline with their calendar state, and
the reminders already sent."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from rooms import (
    admin_attendance,  # noqa: F401  (registers the read-only attendance)
    admin_audit,  # noqa: F401  (registers the read-only audit log)
    audit,
)
from rooms.admin_moderation import MeetingModerationAdminMixin
from rooms.models import Invitation, Meeting, ReminderDelivery


class InvitationInline(admin.TabularInline):
    model = Invitation
    extra = 0
    fields = (
        "email",
        "response",
        "responded_at",
        "last_sent_method",
        "last_sent_sequence",
        "last_sent_at",
    )
    readonly_fields = ("responded_at", "last_sent_method", "last_sent_sequence", "last_sent_at")


class ReminderDeliveryInline(admin.TabularInline):
    model = ReminderDelivery
    extra = 0
    can_delete = False
    fields = ("occurrence_start", "email", "claimed_at", "sent_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Meeting)
class MeetingAdmin(MeetingModerationAdminMixin, admin.ModelAdmin):
    list_display = (
        "title",
        "code",
        "host",
        "starts_at",
        "status",
        "access_policy",
        "locked",
        "sequence",
        "invitation_count",
    )
    list_filter = (
        "status",
        "kind",
        "access_policy",
        "locked",
        ("starts_at", admin.DateFieldListFilter),
    )
    date_hierarchy = "starts_at"
    search_fields = ("title", "code", "host__email", "invitations__email")
    # locked and status change only through the moderation actions, which reach the live
    # room and write the admin log; editing them on the form would do neither.
    readonly_fields = (
        "code",
        "ical_uid",
        "sequence",
        "created_at",
        "updated_at",
        "ended_at",
        "locked",
        "status",
        "kind",
        "repeats",
    )
    # The host by name, searched as typed (the users' admin searches name and address).
    autocomplete_fields = ("host",)
    filter_horizontal = ("co_hosts",)
    inlines = (InvitationInline, ReminderDeliveryInline)
    fieldsets = (
        (None, {"fields": ("title", "description", "host", "co_hosts", "code")}),
        ("When", {"fields": ("starts_at", "ends_at", "time_zone", "repeats", "recurrence")}),
        ("Access", {"fields": ("access_policy", "locked", "kind", "status", "ended_at")}),
        ("Calendar", {"fields": ("ical_uid", "sequence", "created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Meeting]:
        from django.db.models import Count

        return (
            super()
            .get_queryset(request)
            .select_related("host")
            .annotate(invitation_total=Count("invitations", distinct=True))
        )

    def save_model(
        self, request: HttpRequest, obj: Meeting, form: ModelForm[Meeting], change: bool
    ) -> None:
        # A new host is a role change: the audit log has who handed the meeting to whom.
        previous_host = form.initial.get("host") if change else None
        super().save_model(request, obj, form, change)
        if change and "host" in form.changed_data:
            audit.record(
                audit.Action.HOST_CHANGE,
                meeting=obj,
                actor=request.user,
                origin=audit.Origin.ADMIN,
                target=audit.user_target(obj.host),
                details={"previous_host_id": _pk(previous_host), "host_id": obj.host_id},
            )

    def save_related(
        self, request: HttpRequest, form: ModelForm[Meeting], formsets: Any, change: bool
    ) -> None:
        # The co-hosts are set by the form's save_m2m, here: compare before and after, inside
        # the change view's transaction, so the audit log has every co-host made or unmade.
        meeting = form.instance
        before = set(meeting.co_hosts.values_list("pk", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        after = set(meeting.co_hosts.values_list("pk", flat=True))
        audit.record_co_host_changes(
            request.user, meeting, before=before, after=after, origin=audit.Origin.ADMIN
        )

    @admin.display(description="Repeats")
    def repeats(self, meeting: Meeting) -> str:
        """The rule in words, as the meeting page says it, above the RRULE box it reads."""
        return meeting.recurrence_label or "Does not repeat"

    @admin.display(description="Invitations", ordering="invitation_total")
    def invitation_count(self, meeting: Meeting) -> int:
        return getattr(meeting, "invitation_total", 0)


@admin.register(ReminderDelivery)
class ReminderDeliveryAdmin(admin.ModelAdmin):
    list_display = ("meeting", "occurrence_start", "email", "claimed_at", "sent_at")
    list_filter = (("occurrence_start", admin.DateFieldListFilter),)
    search_fields = ("meeting__title", "meeting__code", "email")
    readonly_fields = ("meeting", "occurrence_start", "email", "claimed_at", "sent_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


def _pk(value: object) -> int | None:
    """A form's initial value for a foreign key: its primary key (or the object)."""
    if value is None:
        return None
    return int(getattr(value, "pk", value))  # type: ignore[call-overload]
