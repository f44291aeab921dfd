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


@pytest.fixture(autouse=True)
def _a_channel_layer_per_test() -> None:
    """Each test gets a channel layer instance of its own.

    channels_redis keeps asyncio locks on the instance (one per process-local channel), and
    its ChannelLock leaks a waiter count when a waiting receive is cancelled, so the lock
    outlives the receive, bound to the event loop of the test that cancelled it: the next
    test's loop then fails with "bound to a different event loop". Every test has a loop of
    its own, so it gets a layer of its own too; one process with one loop (production) never
    meets this.
    """
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
