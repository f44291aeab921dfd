"""Meeting pages. Thin: forms in, rooms.services / rooms.access / rooms.selectors do the rest.

An unknown join code and a meeting the viewer may not see answer the same (404, or the sign-in
redirect for a signed-out visitor), and every such miss counts towards a rate limit on
guessing codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_ratelimit.core import is_ratelimited

from accounts.models import User
from chat import services as chat_services
from rooms import (
    access,
    attendance,
    audit,
    breakouts,
    calendar,
    end_states,
    in_call,
    people_directory,
    polls,
    selectors,
    services,
)
from rooms.app_settings import app_settings
from rooms.audit import Origin
from rooms.emails import invitation_from_token
from rooms.forms import CancelForm, MeetingForm, RsvpForm, split_emails, time_zone_names
from rooms.join_codes import MAX_INPUT_LENGTH, parse_join_code
from rooms.models import Invitation, Meeting
from rooms.recurrence import next_occurrence
from rooms.selectors import upcoming_meetings_for

JOIN_MISS_GROUP = "rooms.join-miss"
PEOPLE_SEARCH_GROUP = "rooms.people-search"


def _guessing_blocked(request: HttpRequest, *, count: bool) -> bool:
    return is_ratelimited(
        request,
        group=JOIN_MISS_GROUP,
        key="user_or_ip",
        rate=app_settings.JOIN_GUESS_RATE,
        increment=count,
    )


class TooManyGuesses(Exception):
    """This miss went over the limit."""


def _count_miss(request: HttpRequest) -> None:
    if _guessing_blocked(request, count=True):
        raise TooManyGuesses


def guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For views taking a join code: 429 once the viewer's misses are over the limit."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            if _guessing_blocked(request, count=False):
                raise TooManyGuesses
            return view(request, *args, **kwargs)
        except TooManyGuesses:
            response = render(request, "rooms/too_many_guesses.html", status=429)
            response["Retry-After"] = "600"
            return response

    return wrapper


def _viewable_meeting(request: HttpRequest, code: str) -> Meeting:
    """The meeting for a page that shows details; 404 alike for unknown and not yours."""
    meeting = Meeting.objects.select_related("host").filter(code=code).first()
    if meeting is None or not access.can_view_details(request.user, meeting):
        _count_miss(request)
        raise Http404("No such meeting.")
    return meeting


@login_required
@require_http_methods(["GET", "POST"])
def new_meeting(request: HttpRequest) -> HttpResponse:
    """POST: "Start an instant meeting" (to its join page). GET: the "New meeting" menu's
    three choices as a page, where the home page's menu button is a plain link (no script)."""
    if request.method == "GET":
        return render(request, "rooms/new_meeting.html")
    meeting = services.create_instant_meeting(access.require_signed_in(request.user))
    return redirect("rooms:join", code=meeting.code)


CREATED_FOR_LATER_SESSION_KEY = "rooms.created_for_later"


@login_required
@require_POST
def meeting_for_later(request: HttpRequest) -> HttpResponse:
    """ "Create a meeting for later": the meeting is made, nobody goes into its call, and the
    home page shows its link once (popped from the session by created_for_later)."""
    meeting = services.create_meeting_for_later(access.require_signed_in(request.user))
    request.session[CREATED_FOR_LATER_SESSION_KEY] = meeting.code
    return redirect("home")


def created_for_later(request: HttpRequest) -> Meeting | None:
    """The meeting the viewer has just created for later, once (the home page's card)."""
    code = request.session.pop(CREATED_FOR_LATER_SESSION_KEY, None)
    if not code:
        return None
    meeting = Meeting.objects.filter(code=code).first()
    if meeting is None or not access.can_manage(request.user, meeting):
        return None
    return meeting


@login_required
@require_http_methods(["GET", "POST"])
def schedule(request: HttpRequest) -> HttpResponse:
    user = access.require_signed_in(request.user)
    if request.method == "POST":
        form = MeetingForm(request.POST)
        if form.is_valid():
            try:
                meeting = services.schedule_meeting(user, form.details(), origin=Origin.PAGE)
            except ValidationError as error:
                form.add_domain_errors(error)
            else:
                messages.success(request, "Meeting scheduled; the invitations are on their way.")
                return redirect(meeting)
    else:
        form = MeetingForm(initial=MeetingForm.initial_for_new(user))
    return _schedule_page(request, form, editing=None)


def _schedule_page(
    request: HttpRequest, form: MeetingForm, editing: Meeting | None
) -> HttpResponse:
    """The schedule (or edit) form. `invitee_names` names the invitees who have an account, so
    that the invitee chips (static/js/invitee-chips.js) show names from the start."""
    typed = form.data.get("invitees", "") if form.is_bound else form.initial.get("invitees", "")
    context = {
        "form": form,
        "editing": editing,
        "time_zone_names": time_zone_names(),
        "invitee_names": people_directory.names_by_email(split_emails(str(typed))),
    }
    return render(request, "rooms/schedule.html", context)


@login_required
@require_GET
def people_search(request: HttpRequest) -> HttpResponse:
    """Completion for the invitee box: `?q=` (2 to 100 characters) → up to 8 people of this
    instance's directory as JSON [{name, email}] (rooms/people_directory.py says who is in it).
    400 for a query too short or too long, 429 over the rate limit."""
    user = access.require_signed_in(request.user)
    if is_ratelimited(
        request,
        group=PEOPLE_SEARCH_GROUP,
        key="user",
        rate=app_settings.PEOPLE_SEARCH_RATE,
        increment=True,
    ):
        response = JsonResponse({"error": "Too many searches; wait a minute."}, status=429)
        response["Retry-After"] = "60"
    else:
        try:
            query = people_directory.clean_query(request.GET.get("q", ""))
        except people_directory.QueryNotAccepted as refused:
            response = JsonResponse({"error": str(refused)}, status=400)
        else:
            people = people_directory.find_people(query, requester=user)
            response = JsonResponse([asdict(person) for person in people], safe=False)
    # Names and addresses of co-workers: kept out of shared caches and the browser's disk.
    response["Cache-Control"] = "private, no-store"
    return response


@guarded
@login_required
@require_GET
def detail(request: HttpRequest, code: str) -> HttpResponse:
    meeting = _viewable_meeting(request, code)
    invitation = services.invitation_for(request.user, meeting)
    context = {
        "meeting": meeting,
        "can_join": access.can_enter_call(request.user, meeting),
        "expiry_days": app_settings.INSTANT_MEETING_EXPIRY_DAYS,
        "next_start": next_occurrence(meeting, timezone.now()),
        "people": selectors.meeting_people(meeting),
        "is_host": access.can_manage(request.user, meeting),
        "my_invitation": invitation,
        "rsvp_form": RsvpForm(initial={"response": invitation.response}) if invitation else None,
        "join_url": meeting.join_url_for(request),
        "google_url": calendar.google_calendar_url(meeting, request),
        # None for a repeating meeting: the page links the .ics for Outlook instead.
        "outlook_url": calendar.outlook_calendar_url(meeting, request),
        **chat_services.transcript_context(request.user, meeting),
        # The host's and co-hosts' attendance report (rooms.attendance), ?occurrence= picks one.
        **attendance.page_context(request.user, meeting, request.GET.get("occurrence")),
        # The host's and co-hosts' moderation log (rooms.audit), newest first.
        **audit.page_context(request.user, meeting),
        # The meeting's polls (rooms.polls), for those who may read its chat afterwards.
        **polls.page_context(request.user, meeting),
        # Each breakout room's kept chat, under the room's name (rooms.breakouts).
        **breakouts.page_context(request.user, meeting),
    }
    return render(request, "rooms/detail.html", context)


def _manageable_meeting(request: HttpRequest, code: str) -> Meeting:
    meeting = _viewable_meeting(request, code)
    if not access.can_manage(request.user, meeting):
        raise PermissionDenied("Only the host can change this meeting.")
    return meeting


@guarded
@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, code: str) -> HttpResponse:
    meeting = _manageable_meeting(request, code)
    if meeting.is_over:
        messages.error(request, "A cancelled, ended or expired meeting cannot be changed.")
        return redirect(meeting)
    if request.method == "POST":
        form = MeetingForm(request.POST)
        if form.is_valid():
            try:
                services.update_meeting(request.user, meeting, form.details(), origin=Origin.PAGE)
            except ValidationError as error:
                form.add_domain_errors(error)
            else:
                messages.success(request, "Meeting updated; the invitees are told.")
                return redirect(meeting)
    else:
        form = MeetingForm(initial=MeetingForm.initial_for(meeting))
    return _schedule_page(request, form, editing=meeting)


@guarded
@login_required
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, code: str) -> HttpResponse:
    """GET: "Cancel meeting?" (for a repeating meeting: this occurrence or the whole series).
    POST: the confirmed answer (CSRF-checked); nothing is cancelled by following a link."""
    meeting = _manageable_meeting(request, code)
    if meeting.is_over:
        messages.error(request, "This meeting is already over.")
        return redirect(meeting)
    if request.method == "POST":
        form = CancelForm(request.POST, meeting=meeting)
        told = "the invitees are told" if meeting.invitations.exists() else "nobody was invited"
        if form.is_valid():
            try:
                if form.cleaned_data["scope"] == "occurrence":
                    start = form.cleaned_data["occurrence_start"]
                    services.cancel_occurrence(request.user, meeting, start)
                    when = date_format(timezone.localtime(start), "l j F Y, H:i")
                    messages.success(request, f"The meeting on {when} is cancelled; {told}.")
                else:
                    services.cancel_meeting(request.user, meeting)
                    messages.success(request, f"Meeting cancelled; {told}.")
            except ValidationError as error:
                form.add_error(None, error)
            else:
                return redirect(meeting)
    else:
        chosen = request.GET.get("occurrence", "")
        form = CancelForm(meeting=meeting, initial={"occurrence": chosen} if chosen else None)
    context = {"meeting": meeting, "form": form, "invitee_count": meeting.invitations.count()}
    return render(request, "rooms/cancel.html", context)


@guarded
@login_required
@require_POST
def respond(request: HttpRequest, code: str) -> HttpResponse:
    """The signed-in invitee answers on the detail page."""
    meeting = _viewable_meeting(request, code)
    invitation = services.invitation_for(request.user, meeting)
    form = RsvpForm(request.POST)
    if invitation is None or not form.is_valid():
        raise Http404("No invitation to answer.")
    try:
        services.respond_to_invitation(invitation, form.cleaned_data["response"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect(meeting)


@guarded
@login_required
@require_GET
def ics(request: HttpRequest, code: str) -> HttpResponse:
    meeting = _viewable_meeting(request, code)
    method = "CANCEL" if meeting.is_cancelled else "REQUEST"
    response = HttpResponse(
        calendar.meeting_calendar(meeting, method, request=request),
        content_type="text/calendar; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{meeting.code}.ics"'
    return response


@guarded
@login_required
@require_GET
def attendance_csv(request: HttpRequest, code: str) -> HttpResponse:
    """The attendance report of one occurrence (?occurrence=, the latest by default) as CSV:
    the host and co-hosts only (403 for others who may see the meeting, 404 for the rest)."""
    meeting = _viewable_meeting(request, code)
    if not attendance.can_see_report(request.user, meeting):
        raise PermissionDenied("Only the host and co-hosts see who attended.")
    start = attendance.chosen_occurrence(meeting, request.GET.get("occurrence"))
    if start is None:
        raise Http404("Nobody attended that occurrence.")
    report = attendance.report(meeting, start)
    response = HttpResponse(attendance.report_csv(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{attendance.csv_filename(report)}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def enter(request: HttpRequest) -> HttpResponse:
    """ "Enter a code or link" (the home page's form): to the meeting's join page, or back
    home saying what a code looks like. Unknown codes are the join page's to refuse (and
    count against guessing)."""
    typed = request.GET.get("code", "")
    code = parse_join_code(typed)
    if code is None:
        upcoming = upcoming_meetings_for(request.user) if request.user.is_authenticated else []
        context = {
            "upcoming_meetings": upcoming,
            "entered_code": typed[:MAX_INPUT_LENGTH],
            "code_error": "That is not a meeting code or link. A code looks like abc-defg-hij.",
        }
        return render(request, "home.html", context, status=400)
    return redirect("rooms:join", code=code)


@guarded
@require_GET
def join(request: HttpRequest, code: str) -> HttpResponse:
    """The join link's page: the pre-join page for whoever may enter."""
    meeting = Meeting.objects.select_related("host").filter(code=code).first()
    user = request.user if request.user.is_authenticated else None
    decision = access.join_decision(user, meeting) if meeting is not None else None
    if meeting is not None and decision is not None and decision.reason == "expired":
        # Said plainly, to anyone who has the link: it worked once, and now it does not.
        _count_miss(request)
        context = {"meeting": meeting, "expiry_days": app_settings.INSTANT_MEETING_EXPIRY_DAYS}
        return render(request, "rooms/link_expired.html", context, status=410)
    if meeting is not None and decision is not None and decision.reason == "cancelled":
        # Said in words to anyone with the link (as an expired one), never a bare 404.
        _count_miss(request)
        return _join_end_screen(request, meeting, end_states.SCREENS["cancelled"], status=410)
    if meeting is None or decision is None or not decision.allowed:
        _count_miss(request)
        if user is None:
            return redirect_to_login(request.get_full_path())
        raise Http404("No such meeting.")
    if not request.session.session_key:
        request.session.save()  # a guest's key for the call (rooms.signaling.admission)
    screen = end_states.join_page_screen(meeting, user, request.session)
    if screen is not None:
        # Removed, locked out, or a one-off meeting that ended: the call would refuse the join,
        # so no camera and no "Join now" (issue 12.5).
        return _join_end_screen(request, meeting, screen)
    context = {
        "meeting": meeting,
        "decision": decision,
        "is_guest": user is None,
        "can_view_details": access.can_view_details(user, meeting),
        "ended_for_good": access.only_moderators_may_restart(meeting),
        "may_start_next_call": access.may_start_next_call(user, meeting),
        "end_screens": end_states.client_screens(),
        "in_call": in_call.for_viewer(user, meeting),
    }
    return render(request, "rooms/join.html", context)


@guarded
@require_GET
def in_call_summary(request: HttpRequest, code: str) -> HttpResponse:
    """Who is in the call, for the pre-join page to keep its sentence current (rooms.in_call):
    404 alike for an unknown meeting and for a viewer who may not enter directly."""
    meeting = Meeting.objects.filter(code=code).first()
    user = request.user if request.user.is_authenticated else None
    summary = in_call.for_viewer(user, meeting) if meeting is not None else None
    if meeting is None or (summary is None and not access.join_decision(user, meeting).allowed):
        _count_miss(request)
        raise Http404("No such meeting.")
    response = JsonResponse(summary.as_json() if summary is not None else {"summary": None})
    response["Cache-Control"] = "private, no-store"
    return response


def _join_end_screen(
    request: HttpRequest, meeting: Meeting, screen: end_states.EndScreen, status: int = 200
) -> HttpResponse:
    """The join page as one end screen: no call client, so no camera is ever opened."""
    user = request.user if request.user.is_authenticated else None
    can_view_details = access.can_view_details(user, meeting)
    # A cancelled meeting refuses everyone: its title only for those who may see the meeting.
    hide_title = screen.key == "cancelled" and not can_view_details
    context = {
        "meeting": meeting,
        "end_screen": screen,
        "meeting_label": f"Meeting {meeting.code}" if hide_title else meeting.title,
        "is_guest": user is None,
        "can_view_details": can_view_details,
    }
    return render(request, "rooms/join.html", context, status=status)


@require_http_methods(["GET", "POST"])
def rsvp(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the invitation email. GET asks to confirm (so that mail scanners that
    follow links change nothing); POST records the answer."""
    invitation = invitation_from_token(token)
    if invitation is None:
        raise Http404("This link is not valid.")
    meeting = invitation.meeting
    if request.method == "POST":
        form = RsvpForm(request.POST)
        if form.is_valid():
            try:
                services.respond_to_invitation(invitation, form.cleaned_data["response"])
            except ValidationError as error:
                form.add_error(None, error)
            else:
                context = {
                    "invitation": invitation,
                    "meeting": meeting,
                    "form": RsvpForm(initial={"response": invitation.response}),
                    "join_url": meeting.join_url_for(request),
                    "next_start": next_occurrence(meeting, timezone.now()),
                    "done": True,
                }
                return render(request, "rooms/rsvp.html", context)
    else:
        chosen = request.GET.get("response")
        form = RsvpForm(
            initial={"response": chosen if chosen in Invitation.Response.values else ""}
        )
    return render(
        request,
        "rooms/rsvp.html",
        {
            "invitation": invitation,
            "meeting": meeting,
            "form": form,
            "join_url": meeting.join_url_for(request),
            "next_start": next_occurrence(meeting, timezone.now()),
            "done": False,
        },
    )


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The personal feed calendar apps subscribe to; the secret token is the only key."""
    user = User.objects.filter(calendar_token=token, is_active=True).first() if token else None
    if user is None:
        raise Http404("No such calendar.")
    meetings = upcoming_meetings_for(user)
    body = calendar.feed_calendar(meetings, name=f"meet: {user.email}", request=request)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response
