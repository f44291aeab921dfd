"""URL configuration."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from meet import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("rooms.urls")),
    path("", include("chat.urls")),
]
