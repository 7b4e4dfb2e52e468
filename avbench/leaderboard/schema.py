"""Validation of the leaderboard JSON (schema version 1, documented in leaderboard/SCHEMA.md).

A leaderboard file holds a header `tasks` (per task: the task version, split and metric variants that
every measured entry must share, and how its metrics are shown) and a list of `entries`, each one
model's numbers with their provenance: `measured` by avbench from results files, or `reported` from a
paper. `validate` rejects a file at its first problem with the field's path and the reason, e.g.
``entries[2].tasks.ave.metrics.accuracy.value: must lie in [0, 100] (a percent metric), got 180``.

Hand-written because the stack has no JSON-Schema validator (jsonschema is not a dependency), and
several rules cross fields (a measured task must match the header; a value's range depends on the
header's fraction metrics), which a plain schema language cannot say anyway.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from pathlib import Path
from typing import Any, Iterable, NoReturn

from ..errors import DataError

SCHEMA_NAME = "avbench-leaderboard"
SCHEMA_VERSION = 1
PROVENANCE_KINDS = ("measured", "reported")
DATA_SOURCES = ("synthav", "data_root", "official")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Values are compared to their range with this slack: a percent computed as 100 * 1.0 may print as 100.00000000000001.
_RANGE_SLACK = 1e-9


class LeaderboardError(DataError):
    """An invalid leaderboard file: names the file, the field (as a path like `entries[0].model.name`) and the reason."""

    def __init__(self, field: str, reason: str, path: str | Path | None = None):
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}" if field else reason, path)


class _Checker:
    """Raises `LeaderboardError` for the first violated rule, naming the field path."""

    def __init__(self, path: str | Path | None):
        self.path = path

    def fail(self, field: str, reason: str) -> NoReturn:
        raise LeaderboardError(field, reason, self.path)

    def obj(self, value: Any, field: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(field, f"must be an object, got {_kind(value)}")
        required, allowed = list(required), set(required) | set(optional)
        for key in required:
            if key not in value:
                self.fail(_join(field, key), "is required")
        for key in value:
            if key not in allowed:
                self.fail(_join(field, key), f"unknown field (allowed: {', '.join(sorted(allowed))})")
        return value

    def string(self, value: Any, field: str, *, nullable: bool = False, choices: Iterable[str] | None = None,
               pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"must be a non-empty string{' or null' if nullable else ''}, got {_kind(value)}")
        if choices is not None and value not in choices:
            self.fail(field, f"must be one of {', '.join(choices)}, got {value!r}")
        if pattern is not None and not pattern.match(value):
            self.fail(field, f"must be {what}, got {value!r}")
        return value

    def integer(self, value: Any, field: str, *, nullable: bool = False) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(field, f"must be an integer >= 0{' or null' if nullable else ''}, got {_kind(value)}")
        return value

    def number(self, value: Any, field: str, *, nullable: bool = False) -> float | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(field, f"must be a finite number{' or null' if nullable else ''}, got {_kind(value)}")
        return float(value)

    def string_list(self, value: Any, field: str, *, non_empty: bool = False) -> list[str]:
        if not isinstance(value, list):
            self.fail(field, f"must be a list of strings, got {_kind(value)}")
        for i, item in enumerate(value):
            self.string(item, f"{field}[{i}]")
        if non_empty and not value:
            self.fail(field, "must not be empty")
        if len(set(value)) != len(value):
            self.fail(field, "must not repeat a name")
        return value

    def string_map(self, value: Any, field: str, *, nullable: bool = False) -> dict[str, str] | None:
        if value is None and nullable:
            return None
        if not isinstance(value, dict):
            self.fail(field, f"must be an object of strings{' or null' if nullable else ''}, got {_kind(value)}")
        for key, item in value.items():
            if not isinstance(item, str):
                self.fail(_join(field, key), f"must be a string, got {_kind(item)}")
        return value

    def date(self, value: Any, field: str) -> str:
        self.string(value, field, pattern=_DATE, what="an ISO date YYYY-MM-DD (or YYYY-MM, YYYY for a publication)")
        parts = [int(p) for p in value.split("-")] + [1, 1]
        try:
            _dt.date(parts[0], parts[1], parts[2])
        except ValueError as exc:
            self.fail(field, f"is not a calendar date ({exc}), got {value!r}")
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}" if value.strip() else "an empty string"
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _join(field: str, key: str) -> str:
    # keys that are not plain identifiers are quoted, so the path stays unambiguous
    if not field:
        return key
    return f"{field}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{field}[{key!r}]"


# ---- the parts -------------------------------------------------------------------------------------

def _task_spec(c: _Checker, spec: Any, field: str) -> None:
    c.obj(spec, field, ["version", "split", "variants", "primary_metric", "metrics", "lower_is_better", "fraction_metrics"])
    c.string(spec["version"], field + ".version")
    c.string(spec["split"], field + ".split")
    c.string_map(spec["variants"], field + ".variants")
    c.string(spec["primary_metric"], field + ".primary_metric")
    c.string_list(spec["metrics"], field + ".metrics", non_empty=True)
    if spec["primary_metric"] not in spec["metrics"]:
        c.fail(field + ".primary_metric", f"{spec['primary_metric']!r} is not in {field}.metrics")
    c.string_list(spec["lower_is_better"], field + ".lower_is_better")
    c.string_list(spec["fraction_metrics"], field + ".fraction_metrics")


def _model(c: _Checker, model: Any, field: str) -> None:
    c.obj(model, field, ["name", "parameters", "checkpoint_hash"])
    c.string(model["name"], field + ".name")
    c.string(model["parameters"], field + ".parameters", nullable=True)
    c.string(model["checkpoint_hash"], field + ".checkpoint_hash", nullable=True)


def _provenance(c: _Checker, provenance: Any, field: str) -> str:
    c.obj(provenance, field, ["kind"], ["results", "citation", "url", "note"])
    kind = c.string(provenance["kind"], field + ".kind", choices=PROVENANCE_KINDS)
    if kind == "measured":
        c.obj(provenance, field, ["kind", "results"], ["note"])
        sources = provenance["results"]
        if not isinstance(sources, list) or not sources:
            c.fail(field + ".results", f"must be a non-empty list of results files, got {_kind(sources)}")
        for i, source in enumerate(sources):
            where = f"{field}.results[{i}]"
            c.obj(source, where, ["sha256", "created", "avbench_version", "git_revision"])
            c.string(source["sha256"], where + ".sha256", pattern=_SHA256, what="64 lowercase hex digits")
            c.string(source["created"], where + ".created")
            c.string(source["avbench_version"], where + ".avbench_version")
            c.string(source["git_revision"], where + ".git_revision", nullable=True)
        hashes = [s["sha256"] for s in sources]
        if len(set(hashes)) != len(hashes):
            c.fail(field + ".results", "lists a results file twice")
    else:
        c.obj(provenance, field, ["kind", "citation"], ["url", "note"])
        c.string(provenance["citation"], field + ".citation")
        c.string(provenance.get("url"), field + ".url", nullable=True)
    c.string(provenance.get("note"), field + ".note", nullable=True)
    return kind


def _data(c: _Checker, data: Any, field: str) -> None:
    c.obj(data, field, ["source", "synthav"])
    source = c.string(data["source"], field + ".source", choices=DATA_SOURCES)
    if source == "synthav":
        c.obj(data["synthav"], field + ".synthav", ["version", "seed", "size"])
        c.string(data["synthav"]["version"], field + ".synthav.version")
        c.integer(data["synthav"]["seed"], field + ".synthav.seed")
        c.string(data["synthav"]["size"], field + ".synthav.size")
    elif data["synthav"] is not None:
        c.fail(field + ".synthav", f"must be null when source is {source!r}")


def _metric(c: _Checker, metric: Any, field: str, fraction: bool) -> None:
    c.obj(metric, field, ["value", "interval"])
    value = c.number(metric["value"], field + ".value", nullable=True)
    top = 1.0 if fraction else 100.0
    what = "a fraction metric" if fraction else "a percent metric"
    for name, number in [("value", value)] + _interval(c, metric["interval"], field + ".interval"):
        if number is not None and not -_RANGE_SLACK <= number <= top + _RANGE_SLACK:
            c.fail(f"{field}.{name}", f"must lie in [0, {top:g}] ({what}), got {number:g}")


def _interval(c: _Checker, interval: Any, field: str) -> list[tuple[str, float | None]]:
    if interval is None:
        return []
    if not isinstance(interval, list) or len(interval) != 2:
        c.fail(field, f"must be [low, high] or null, got {_kind(interval)}")
    low = c.number(interval[0], field + "[0]")
    high = c.number(interval[1], field + "[1]")
    if low > high:  # type: ignore[operator]
        c.fail(field, f"low {low:g} is above high {high:g}")
    return [("interval[0]", low), ("interval[1]", high)]


def _entry_task(c: _Checker, task: Any, field: str, spec: dict[str, Any], measured: bool, header: str) -> None:
    c.obj(task, field, ["split", "version", "variants", "n_samples", "n_parse_failures", "data_version", "metrics"],
          ["results_sha256", "note"])
    c.string(task["split"], field + ".split")
    c.string(task["version"], field + ".version", nullable=not measured)
    c.string_map(task["variants"], field + ".variants", nullable=not measured)
    n = c.integer(task["n_samples"], field + ".n_samples", nullable=not measured)
    failures = c.integer(task["n_parse_failures"], field + ".n_parse_failures", nullable=not measured)
    if n is not None and failures is not None and failures > n:
        c.fail(field + ".n_parse_failures", f"{failures} is more than n_samples {n}")
    if task["data_version"] is not None and not isinstance(task["data_version"], dict):
        c.fail(field + ".data_version", f"must be an object or null, got {_kind(task['data_version'])}")
    c.string(task.get("note"), field + ".note", nullable=True)
    metrics = task["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        c.fail(field + ".metrics", f"must be a non-empty object of metrics, got {_kind(metrics)}")
    for name, metric in metrics.items():
        _metric(c, metric, _join(field + ".metrics", name), name in spec["fraction_metrics"])
    if measured:
        c.string(task.get("results_sha256"), field + ".results_sha256", pattern=_SHA256, what="64 lowercase hex digits")
        for key in ("split", "version", "variants"):
            if task[key] != spec[key]:
                c.fail(f"{field}.{key}", f"{task[key]!r} differs from {header}.{key} {spec[key]!r}: "
                                         "a measured entry must use the leaderboard's task version")
    elif "results_sha256" in task:
        c.fail(field + ".results_sha256", "only a measured entry names a results file")


def entry_key(entry: dict[str, Any]) -> tuple:
    """What identifies an entry: two entries with the same key are one model's numbers and must be merged."""
    provenance = entry["provenance"]
    source = provenance.get("citation") if provenance["kind"] == "reported" else None
    data = entry["data"]
    synthav = data.get("synthav") or {}
    return (entry["model"]["name"], entry["model"]["checkpoint_hash"], provenance["kind"], source, data["source"],
            tuple(sorted((k, str(v)) for k, v in synthav.items())))


def _entry(c: _Checker, entry: Any, field: str, specs: dict[str, Any]) -> None:
    c.obj(entry, field, ["model", "provenance", "avbench_version", "date", "data", "tasks"])
    _model(c, entry["model"], field + ".model")
    kind = _provenance(c, entry["provenance"], field + ".provenance")
    measured = kind == "measured"
    c.string(entry["avbench_version"], field + ".avbench_version", nullable=not measured)
    c.date(entry["date"], field + ".date")
    _data(c, entry["data"], field + ".data")
    tasks = entry["tasks"]
    if not isinstance(tasks, dict) or not tasks:
        c.fail(field + ".tasks", f"must be a non-empty object of tasks, got {_kind(tasks)}")
    for name, task in tasks.items():
        where = _join(field + ".tasks", name)
        if name not in specs:
            c.fail(where, f"task {name!r} is not declared in the header `tasks`")
        _entry_task(c, task, where, specs[name], measured, _join("tasks", name))
    if measured:
        listed = {s["sha256"] for s in entry["provenance"]["results"]}
        for name, task in tasks.items():
            if task["results_sha256"] not in listed:
                c.fail(_join(field + ".tasks", name) + ".results_sha256", "is not among provenance.results")


def validate(document: Any, path: str | Path | None = None) -> dict[str, Any]:
    """Check a parsed leaderboard document against schema version 1; return it unchanged or raise `LeaderboardError`."""
    c = _Checker(path)
    c.obj(document, "", ["schema", "schema_version", "tasks", "entries"])
    if document["schema"] != SCHEMA_NAME:
        c.fail("schema", f"must be {SCHEMA_NAME!r}, got {document['schema']!r}")
    if document["schema_version"] != SCHEMA_VERSION:
        c.fail("schema_version", f"this avbench reads version {SCHEMA_VERSION}, got {document['schema_version']!r}")
    specs = document["tasks"]
    if not isinstance(specs, dict):
        c.fail("tasks", f"must be an object of task specifications, got {_kind(specs)}")
    for name, spec in specs.items():
        _task_spec(c, spec, _join("tasks", name))
    entries = document["entries"]
    if not isinstance(entries, list):
        c.fail("entries", f"must be a list, got {_kind(entries)}")
    seen: dict[tuple, int] = {}
    for i, entry in enumerate(entries):
        _entry(c, entry, f"entries[{i}]", specs)
        key = entry_key(entry)
        if key in seen:
            c.fail(f"entries[{i}]", f"repeats entries[{seen[key]}] (same model, checkpoint, provenance and data): merge them")
        seen[key] = i
    return document
