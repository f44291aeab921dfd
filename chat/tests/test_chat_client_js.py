"""Runs the call page's chat panel unit tests (tests/js/call-chat.test.mjs) with node's built-in
test runner: messages are identified by their server id, and a clientId only matches the
sender's own unconfirmed message, so no participant can overwrite or hide another's message."""

from __future__ import annotations

from tests.node_test_runner import run_node_tests


def test_chat_panel_matches_client_ids_only_to_my_own_unconfirmed_messages() -> None:
    run_node_tests("call-chat.test.mjs")
