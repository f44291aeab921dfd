"""The meet project: settings, ASGI entry point, URLs and the Celery app."""

from meet.celery import app as celery_app

__all__ = ["celery_app"]
