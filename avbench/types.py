"""Core types shared by tasks, adapters and the runner. Tasks and adapters meet only through these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Family = Literal["temporal", "spatial", "spatiotemporal", "pixel"]
FAMILIES: tuple[Family, ...] = ("temporal", "spatial", "spatiotemporal", "pixel")

#: Media references: role -> path, or role -> list of paths (e.g. "frames": one image per frame).
Media = dict[str, "str | list[str]"]


@dataclass(frozen=True)
class Sample:
    """One scoring unit of a task (a video, a question, a frame, an expression).

    `inputs` holds what the prompt is built from (question text, expression, ...); `target` is the
    ground truth in a JSON-serialisable form (masks are referenced by path, not inlined);
    `meta` holds facts used for grouping results (question type, split of origin, ...).
    """

    id: str
    task: str
    split: str
    media: Media
    inputs: dict[str, Any] = field(default_factory=dict)
    target: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelOutput:
    """What an adapter returns for one sample: generated text, and for segmentation tasks one map per frame.

    `masks[i]` is a 2-D array: probabilities in [0, 1] or booleans for binary tasks, integer class ids
    for semantic segmentation (AVSS).
    """

    text: str
    masks: list[np.ndarray] | None = None


@dataclass
class ScoredSample:
    """The score of one unit: `summary` is written to the per-sample file; `stats` feeds `Task.aggregate`."""

    summary: dict[str, float]
    stats: Any


@dataclass
class Prediction:
    """A model output after parsing: the structured prediction, or the reason parsing failed."""

    sample_id: str
    output: ModelOutput
    parsed: Any | None
    parse_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.parse_error is None


@dataclass
class TaskResult:
    """Aggregated metrics of one task on one split."""

    task: str
    split: str
    metrics: dict[str, float]
    n_samples: int
    n_parse_failures: int
    variants: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
