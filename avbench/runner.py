"""Evaluate one model on several tasks: predictions file per task, results JSON, resumable.

Data flows one way: task loads samples -> adapter predicts -> task parses and scores -> runner
writes. Each batch's lines are appended and fsync'ed before the next batch starts, so a run killed
at any moment loses at most the batch in flight; a re-run into the same output folder reads what
is there (checking that prompts and targets still match) and predicts only the rest.

A model that reads media (`ModelAdapter.media_spec`) gets each batch decoded ahead in background
threads (avbench.media.MediaStream), silenced or blanked first under `RunConfig.ablate` (avbench.ablation).
A sample whose media is missing or corrupt stops the run naming the file (`on_error="raise"`), or
with `on_error="skip"` is recorded as a failure with `error_kind: "media"`, scored as an empty
prediction and counted in `n_media_errors`; a re-run retries such samples (their lines are dropped
first), since the usual fix is repairing the file.

Data-parallel runs (`torchrun` / `accelerate launch`, avbench.distributed): per task, rank 0 reads what
is already predicted and deals the pending samples out (avbench.sharding: interleaved shares); each
rank predicts its share into its own file; after all ranks are done, rank 0 folds those files into the
task's predictions file (in sample order: the single-process file) and scores it once. Only rank 0
writes run.json, warns and reports progress; `run` returns the results on rank 0 and [] elsewhere.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from . import distributed
from .ablation import ablate_media, check_ablation
from .adapter import ModelAdapter
from .bootstrap import BootstrapConfig
from .data_versions import unknown_warning, version_of
from .errors import AVBenchError, DataError, read_json
from .masks import encode_map
from .media import DecodedMedia, MediaError, MediaStream
from .predictions import PredictionWriter, read_predictions
from .registry import get_task
from .scoring import evaluate, parse_output, prediction_from_record, score_prediction
from .sharding import fold_rank_files, rank_file, shard
from .task import Task, load_samples, stable_hash
from .types import ModelOutput, Prediction, Sample, ScoredSample, TaskResult

RUN_FILE = "run.json"
ON_ERROR_CHOICES = ("raise", "skip")


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
    #: What a sample whose media cannot be decoded does: "raise" stops the run naming the file;
    #: "skip" records it as a failure (`error_kind: "media"`), scored as an empty prediction.
    on_error: str = "raise"
    #: Background decoding for adapters with a `media_spec`: threads, and batches decoded ahead.
    media_workers: int = 2
    media_prefetch: int = 2
    #: Bootstrap intervals of the metrics (None: no intervals).
    bootstrap: BootstrapConfig | None = field(default_factory=BootstrapConfig)
    #: Modality silenced / blanked in every sample's decoded media (`avbench.ablation`); None: none.
    ablate: str | None = None

    def identity(self) -> dict[str, Any]:
        """What must match for a re-run to resume into the same folder."""
        identity = {"model": self.model, "seed": self.seed, "model_options": self.model_options}
        if self.ablate is not None:  # only when set: run folders written before ablation existed still resume
            identity["ablate"] = self.ablate
        return identity


#: Progress callback: (task name, samples done, samples total); in a data-parallel run, rank 0's share of the
#: task, labelled e.g. "ave (rank 0 of 8)".
ProgressFn = Callable[[str, int, int], None]


def predictions_path(output_dir: Path, task: str, split: str) -> Path:
    return output_dir / f"{task}_{split}.jsonl"


def _check_resumable(config: RunConfig, model: ModelAdapter) -> None:
    config.output_dir.mkdir(parents=True, exist_ok=True)
    run_file = config.output_dir / RUN_FILE
    identity = config.identity()
    if fingerprint := model.fingerprint():  # only when there is one: baselines' run folders read as before
        identity["model_fingerprint"] = fingerprint
    identity = json.loads(json.dumps(identity, default=str))
    if run_file.exists():
        previous = read_json(run_file)  # a torn or empty run.json is named, not a bare JSONDecodeError
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
    if prediction.error_kind is not None:
        record["error_kind"] = prediction.error_kind
    return record


def _media_failure(sample: Sample, error: MediaError) -> Prediction:
    """The recorded failure of a sample whose media could not be decoded: no output, no parse."""
    return Prediction(sample.id, ModelOutput(""), None, f"media error: {error.path}: {error.reason}", error_kind="media")


def _media_batches(
    model: ModelAdapter, todo: Sequence[Sample], config: RunConfig
) -> Iterator[tuple[Sequence[Sample], list[DecodedMedia | MediaError] | None]]:
    """Batches of `todo`, with their decoded media when the model reads media (decoded ahead, in threads)."""
    batches = (todo[i : i + config.batch_size] for i in range(0, len(todo), config.batch_size))
    if model.media_spec is None:
        for batch in batches:
            yield batch, None
        return
    with MediaStream(batches, model.media_spec, workers=config.media_workers, prefetch=config.media_prefetch) as stream:
        for batch, media in stream:
            yield batch, [m if isinstance(m, MediaError) else ablate_media(m, config.ablate) for m in media]


def _drop_media_failures(path: Path, ids: set[str]) -> None:
    """Rewrite the predictions file without the media-failure lines of `ids`, so they are predicted again.

    Written to a temporary file and renamed over the old one: a kill leaves either file whole.
    """
    kept = []
    # The last piece is empty after a final newline, else a line a killed run never finished: left
    # out, as read_predictions(tolerate_torn_tail=True) leaves it out, so its sample is predicted again
    # once (kept and given a newline here, it would be complete beside the new line: a duplicate id).
    for line in path.read_bytes().split(b"\n")[:-1]:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line; it is redone anyway
        if not (data.get("id") in ids and data.get("error_kind") == "media"):
            kept.append(line + b"\n")
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as handle:
        handle.writelines(kept)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _load_previous(
    task: Task, path: Path, samples: Sequence[Sample], hashes: dict[str, tuple[str, str]], retry_media: bool = True,
) -> dict[str, Prediction]:
    """Predictions already in `path`. Samples whose media failed before are left out (and their lines
    removed), so a re-run retries them: a media error is usually fixed by repairing the file. With
    `retry_media=False` (reading a finished file to score it) they are kept, as media failures."""
    if not path.exists():
        return {}
    by_id = {s.id: s for s in samples}
    done: dict[str, Prediction] = {}
    retry: set[str] = set()
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
        if record.data.get("error_kind") == "media":
            if retry_media:
                retry.add(record.id)
            else:
                reason = record.data.get("parse_error") or "media error"
                done[record.id] = Prediction(sample.id, ModelOutput(record.data.get("raw_output") or ""), None, reason,
                                             error_kind="media")
            continue
        prediction = prediction_from_record(task, sample, record)
        if record.data.get("parse_status") == "failed":
            prediction.parsed, prediction.parse_error = None, record.data.get("parse_error") or "parse failed"
        done[record.id] = prediction
    if retry:
        _drop_media_failures(path, retry)
    return done


def run_task(
    model: ModelAdapter, task: Task, config: RunConfig, progress: ProgressFn | None = None,
    warn: Callable[[str], None] | None = None,
) -> TaskResult | None:
    """Predict what is missing of one task and score it; None on the ranks other than 0 of a data-parallel run."""
    place = distributed.topology()
    split = config.split or task.default_split
    if split not in task.splits:
        raise AVBenchError(f"task {task.name!r} has no split {split!r}; its splits: {', '.join(task.splits)}")
    samples = load_samples(task, config.data_root, split)
    data_version = version_of(task, config.data_root, split, len(samples))
    if not data_version.known and warn is not None:
        warn(unknown_warning(task.name, split, data_version))
    if config.limit is not None:
        samples = samples[: config.limit]
    prompts = {s.id: task.build_prompt(s) for s in samples}
    hashes = {s.id: (stable_hash(prompts[s.id]), task.target_hash(s)) for s in samples}
    path = predictions_path(config.output_dir, task.name, split)
    predictions: dict[str, Prediction] = {}

    def pending() -> list[str]:  # rank 0 only: what is left to predict, after folding what a killed run left
        fold_rank_files(path, [s.id for s in samples])
        predictions.update(_load_previous(task, path, samples, hashes))
        return [s.id for s in samples if s.id not in predictions]

    todo_ids = distributed.run_on_main(pending)
    by_id = {s.id: s for s in samples}
    todo = [by_id[i] for i in shard(todo_ids, place.rank, place.world_size)]
    writes_to, label, n_done, n_total = path, task.name, len(samples) - len(todo), len(samples)
    if place.is_distributed:  # each rank writes its own file; the bar shows rank 0's share
        writes_to = rank_file(path, place.rank, place.world_size)
        label, n_done, n_total = f"{task.name} (rank 0 of {place.world_size})", 0, len(todo)
    new_scores: dict[str, ScoredSample] = {}

    started = time.perf_counter()
    if progress:
        progress(label, n_done, n_total)
    with distributed.together():  # every rank finishes its share (or all stop) before rank 0 merges
        if todo:
            model.prepare(task, config.data_root, split)
            with PredictionWriter(writes_to) as writer:
                for records in _predict(model, task, todo, prompts, hashes, config, predictions, new_scores):
                    writer.write(records)
                    n_done += len(records)
                    if progress:
                        progress(label, n_done, n_total)
    if not place.is_main:
        return None
    if place.is_distributed:
        fold_rank_files(path, [s.id for s in samples])
        predictions = _load_previous(task, path, samples, hashes, retry_media=False)
    predict_seconds = time.perf_counter() - started

    evaluation = evaluate(task, samples, [predictions[s.id] for s in samples], new_scores, bootstrap=config.bootstrap)
    n_media_errors = sum(predictions[s.id].error_kind == "media" for s in samples)
    return TaskResult(
        task=task.name, split=split, metrics=evaluation.metrics, n_samples=len(samples),
        n_parse_failures=evaluation.n_parse_failures - n_media_errors, variants=task.variants(),
        seconds=round(predict_seconds, 3), n_media_errors=n_media_errors, data_version=data_version.to_json(),
        intervals=evaluation.intervals, bootstrap=config.bootstrap.to_json() if config.bootstrap else None,
    )


def _predict(
    model: ModelAdapter, task: Task, todo: Sequence[Sample], prompts: dict[str, str], hashes: dict[str, tuple[str, str]],
    config: RunConfig, predictions: dict[str, Prediction], new_scores: dict[str, ScoredSample],
) -> Iterator[list[dict]]:
    """Predict, parse and score `todo` batch by batch (into `predictions` and `new_scores`); yields each
    batch's predictions-file lines."""
    for batch, media in _media_batches(model, todo, config):
        failed = _media_errors(batch, media, config.on_error)
        ready = [s for s in batch if s.id not in failed]
        outputs: list[ModelOutput] = []
        if media is None:
            outputs = model.predict(task, ready, [prompts[s.id] for s in ready])
        elif ready:
            decoded = [m for m in media if not isinstance(m, MediaError)]
            outputs = model.predict(task, ready, [prompts[s.id] for s in ready], media=decoded)
        if len(outputs) != len(ready):
            raise AVBenchError(f"model {model.name!r} returned {len(outputs)} outputs for {len(ready)} samples")
        output_of = {s.id: o for s, o in zip(ready, outputs)}
        records = []
        for sample in batch:
            if sample.id in failed:
                prediction = _media_failure(sample, failed[sample.id])
            else:
                prediction = parse_output(task, sample, output_of[sample.id])
            predictions[sample.id] = prediction
            new_scores[sample.id] = score_prediction(task, sample, prediction)
            records.append(_record(task, sample, *hashes[sample.id], prediction, new_scores[sample.id].summary))
        yield records


def _media_errors(
    batch: Sequence[Sample], media: list[DecodedMedia | MediaError] | None, on_error: str
) -> dict[str, MediaError]:
    """The batch's samples whose media failed, by id; with `on_error="raise"` the first one stops the run."""
    failed = {}
    for sample, item in zip(batch, media or []):
        if isinstance(item, MediaError):
            if on_error == "raise":
                raise MediaError(f"{item.reason} (sample {sample.id!r}; --on-error skip scores it as a failure "
                                 "and goes on)", item.path)
            failed[sample.id] = item
    return failed


def run(
    model: ModelAdapter, config: RunConfig, progress: ProgressFn | None = None, warn: Callable[[str], None] | None = None
) -> list[TaskResult]:
    """Run every task of `config` (in order) and return their results; files are written as it goes.

    `warn` receives the warnings a user must see before trusting the numbers (an unknown data version).
    In a data-parallel run only rank 0 reports progress and warnings and gets the results; the other
    ranks return [].
    """
    place = distributed.init()
    if not place.is_main:
        progress = warn = None
    distributed.run_on_main(lambda: _start(model, config))
    tasks = [get_task(name, **config.task_options.get(name, {})) for name in config.tasks]
    results = [run_task(model, task, config, progress, warn) for task in tasks]
    return [r for r in results if r is not None]


def _start(model: ModelAdapter, config: RunConfig) -> None:
    """Checks before the first task, and run.json (rank 0 only in a data-parallel run)."""
    if not config.data_root.is_dir():
        raise DataError("data root not found (pass --data-root DIR, or omit it to use the embedded SynthAV)", config.data_root)
    if config.on_error not in ON_ERROR_CHOICES:
        raise AVBenchError(f"--on-error takes {' or '.join(ON_ERROR_CHOICES)}, got {config.on_error!r}")
    check_ablation(config.ablate, model)
    _check_resumable(config, model)
