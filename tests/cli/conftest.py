"""Media makers shared with tests/engine/media (loaded from its conftest by path: conftests are not
importable by name under --import-mode=importlib)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

_MEDIA = Path(__file__).resolve().parents[1] / "engine" / "media" / "conftest.py"


@pytest.fixture(scope="session")
def kit_remake() -> Any:
    spec = importlib.util.spec_from_file_location("livepuppet_media_makers", _MEDIA)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.remake_driver
