"""Runs the browser renderer's unit tests (tests/js/chat-render.test.mjs) with node's built-in
test runner, so `make test` covers the client-side half of "XSS renders as text"."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_chat_renderer_keeps_markup_as_text_and_links_only_http_urls() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed; the renderer's unit tests need it")
    result = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "js" / "chat-render.test.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
