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


def git_revision(path: Path | None = None) -> str | None:
    """The commit of the avbench checkout, if it is one (None for an installed wheel)."""
    where = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def family_scores(results: Sequence[TaskResult]) -> dict[str, dict[str, Any]]:
    """Per capability family: the mean of its evaluated tasks' primary metrics (all in percent)."""
    by_task = {r.task: r for r in results}
    families: dict[str, dict[str, Any]] = {}
    for family, members in TASK_GROUPS.items():
        present = [by_task[name] for name in members if name in by_task]
        values = [r.metrics.get(get_task(r.task).primary_metric) for r in present]
        values = [v for v in values if v is not None and not math.isnan(v)]
        if values:
            families[family] = {"score": sum(values) / len(values), "tasks": [r.task for r in present]}
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
            "n_samples": r.n_samples,
            "n_parse_failures": r.n_parse_failures,
            "seconds": r.seconds,
        }
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
            "git_revision": git_revision(),
        },
        "tasks": tasks,
        "families": family_scores(results),
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    """Rows of the summary table: one per shown metric, then one per family."""
    rows = []
    for name, entry in results["tasks"].items():
        task = get_task(name)
        shown = [m for m in task.table_metrics if m in entry["metrics"]]
        for i, metric in enumerate(shown):
            arrow = " (lower is better)" if metric in task.lower_is_better else ""
            rows.append([
                name if i == 0 else "", task.family if i == 0 else "", entry["split"] if i == 0 else "",
                str(entry["n_samples"]) if i == 0 else "", str(entry["n_parse_failures"]) if i == 0 else "",
                metric + arrow, format_value(entry["metrics"][metric]),
            ])
    for family, entry in results["families"].items():
        rows.append([f"[{family}]", "", "", "", "", "family score", format_value(entry["score"])])
    return rows


SUMMARY_HEADER = ["task", "family", "split", "samples", "parse failures", "metric", "value"]


def format_value(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2f}" if abs(value) >= 1.5 or value == 0 else f"{value:.4f}"


def markdown_table(results: dict[str, Any]) -> str:
    """The summary as a GitHub/pandoc markdown table, ready to paste into a paper draft or README."""
    lines = ["| " + " | ".join(SUMMARY_HEADER) + " |", "|" + "|".join("---" for _ in SUMMARY_HEADER) + "|"]
    for row in summary_rows(results):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines) + "\n"
