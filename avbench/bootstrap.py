"""Bootstrap confidence intervals of a task's metrics, and a paired bootstrap for comparing two runs.

The resampling unit is the unit the benchmark averages over: one `Sample` (a video, a question, a
frame, an expression), or, where the official code averages over batches of samples (Ref-AVS calls
of 4 expressions, AVSBench with a test batch size > 1), one such batch, resampled whole (the task's
`UnitSums.unit_of_sample` says which).

Method: the bias-corrected (BC) percentile bootstrap (Efron 1987, "Better bootstrap confidence
intervals", JASA 82; Efron & Tibshirani, *An Introduction to the Bootstrap*, ch. 14.3, with the
acceleration a = 0). Each of the B resamples draws n units with replacement and recomputes every
metric. With p0 the share of resampled values below the full-set estimate (ties count half) and
z0 = Phi^-1(p0), the interval at `level` is the pair of Phi(2 z0 -/+ z) quantiles of the B values,
z = Phi^-1((1 + level) / 2) (numpy's default linear interpolation). When the resampled values are
centred on the estimate (z0 = 0, as for a mean), this is the plain percentile interval, the
(1 - level) / 2 and (1 + level) / 2 quantiles; when the statistic is median-biased under resampling,
the quantiles move so that the interval stays around the estimate. p0 is kept within
[1 / (2B), 1 - 1 / (2B)], so the correction stays finite. A resample in which a metric is undefined
(e.g. a MUSIC-AVQA sub-type that drew no question) is left out of that metric's quantiles; a metric
undefined on the full set gets NaN bounds.

A bias the correction cannot repair is one where a resample computes a different statistic: AVSS
averages over a fixed set of 71 classes, and a resample that drew no video of a class would score
it 0. Its re-aggregation therefore keeps the full set's class set (`avss_scores_of_sums(full=...)`).

Speed: a resample is a row of a (B x n) count matrix W. Tasks that implement `Task.unit_sums`
expose per-unit sufficient statistics X (n x k) and a function from column sums to metrics, so all
B resamples cost one product W @ X; other tasks fall back to calling `Task.aggregate` per resample.
Both paths draw the same W from the same seed, so they give the same interval.

This is hand-written because no library in the stack does it: scipy is not a dependency, and
`scipy.stats.bootstrap` would call a Python statistic per resample and cannot share the resamples
of two runs in the way the paired test below needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Iterator, Sequence

import numpy as np

from .errors import AVBenchError
from .task import Task
from .types import Sample, UnitSums

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
#: Cap on the entries of one chunk of the count matrix (B_chunk x n), to bound memory on large test sets.
_MAX_CHUNK_ENTRIES = 2_000_000
#: Recorded as `bootstrap.method` in the results.
METHOD = "bc-percentile"
#: Relative tolerance under which a resampled value counts as equal to the estimate: the matrix path and
#: `aggregate` sum in different orders, so a resample that reproduces the estimate can differ in the last bits.
_TIE_RTOL = 1e-9


@dataclass(frozen=True)
class BootstrapConfig:
    """How `run` and `score` compute the intervals they report (recorded in the results JSON)."""

    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    level: float = DEFAULT_LEVEL

    def to_json(self) -> dict[str, Any]:
        return {"method": METHOD, "level": self.level, "n_resamples": self.n_resamples, "seed": self.seed}


@dataclass(frozen=True)
class PairedDifference:
    """The difference of one metric between two runs on the same samples, with its uncertainty."""

    delta: float  # metric(b) - metric(a) on the full sample set
    low: float  # bootstrap interval (BC percentile) of the difference at `level`
    high: float
    p_value: float  # two-sided bootstrap p-value of "no difference"


def _check_args(samples: Sequence[Sample], stats: Sequence[Sequence[Any]], n_resamples: int, level: float) -> None:
    for run in stats:
        if len(run) != len(samples):
            raise AVBenchError(f"bootstrap needs one statistics entry per sample: got {len(run)} for {len(samples)} samples")
    if n_resamples < 1:
        raise AVBenchError(f"bootstrap needs at least one resample, got n_resamples={n_resamples}")
    if not 0.0 < level < 1.0:
        raise AVBenchError(f"bootstrap level must lie strictly between 0 and 1, got {level}")


def resample_counts(n_units: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of the (n_resamples x n_units) count matrix: row b counts how often resample b drew each unit.

    Deterministic in (n_units, n_resamples, seed): the chunk size depends on n_units only.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_resamples, _MAX_CHUNK_ENTRIES // max(n_units, 1)))
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        draws = rng.integers(0, n_units, size=(rows, n_units))
        # One bincount over row-offset unit ids counts every row at once.
        flat = (draws + (np.arange(rows, dtype=np.int64) * n_units)[:, None]).ravel()
        yield np.bincount(flat, minlength=rows * n_units).reshape(rows, n_units)


def _resampled_metrics(
    task: Task, samples: Sequence[Sample], stats: Sequence[Any], names: Sequence[str], n_resamples: int, seed: int,
    sums: UnitSums | None,
) -> dict[str, np.ndarray]:
    """Every metric in `names` on each of the n_resamples resamples: name -> (n_resamples,) values."""
    out = {name: np.empty(n_resamples) for name in names}
    if sums is not None:
        values = np.asarray(sums.values, dtype=np.float64)
        row = 0
        for counts in resample_counts(sums.n_units, n_resamples, seed):
            metrics = sums.metrics(counts.astype(np.float64) @ values)
            for name in names:
                out[name][row : row + len(counts)] = metrics[name]
            row += len(counts)
        return out
    # Fallback: the task's own aggregate on each resample (units in their original order, repeats adjacent).
    row = 0
    for counts in resample_counts(len(samples), n_resamples, seed):
        for count_row in counts:
            index = np.repeat(np.arange(len(samples)), count_row)
            metrics = task.aggregate([samples[i] for i in index], [stats[i] for i in index])
            for name in names:
                out[name][row] = metrics.get(name, math.nan)
            row += 1
    return out


def _unit_sums(task: Task, samples: Sequence[Sample], stats: Sequence[Any], names: Sequence[str]) -> UnitSums | None:
    sums = task.unit_sums(samples, stats)
    if sums is None:
        return None
    if sums.unit_of_sample is not None and len(sums.unit_of_sample) != len(samples):
        raise AVBenchError(f"task {task.name!r}: unit_of_sample has {len(sums.unit_of_sample)} entries for {len(samples)} samples")
    missing = set(names) - set(sums.metrics(np.asarray(sums.values, dtype=np.float64).sum(0)[None]))
    if missing:
        raise AVBenchError(f"task {task.name!r}: unit_sums does not compute {sorted(missing)}")
    return sums


def bc_percentile_interval(values: np.ndarray, estimate: float, level: float) -> tuple[float, float]:
    """BC percentile interval at `level` from resampled `values` of a statistic whose full-set value
    is `estimate` (Efron & Tibshirani ch. 14.3, a = 0); NaN values are left out, (nan, nan) if none is left."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0 or not math.isfinite(estimate):
        return math.nan, math.nan
    tie = np.abs(finite - estimate) <= _TIE_RTOL * max(1.0, abs(estimate))
    below = np.count_nonzero((finite < estimate) & ~tie) + 0.5 * np.count_nonzero(tie)
    half = 0.5 / finite.size
    share = min(max(below / finite.size, half), 1.0 - half)
    normal = NormalDist()
    z0, z = normal.inv_cdf(share), normal.inv_cdf((1.0 + level) / 2.0)
    low, high = np.quantile(finite, [normal.cdf(2.0 * z0 - z), normal.cdf(2.0 * z0 + z)])
    return float(low), float(high)


def bootstrap_intervals(
    task: Task, samples: Sequence[Sample], stats: Sequence[Any], *,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL,
) -> dict[str, tuple[float, float]]:
    """Bootstrap interval (BC percentile, see the module docstring) at `level` of every metric `task.aggregate` reports.

    `stats` are the per-sample `ScoredSample.stats`, one per sample. The same seed gives the same
    intervals; a metric that is NaN on the full set gets (nan, nan).
    """
    _check_args(samples, [stats], n_resamples, level)
    if not samples:
        return {}
    point = task.aggregate(samples, stats)
    names = list(point)
    sums = _unit_sums(task, samples, stats, names)
    resampled = _resampled_metrics(task, samples, stats, names, n_resamples, seed, sums)
    return {name: bc_percentile_interval(resampled[name], point[name], level) for name in names}


def _paired_p_value(diffs: np.ndarray) -> float:
    """Two-sided p-value of "no difference": twice the smaller tail of the bootstrap differences at 0.

    With the usual +1 correction ((count + 1) / (B + 1)), so that B resamples never claim p < 2 / (B + 1);
    identical runs (every difference 0) give p = 1.
    """
    finite = diffs[np.isfinite(diffs)]
    if finite.size == 0:
        return math.nan
    below = (np.count_nonzero(finite <= 0) + 1) / (finite.size + 1)
    above = (np.count_nonzero(finite >= 0) + 1) / (finite.size + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def paired_bootstrap(
    task: Task, samples: Sequence[Sample], stats_a: Sequence[Any], stats_b: Sequence[Any], *,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL,
) -> dict[str, PairedDifference]:
    """Paired bootstrap of metric(b) - metric(a) for two runs scored on the same `samples`.

    Both runs are re-aggregated on the same resampled units, so what the samples share (their
    difficulty) cancels out of the difference. Metrics reported by only one run, or NaN in either,
    get NaN fields.
    """
    _check_args(samples, [stats_a, stats_b], n_resamples, level)
    if not samples:
        return {}
    point_a, point_b = task.aggregate(samples, stats_a), task.aggregate(samples, stats_b)
    names = [name for name in point_a if name in point_b]
    sums_a = _unit_sums(task, samples, stats_a, names)
    sums_b = _unit_sums(task, samples, stats_b, names)
    if (sums_a is None) != (sums_b is None) or (
        sums_a is not None and sums_b is not None and not _same_units(sums_a, sums_b)
    ):
        raise AVBenchError(f"task {task.name!r}: the two runs do not share resampling units")
    resampled_a = _resampled_metrics(task, samples, stats_a, names, n_resamples, seed, sums_a)
    resampled_b = _resampled_metrics(task, samples, stats_b, names, n_resamples, seed, sums_b)
    result: dict[str, PairedDifference] = {}
    for name in names:
        delta = point_b[name] - point_a[name]
        if not math.isfinite(delta):
            result[name] = PairedDifference(math.nan, math.nan, math.nan, math.nan)
            continue
        diffs = resampled_b[name] - resampled_a[name]
        low, high = bc_percentile_interval(diffs, delta, level)
        result[name] = PairedDifference(float(delta), low, high, _paired_p_value(diffs))
    return result


def _same_units(a: UnitSums, b: UnitSums) -> bool:
    if a.values.shape[0] != b.values.shape[0]:
        return False
    if (a.unit_of_sample is None) != (b.unit_of_sample is None):
        return False
    return a.unit_of_sample is None or bool(np.array_equal(a.unit_of_sample, b.unit_of_sample))
