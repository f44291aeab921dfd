"""Test-session set-up that must happen before Django reads its settings.

Loaded with `-p meet.pytest_plugin` (see pyproject.toml). Without REDIS_URL it starts an
embedded Redis for the session; either way the session gets its own key prefix, and its
keys are deleted at the end so a shared Redis is left as it was.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Generator
from pathlib import Path

import pytest

_embedded: tuple[subprocess.Popen[bytes], Path] | None = None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    global _embedded
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meet.settings")
    os.environ.setdefault("CHANNEL_LAYER_PREFIX", f"meet-test-{uuid.uuid4().hex[:8]}")
    os.environ.setdefault("SFU_LISTEN_IPS", "127.0.0.1")
    os.environ.setdefault("SFU_ICE_SERVERS", "")
    var_dir = Path(os.environ.get("MEET_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
    os.environ.setdefault("MEET_TEST_DB_NAME", str(var_dir / f"test-db-{os.getpid()}.sqlite3"))
    if not os.environ.get("REDIS_URL"):
        from meet import embedded_redis

        socket_path = var_dir / f"test-redis-{os.getpid()}.sock"
        _embedded = (embedded_redis.start(socket_path), socket_path)
        os.environ["REDIS_URL"] = f"unix://{socket_path}"
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _embedded
    if _embedded is not None:
        from meet import embedded_redis

        embedded_redis.stop(*_embedded)
        _embedded = None
        return
    _delete_session_keys()


def _delete_session_keys() -> None:
    import redis

    prefix = os.environ["CHANNEL_LAYER_PREFIX"]
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        for pattern in (f"{prefix}*", f"asgi{prefix}*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()
