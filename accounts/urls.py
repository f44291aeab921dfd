from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("preferences/", views.preferences, name="preferences"),
    path(
        "preferences/calendar-token/reset", views.reset_calendar_token, name="reset_calendar_token"
    ),
    path("preferences/time-zone", views.time_zone, name="time_zone"),
]
