"""Runs the call client's unit tests (tests/js/call-signaling.test.mjs: the signaling client's
requests, reconnect/backoff and permanent failures; the grid's column choice, its 16:9 tile
sizes and each picture's fit; the quality classes and which side's link a loss is blamed on,
the SFU's downlinkLimited included) with node's built-in test runner. Fast: no browser."""

from __future__ import annotations

from tests.node_test_runner import run_node_tests


def test_call_client_units_pass_under_node() -> None:
    assert "# pass 14" in run_node_tests("call-signaling.test.mjs")
