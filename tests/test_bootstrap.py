"""Bootstrap intervals and the paired bootstrap: determinism, known widths, the fast path equal to the
plain one, clustered units, NaN handling, and the intervals in the results of `run` and `score`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avbench import bootstrap as bs
from avbench.bootstrap import BootstrapConfig, bootstrap_intervals, paired_bootstrap, resample_counts
from avbench.cli import app
from avbench.errors import AVBenchError
from avbench.registry import get_task
from avbench.scoring import score_outputs
from avbench.synthav import ensure_synthav
from avbench.types import Sample

ALL_TASKS = ["ave", "avvp", "music_avqa", "arig", "s4", "ms3", "avss", "ref_avs"]


def ave_case(n: int = 400, seed: int = 0) -> tuple:
    """AVE stats (correct segments, 10) of n videos."""
    rng = np.random.default_rng(seed)
    samples = [Sample(str(i), "ave", "test", {}) for i in range(n)]
    return get_task("ave"), samples, [(int(c), 10) for c in rng.integers(0, 11, n)]


def test_counts_rows_sum_to_n_and_repeat_with_the_seed():
    a = np.concatenate(list(resample_counts(50, 300, seed=3)))
    b = np.concatenate(list(resample_counts(50, 300, seed=3)))
    assert a.shape == (300, 50) and np.array_equal(a, b)
    assert (a.sum(axis=1) == 50).all()
    assert not np.array_equal(a, np.concatenate(list(resample_counts(50, 300, seed=4))))


def test_same_seed_same_interval_and_another_seed_another():
    task, samples, stats = ave_case()
    first = bootstrap_intervals(task, samples, stats, seed=7)
    assert first == bootstrap_intervals(task, samples, stats, seed=7)
    assert first != bootstrap_intervals(task, samples, stats, seed=8)


def test_interval_of_a_proportion_has_the_normal_width():
    # 400 videos, each all right or all wrong with p = 0.5: the accuracy's standard error is
    # 100 * sqrt(0.25 / 400) = 2.5 points, so the 95 % interval spans about 2 * 1.96 * 2.5 = 9.8.
    task = get_task("ave")
    samples = [Sample(str(i), "ave", "test", {}) for i in range(400)]
    stats = [(10 * (i % 2), 10) for i in range(400)]
    low, high = bootstrap_intervals(task, samples, stats, n_resamples=4000, seed=0)["accuracy"]
    assert low < 50.0 < high
    assert high - low == pytest.approx(9.8, abs=0.6)
    # a higher level gives a wider interval
    low99, high99 = bootstrap_intervals(task, samples, stats, n_resamples=4000, seed=0, level=0.99)["accuracy"]
    assert low99 < low and high99 > high


def test_the_matrix_path_equals_aggregating_each_resample(monkeypatch):
    task, samples, stats = ave_case(n=60)
    fast = bootstrap_intervals(task, samples, stats, n_resamples=200, seed=1)
    monkeypatch.setattr(type(task), "unit_sums", lambda self, s, st: None)  # force the fallback
    slow = bootstrap_intervals(task, samples, stats, n_resamples=200, seed=1)
    assert fast.keys() == slow.keys()
    for name in fast:
        assert fast[name] == pytest.approx(slow[name], abs=1e-9)


def test_undefined_metrics_get_nan_bounds():
    task = get_task("music_avqa")
    # 30 Audio/Counting questions only: the other sub-types are absent, avg is defined.
    samples = [Sample(str(i), "music_avqa", "test", {}) for i in range(30)]
    stats = [(i % 3 == 0, 0) for i in range(30)]
    intervals = bootstrap_intervals(task, samples, stats, n_resamples=100)
    assert set(intervals) == {"audio_counting", "audio", "avg"}
    assert intervals["avg"][0] <= 100 / 3 <= intervals["avg"][1]
    # a metric that is NaN on the full set (no video at all has any segment) gets NaN bounds
    ave = get_task("ave")
    empty = bootstrap_intervals(ave, [Sample("a", "ave", "test", {})], [(0, 0)], n_resamples=10)
    assert all(math.isnan(b) for b in empty["accuracy"])


def test_paired_bootstrap_of_identical_runs_is_zero_with_p_one():
    task, samples, stats = ave_case()
    diff = paired_bootstrap(task, samples, stats, stats)["accuracy"]
    assert (diff.delta, diff.low, diff.high, diff.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_bootstrap_detects_a_small_consistent_gain():
    task, samples, stats_a = ave_case()
    # b gets one more correct segment on every 4th video: +2.5 points, tiny next to the spread of a alone
    stats_b = [(min(10, c + (i % 4 == 0)), t) for i, (c, t) in enumerate(stats_a)]
    gain = sum(b[0] - a[0] for a, b in zip(stats_a, stats_b)) / 4000 * 100
    diff = paired_bootstrap(task, samples, stats_a, stats_b, n_resamples=1000, seed=0)["accuracy"]
    assert diff.delta == pytest.approx(gain)
    assert 0 < diff.low < gain < diff.high
    assert diff.p_value == pytest.approx(2 / 1001)  # no resample reverses the sign: the smallest p
    # unpaired intervals of a and b overlap: only pairing resolves the difference
    ia = bootstrap_intervals(task, samples, stats_a)["accuracy"]
    ib = bootstrap_intervals(task, samples, stats_b)["accuracy"]
    assert ia[1] > ib[0]
    # the same seed gives the same answer
    assert paired_bootstrap(task, samples, stats_a, stats_b, n_resamples=1000, seed=0)["accuracy"] == diff


def test_bad_arguments_are_clear_errors():
    task, samples, stats = ave_case(n=5)
    with pytest.raises(AVBenchError, match="one statistics entry per sample"):
        bootstrap_intervals(task, samples, stats[:4])
    with pytest.raises(AVBenchError, match="level"):
        bootstrap_intervals(task, samples, stats, level=95)
    with pytest.raises(AVBenchError, match="at least one resample"):
        bootstrap_intervals(task, samples, stats, n_resamples=0)
    assert bootstrap_intervals(task, [], []) == {}


# ---- every task on SynthAV ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthav_scores() -> dict:
    """Random-baseline scores of every task on SynthAV tiny (the CLI test below uses the same copy)."""
    root = ensure_synthav(seed=0, size="tiny")
    out = {}
    for name in ALL_TASKS:
        task = get_task(name)
        samples = task.load(root, task.default_split)
        rng = np.random.default_rng(0)
        evaluation = score_outputs(task, samples, [task.random_output(s, rng) for s in samples])
        out[name] = (task, samples, [s.stats for s in evaluation.scores], evaluation.metrics)
    return out


@pytest.mark.parametrize("name", ALL_TASKS)
def test_unit_sums_reproduce_aggregate_and_bracket_it(synthav_scores, name):
    task, samples, stats, metrics = synthav_scores[name]
    sums = task.unit_sums(samples, stats)
    assert sums is not None
    full = sums.metrics(sums.values.sum(axis=0)[None])
    assert set(full) == set(metrics)
    for key, value in metrics.items():
        assert full[key][0] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    intervals = bootstrap_intervals(task, samples, stats, n_resamples=300)
    assert set(intervals) == set(metrics)
    for key, (low, high) in intervals.items():
        assert low <= high
        # the percentile interval need not contain the estimate, but it does on these smooth metrics
        assert low - 1e-9 <= metrics[key] <= high + 1e-9, key


def test_ref_avs_calls_are_resampled_whole(synthav_scores):
    task, samples, stats, _ = synthav_scores["ref_avs"]
    sums = task.unit_sums(samples, stats)
    by_subset: dict[str, list[int]] = {}
    for sample, unit in zip(samples, sums.unit_of_sample):
        by_subset.setdefault(sample.meta["subset"], []).append(int(unit))
    for units in by_subset.values():
        # consecutive expressions of a subset, 4 per call: units 0,0,0,0,1,1,1,1,... never shared across subsets
        assert units == [units[0] + i // 4 for i in range(len(units))]
    assert len(set.intersection(*(set(u) for u in by_subset.values()))) == 0
    crab = get_task("ref_avs", variant="crab")
    assert crab.unit_sums(samples, stats).unit_of_sample is not None


def test_s4_batches_are_resampling_units(synthav_scores):
    _, samples, stats, _ = synthav_scores["s4"]
    sums = get_task("s4", batch_size=4).unit_sums(samples, stats)
    assert sums.n_units == math.ceil(len(samples) / 4)
    assert sums.unit_of_sample.tolist() == [i // 4 for i in range(len(samples))]


# ---- results of run and score -----------------------------------------------------------------------------
def test_run_and_score_write_the_same_intervals(tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--model", "random", "--tasks", "ave", "--synthav-size", "tiny",
                                 "--output-dir", str(out), "--bootstrap", "200", "--bootstrap-seed", "5"])
    assert result.exit_code == 0, result.output
    ran = json.loads((out / "results.json").read_text())["tasks"]["ave"]
    assert ran["bootstrap"] == {"method": "percentile", "level": 0.95, "n_resamples": 200, "seed": 5}
    low, high = ran["intervals"]["accuracy"]
    assert low <= ran["metrics"]["accuracy"] <= high
    assert f"[{low:.2f}, {high:.2f}]" in result.output
    assert f"[{low:.2f}, {high:.2f}]" in (out / "results.md").read_text()

    scored_file = tmp_path / "scored.json"
    result = runner.invoke(app, ["score", "--task", "ave", "--predictions", str(out / "ave_test.jsonl"),
                                 "--synthav-size", "tiny", "--bootstrap", "200", "--bootstrap-seed", "5",
                                 "--output", str(scored_file)])
    assert result.exit_code == 0, result.output
    scored = json.loads(scored_file.read_text())["tasks"]["ave"]
    assert scored["metrics"] == ran["metrics"] and scored["intervals"] == ran["intervals"]

    result = runner.invoke(app, ["score", "--task", "ave", "--predictions", str(out / "ave_test.jsonl"),
                                 "--synthav-size", "tiny", "--bootstrap", "0", "--output", str(scored_file)])
    assert result.exit_code == 0, result.output
    assert "intervals" not in json.loads(scored_file.read_text())["tasks"]["ave"]


def test_config_json_names_the_method():
    assert BootstrapConfig().to_json() == {"method": "percentile", "level": 0.95, "n_resamples": 1000, "seed": 0}
    assert bs.DEFAULT_RESAMPLES == 1000
