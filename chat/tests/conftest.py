"""Fixtures for the chat tests."""

from __future__ import annotations

import pytest

from chat.redis_client import redis_client, redis_key


@pytest.fixture(autouse=True)
def fresh_chat_rate_limits() -> None:
    """Each test starts with every author's budget full. Rate limits live in Redis, outside the
    test database that is rolled back, and rolled-back ids come round again: without this a
    test's "user 1" would inherit the previous test's messages."""
    _delete_rate_limit_keys()


def _delete_rate_limit_keys() -> None:
    client = redis_client()
    keys = list(client.scan_iter(match=redis_key("rate", "*"), count=1000))
    if keys:
        client.delete(*keys)
