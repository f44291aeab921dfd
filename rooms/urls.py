"""Meeting URLs. The join link is the bare code (`/abc-defg-hij`), matched only in that shape
so it never shadows another page."""

from django.urls import path, re_path

from rooms import views
from rooms.models import JOIN_CODE_REGEX

app_name = "rooms"

urlpatterns = [
    path("meetings/new", views.new_meeting, name="new"),
    path("meetings/later", views.meeting_for_later, name="later"),
    path("enter", views.enter, name="enter"),
    path("meetings/schedule", views.schedule, name="schedule"),
    path("meetings/people", views.people_search, name="people_search"),
    re_path(rf"^meetings/(?P<code>{JOIN_CODE_REGEX})/$", views.detail, name="detail"),
    re_path(rf"^meetings/(?P<code>{JOIN_CODE_REGEX})/edit$", views.edit, name="edit"),
    re_path(rf"^meetings/(?P<code>{JOIN_CODE_REGEX})/cancel$", views.cancel, name="cancel"),
    re_path(rf"^meetings/(?P<code>{JOIN_CODE_REGEX})/respond$", views.respond, name="respond"),
    re_path(rf"^meetings/(?P<code>{JOIN_CODE_REGEX})/invite\.ics$", views.ics, name="ics"),
    re_path(
        rf"^meetings/(?P<code>{JOIN_CODE_REGEX})/attendance\.csv$",
        views.attendance_csv,
        name="attendance_csv",
    ),
    path("rsvp/<str:token>/", views.rsvp, name="rsvp"),
    re_path(
        r"^calendar/(?P<token>[A-Za-z0-9_-]{1,64})\.ics$", views.calendar_feed, name="calendar_feed"
    ),
    re_path(rf"^(?P<code>{JOIN_CODE_REGEX})$", views.join, name="join"),
    re_path(
        rf"^(?P<code>{JOIN_CODE_REGEX})/in-call$", views.in_call_summary, name="in_call_summary"
    ),
]
