"""The Redis connection chat uses for what must hold across web processes (rate limits, the
per-meeting posting lock): the same server as the channel layer, under its key prefix."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def redis_client() -> redis.Redis:
    # One pool per process; redis-py pools are thread-safe, and the web process calls this from
    # sync_to_async worker threads.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)


def redis_key(*parts: object) -> str:
    return ":".join([settings.CHANNEL_LAYER_PREFIX, "chat", *map(str, parts)])
