"""Read, write and grow a leaderboard file: turn a results JSON into an entry and merge it in.

Merging is idempotent: adding the same results file twice (same bytes, same SHA-256) changes nothing,
and adding a results file whose numbers the entry already holds changes nothing either. A results file
joins the entry of the same model, checkpoint and data (e.g. a run of the temporal tasks and a later run
of the pixel tasks make one row); a task the entry already holds with other numbers is refused unless
`replace=True`. A results file whose task version, split or metric variants differ from the
leaderboard's header is refused as a whole: its numbers would not measure the same thing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AVBenchError, DataError, read_json
from ..registry import task_class
from .schema import SCHEMA_NAME, SCHEMA_VERSION, entry_key, validate

DEFAULT_PATH = Path("leaderboard") / "leaderboard.json"
#: Results files written before tasks carried a version (avbench 0.1.0) computed every task at version 1.
UNVERSIONED_TASK = "1"


def new_leaderboard() -> dict[str, Any]:
    return {"schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION, "tasks": {}, "entries": []}


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a leaderboard file (errors name the file and the field)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("leaderboard file not found (create one with `avbench leaderboard add RESULTS.json`)", path)
    return validate(_read_json(path), path)


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def save(path: str | Path, document: dict[str, Any]) -> None:
    """Validate, then write atomically (a crash never leaves half a file)."""
    path = Path(path)
    validate(document, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(document), encoding="utf-8")
    tmp.replace(path)


def _read_json(path: Path) -> Any:
    return read_json(path)


# ---- results JSON -> entry -------------------------------------------------------------------------

@dataclass(frozen=True)
class ResultsFile:
    """A results JSON as read from disk, with the hash that identifies it in the leaderboard."""

    path: Path
    data: dict[str, Any]
    sha256: str


def read_results(path: str | Path) -> ResultsFile:
    """Read a results JSON written by `avbench run` / `avbench score` and check the fields the leaderboard uses."""
    path = Path(path)
    if not path.is_file():
        raise DataError("results file not found", path)
    raw = path.read_bytes()
    data = _read_json(path)
    _check_results(data, path)
    return ResultsFile(path, data, hashlib.sha256(raw).hexdigest())


def _check_results(data: Any, path: Path) -> None:
    def bad(field: str, reason: str) -> DataError:
        return DataError(f"not an avbench results file: {field} {reason}", path)

    if not isinstance(data, dict):
        raise bad("the top level", "must be an object")
    if data.get("schema_version") != 1:
        raise bad("schema_version", f"must be 1, got {data.get('schema_version')!r}")
    for key in ("avbench_version", "created"):
        if not isinstance(data.get(key), str):
            raise bad(key, "must be a string")
    for key in ("config", "model", "data"):
        if not isinstance(data.get(key), dict):
            raise bad(key, "must be an object")
    tasks = data.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise bad("tasks", "must be a non-empty object")
    for name, task in tasks.items():
        field = f"tasks.{name}"
        if not isinstance(task, dict):
            raise bad(field, "must be an object")
        if not isinstance(task.get("metrics"), dict) or not task["metrics"]:
            raise bad(field + ".metrics", "must be a non-empty object")
        if not isinstance(task.get("split"), str):
            raise bad(field + ".split", "must be a string")
        for key in ("n_samples", "n_parse_failures"):
            if isinstance(task.get(key), bool) or not isinstance(task.get(key), int):
                raise bad(f"{field}.{key}", "must be an integer")
        if not isinstance(task.get("variants", {}), dict):
            raise bad(field + ".variants", "must be an object")


def _task_version(task: dict[str, Any]) -> str:
    return str(task.get("task_version", UNVERSIONED_TASK))


def _number(value: Any) -> float | None:
    """A metric value for the leaderboard: NaN (an undefined metric, e.g. an empty question group) becomes null."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _interval(value: Any) -> list[float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    low, high = _number(value[0]), _number(value[1])
    return None if low is None or high is None else [low, high]


def task_spec_from_results(name: str, task: dict[str, Any]) -> dict[str, Any]:
    """The header for a task the leaderboard does not hold yet: its version from the results, its display from the plugin."""
    present = list(task["metrics"])
    try:
        cls = task_class(name)
        shown = [m for m in cls.table_metrics if m in present]
        lower, fraction, primary = sorted(cls.lower_is_better), sorted(cls.fraction_metrics), cls.primary_metric
    except AVBenchError:  # a third-party task that is not installed here: show what the results hold
        shown, lower, fraction, primary = [], list(task.get("lower_is_better", [])), [], task.get("primary_metric")
    shown = shown or present
    return {
        "version": _task_version(task),
        "split": task["split"],
        "variants": {str(k): str(v) for k, v in task.get("variants", {}).items()},
        "primary_metric": primary if primary in shown else shown[0],
        "metrics": shown,
        "lower_is_better": lower,
        "fraction_metrics": fraction,
    }


def default_task_spec(name: str) -> dict[str, Any]:
    """The header of a registered task at its current version, default split and default metric variants."""
    cls = task_class(name)
    task = cls()
    return {
        "version": str(getattr(cls, "TASK_VERSION", UNVERSIONED_TASK)),
        "split": cls.default_split,
        "variants": {str(k): str(v) for k, v in task.variants().items()},
        "primary_metric": cls.primary_metric,
        "metrics": list(cls.table_metrics),
        "lower_is_better": sorted(cls.lower_is_better),
        "fraction_metrics": sorted(cls.fraction_metrics),
    }


def _checkpoint_hash(model: dict[str, Any]) -> str | None:
    value = model.get("checkpoint_hash", model.get("checkpoint_sha256"))
    return str(value) if value else None


def entry_from_results(
    results: ResultsFile, *, model_name: str | None = None, parameters: str | None = None,
    checkpoint_hash: str | None = None,
) -> dict[str, Any]:
    """A measured entry holding every task and metric of one results file (intervals where the file has them)."""
    data = results.data
    model = data["model"]
    name = model_name or model.get("name") or data["config"].get("model")
    if not isinstance(name, str) or not name.strip():
        raise DataError("the results file names no model (e.g. from `avbench score`): pass --model-name", results.path)
    params = parameters if parameters is not None else model.get("parameters")
    synthav = data["data"].get("synthav")
    tasks = {}
    for task_name, task in data["tasks"].items():
        intervals = task.get("intervals") or {}
        tasks[task_name] = {
            "split": task["split"],
            "version": _task_version(task),
            "variants": {str(k): str(v) for k, v in task.get("variants", {}).items()},
            "n_samples": task["n_samples"],
            "n_parse_failures": task["n_parse_failures"],
            "data_version": task.get("data_version") if isinstance(task.get("data_version"), dict) else None,
            "metrics": {
                metric: {"value": _number(value), "interval": _interval(intervals.get(metric))}
                for metric, value in task["metrics"].items()
            },
            "results_sha256": results.sha256,
        }
    return {
        "model": {
            "name": name.strip(),
            "parameters": None if params is None else str(params),
            "checkpoint_hash": checkpoint_hash or _checkpoint_hash(model),
        },
        "provenance": {"kind": "measured", "results": [_source(results)]},
        "avbench_version": data["avbench_version"],
        "date": data["created"][:10],
        "data": {
            "source": "synthav" if synthav else "data_root",
            "synthav": {"version": str(synthav["version"]), "seed": synthav["seed"], "size": synthav["size"]} if synthav else None,
        },
        "tasks": tasks,
    }


def _source(results: ResultsFile) -> dict[str, Any]:
    environment = results.data.get("environment") or {}
    return {
        "sha256": results.sha256,
        "created": results.data["created"],
        "avbench_version": results.data["avbench_version"],
        "git_revision": environment.get("git_revision"),
    }


# ---- merging ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AddOutcome:
    """What `add_results` did: `added` a new entry, `merged` tasks into one, or left it `unchanged`."""

    status: str
    model: str
    tasks: tuple[str, ...]

    def message(self) -> str:
        if self.status == "unchanged":
            return f"unchanged: {self.model} already holds these numbers"
        verb = "added a new entry for" if self.status == "added" else "merged into the entry of"
        return f"{verb} {self.model}: {', '.join(self.tasks)}"


def check_task_versions(document: dict[str, Any], entry: dict[str, Any], path: Path) -> None:
    """Refuse a results file whose task version, split or variants differ from the leaderboard's header."""
    for name, task in entry["tasks"].items():
        spec = document["tasks"].get(name)
        if spec is None:
            continue
        for key, what in (("version", "task version"), ("split", "split"), ("variants", "metric variants")):
            if task[key] != spec[key]:
                raise DataError(
                    f"task {name!r}: {what} {task[key]!r} differs from the leaderboard's {spec[key]!r}; "
                    "nothing was added (the numbers would not measure the same thing)", path,
                )


def _same_numbers(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("split", "version", "variants", "n_samples", "n_parse_failures", "metrics")
    return all(a[k] == b[k] for k in keys)


def add_results(
    document: dict[str, Any], results: ResultsFile, *, replace: bool = False, model_name: str | None = None,
    parameters: str | None = None, checkpoint_hash: str | None = None,
) -> tuple[dict[str, Any], AddOutcome]:
    """`document` with one results file merged in (a new, validated copy; the input is not touched). See the module docstring."""
    document = copy.deepcopy(document)
    entry = entry_from_results(results, model_name=model_name, parameters=parameters, checkpoint_hash=checkpoint_hash)
    check_task_versions(document, entry, results.path)
    name = entry["model"]["name"]
    for existing in document["entries"]:
        if existing["provenance"]["kind"] == "measured" and any(
            s["sha256"] == results.sha256 for s in existing["provenance"]["results"]
        ):
            return document, AddOutcome("unchanged", existing["model"]["name"], ())
    for task_name in entry["tasks"]:
        if task_name not in document["tasks"]:
            document["tasks"][task_name] = task_spec_from_results(task_name, results.data["tasks"][task_name])
    key = entry_key(entry)
    target = next((e for e in document["entries"] if entry_key(e) == key), None)
    if target is None:
        document["entries"].append(entry)
        outcome = AddOutcome("added", name, tuple(entry["tasks"]))
    else:
        outcome = _merge_into(target, entry, results, replace)
    document["entries"].sort(key=_entry_order)
    validate(document)
    return document, outcome


def _merge_into(target: dict[str, Any], entry: dict[str, Any], results: ResultsFile, replace: bool) -> AddOutcome:
    changed = []
    for task_name, task in entry["tasks"].items():
        held = target["tasks"].get(task_name)
        if held is not None and _same_numbers(held, task):
            continue
        if held is not None and not replace:
            raise DataError(
                f"the entry of {target['model']['name']} already holds task {task_name!r} with other numbers "
                f"(from results file {held['results_sha256'][:12]}…); pass --replace to replace them", results.path,
            )
        changed.append(task_name)
    if not changed:
        return AddOutcome("unchanged", target["model"]["name"], ())
    for task_name in changed:
        target["tasks"][task_name] = entry["tasks"][task_name]
    target["tasks"] = dict(sorted(target["tasks"].items()))
    used = {t["results_sha256"] for t in target["tasks"].values()}
    sources = [s for s in target["provenance"]["results"] if s["sha256"] in used] + entry["provenance"]["results"]
    sources.sort(key=lambda s: (s["created"], s["sha256"]))
    target["provenance"]["results"] = sources
    newest = sources[-1]
    target["date"], target["avbench_version"] = newest["created"][:10], newest["avbench_version"]
    if entry["model"]["parameters"] is not None:
        target["model"]["parameters"] = entry["model"]["parameters"]
    return AddOutcome("merged", target["model"]["name"], tuple(changed))


def _entry_order(entry: dict[str, Any]) -> tuple:
    # measured rows first, then by model name; the key makes the order total, hence the file deterministic
    key = entry_key(entry)
    return (entry["provenance"]["kind"] != "measured", entry["model"]["name"].casefold(), repr(key))
