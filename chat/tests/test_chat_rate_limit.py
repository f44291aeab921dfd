"""The chat rate limit is one budget per author across every web process (it lives in Redis)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from django.test import override_settings

from chat.app_settings import app_settings
from chat.rate_limit import take_message_slot

ROOT = Path(__file__).resolve().parents[2]
# Far longer than the test takes, so no slot leaves the window while a process starts.
WINDOW_SECONDS = 600

# Another process (same settings, same Redis and key prefix: the test plugin put both in the
# environment) tries to take one more slot for the same author and prints whether it got it.
OTHER_PROCESS = """
import sys
import django
django.setup()
from django.conf import settings
settings.CHAT_RATE_LIMIT_SECONDS = int(sys.argv[2])
from chat.rate_limit import take_message_slot
print("taken" if take_message_slot(sys.argv[1]) else "refused")
"""


def take_in_another_process(author_key: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, author_key, str(WINDOW_SECONDS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    return result.stdout.strip()


@override_settings(CHAT_RATE_LIMIT_SECONDS=WINDOW_SECONDS)
def test_a_second_process_shares_the_authors_budget() -> None:
    author = f"user:test-{uuid.uuid4().hex}"
    for _ in range(app_settings.RATE_LIMIT_MESSAGES - 1):
        assert take_message_slot(author)

    assert take_in_another_process(author) == "taken"  # the last slot, taken over there
    assert take_message_slot(author) is False  # ...is gone here too
    assert take_in_another_process(author) == "refused"
    assert take_message_slot(f"user:test-{uuid.uuid4().hex}") is True  # others are unaffected
