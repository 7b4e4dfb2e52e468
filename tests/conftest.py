"""Shared fixtures: the real annotation files in ../shared/avdata, and a session-wide SynthAV root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AVDATA = Path(os.environ.get("AVBENCH_AVDATA", REPO.parent / "shared" / "avdata"))


@pytest.fixture(scope="session")
def avdata() -> Path:
    """The real annotation files and example media; tests that need them skip cleanly without them."""
    if not AVDATA.is_dir():
        pytest.skip(f"real annotation files not found at {AVDATA} (set AVBENCH_AVDATA)")
    return AVDATA


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never write SynthAV into the user's cache from tests."""
    os.environ["AVBENCH_CACHE"] = str(tmp_path_factory.mktemp("avbench-cache"))
