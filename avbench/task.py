"""The task plugin interface: load samples, build prompts, parse model text, score.

A task never imports an adapter; the runner hands its samples and prompts to the adapter and the
adapter's outputs back to the task. The baseline helpers (`reference_output`, `random_output`,
`fit_prior`/`prior_output`) let the baselines in `avbench.adapters` work for any task through this
interface alone.
"""

from __future__ import annotations

import abc
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from .errors import DataError
from .types import Family, ModelOutput, Sample, ScoredSample, UnitSums


def stable_hash(obj: Any) -> str:
    """Short content hash of a JSON-serialisable object (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def file_hash(paths: Sequence[str | Path]) -> str:
    """Short content hash of files' bytes, in order: the same ground truth under any data root."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


class Task(abc.ABC):
    """One benchmark task. Subclasses set the class attributes and implement the abstract methods."""

    name: ClassVar[str]
    #: Bump when the prompt, the parser or the metric changes: results of different versions are not
    #: comparable (the leaderboard refuses to merge them).
    TASK_VERSION: ClassVar[int] = 1
    family: ClassVar[Family]
    #: Sub-folder of a data root that holds this task's data set (its official layout).
    dataset_dir: ClassVar[str]
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    default_split: ClassVar[str] = "test"
    #: The metric a family score averages; also the first column of the summary table.
    primary_metric: ClassVar[str]
    #: Metrics shown in the summary table, in order (all metrics go to the results JSON).
    table_metrics: ClassVar[tuple[str, ...]]
    #: Metrics for which lower is better (e.g. Ref-AVS null-set S).
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    #: Metrics reported as fractions in [0, 1], as their papers print them; all others are percent.
    fraction_metrics: ClassVar[frozenset[str]] = frozenset()
    #: "text" for tasks answered in text, "mask" for tasks that also need per-frame maps.
    output_kind: ClassVar[str] = "text"
    max_new_tokens: ClassVar[int] = 500
    description: ClassVar[str] = ""
    #: What this task's answers say when the object asked about is not in the media (avbench's answer
    #: format); None where an answer never says it. A model may act on it (`SegSettings.masks_follow_answer`).
    absent_phrase: ClassVar[str | None] = None

    def __init__(self, **options: Any):
        if options:
            raise TypeError(f"task {self.name!r} takes no options, got {sorted(options)}")

    # ---- data -------------------------------------------------------------------------------
    @abc.abstractmethod
    def load(self, data_root: Path, split: str) -> list[Sample]:
        """Samples of `split` from `data_root / dataset_dir`, in a deterministic order."""

    def annotation_files(self, data_root: Path, split: str) -> list[Path]:
        """The annotation files `load` reads for `split` (for `avbench data check` and the data version);
        empty when the task does not say."""
        return []

    def annotation_fingerprint(self, data_root: Path, split: str) -> str | None:
        """Content hash of the split's annotations, matched against avbench.data_versions.KNOWN_VERSIONS.

        Default: `content_hash` of `annotation_files` (content, not bytes: line endings and JSON
        formatting do not count); None when the task names no files.
        """
        from .data_versions import content_hash

        files = self.annotation_files(data_root, split)
        return content_hash(files) if files else None

    def target_hash(self, sample: Sample) -> str:
        """Fingerprint of the ground truth, independent of where the data root lies."""
        return stable_hash(sample.target)

    # ---- prompting and parsing ----------------------------------------------------------------
    @abc.abstractmethod
    def build_prompt(self, sample: Sample) -> str:
        """The full text prompt, media placeholders included."""

    @abc.abstractmethod
    def parse(self, output: ModelOutput, sample: Sample) -> Any:
        """Structured, JSON-serialisable prediction from a model output; raises `ParseError`."""

    def parsed_from_json(self, obj: Any, sample: Sample) -> Any:
        """Validate a structured prediction read from a predictions file; raises `ParseError`."""
        return obj

    # ---- scoring --------------------------------------------------------------------------------
    @abc.abstractmethod
    def score(self, sample: Sample, parsed: Any | None) -> ScoredSample:
        """Score one unit. `parsed is None` is a parse failure: a wrong answer / an empty prediction."""

    @abc.abstractmethod
    def aggregate(self, samples: Sequence[Sample], stats: Sequence[Any]) -> dict[str, float]:
        """Task metrics from the units' sufficient statistics (same order as `samples`)."""

    def unit_sums(self, samples: Sequence[Sample], stats: Sequence[Any]) -> UnitSums | None:
        """Optional: the metrics as a function of column sums over units (see `UnitSums`), so that
        `avbench.bootstrap` re-aggregates 1000 resamples with one matrix product. None (the default)
        makes the bootstrap call `aggregate` once per resample instead."""
        return None

    def variants(self) -> dict[str, str]:
        """Which variant of each metric this instance computes (recorded in the results)."""
        return {}

    # ---- baseline support -----------------------------------------------------------------------
    @abc.abstractmethod
    def reference_output(self, sample: Sample) -> ModelOutput:
        """The ground truth rendered as a perfect model would emit it (text tags, masks)."""

    @abc.abstractmethod
    def random_output(self, sample: Sample, rng: np.random.Generator) -> ModelOutput:
        """A uniformly random, well-formed answer."""

    @abc.abstractmethod
    def fit_prior(self, train_samples: Sequence[Sample]) -> Any:
        """Statistics of the train split for a modality-blind prior (majority answer, mean mask, ...)."""

    @abc.abstractmethod
    def prior_output(self, prior: Any, sample: Sample) -> ModelOutput:
        """The prior's answer for `sample`, using nothing of its media."""


def load_samples(task: Task, data_root: Path, split: str) -> list[Sample]:
    """`task.load`, checked: sample ids must be unique, since predictions files and resume match by id."""
    samples = task.load(data_root, split)
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise DataError(f"task {task.name!r}, split {split!r}: sample id {sample.id!r} occurs twice; "
                            "the annotation files list it twice (fix the copy, or report it if it is the official release)",
                            Path(data_root) / task.dataset_dir)
        seen.add(sample.id)
    return samples

