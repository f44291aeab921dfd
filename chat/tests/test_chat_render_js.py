"""Runs the browser renderer's unit tests (tests/js/chat-render.test.mjs) with node's built-in
test runner, so `make test` covers the client-side half of "XSS renders as text"."""

from __future__ import annotations

from tests.node_test_runner import run_node_tests


def test_chat_renderer_keeps_markup_as_text_and_links_only_http_urls() -> None:
    run_node_tests("chat-render.test.mjs")
