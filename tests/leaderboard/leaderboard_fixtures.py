"""Results files and leaderboards built by hand for the leaderboard tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from avbench.leaderboard import add_results, read_results
from avbench.leaderboard.store import default_task_spec, new_leaderboard
from avbench.registry import get_task

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "leaderboard" / "leaderboard.json"


def task_result(name: str, metrics: dict[str, float], *, n: int = 40, failures: int = 0,
                intervals: dict[str, list[float]] | None = None, **options: Any) -> dict[str, Any]:
    """One task of a results JSON, shaped as avbench.results.build_results writes it."""
    task = get_task(name, **options)
    entry = {
        "split": task.default_split, "metrics": metrics, "primary_metric": task.primary_metric,
        "lower_is_better": sorted(task.lower_is_better), "variants": task.variants(), "task_version": "1",
        "n_samples": n, "n_parse_failures": failures, "seconds": 0.5,
        "data_version": {"name": "synthav-v1-small-seed0", "known": True, "hash": "1e2d483070c32f1c", "n_samples": n},
    }
    if intervals is not None:
        entry["intervals"] = intervals
    return entry


def results_doc(model: str | None, tasks: dict[str, dict[str, Any]], *, created: str = "2025-06-01T12:00:00+00:00",
                seed: int = 0) -> dict[str, Any]:
    return {
        "schema_version": 1, "avbench_version": "0.1.0", "created": created,
        "config": {"model": model, "tasks": list(tasks)}, "model": {"name": model},
        "data": {"root": "/cache/synthav", "synthav": {"version": "1", "seed": seed, "size": "small"}},
        "environment": {"python": "3.11", "git_revision": "0123456789abcdef0123"},
        "tasks": tasks, "families": {},
    }


EVIL = "<script>alert(1)</script>"
PIPE = "a|b *c* [x](y) & <img src=z onerror=alert(2)>"


def example_leaderboard(document: dict[str, Any], write_results: Callable[..., Path]) -> dict[str, Any]:
    """Two measured entries (one with a hostile name), one with table-breaking characters, and Crab as reported."""
    runs = [
        ("prior.json", "prior", {
            "ave": task_result("ave", {"accuracy": 55.0}, n=40, failures=2, intervals={"accuracy": [30.0, 80.0]}),
            "arig": task_result("arig", {"ciou": 0.0, "auc": 0.0361}, n=20, intervals={"ciou": [0.0, 0.0], "auc": [0.02, 0.05]}),
        }),
        ("evil.json", EVIL, {
            "ave": task_result("ave", {"accuracy": 62.5}, n=40),
            "s4": task_result("s4", {"miou": 8.94, "f_score": 22.03}, n=20),
        }),
        ("pipe.json", PIPE, {"ave": task_result("ave", {"accuracy": 12.0}, n=40)}),
    ]
    for file_name, model, tasks in runs:
        document, _ = add_results(document, read_results(write_results(file_name, model, tasks)))
    crab = next(e for e in json.loads(SHIPPED.read_text())["entries"] if e["model"]["name"] == "Crab")
    crab["tasks"] = {t: crab["tasks"][t] for t in ("ave", "arig", "ref_avs")}
    document["entries"].append(crab)
    return document


@pytest.fixture()
def write_results(tmp_path: Path) -> Callable[..., Path]:
    """write_results(file name, model, {task: task_result(...)}, created=..., seed=...) -> the path written."""

    def write(file_name: str, model: str | None, tasks: dict[str, dict[str, Any]], **kwargs: Any) -> Path:
        path = tmp_path / file_name
        path.write_text(json.dumps(results_doc(model, tasks, **kwargs), indent=2))
        return path

    return write


@pytest.fixture()
def empty_leaderboard() -> dict[str, Any]:
    doc = new_leaderboard()
    for name in ("ave", "arig", "s4", "ref_avs"):
        doc["tasks"][name] = default_task_spec(name)
    return copy.deepcopy(doc)
