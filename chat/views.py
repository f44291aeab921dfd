"""Thin views over chat.services: who may read a transcript is decided there."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chat import services


@login_required
def transcript(request: HttpRequest, code: str) -> HttpResponse:
    meeting = services.transcript_meeting_or_404(request.user, code)
    context = {"meeting": meeting, "transcript_messages": services.history_for_transcript(meeting)}
    return render(request, "chat/transcript.html", context)


@login_required
def transcript_text(request: HttpRequest, code: str) -> HttpResponse:
    meeting = services.transcript_meeting_or_404(request.user, code)
    response = HttpResponse(
        services.transcript_text(meeting), content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="meet-{meeting.code}-chat.txt"'
    return response
