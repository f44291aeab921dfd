"""Shared fixtures for the project-level tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def password() -> str:
    return "correct-horse-battery-staple-42"
