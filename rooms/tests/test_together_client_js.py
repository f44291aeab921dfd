"""Runs the raised-hand unit tests of the call client (tests/js/call-together.test.mjs: the
queue is the server's, the highest revision wins, and a hand lowers itself only after its
owner has been the active speaker for the whole delay) with node's built-in test runner."""

from __future__ import annotations

from tests.node_test_runner import run_node_tests


def test_raised_hand_rules_pass_under_node() -> None:
    assert "# pass 8" in run_node_tests("call-together.test.mjs")
