"""Fixtures of the Crab-model tests: one random crab-tiny checkpoint and one tiny SynthAV root per session,
and a scripted LM head for teacher forcing through the generation loop."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, ContextManager, Iterator

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """crab-tiny's ops are small: with two threads each op pays OpenMP hand-offs, and on a busy 2-core
    machine (CI, or several test runs at once) the threads wait on each other; one thread ran this
    folder in about 25 s where two took 36 to 48 s. Restored after each module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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


class ScriptedHead(torch.nn.Module):
    """Stands in for the LM head: its k-th call puts all weight on `script[k]`, so greedy decoding emits
    the script while every hidden state still comes from the real model fed the scripted tokens
    (teacher forcing through the generation loop)."""

    def __init__(self, script: list[int], head: torch.nn.Linear):
        super().__init__()
        self.script, self.calls = script, 0
        self.register_buffer("weight", head.weight.detach())  # the model reads its device and dtype here

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*hidden.shape[:-1], self.weight.shape[0])
        logits[..., self.script[min(self.calls, len(self.script) - 1)]] = 1.0
        self.calls += 1
        return logits


@contextmanager
def _scripted_lm_head(lm: torch.nn.Module, script: list[int]) -> Iterator[ScriptedHead]:
    """Swap `lm.lm_head` for a ScriptedHead and put the original back.

    Not monkeypatch: a submodule lives in `_modules`, not in the instance `__dict__`, and pytest >= 9.1
    undoes a patch of an attribute it did not find in `__dict__` by deleting it, which would remove
    the real head from the shared session model."""
    original = lm.lm_head
    lm.lm_head = ScriptedHead(script, original)
    try:
        yield lm.lm_head
    finally:
        lm.lm_head = original


@pytest.fixture
def scripted_head() -> Callable[[torch.nn.Module, list[int]], ContextManager[ScriptedHead]]:
    """`with scripted_head(model.causal_lm, script):` greedy decoding emits `script` (teacher forcing)."""
    return _scripted_lm_head
