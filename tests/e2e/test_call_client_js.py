"""Runs the call client's unit tests (tests/js/call-signaling.test.mjs: the signaling client's
requests, reconnect/backoff and permanent failures; the grid's column choice; the quality
classes) with node's built-in test runner. Fast: no browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_call_client_units_pass_under_node() -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed; the call client's unit tests need it")
    result = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "js" / "call-signaling.test.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
    assert "# pass 9" in result.stdout
