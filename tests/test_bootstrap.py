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


# ---- the BC percentile interval ------------------------------------------------------------------------------
def test_bc_interval_is_the_percentile_interval_when_resamples_are_centred():
    values = np.arange(1001, dtype=float)  # estimate 500: 500 below, 1 tie, 500 above -> p0 = 1/2, z0 = 0
    assert bs.bc_percentile_interval(values, 500.0, 0.95) == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])))


def test_bc_interval_moves_with_the_median_bias():
    values = np.arange(1000, dtype=float)
    # 841 of 1000 values below 840.5: p0 = 0.841, z0 = Phi^-1(0.841) = 0.99858, so the interval takes the
    # Phi(2 z0 - 1.95996) = Phi(0.03720) = 0.51484 and Phi(2 z0 + 1.95996) = Phi(3.95712) = 0.99996 quantiles
    low, high = bs.bc_percentile_interval(values, 840.5, 0.95)
    assert low == pytest.approx(0.51484 * 999, abs=0.05)
    assert high == pytest.approx(0.99996 * 999, abs=0.05)
    # ties count half; a value equal up to rounding is a tie
    assert bs.bc_percentile_interval(np.array([1.0, 2.0, 2.0 + 1e-13, 3.0]), 2.0, 0.5) == pytest.approx(
        tuple(np.quantile([1.0, 2.0, 2.0, 3.0], [0.25, 0.75])))
    # every resample below the estimate: p0 is capped at 1 - 1/(2B), so the bounds stay finite
    capped = bs.bc_percentile_interval(np.arange(10, dtype=float), 100.0, 0.95)
    assert all(math.isfinite(b) for b in capped) and capped[1] <= 9.0
    assert all(math.isnan(b) for b in bs.bc_percentile_interval(np.array([math.nan]), 1.0, 0.95))


def test_bernoulli_accuracy_intervals_cover_the_true_mean():
    # 200 simulated test sets of 80 videos, each all right (p = 0.7) or all wrong: the 95 % interval of
    # the accuracy should cover 70 in roughly 95 % of them (the bootstrap of a proportion under-covers a
    # little at this size; a broken interval would land far outside 0.90 .. 0.99).
    task = get_task("ave")
    samples = [Sample(str(i), "ave", "test", {}) for i in range(80)]
    rng = np.random.default_rng(2024)
    covered = 0
    for k in range(200):
        stats = [(10 * int(right), 10) for right in rng.random(80) < 0.7]
        low, high = bootstrap_intervals(task, samples, stats, n_resamples=400, seed=k)["accuracy"]
        covered += low <= 70.0 <= high
    assert 0.90 <= covered / 200 <= 0.99


# ---- AVSS: resamples keep the class set --------------------------------------------------------------------
def avss_case(seed: int = 0) -> tuple:
    """AVSS stats of 40 tiny videos (10 frames of 8 x 8): background plus one of 20 foreground classes;
    classes 1..10 appear in one video each, 11..20 in three. Oracle (perfect) and noisy predictions."""
    from avbench.metrics.avss import avss_stats

    rng = np.random.default_rng(seed)
    classes = list(range(1, 11)) + [c for c in range(11, 21) for _ in range(3)]
    samples, oracle, noisy = [], [], []
    for i, c in enumerate(classes):
        gt = np.zeros((10, 8, 8), dtype=np.uint8)
        gt[:, 2:6, 1 : 3 + i % 5] = c
        pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.choice([0, c], size=gt.shape)).astype(np.uint8)
        samples.append(Sample(str(i), "avss", "test", {}))
        oracle.append(avss_stats(gt, gt).to_json())
        noisy.append(avss_stats(pred, gt).to_json())
    return get_task("avss"), samples, oracle, noisy


def test_avss_resamples_without_the_class_set_fall_below_the_estimate():
    """The defect the class-set rule repairs: scoring undrawn classes 0 puts (nearly) every resample of a
    perfect run below its estimate, so no percentile-type interval can contain it."""
    from avbench.metrics.avss import avss_scores_of_sums

    task, samples, oracle, _ = avss_case()
    rows = task.unit_sums(samples, oracle).values
    point = task.aggregate(samples, oracle)["miou"]
    assert point == pytest.approx(100 * 21 / 71)  # background + 20 classes perfect, 50 classes never seen
    counts = np.concatenate(list(resample_counts(len(samples), 500, seed=0))).astype(float)
    naive = 100 * avss_scores_of_sums(counts @ rows)["miou"]
    assert (naive < point - 1e-9).mean() > 0.99  # 10 one-video classes: P(all drawn) = 0.63^10 ~ 1 %
    kept = 100 * avss_scores_of_sums(counts @ rows, full=rows.sum(axis=0))["miou"]
    assert kept == pytest.approx(np.full(500, point))  # a perfect run stays perfect on every resample


def test_avss_intervals_contain_the_estimate():
    task, samples, oracle, noisy = avss_case()
    point_o, point_n = task.aggregate(samples, oracle), task.aggregate(samples, noisy)
    for name in ("miou", "f_score"):
        low, high = bootstrap_intervals(task, samples, oracle, n_resamples=500)[name]
        assert low == pytest.approx(point_o[name]) and high == pytest.approx(point_o[name])
        low, high = bootstrap_intervals(task, samples, noisy, n_resamples=500)[name]
        assert low < point_n[name] < high and high - low > 0.1
        diff = paired_bootstrap(task, samples, noisy, oracle, n_resamples=500)[name]
        assert diff.delta == pytest.approx(point_o[name] - point_n[name])
        assert diff.low < diff.delta < diff.high and diff.low > 0


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
        # a bootstrap interval need not contain the estimate, but it does on these metrics
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
    assert ran["bootstrap"] == {"method": "bc-percentile", "level": 0.95, "n_resamples": 200, "seed": 5}
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
    assert BootstrapConfig().to_json() == {"method": "bc-percentile", "level": 0.95, "n_resamples": 1000, "seed": 0}
    assert bs.DEFAULT_RESAMPLES == 1000
