"""Evaluate one model on several tasks: predictions file per task, results JSON, resumable.

Data flows one way: task loads samples -> adapter predicts -> task parses and scores -> runner
writes. Each batch's lines are appended and fsync'ed before the next batch starts, so a run killed
at any moment loses at most the batch in flight; a re-run into the same output folder reads what
is there (checking that prompts and targets still match) and predicts only the rest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .adapter import ModelAdapter
from .errors import AVBenchError, DataError
from .masks import encode_map
from .predictions import PredictionWriter, read_predictions
from .registry import get_task
from .scoring import evaluate, parse_output, prediction_from_record, score_prediction
from .task import Task, stable_hash
from .types import Prediction, Sample, ScoredSample, TaskResult

RUN_FILE = "run.json"


@dataclass
class RunConfig:
    model: str
    tasks: list[str]
    output_dir: Path
    data_root: Path
    split: str | None = None
    limit: int | None = None
    batch_size: int = 8
    seed: int = 0
    model_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """What must match for a re-run to resume into the same folder."""
        return {"model": self.model, "seed": self.seed, "model_options": self.model_options}


#: Progress callback: (task name, samples done, samples total).
ProgressFn = Callable[[str, int, int], None]


def predictions_path(output_dir: Path, task: str, split: str) -> Path:
    return output_dir / f"{task}_{split}.jsonl"


def _check_resumable(config: RunConfig) -> None:
    config.output_dir.mkdir(parents=True, exist_ok=True)
    run_file = config.output_dir / RUN_FILE
    identity = json.loads(json.dumps(config.identity(), default=str))
    if run_file.exists():
        previous = json.loads(run_file.read_text())
        if previous != identity:
            raise AVBenchError(
                f"{config.output_dir} holds a run of {previous} but this run is {identity}; "
                "pass another --output-dir (or --overwrite to discard it)"
            )
    else:
        run_file.write_text(json.dumps(identity, indent=2) + "\n")


def _record(task: Task, sample: Sample, prompt_hash: str, target_hash: str, prediction: Prediction, summary: dict) -> dict:
    record: dict[str, Any] = {
        "id": sample.id, "task": task.name, "split": sample.split,
        "target_hash": target_hash, "prompt_hash": prompt_hash,
        "raw_output": prediction.output.text,
    }
    if not prediction.ok and prediction.output.masks:
        record["raw_masks"] = [encode_map(m) for m in prediction.output.masks]
    record.update(
        parsed=prediction.parsed,
        parse_status="ok" if prediction.ok else "failed",
        parse_error=prediction.parse_error,
        score=summary,
    )
    return record


def _load_previous(task: Task, path: Path, samples: Sequence[Sample], hashes: dict[str, tuple[str, str]]) -> dict[str, Prediction]:
    if not path.exists():
        return {}
    by_id = {s.id: s for s in samples}
    done: dict[str, Prediction] = {}
    for record in read_predictions(path, tolerate_torn_tail=True):
        sample = by_id.get(record.id)
        if sample is None:
            continue  # e.g. written by an earlier run with a larger --limit
        prompt_hash, target_hash = hashes[record.id]
        if (record.data.get("prompt_hash"), record.data.get("target_hash")) != (prompt_hash, target_hash):
            raise DataError(
                f"sample {record.id!r} was predicted from a different prompt or ground truth; "
                "the data or the task changed since: use another --output-dir (or --overwrite)",
                path, record.line,
            )
        prediction = prediction_from_record(task, sample, record)
        if record.data.get("parse_status") == "failed":
            prediction.parsed, prediction.parse_error = None, record.data.get("parse_error") or "parse failed"
        done[record.id] = prediction
    return done


def run_task(
    model: ModelAdapter, task: Task, config: RunConfig, progress: ProgressFn | None = None
) -> TaskResult:
    split = config.split or task.default_split
    if split not in task.splits:
        raise AVBenchError(f"task {task.name!r} has no split {split!r}; its splits: {', '.join(task.splits)}")
    samples = task.load(config.data_root, split)
    if config.limit is not None:
        samples = samples[: config.limit]
    prompts = {s.id: task.build_prompt(s) for s in samples}
    hashes = {s.id: (stable_hash(prompts[s.id]), task.target_hash(s)) for s in samples}
    path = predictions_path(config.output_dir, task.name, split)
    predictions = _load_previous(task, path, samples, hashes)
    todo = [s for s in samples if s.id not in predictions]
    new_scores: dict[str, ScoredSample] = {}

    started = time.perf_counter()
    if progress:
        progress(task.name, len(samples) - len(todo), len(samples))
    if todo:
        model.prepare(task, config.data_root, split)
        with PredictionWriter(path) as writer:
            for start in range(0, len(todo), config.batch_size):
                batch = todo[start : start + config.batch_size]
                outputs = model.predict(task, batch, [prompts[s.id] for s in batch])
                if len(outputs) != len(batch):
                    raise AVBenchError(f"model {model.name!r} returned {len(outputs)} outputs for {len(batch)} samples")
                records = []
                for sample, output in zip(batch, outputs):
                    prediction = parse_output(task, sample, output)
                    predictions[sample.id] = prediction
                    new_scores[sample.id] = score_prediction(task, sample, prediction)
                    records.append(_record(task, sample, *hashes[sample.id], prediction, new_scores[sample.id].summary))
                writer.write(records)
                if progress:
                    progress(task.name, len(samples) - len(todo) + start + len(batch), len(samples))
    predict_seconds = time.perf_counter() - started

    evaluation = evaluate(task, samples, [predictions[s.id] for s in samples], new_scores)
    return TaskResult(
        task=task.name, split=split, metrics=evaluation.metrics, n_samples=len(samples),
        n_parse_failures=evaluation.n_parse_failures, variants=task.variants(),
        seconds=round(predict_seconds, 3),
    )


def run(model: ModelAdapter, config: RunConfig, progress: ProgressFn | None = None) -> list[TaskResult]:
    """Run every task of `config` (in order) and return their results; files are written as it goes."""
    if not config.data_root.is_dir():
        raise DataError("data root not found (pass --data-root DIR, or omit it to use the embedded SynthAV)", config.data_root)
    _check_resumable(config)
    tasks = [get_task(name, **config.task_options.get(name, {})) for name in config.tasks]
    return [run_task(model, task, config, progress) for task in tasks]
