"""How many messages an author may send: a sliding window kept in Redis, so every web process
counts against the same budget."""

from __future__ import annotations

import time
import uuid

from chat.app_settings import app_settings
from chat.redis_client import redis_client, redis_key

# One sorted set per author of the send times in the window. Atomic in Redis: two processes
# taking the last slot at once cannot both get it. Refused attempts are not recorded, so an
# author who waits is let through as soon as the oldest message leaves the window.
_TAKE_SLOT = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  return 0
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return 1
"""


def take_message_slot(author_key: str) -> bool:
    """Count one message for `author_key`; False (nothing counted) when over the limit."""
    client = redis_client()
    taken = client.eval(
        _TAKE_SLOT,
        1,
        redis_key("rate", author_key),
        time.time(),
        app_settings.RATE_LIMIT_SECONDS,
        app_settings.RATE_LIMIT_MESSAGES,
        uuid.uuid4().hex,
    )
    return bool(taken)
