"""From model output to numbers: parse (recording failures), score each unit, aggregate.

Shared by `avbench run` (outputs straight from an adapter) and `avbench score` (a predictions file
made elsewhere), so both give the same numbers for the same predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .bootstrap import BootstrapConfig, bootstrap_intervals
from .errors import ParseError
from .masks import decode_map
from .predictions import PredictionRecord
from .task import Task
from .types import ModelOutput, Prediction, Sample, ScoredSample


def parse_output(task: Task, sample: Sample, output: ModelOutput) -> Prediction:
    """Parse one output (plain text is taken as text); any failure becomes a recorded parse error, never a crash."""
    if isinstance(output, str):
        output = ModelOutput(output)
    if not isinstance(output, ModelOutput) or not isinstance(output.text, str):
        return Prediction(sample.id, ModelOutput(str(getattr(output, "text", output))), None, "adapter returned no text")
    try:
        return Prediction(sample.id, output, task.parse(output, sample))
    except ParseError as exc:
        return Prediction(sample.id, output, None, str(exc) or "unparseable output")
    except Exception as exc:  # a parser bug must not lose the run: it is counted and named instead
        return Prediction(sample.id, output, None, f"parser raised {type(exc).__name__}: {exc}")


def prediction_from_record(task: Task, sample: Sample, record: PredictionRecord) -> Prediction:
    """A prediction from a predictions-file line: its `parsed` field if present, else its raw output parsed."""
    data = record.data
    raw_text = data.get("raw_output") or ""
    if data.get("parsed") is not None:
        try:
            return Prediction(sample.id, ModelOutput(raw_text), task.parsed_from_json(data["parsed"], sample))
        except ParseError as exc:
            return Prediction(sample.id, ModelOutput(raw_text), None, f"line {record.line}: invalid 'parsed': {exc}")
    if "raw_output" not in data:
        return Prediction(sample.id, ModelOutput(""), None, data.get("parse_error") or "no 'parsed' and no 'raw_output'")
    masks = None
    if data.get("raw_masks"):
        try:
            masks = [decode_map(m) for m in data["raw_masks"]]
        except ValueError as exc:
            return Prediction(sample.id, ModelOutput(raw_text), None, f"line {record.line}: invalid 'raw_masks': {exc}")
    return parse_output(task, sample, ModelOutput(raw_text, masks))


@dataclass
class Evaluation:
    metrics: dict[str, float]
    scores: list[ScoredSample]
    n_parse_failures: int
    #: Bootstrap interval of each metric (empty when not asked for).
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


def score_prediction(task: Task, sample: Sample, prediction: Prediction | None) -> ScoredSample:
    """A missing or failed prediction scores as the task's empty prediction."""
    parsed: Any | None = prediction.parsed if prediction is not None and prediction.ok else None
    return task.score(sample, parsed)


def evaluate(
    task: Task,
    samples: Sequence[Sample],
    predictions: Sequence[Prediction | None],
    known_scores: dict[str, ScoredSample] | None = None,
    bootstrap: BootstrapConfig | None = None,
) -> Evaluation:
    """Score every sample (reusing `known_scores` by sample id) and aggregate the task's metrics; with
    `bootstrap`, also each metric's bootstrap interval (`avbench.bootstrap.bootstrap_intervals`)."""
    known_scores = known_scores or {}
    scores: list[ScoredSample] = []
    failures = 0
    for sample, prediction in zip(samples, predictions, strict=True):
        failures += prediction is None or not prediction.ok
        scored = known_scores.get(sample.id)
        scores.append(scored if scored is not None else score_prediction(task, sample, prediction))
    stats = [s.stats for s in scores]
    metrics = task.aggregate(samples, stats) if samples else {}
    intervals: dict[str, tuple[float, float]] = {}
    if bootstrap is not None and samples:
        intervals = bootstrap_intervals(task, samples, stats, n_resamples=bootstrap.n_resamples,
                                        seed=bootstrap.seed, level=bootstrap.level)
    return Evaluation(metrics, scores, failures, intervals)


def score_outputs(task: Task, samples: Sequence[Sample], outputs: Sequence[ModelOutput]) -> Evaluation:
    """Parse and score in-memory model outputs, one per sample: the runner's path without the files."""
    return evaluate(task, samples, [parse_output(task, s, o) for s, o in zip(samples, outputs, strict=True)])
