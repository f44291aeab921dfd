"""Moderation in the admin: lock, unlock and end meetings, and a live meeting's participants
page with Mute, Remove and Re-admit. Mixed into the meetings admin (rooms/admin.py).

Every action calls rooms.moderation with the admin user as actor (staff may moderate any
meeting), so the room is told exactly as when a host does it in the call, and each is written
to the admin log (LogEntry: who, what, when) through ModelAdmin.log_change, and by the domain
to the audit log (rooms.audit) with origin "admin".
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from rooms import moderation, presence
from rooms.audit import Origin
from rooms.models import Meeting, Removal

MODERATION_ACTIONS = ("lock_meetings", "unlock_meetings", "end_meetings_for_everyone")


class MeetingModerationAdminMixin(admin.ModelAdmin):
    """Put it first among the meetings admin's bases: it adds its actions to the admin's own and
    a "Participants" button to the change form (unless the admin has a change form of its own)."""

    # A meetings admin that names a change form of its own overrides this one (it comes first
    # in the MRO); its form should then show the "Participants" button itself.
    change_form_template = "admin/rooms/meeting/moderation_change_form.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actions = [*(self.actions or []), *MODERATION_ACTIONS]

    # --- list actions -----------------------------------------------------------------------

    @admin.action(description="Lock (nobody new enters)", permissions=["change"])
    def lock_meetings(self, request: HttpRequest, queryset: QuerySet[Meeting]) -> None:
        self._set_locked(request, queryset, True)

    @admin.action(description="Unlock", permissions=["change"])
    def unlock_meetings(self, request: HttpRequest, queryset: QuerySet[Meeting]) -> None:
        self._set_locked(request, queryset, False)

    def _set_locked(self, request: HttpRequest, queryset: QuerySet[Meeting], locked: bool) -> None:
        changed = 0
        for meeting in queryset:
            if meeting.is_ended or meeting.locked == locked:
                continue
            moderation.set_locked(request.user, meeting, locked, origin=Origin.ADMIN)
            self.log_change(request, meeting, "Locked" if locked else "Unlocked")
            changed += 1
        verb = "Locked" if locked else "Unlocked"
        self.message_user(request, f"{verb} {changed} meeting(s).", messages.SUCCESS)

    @admin.action(description="End for everyone", permissions=["change"])
    def end_meetings_for_everyone(self, request: HttpRequest, queryset: QuerySet[Meeting]) -> None:
        ended = 0
        for meeting in queryset:
            if meeting.is_ended:
                continue
            moderation.end_meeting(request.user, meeting, origin=Origin.ADMIN)
            self.log_change(request, meeting, "Ended for everyone")
            ended += 1
        self.message_user(request, f"Ended {ended} meeting(s) for everyone.", messages.SUCCESS)

    # --- the participants page --------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        opts = self.model._meta
        participants = path(
            "<path:object_id>/participants/",
            self.admin_site.admin_view(self.participants_view),
            name=f"{opts.app_label}_{opts.model_name}_participants",
        )
        return [participants, *super().get_urls()]

    def participants_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        meeting = get_object_or_404(Meeting, pk=object_id)
        if not self.has_change_permission(request, meeting):
            raise PermissionDenied
        if request.method == "POST":
            self._moderate_from_form(request, meeting)
            return HttpResponseRedirect(request.path)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": meeting,
            "meeting": meeting,
            "title": f"Participants of {meeting}",
            "participants": presence.present_participants(meeting.pk),
            "removals": list(meeting.removals.select_related("user", "removed_by")),
            "waiting": moderation.waiting_requests(meeting),
        }
        return TemplateResponse(request, "admin/rooms/meeting/participants.html", context)

    def _moderate_from_form(self, request: HttpRequest, meeting: Meeting) -> None:
        action = request.POST.get("action", "")
        try:
            if action in {"mute", "remove"}:
                participant = presence.present_participant_by_pk(
                    meeting.pk, _int(request.POST.get("participant"))
                )
                if participant is None:
                    self._gone(request)
                    return
                if action == "mute":
                    moderation.mute_participant(
                        request.user, meeting, participant.peer_id, origin=Origin.ADMIN
                    )
                    done = f"Muted {participant.display_name}"
                else:
                    moderation.remove_participant(
                        request.user, meeting, peer_id=participant.peer_id, origin=Origin.ADMIN
                    )
                    done = f"Removed {participant.display_name}"
            elif action == "readmit":
                removal = meeting.removals.get(pk=_int(request.POST.get("removal")))
                moderation.readmit(
                    request.user,
                    meeting,
                    user=removal.user,
                    guest_key=removal.guest_key,
                    origin=Origin.ADMIN,
                )
                done = f"Re-admitted {removal.display_name or removal.user or 'a guest'}"
            else:
                self.message_user(request, "Unknown action.", messages.ERROR)
                return
        except Removal.DoesNotExist:
            self._gone(request)
            return
        except (PermissionDenied, ValidationError) as exc:
            self.message_user(request, getattr(exc, "message", str(exc)), messages.ERROR)
            return
        self.log_change(request, meeting, done)
        self.message_user(request, f"{done}.", messages.SUCCESS)

    def _gone(self, request: HttpRequest) -> None:
        self.message_user(request, "That participant is no longer here.", messages.WARNING)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return -1
