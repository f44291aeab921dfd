"""Runs the unit tests of pinning in the call page (tests/js/call-pin.test.mjs: one person at a
time, this page only, forgotten when they leave) with node's built-in test runner."""

from __future__ import annotations

from tests.node_test_runner import run_node_tests


def test_pin_client_units_pass_under_node() -> None:
    assert "# pass 3" in run_node_tests("call-pin.test.mjs")
