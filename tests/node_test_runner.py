"""Runs a client-side unit test file under node's built-in test runner (no browser)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_node_tests(test_file: str) -> str:
    """Run tests/js/<test_file>; skip when node is missing; fail with node's output."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip(f"node is not installed; {test_file} needs it")
    result = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "js" / test_file)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
    return result.stdout
