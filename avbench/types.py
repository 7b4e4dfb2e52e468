"""Core types shared by tasks, adapters and the runner. Tasks and adapters meet only through these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

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
    #: Why there is no model output at all: "media" when the sample's media could not be decoded
    #: (`--on-error skip`); None for a model output, parsed or not.
    error_kind: str | None = None

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
    #: Samples whose media could not be decoded (`--on-error skip`): scored as empty predictions,
    #: counted here and not in `n_parse_failures`.
    n_media_errors: int = 0
    #: Which annotations were scored (avbench.data_versions.DataVersion.to_json): name, known, hash, counts.
    data_version: dict[str, Any] | None = None
    #: Bootstrap interval of each metric, (low, high), NaN when undefined; empty when not computed.
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: How the intervals were computed (`avbench.bootstrap.BootstrapConfig.to_json()`); None without them.
    bootstrap: dict[str, Any] | None = None


#: Resample-weighted column sums (B x k) -> metric name -> one value per resample (B,).
SumsToMetrics = Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class UnitSums:
    """A task's metrics as a function of column sums over resampling units, for fast bootstrap.

    `values[u]` (n_units x k) holds unit u's sufficient statistics, chosen so that every metric is
    `metrics(column sums)`: the full-set metrics are `metrics(values.sum(0)[None])`, and a bootstrap
    resample with count matrix W (B x n_units) gives `metrics(W @ values)` for all B resamples at once.
    A unit is one sample, except where the benchmark averages over groups of samples (e.g. Ref-AVS
    calls of 4 expressions): then `unit_of_sample` maps each sample to its group, and groups are
    resampled whole.
    """

    values: np.ndarray  # (n_units, k) float64
    metrics: SumsToMetrics
    unit_of_sample: np.ndarray | None = None  # (n_samples,) int; None = one unit per sample

    @property
    def n_units(self) -> int:
        return int(self.values.shape[0])
