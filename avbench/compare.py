"""Compare two runs task by task and metric by metric: the regression gate for CI (`avbench compare`).

For each task both runs hold, each metric's delta (new - baseline) comes with an interval:

- **paired bootstrap** (preferred): when both run folders hold their per-sample predictions file
  (`<task>_<split>.jsonl`) and the data is at hand (the data root recorded in the baseline's results,
  `--data-root`, or SynthAV regenerated from its recorded seed and size), both runs are re-scored on
  the same samples and `avbench.bootstrap.paired_bootstrap` resamples the samples jointly, so the
  difficulty the two runs share cancels out of the interval;
- **unpaired, from the results' intervals**: otherwise, when both results files carry bootstrap
  intervals, a normal approximation treats the runs as independent (wider than the paired interval);
- **none**: neither is available; the output says so and the gate uses the tolerance alone.

A metric **regresses** when it is worse by more than the tolerance AND its interval lies entirely on
the worse side of zero (with method "none": worse by more than the tolerance). A drop within the
noise of the test set therefore passes, while a real drop fails. The tolerance is in points of
percent metrics; for metrics reported as fractions it is divided by 100. A task or metric of the
baseline missing from the new run also fails the gate.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, paired_bootstrap
from .errors import AVBenchError, DataError, read_json
from .predictions import read_predictions
from .registry import get_task, task_class
from .results import RESULTS_FILE_NAME, format_value
from .runner import predictions_path
from .scoring import prediction_from_record, score_prediction
from .task import Task, load_samples
from .types import Sample

#: How a delta's interval was obtained (short labels for the tables; the module docstring explains them).
PAIRED, UNPAIRED, NO_INTERVAL = "paired", "unpaired", "none"
METRIC_SETS = ("primary", "table", "all")


@dataclass(frozen=True)
class Run:
    """One side of a comparison: a results JSON and the folder holding its per-sample predictions files."""

    results_path: Path
    results: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.results_path.parent

    @property
    def label(self) -> str:
        model = self.results.get("model") or {}
        return str(model.get("name") or (self.results.get("config") or {}).get("model") or "unnamed model")


def load_run(path: str | Path) -> Run:
    """A run from its results JSON or from the folder `avbench run` wrote (which holds results.json)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE_NAME
    if not path.is_file():
        raise DataError("results file not found (pass a results.json or the output folder of `avbench run`)", path)
    results = read_json(path)
    if not isinstance(results, dict) or not isinstance(results.get("tasks"), dict):
        raise DataError("not an avbench results file: no 'tasks' object", path)
    for name, task in results["tasks"].items():
        if not isinstance(task, dict) or not isinstance(task.get("metrics"), dict) or not isinstance(task.get("split"), str):
            raise DataError(f"not an avbench results file: tasks.{name} needs 'split' and 'metrics'", path)
    return Run(path, results)


@dataclass(frozen=True)
class MetricDelta:
    """One metric of one task in both runs, the difference and the gate's verdict."""

    task: str
    metric: str
    baseline: float | None
    new: float | None
    delta: float | None
    low: float | None
    high: float | None
    p_value: float | None
    method: str
    lower_is_better: bool
    fraction: bool
    tolerance: float  # in the metric's own unit
    status: str  # "regression", "improvement", "within noise", "ok", "missing", "n/a"

    @property
    def fails(self) -> bool:
        return self.status in ("regression", "missing")


@dataclass
class Comparison:
    baseline: Run
    new: Run
    tolerance: float
    level: float
    n_resamples: int
    deltas: list[MetricDelta] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.fails]

    @property
    def passed(self) -> bool:
        return not self.failures


def verdict(delta: float | None, low: float | None, high: float | None, *, lower_is_better: bool, tolerance: float) -> str:
    """The gate's rule for one metric (see the module docstring); without an interval a drop beyond the tolerance fails."""
    if delta is None or not math.isfinite(delta):
        return "n/a"
    sign = 1.0 if lower_is_better else -1.0  # turns every metric into "worse > 0"
    worse = sign * delta
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "regression" if worse > tolerance else "ok"
    worse_low, worse_high = sorted((sign * low, sign * high))
    if worse > tolerance:
        return "regression" if worse_low > 0 else "within noise"
    if -worse > tolerance and worse_high < 0:
        return "improvement"
    return "ok"


# ---- the per-sample path ------------------------------------------------------------------------------

@dataclass
class _Rescored:
    baseline: dict[str, float]
    new: dict[str, float]
    paired: dict[str, Any]


def _data_root(run: Run, override: Path | None) -> Path | None:
    if override is not None:
        return override
    data = run.results.get("data") or {}
    if data.get("root") and Path(data["root"]).is_dir():
        return Path(data["root"])
    synthav = data.get("synthav")
    if synthav:
        from .synthav import SYNTHAV_VERSION, ensure_synthav

        if str(synthav.get("version")) == SYNTHAV_VERSION:
            # regenerated deterministically: the same seed and size give byte-identical files
            return ensure_synthav(seed=int(synthav["seed"]), size=str(synthav["size"]))
    return None


def _task_instance(name: str, run: Run) -> Task | None:
    options = ((run.results.get("config") or {}).get("task_options") or {}).get(name) or {}
    task = get_task(name, **options)
    recorded = {str(k): str(v) for k, v in (run.results["tasks"][name].get("variants") or {}).items()}
    return task if {str(k): str(v) for k, v in task.variants().items()} == recorded else None


def _stats(task: Task, samples: Sequence[Sample], records: dict[str, Any]) -> list[Any]:
    stats = []
    for sample in samples:
        record = records.get(sample.id)
        prediction = None
        # a line the run recorded as a parse failure stays one, even if today's parser would read it
        if record is not None and record.data.get("parse_status") != "failed":
            prediction = prediction_from_record(task, sample, record)
        stats.append(score_prediction(task, sample, prediction).stats)
    return stats


def _rescore(name: str, base: Run, new: Run, data_root: Path | None, n_resamples: int, seed: int, level: float,
             notes: list[str]) -> _Rescored | None:
    split = base.results["tasks"][name]["split"]
    files = [predictions_path(run.folder, name, split) for run in (base, new)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        notes.append(f"{name}: no per-sample predictions file ({', '.join(missing)}); compared the aggregate numbers")
        return None
    task = _task_instance(name, base)
    if task is None:
        notes.append(f"{name}: cannot rebuild the baseline's metric variants from its config; compared the aggregate numbers")
        return None
    root = _data_root(base, data_root)
    if root is None:
        notes.append(f"{name}: the baseline's data is not at hand (pass --data-root); compared the aggregate numbers")
        return None
    samples = load_samples(task, root, split)
    by_id = {s.id: s for s in samples}
    records = [{r.id: r for r in read_predictions(f)} for f in files]
    ids = set(records[0]) | set(records[1])
    if unknown := sorted(ids - set(by_id)):
        notes.append(f"{name}: {len(unknown)} predicted ids are not in the data at {root} (e.g. {unknown[0]!r}); "
                     "compared the aggregate numbers")
        return None
    # A run's results cover the first `n_samples` of the split (`--limit`); its file may hold more lines, from
    # an earlier run into the same folder with a larger limit, which the runner reuses but did not score.
    for run, recs in zip((base, new), records):
        n_samples = run.results["tasks"][name].get("n_samples")
        if isinstance(n_samples, int) and not isinstance(n_samples, bool):
            covered = {s.id for s in samples[:n_samples]}
            for sample_id in [i for i in recs if i not in covered]:
                del recs[sample_id]
    ids = set(records[0]) | set(records[1])
    used = [s for s in samples if s.id in ids]
    for side, recs in zip(("baseline", "new"), records):
        for sample_id, record in recs.items():
            recorded = record.data.get("target_hash")
            if recorded is not None and recorded != task.target_hash(by_id[sample_id]):
                notes.append(f"{name}: the {side} run's ground truth for {sample_id!r} differs from the data at {root}; "
                             "compared the aggregate numbers")
                return None
    stats_a, stats_b = _stats(task, used, records[0]), _stats(task, used, records[1])
    paired = paired_bootstrap(task, used, stats_a, stats_b, n_resamples=n_resamples, seed=seed, level=level)
    rescored = _Rescored(task.aggregate(used, stats_a), task.aggregate(used, stats_b), paired)
    for side, run, values in (("baseline", base, rescored.baseline), ("new", new, rescored.new)):
        recorded = run.results["tasks"][name]["metrics"]
        off = [m for m in recorded if m in values and _differs(recorded[m], values[m])]
        if off:
            notes.append(f"{name}: re-scoring the {side} predictions gives other values than its results file for "
                         f"{', '.join(off[:3])}; the comparison uses the re-scored values")
    return rescored


def _differs(a: Any, b: Any) -> bool:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a != b
    if math.isnan(a) and math.isnan(b):
        return False
    return not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# ---- the aggregate fallback ---------------------------------------------------------------------------

def _unpaired(base_value: float, new_value: float, base_interval: Any, new_interval: Any, level: float) -> tuple[float, float, float] | None:
    """Normal approximation for two independent runs: each interval gives a standard error; (low, high, p) of the delta."""
    try:
        (a_low, a_high), (b_low, b_high) = base_interval, new_interval
        values = [float(v) for v in (a_low, a_high, b_low, b_high)]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    z = statistics.NormalDist().inv_cdf((1.0 + level) / 2.0)
    se = math.hypot((values[1] - values[0]) / (2 * z), (values[3] - values[2]) / (2 * z))
    delta = new_value - base_value
    if se == 0.0:
        return delta, delta, (1.0 if delta == 0 else 0.0)
    p = 2.0 * (1.0 - statistics.NormalDist().cdf(abs(delta) / se))
    return delta - z * se, delta + z * se, p


# ---- the comparison -----------------------------------------------------------------------------------

def _metric_names(name: str, base_task: dict[str, Any], new_task: dict[str, Any], metrics: str) -> tuple[list[str], frozenset[str], frozenset[str]]:
    try:
        cls = task_class(name)
        primary, table, lower, fraction = cls.primary_metric, list(cls.table_metrics), cls.lower_is_better, cls.fraction_metrics
    except AVBenchError:  # a task not installed here: what the results file says
        primary = base_task.get("primary_metric") or next(iter(base_task["metrics"]))
        table, lower, fraction = [primary], frozenset(base_task.get("lower_is_better") or ()), frozenset()
    wanted = {"primary": [primary], "table": table, "all": list(base_task["metrics"])}[metrics]
    names = [m for m in wanted if m in base_task["metrics"]]
    if not names:
        # A split with other metrics than the task's table (e.g. Ref-AVS val: j, f): the summary table then
        # shows all of them (results.metric_rows), so "table" gates all of them; "primary" the first one.
        common = [m for m in base_task["metrics"] if m in new_task["metrics"]]
        names = list(base_task["metrics"]) if metrics == "table" else common[:1]
    return names, frozenset(lower), frozenset(fraction)


def compare_runs(
    baseline: Run, new: Run, *, tolerance: float = 1.0, metrics: str = "table", data_root: Path | None = None,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL,
) -> Comparison:
    """Compare every task of the baseline with the new run (see the module docstring for the rule)."""
    if metrics not in METRIC_SETS:
        raise AVBenchError(f"--metrics takes one of {', '.join(METRIC_SETS)}, got {metrics!r}")
    if tolerance < 0:
        raise AVBenchError(f"--tolerance must be >= 0, got {tolerance}")
    comparison = Comparison(baseline, new, tolerance, level, n_resamples)
    for name, base_task in baseline.results["tasks"].items():
        new_task = new.results["tasks"].get(name)
        if new_task is None:
            comparison.deltas.append(MetricDelta(name, "(all)", None, None, None, None, None, None, NO_INTERVAL,
                                                 False, False, tolerance, "missing"))
            comparison.notes.append(f"{name}: in the baseline but not in the new run")
            continue
        if new_task["split"] != base_task["split"]:
            raise AVBenchError(f"task {name!r}: the baseline ran split {base_task['split']!r}, the new run {new_task['split']!r}")
        base_variants, new_variants = base_task.get("variants") or {}, new_task.get("variants") or {}
        if base_variants != new_variants:
            raise AVBenchError(f"task {name!r}: metric variants differ ({base_variants} vs {new_variants}); the numbers are not comparable")
        if base_task.get("n_samples") != new_task.get("n_samples"):
            comparison.notes.append(f"{name}: the runs scored different numbers of samples (baseline "
                                    f"{base_task.get('n_samples')}, new {new_task.get('n_samples')}): samples only one "
                                    "run predicted count as failures of the other")
        names, lower, fraction = _metric_names(name, base_task, new_task, metrics)
        rescored = _rescore(name, baseline, new, data_root, n_resamples, seed, level, comparison.notes)
        for metric in names:
            comparison.deltas.append(
                _metric_delta(name, metric, base_task, new_task, rescored, lower, fraction, tolerance, level, comparison.notes)
            )
    for name in new.results["tasks"]:
        if name not in baseline.results["tasks"]:
            comparison.notes.append(f"{name}: only in the new run (not compared)")
    return comparison


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _metric_delta(name: str, metric: str, base_task: dict[str, Any], new_task: dict[str, Any], rescored: _Rescored | None,
                  lower: frozenset[str], fraction: frozenset[str], tolerance: float, level: float, notes: list[str]) -> MetricDelta:
    is_lower, is_fraction = metric in lower, metric in fraction
    tol = tolerance / 100.0 if is_fraction else tolerance
    if metric not in new_task["metrics"]:
        return MetricDelta(name, metric, _finite(base_task["metrics"][metric]), None, None, None, None, None, NO_INTERVAL,
                           is_lower, is_fraction, tol, "missing")
    low = high = p = None
    if rescored is not None and metric in rescored.paired:
        base_value, new_value = _finite(rescored.baseline.get(metric)), _finite(rescored.new.get(metric))
        difference = rescored.paired[metric]
        delta, low, high, p = _finite(difference.delta), _finite(difference.low), _finite(difference.high), _finite(difference.p_value)
        method = PAIRED
        if delta and low is not None and high is not None and high - low <= 1e-9 * max(1.0, abs(delta)):
            # every resample gave the same difference: the data has a single resampling unit (e.g. one Ref-AVS
            # call of 4 expressions), so the bootstrap says nothing about noise; gate on the tolerance alone
            notes.append(f"{name}.{metric}: zero-width interval (a single resampling unit); gated on the tolerance alone")
            low = high = p = None
            method = NO_INTERVAL
    else:
        base_value, new_value = _finite(base_task["metrics"][metric]), _finite(new_task["metrics"][metric])
        delta = None if base_value is None or new_value is None else new_value - base_value
        method = NO_INTERVAL
        if delta is not None:
            interval = _unpaired(base_value, new_value, (base_task.get("intervals") or {}).get(metric),  # type: ignore[arg-type]
                                 (new_task.get("intervals") or {}).get(metric), level)
            if interval is not None:
                low, high, p = interval
                method = UNPAIRED
    status = verdict(delta, low, high, lower_is_better=is_lower, tolerance=tol)
    return MetricDelta(name, metric, base_value, new_value, delta, low, high, p, method, is_lower, is_fraction, tol, status)


# ---- output -------------------------------------------------------------------------------------------

STATUS_MARK = {"regression": "❌ regression", "missing": "❌ missing", "improvement": "✅ improvement",
               "within noise": "~ within noise", "ok": "ok", "n/a": "n/a"}
HEADER = ["task", "metric", "baseline", "new", "delta", "interval", "p", "method", "status"]


def _signed(value: float | None, fraction: bool) -> str:
    if value is None:
        return "n/a"
    text = format_value(value, fraction)
    return text if text.startswith("-") else "+" + text


def rows(comparison: Comparison) -> list[list[str]]:
    """The comparison as table rows (strings), shared by the terminal table and the markdown."""
    out = []
    for d in comparison.deltas:
        interval = "n/a" if d.low is None or d.high is None else f"[{_signed(d.low, d.fraction)}, {_signed(d.high, d.fraction)}]"
        out.append([
            d.task, d.metric + (" ↓" if d.lower_is_better else ""), format_value(d.baseline, d.fraction),
            format_value(d.new, d.fraction), _signed(d.delta, d.fraction), interval,
            "n/a" if d.p_value is None else f"{d.p_value:.3f}", d.method, STATUS_MARK[d.status],
        ])
    return out


def summary_line(comparison: Comparison) -> str:
    failures = comparison.failures
    if not failures:
        return "no regression beyond the tolerance"
    return f"{len(failures)} regression{'s' if len(failures) > 1 else ''}: " + ", ".join(f"{d.task}.{d.metric}" for d in failures)


def settings_line(comparison: Comparison) -> str:
    return (f"tolerance {comparison.tolerance:g} points ({comparison.tolerance / 100:g} for fraction metrics); "
            f"{comparison.level:.0%} intervals of new - baseline: paired = paired bootstrap ({comparison.n_resamples} "
            "resamples) on the per-sample files, unpaired = normal approximation from the results' intervals, "
            "none = no interval (the tolerance alone decides)")


def to_markdown(comparison: Comparison) -> str:
    """The comparison as markdown for a CI comment; strings from the results files are escaped."""
    from .leaderboard.markdown import escape

    base, new = comparison.baseline, comparison.new
    lines = [
        f"### avbench compare: {'✅ pass' if comparison.passed else '❌ fail'} ({escape(summary_line(comparison))})",
        "",
        f"Baseline: {escape(base.label)} ({escape(str(base.results_path))}) · New: {escape(new.label)} "
        f"({escape(str(new.results_path))})",
        "",
        escape(settings_line(comparison)) + ".",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---:" if h in ("baseline", "new", "delta", "p") else "---" for h in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows(comparison)]
    if comparison.notes:
        lines += ["", "Notes:", ""] + [f"- {escape(note)}" for note in comparison.notes]
    return "\n".join(lines) + "\n"
