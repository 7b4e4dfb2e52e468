"""Leaderboard schema: the shipped file is valid and current; bad files are rejected naming the field and the reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from avbench.errors import DataError
from avbench.leaderboard import LeaderboardError, load, validate
from avbench.leaderboard.store import default_task_spec
from avbench.registry import BUILTIN_TASKS

from leaderboard_fixtures import SHIPPED

#: The published numbers (../shared/docs/CRAB.md "Published scores"; the Ref-AVS paper, Table 4; the
#: AVSBench paper for TPAVI with PVT-v2), written here by hand so that a typo in the data file fails.
PUBLISHED = {
    "Crab": {
        "ave": {"accuracy": 80.15}, "avvp": {"segment_avg": 59.00, "event_avg": 54.44},
        "arig": {"ciou": 41.78, "auc": 0.42},
        "music_avqa": {"audio": 76.58, "visual": 90.73, "audio_visual": 74.13, "avg": 78.94},
        "ms3": {"miou": 58.21, "f_score": 66.24}, "avss": {"miou": 26.52, "f_score": 32.10},
        "ref_avs": {"j_seen": 40.54, "f_seen": 0.58, "j_unseen": 45.55, "s_null": 0.01},
    },
    "TSPM": {"music_avqa": {"avg": 76.79}},
    "DHHN": {"avvp": {"segment_avg": 60.32, "event_avg": 55.06}},
    "AVSegFormer": {"ms3": {"miou": 58.40}},
    "TPAVI": {"avss": {"miou": 29.80}},
    "GroundingGPT": {"arig": {"ciou": 44.02, "auc": 0.45}},
    "VALOR": {"music_avqa": {"avg": 78.90}},
    "TPAVI (PVT-v2)": {"s4": {"miou": 78.74, "f_score": 87.9}, "ms3": {"miou": 54.00, "f_score": 64.5}},
    "EEMC": {"ref_avs": {"j_seen": 34.20, "f_seen": 0.513, "j_unseen": 49.54, "f_unseen": 0.648, "s_null": 0.007}},
}


def test_the_shipped_leaderboard_is_valid_and_holds_the_published_numbers_as_reported() -> None:
    document = load(SHIPPED)
    held = {
        e["model"]["name"]: {t: {m: v["value"] for m, v in body["metrics"].items()} for t, body in e["tasks"].items()}
        for e in document["entries"]
    }
    assert held == PUBLISHED
    for entry in document["entries"]:
        assert entry["provenance"]["kind"] == "reported" and entry["provenance"]["citation"]
        assert all(t["n_samples"] is None and t["version"] is None for t in entry["tasks"].values())


def test_the_shipped_header_is_each_task_at_its_current_version_and_default_variants() -> None:
    """Fails when a task changes its version or default variants: then the leaderboard header must follow."""
    document = load(SHIPPED)
    assert list(document["tasks"]) == list(BUILTIN_TASKS)
    for name, spec in document["tasks"].items():
        assert spec == default_task_spec(name), name


def _measured(document: dict[str, Any]) -> dict[str, Any]:
    """The document with one valid measured entry appended (returned for chaining)."""
    spec = document["tasks"]["ave"]
    document["entries"].append({
        "model": {"name": "m", "parameters": None, "checkpoint_hash": None},
        "provenance": {"kind": "measured", "results": [
            {"sha256": "a" * 64, "created": "2025-06-01T12:00:00+00:00", "avbench_version": "0.1.0", "git_revision": None}]},
        "avbench_version": "0.1.0", "date": "2025-06-01", "data": {"source": "data_root", "synthav": None},
        "tasks": {"ave": {"split": spec["split"], "version": spec["version"], "variants": dict(spec["variants"]),
                          "n_samples": 10, "n_parse_failures": 1, "data_version": None,
                          "metrics": {"accuracy": {"value": 50.0, "interval": [40.0, 60.0]}}, "results_sha256": "a" * 64}},
    })
    return document


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return mutate


def test_a_measured_entry_is_valid() -> None:
    validate(_measured(json.loads(SHIPPED.read_text())))


@pytest.mark.parametrize(
    "mutate, field, reason",
    [
        (_set("schema_version", 2), "schema_version", "this avbench reads version 1, got 2"),
        (_set("schema", "other"), "schema", "must be 'avbench-leaderboard'"),
        (_set("entries/-1/model/name", "  "), "entries[9].model.name", "must be a non-empty string, got an empty string"),
        (_set("entries/-1/tasks/ave/metrics/accuracy/value", 180), "entries[9].tasks.ave.metrics.accuracy.value",
         "must lie in [0, 100] (a percent metric), got 180"),
        (_set("entries/-1/tasks/ave/metrics/accuracy/value", "50"), "entries[9].tasks.ave.metrics.accuracy.value",
         "must be a finite number or null, got string '50'"),
        (_set("entries/-1/tasks/ave/metrics/accuracy/interval", [60.0, 40.0]), "entries[9].tasks.ave.metrics.accuracy.interval",
         "low 60 is above high 40"),
        (_set("entries/-1/tasks/ave/metrics/accuracy/interval", [40.0]), "entries[9].tasks.ave.metrics.accuracy.interval",
         "must be [low, high] or null"),
        (_set("entries/-1/tasks/ave/n_parse_failures", 11), "entries[9].tasks.ave.n_parse_failures", "11 is more than n_samples 10"),
        (_set("entries/-1/tasks/ave/n_samples", None), "entries[9].tasks.ave.n_samples", "must be an integer >= 0, got null"),
        (_set("entries/-1/tasks/ave/variants", {"x": "y"}), "entries[9].tasks.ave.variants",
         "{'x': 'y'} differs from tasks.ave.variants {}: a measured entry must use the leaderboard's task version"),
        (_set("entries/-1/tasks/ave/version", "2"), "entries[9].tasks.ave.version", "differs from tasks.ave.version '1'"),
        (_set("entries/-1/tasks/ave/results_sha256", "b" * 64), "entries[9].tasks.ave.results_sha256", "is not among provenance.results"),
        (_set("entries/-1/avbench_version", None), "entries[9].avbench_version", "must be a non-empty string, got null"),
        (_set("entries/-1/date", "2025-13-01"), "entries[9].date", "is not a calendar date"),
        (_set("entries/-1/date", "June 2025"), "entries[9].date", "must be an ISO date YYYY-MM-DD"),
        (_set("entries/-1/provenance/kind", "guessed"), "entries[9].provenance.kind", "must be one of measured, reported, got 'guessed'"),
        (_set("entries/-1/provenance/results/0/sha256", "xyz"), "entries[9].provenance.results[0].sha256", "must be 64 lowercase hex digits"),
        (_set("entries/-1/data/source", "synthav"), "entries[9].data.synthav", "must be an object, got null"),
        (_set("entries/-1/tasks/nosuch", {}), "entries[9].tasks.nosuch", "task 'nosuch' is not declared in the header `tasks`"),
        (_set("entries/-1/extra", 1), "entries[9].extra", "unknown field (allowed: avbench_version, data, date, model, provenance, tasks)"),
        (_delete("entries/-1/date"), "entries[9].date", "is required"),
        (_set("entries/1/tasks/arig/metrics/auc/value", 42.0), "entries[1].tasks.arig.metrics.auc.value",
         "must lie in [0, 1] (a fraction metric), got 42"),
        (_set("entries/1/tasks/arig/results_sha256", "a" * 64), "entries[1].tasks.arig.results_sha256",
         "only a measured entry names a results file"),
        (_delete("entries/0/provenance/citation"), "entries[0].provenance.citation", "is required"),
        (_set("tasks/ave/primary_metric", "f1"), "tasks.ave.primary_metric", "'f1' is not in tasks.ave.metrics"),
        (_set("tasks/ave/metrics", []), "tasks.ave.metrics", "must not be empty"),
        (lambda d: d["entries"].append(copy.deepcopy(d["entries"][-1])), "entries[10]",
         "repeats entries[9] (same model, checkpoint, provenance and data): merge them"),
    ],
)
def test_invalid_files_are_rejected_with_the_field_and_the_reason(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], field: str, reason: str
) -> None:
    document = _measured(json.loads(SHIPPED.read_text()))
    assert document["entries"][1]["model"]["name"] == "Crab" and len(document["entries"]) == 10  # the indices below
    mutate(document)
    path = tmp_path / "leaderboard.json"
    path.write_text(json.dumps(document))
    with pytest.raises(LeaderboardError) as info:
        load(path)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: {field}: ")


def test_a_file_that_is_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.json"
    path.write_text('{\n  "schema": "avbench-leaderboard",\n  "entries": [,]\n}\n')
    with pytest.raises(DataError, match=r"leaderboard.json:3: not valid JSON"):
        load(path)
