"""One tiny SynthAV root per test session (generation takes a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from avbench.synthav import ensure_synthav


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthav-cache")


@pytest.fixture(scope="session")
def tiny_root(tiny_cache: Path) -> Path:
    return ensure_synthav(seed=0, size="tiny", cache=tiny_cache)


@pytest.fixture(scope="session")
def truth(tiny_root: Path) -> dict[str, Any]:
    return json.loads((tiny_root / "synthav.json").read_text(encoding="utf-8"))
