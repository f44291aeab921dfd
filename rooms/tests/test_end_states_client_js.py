"""Runs the unit tests of the call's end screens (tests/js/call-end-states.test.mjs: which
screen a refusal, a close code or meetingEnded leads to, and which actions each offers) with
node's built-in test runner. The file had no runner before and went stale unseen when the
lobby's time-out began to offer "Ask again"; every tests/js file now has one
(test_every_client_test_file_is_run)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.node_test_runner import ROOT, run_node_tests

APPS = ("accounts", "chat", "meet", "rooms", "sfu", "tests")


def test_end_state_client_units_pass_under_node() -> None:
    assert "# pass 6" in run_node_tests("call-end-states.test.mjs")


def test_every_client_test_file_is_run() -> None:
    """A tests/js/*.test.mjs file no Python test runs would never fail a build."""
    wrapped = set()
    test_modules = (p for app in APPS for p in (ROOT / app).rglob("test_*.py"))
    for path in test_modules:
        wrapped.update(re.findall(r'run_node_tests\("([^"]+)"\)', path.read_text()))
    on_disk = {p.name for p in Path(ROOT / "tests" / "js").glob("*.test.mjs")}
    assert on_disk - wrapped == set(), "tests/js files that no Python test runs"
