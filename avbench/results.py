"""The results JSON and the summary tables (terminal and markdown) built from task results."""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .registry import TASK_GROUPS, get_task
from .types import TaskResult

RESULTS_SCHEMA_VERSION = 1
RESULTS_FILE_NAME = "results.json"
_REPORTED_PACKAGES = ("numpy", "torch", "transformers", "peft", "pycocotools", "av", "pillow", "h5py")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _REPORTED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def _git(args: list[str], path: Path | None) -> str | None:
    """stdout of `git <args>` in the avbench checkout (or `path`); None outside a checkout or on any failure."""
    where = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_revision(path: Path | None = None) -> str | None:
    """The commit of the avbench checkout, if it is one (None for an installed wheel)."""
    return _git(["rev-parse", "HEAD"], path)


def source_state(path: Path | None = None) -> dict[str, Any]:
    """The avbench checkout's commit and whether tracked files differ from it (None/None for a wheel)."""
    revision = git_revision(path)
    status = None if revision is None else _git(["status", "--porcelain", "--untracked-files=no"], path)
    return {"git_revision": revision, "tracked_changes": None if status is None else bool(status)}


def family_scores(results: Sequence[TaskResult]) -> dict[str, dict[str, Any]]:
    """Per capability family: the mean of its evaluated tasks' primary metrics (all in percent)."""
    by_task = {r.task: r for r in results}
    families: dict[str, dict[str, Any]] = {}
    for family, members in TASK_GROUPS.items():
        scored = {}
        for name in members:
            value = by_task[name].metrics.get(get_task(name).primary_metric) if name in by_task else None
            if value is not None and not math.isnan(value):
                scored[name] = value
        if scored:
            families[family] = {"score": sum(scored.values()) / len(scored), "tasks": list(scored)}
    return families


def build_results(
    results: Sequence[TaskResult], config: dict[str, Any], model: dict[str, Any], data: dict[str, Any]
) -> dict[str, Any]:
    tasks = {}
    for r in results:
        task = get_task(r.task)
        tasks[r.task] = {
            "split": r.split,
            "metrics": r.metrics,
            "primary_metric": task.primary_metric,
            "lower_is_better": sorted(task.lower_is_better),
            "variants": r.variants,
            # A task bumps TASK_VERSION when its prompt, parser or metric changes; the leaderboard refuses to mix versions.
            "task_version": str(getattr(type(task), "TASK_VERSION", 1)),
            "n_samples": r.n_samples,
            "n_parse_failures": r.n_parse_failures,
            "n_media_errors": r.n_media_errors,
            "data_version": r.data_version,
            "seconds": r.seconds,
        }
        if r.bootstrap is not None:
            # [low, high] per metric; null for a bound that is undefined (NaN), as JSON has no NaN.
            tasks[r.task]["intervals"] = {m: [_json_number(low), _json_number(high)] for m, (low, high) in r.intervals.items()}
            tasks[r.task]["bootstrap"] = r.bootstrap
    revision = git_revision()
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "avbench_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "model": model,
        "data": data,
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": package_versions(),
            "git_revision": revision,
        },
        "tasks": tasks,
        "families": family_scores(results),
        **lm_eval_keys(tasks, revision),
    }


def lm_eval_keys(tasks: dict[str, dict[str, Any]], git_hash: str | None) -> dict[str, Any]:
    """The top-level keys of lm-evaluation-harness's results JSON whose meaning avbench shares, in its
    layout (docs/lm-eval.md maps every field), so tools that read lm-eval results read ours (e.g.
    `lm_eval.utils.make_table`). They repeat what `tasks` holds: metric values keyed "<metric>,none"
    (lm-eval's "metric,filter"; avbench applies no output filter), task versions, 0 shots, which way
    each metric is better, sample counts (original: the split; effective: after --limit), the revision."""
    return {
        "results": {name: {"alias": name, **{f"{metric},none": value for metric, value in entry["metrics"].items()}}
                    for name, entry in tasks.items()},
        "versions": {name: entry["task_version"] for name, entry in tasks.items()},
        "n-shot": {name: 0 for name in tasks},
        "higher_is_better": {name: {metric: metric not in entry["lower_is_better"] for metric in entry["metrics"]}
                             for name, entry in tasks.items()},
        "n-samples": {name: {"original": (entry["data_version"] or {}).get("n_samples", entry["n_samples"]),
                             "effective": entry["n_samples"]} for name, entry in tasks.items()},
        "git_hash": git_hash,
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def _json_number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def interval_note(results: dict[str, Any]) -> str | None:
    """One line saying what the interval column holds, or None when the results have none."""
    for entry in results["tasks"].values():
        if "bootstrap" in entry:
            b = entry["bootstrap"]
            return (f"interval: {100 * b['level']:g} % {b['method']} bootstrap interval, {b['n_resamples']} resamples "
                    f"of the samples (seed {b['seed']}).")
    return None


TABLE_NOTE = ("failed: samples whose output could not be parsed or whose media could not be decoded, "
              "scored as wrong answers / empty predictions; ↓: lower is better.")


def format_interval(interval: Sequence[float | None] | None, fraction: bool = False) -> str:
    """`[78.90, 81.40]` in the metric's own format, or "" when there is none."""
    if interval is None or any(b is None or math.isnan(b) for b in interval):
        return ""
    low, high = (format_value(b, fraction) for b in interval)
    return f"[{low}, {high}]"


def format_value(value: float | None, fraction: bool = False) -> str:
    """Percent metrics with 2 decimals, fractions with 3 (as the papers print them)."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.3f}" if fraction else f"{value:.2f}"


METRIC_HEADER = ["task", "split", "metric", "value", "interval", "samples", "failed"]
FAMILY_HEADER = ["family", "tasks", "score"]


def metric_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per shown metric; the task's name, split and counts only on its first row."""
    rows = []
    for name, entry in results["tasks"].items():
        task = get_task(name)
        # a split may report other metrics than the test split (e.g. Ref-AVS val has plain j and f)
        shown = [m for m in task.table_metrics if m in entry["metrics"]] or list(entry["metrics"])
        failed = entry["n_parse_failures"] + entry.get("n_media_errors", 0)
        for i, metric in enumerate(shown):
            label = metric + (" ↓" if metric in task.lower_is_better else "")
            fraction = metric in task.fraction_metrics
            value = entry["metrics"][metric]
            interval = entry.get("intervals", {}).get(metric) if value is not None and not math.isnan(value) else None
            first = i == 0
            rows.append([
                name if first else "", entry["split"] if first else "", label, format_value(value, fraction),
                format_interval(interval, fraction), str(entry["n_samples"]) if first else "", str(failed) if first else "",
            ])
    return rows


def family_rows(results: dict[str, Any]) -> list[list[str]]:
    return [[family, ", ".join(entry["tasks"]), format_value(entry["score"])] for family, entry in results["families"].items()]


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def markdown_table(results: dict[str, Any]) -> str:
    """The summary as GitHub/pandoc markdown tables, ready to paste into a paper draft or README."""
    lines = _markdown(METRIC_HEADER, metric_rows(results)) + ["", TABLE_NOTE]
    if note := interval_note(results):
        lines += ["", note]
    if results["families"]:
        lines += ["", "Family score = mean of the family's primary metrics (%).", ""]
        lines += _markdown(FAMILY_HEADER, family_rows(results))
    return "\n".join(lines) + "\n"
