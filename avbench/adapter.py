"""The model adapter interface: given a task's samples and rendered prompts, return model outputs."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar, Sequence

from .media import MediaSpec
from .task import Task
from .types import ModelOutput, Sample


class ModelAdapter(abc.ABC):
    """A model that the runner can evaluate. Options come from the CLI (`--seed`, `--device`, ...)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: Media the model reads, decoded by the runner and passed as `predict(..., media=[...])`;
    #: None for models that read no media (the baselines).
    media_spec: ClassVar[MediaSpec | None] = None

    def __init__(self, seed: int = 0, **options: Any):
        self.seed = seed
        self.options = options

    def prepare(self, task: Task, data_root: Path, split: str) -> None:
        """Called once per task before the first batch (load a prior, move weights, ...)."""

    @abc.abstractmethod
    def predict(self, task: Task, samples: Sequence[Sample], prompts: Sequence[str]) -> list[ModelOutput]:
        """One output per sample, in order.

        An adapter that sets `media_spec` is called as `predict(task, samples, prompts, media=[...])`
        with one `DecodedMedia` per sample (decoded ahead in background threads by the runner); its
        override takes the keyword, e.g. `media: Sequence[DecodedMedia] | None = None`. A sample whose
        media failed to decode under `--on-error skip` is not passed at all.
        """

    def describe(self) -> dict[str, Any]:
        """Facts about the model for the results file (parameters, checkpoint hash, ...)."""
        return {"name": self.name}

    def fingerprint(self) -> dict[str, Any]:
        """What decides this model's outputs beyond its name, seed and options, e.g. the weights and the
        config behind a checkpoint path whose files can change. Part of a run's identity (run.json), so a
        re-run into the same folder never mixes the predictions of two models. Empty for models their
        options name fully (the baselines)."""
        return {}
