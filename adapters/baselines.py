"""Reference points every leaderboard needs: chance, a modality-blind prior, and the oracle.

All three answer through the same path as a real model: they emit text (and masks) that the task
parses, so the oracle reaching the maximum proves the whole pipeline, parser included, can.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avbench.adapter import ModelAdapter
from avbench.task import Task
from avbench.types import ModelOutput, Sample


def sample_rng(seed: int, task: str, sample_id: str) -> np.random.Generator:
    """A generator that depends only on (seed, task, sample): answers do not change with batching or resume."""
    return np.random.default_rng([seed, zlib.crc32(task.encode()), zlib.crc32(sample_id.encode())])


class RandomBaseline(ModelAdapter):
    name = "random"
    description = "uniformly random well-formed answers (seeded by --seed; the same per sample whatever the batch)"

    def predict(self, task: Task, samples: Sequence[Sample], prompts: Sequence[str]) -> list[ModelOutput]:
        return [task.random_output(s, sample_rng(self.seed, task.name, s.id)) for s in samples]


class PriorBaseline(ModelAdapter):
    name = "prior"
    description = "modality-blind prior fitted on the train split: majority answer, class prior, mean mask"

    def __init__(self, seed: int = 0, **options: Any):
        super().__init__(seed, **options)
        self._priors: dict[str, Any] = {}

    def prepare(self, task: Task, data_root: Path, split: str) -> None:
        if task.name not in self._priors:
            self._priors[task.name] = task.fit_prior(task.load(data_root, "train"))

    def predict(self, task: Task, samples: Sequence[Sample], prompts: Sequence[str]) -> list[ModelOutput]:
        prior = self._priors[task.name]
        return [task.prior_output(prior, s) for s in samples]


class OracleBaseline(ModelAdapter):
    name = "oracle"
    description = "the ground truth, emitted as model text and masks: the maximum any model can reach"

    def predict(self, task: Task, samples: Sequence[Sample], prompts: Sequence[str]) -> list[ModelOutput]:
        return [task.reference_output(s) for s in samples]
