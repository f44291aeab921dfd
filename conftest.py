"""Fixtures for the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _close_stray_database_sessions(django_db_setup: None, django_db_blocker) -> Iterator[None]:
    """Let pytest-django drop the PostgreSQL test database at the end.

    Async tests reach the database from sync_to_async worker threads whose connections stay
    open; PostgreSQL refuses to drop a database in use, so end those sessions first.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
