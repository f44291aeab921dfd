"""The Celery app: invitations, reminders and clean-up run here (beat schedules them)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")

app = Celery("meet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
