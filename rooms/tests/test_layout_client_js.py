"""Runs the unit tests of the call's layouts (tests/js/call-layout.test.mjs: the tile limit and
its phone cap, who gets a tile over the limit and in what order, speakers swapped in for the
least recently active, and who takes the stage: one's own pin, the host's spotlight, the
speaker) with node's built-in test runner."""

from __future__ import annotations

from tests.node_test_runner import run_node_tests


def test_layout_client_units_pass_under_node() -> None:
    assert "# pass 14" in run_node_tests("call-layout.test.mjs")
