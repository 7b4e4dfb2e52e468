"""Fixtures of the Crab-model tests: one random crab-tiny checkpoint and one tiny SynthAV root per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avbench.adapters.crab.checkpoint import write_random_checkpoint

    return write_random_checkpoint(tmp_path_factory.mktemp("crab-tiny"), "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_crab(tiny_checkpoint: Path):
    """The loaded checkpoint (a `LoadedCrab`); tests must not change its weights."""
    from avbench.adapters.crab.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint)


@pytest.fixture(scope="session")
def synthav_tiny() -> Path:
    """In $AVBENCH_CACHE (a temp dir set by tests/conftest.py), where `avbench run --synthav-size tiny` finds it."""
    from avbench.synthav import ensure_synthav

    return ensure_synthav(seed=0, size="tiny")
