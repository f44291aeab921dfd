"""meet/settings.py run afresh under a chosen environment, for tests of how settings are read
(not Django's loaded copy, which the rest of the session keeps using)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "meet" / "settings.py"


def load_settings_module(monkeypatch: pytest.MonkeyPatch, **environment: str | None) -> ModuleType:
    """The settings module under the given environment; None removes a variable."""
    for name, value in environment.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("meet_settings_under_test", SETTINGS_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
