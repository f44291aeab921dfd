"""URL configuration."""

from __future__ import annotations

import allauth.urls
from django.contrib import admin
from django.urls import include, path

from accounts import admin_login, social
from meet import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Ahead of admin.site.urls: the admin's sign-in page, with failed attempts throttled.
    path("admin/login/", admin_login.login, name="admin_login_throttled"),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    # allauth's pages, its third-party sign-in pages answering 404 unless configured.
    path("accounts/", include(social.guarded_urlpatterns(allauth.urls.urlpatterns))),
    path("", include("rooms.urls")),
    path("", include("chat.urls")),
]
