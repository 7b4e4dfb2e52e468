"""`avbench compare`: the gate's rule, a real drop fails, noise within the interval passes, the fallbacks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avbench import registry
from avbench.cli import app
from avbench.compare import NO_INTERVAL, PAIRED, UNPAIRED, compare_runs, load_run, to_markdown, verdict
from avbench.errors import AVBenchError
from avbench.task import stable_hash

from fakes import ANSWERS, write_fake_data

runner = CliRunner()
N = 200


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN_TASKS, "fake", "fakes:FakeTask")


def _truth(i: int) -> str:
    return ANSWERS[i % 3]  # what write_fake_data writes for sample t{i:03d}


def _write_run(folder: Path, root: Path, correct: set[int], *, per_sample: bool = True, intervals: list[float] | None = None,
               name: str = "model") -> Path:
    """A run folder as `avbench run` leaves it: results.json, and the per-sample file unless per_sample=False."""
    folder.mkdir(parents=True)
    lines = []
    for i in range(N):
        answer = _truth(i) if i in correct else ANSWERS[(i + 1) % 3]
        lines.append({"id": f"t{i:03d}", "target_hash": stable_hash(_truth(i)), "raw_output": f"<answer>{answer}</answer>",
                      "parsed": {"answer": answer}, "parse_status": "ok"})
    if per_sample:
        (folder / "fake_test.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    task = {"split": "test", "metrics": {"accuracy": 100.0 * len(correct) / N}, "variants": {}, "n_samples": N,
            "n_parse_failures": 0}
    if intervals is not None:
        task["intervals"] = {"accuracy": intervals}
    results = {"schema_version": 1, "avbench_version": "0.1.0", "created": "2025-01-01T00:00:00+00:00",
               "config": {"model": name, "task_options": {}}, "model": {"name": name},
               "data": {"root": str(root), "synthav": None}, "tasks": {"fake": task}}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


@pytest.fixture()
def data_root(tmp_path: Path) -> Path:
    return write_fake_data(tmp_path / "data", n_test=N)


BASE = set(range(0, 160))  # 80 % correct


# ---- the rule ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "delta, low, high, lower_is_better, expected",
    [
        (-5.0, -8.0, -2.0, False, "regression"),      # worse by 5 > 1, interval below 0
        (-5.0, -9.0, 0.5, False, "within noise"),     # worse by 5 but the interval reaches 0
        (-0.5, -0.9, -0.1, False, "ok"),              # significant, but within the tolerance
        (5.0, 2.0, 8.0, False, "improvement"),
        (0.05, 0.02, 0.08, True, "regression"),       # lower is better: a rise is worse (tolerance 0.01)
        (-0.05, -0.08, -0.02, True, "improvement"),
        (-5.0, None, None, False, "regression"),      # no interval: the tolerance alone decides
        (-0.5, None, None, False, "ok"),
        (math.nan, None, None, False, "n/a"),
    ],
)
def test_verdict(delta: float, low: float | None, high: float | None, lower_is_better: bool, expected: str) -> None:
    tolerance = 0.01 if lower_is_better else 1.0
    assert verdict(delta, low, high, lower_is_better=lower_is_better, tolerance=tolerance) == expected


# ---- paired bootstrap on per-sample files ----------------------------------------------------------------

def test_a_real_drop_fails(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, BASE)
    new = _write_run(tmp_path / "new", data_root, set(range(0, 120)))  # 40 samples flip to wrong: 80 % -> 60 %
    comparison = compare_runs(load_run(base), load_run(new), tolerance=1.0)
    (d,) = comparison.deltas
    assert (d.baseline, d.new, d.delta, d.method) == (80.0, 60.0, -20.0, PAIRED)
    # every discordant pair is a loss: the per-sample difference is -1 on 40 of 200 samples, so the
    # bootstrap interval of the mean difference (x100) is close to -20 +- 1.96 * 100 * sqrt(0.2 * 0.8 / 200)
    # = [-25.54, -14.46] (the percentile bootstrap of a mean is this normal interval up to resampling noise)
    assert d.low == pytest.approx(-25.54, abs=1.0) and d.high == pytest.approx(-14.46, abs=1.0)
    assert d.status == "regression" and not comparison.passed
    assert d.p_value < 0.01


def test_noise_within_the_interval_passes(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, BASE)
    # 6 samples flip to wrong, 2 to right: -2 points, beyond the tolerance of 1 but well inside the noise
    noisy = (BASE - {0, 1, 2, 3, 4, 5}) | {160, 161}
    new = _write_run(tmp_path / "new", data_root, noisy)
    comparison = compare_runs(load_run(base), load_run(new), tolerance=1.0)
    (d,) = comparison.deltas
    assert d.delta == pytest.approx(-2.0)
    assert d.low < 0.0 < d.high
    assert d.status == "within noise" and comparison.passed


def test_cli_exit_codes_and_markdown(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, BASE, name="base <b>|model")
    drop = _write_run(tmp_path / "drop", data_root, set(range(0, 120)))
    same = _write_run(tmp_path / "same", data_root, BASE)
    md = tmp_path / "comment.md"
    failed = runner.invoke(app, ["compare", str(base), str(drop), "--markdown", str(md)])
    assert failed.exit_code == 1, failed.output
    text = md.read_text()
    assert text.startswith("### avbench compare: ❌ fail (1 regression: fake.accuracy)")
    assert "| fake | accuracy | 80.00 | 60.00 | -20.00 |" in text
    assert "base \\<b\\>\\|model" in text  # a name from a results file cannot inject HTML or break the table
    passed = runner.invoke(app, ["compare", str(base), str(same), "--format", "md"])
    assert passed.exit_code == 0, passed.output
    assert "✅ pass" in passed.output and "| +0.00 | [+0.00, +0.00]".replace("[", "\\[").replace("]", "\\]") in passed.output


# ---- fallbacks ----------------------------------------------------------------------------------------

def test_without_per_sample_files_the_results_intervals_give_an_unpaired_interval(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, set(range(100)), per_sample=False, intervals=[40.0, 60.0])  # 50 %
    new = _write_run(tmp_path / "new", data_root, set(range(90)), per_sample=False, intervals=[35.0, 55.0])  # 45 %
    comparison = compare_runs(load_run(base), load_run(new), tolerance=1.0)
    (d,) = comparison.deltas
    # each interval is +-10 = z * se, so se = 10 / z; the difference has se * sqrt(2), and its interval
    # is -5 +- z * sqrt(2) * 10 / z = -5 +- 14.142; p = 2 (1 - Phi(5 / (sqrt(2) * 10 / 1.959964))) = 0.4883
    assert d.method == UNPAIRED
    assert (d.low, d.high) == (pytest.approx(-5 - 10 * math.sqrt(2)), pytest.approx(-5 + 10 * math.sqrt(2)))
    assert d.p_value == pytest.approx(0.4883, abs=1e-3)
    assert d.status == "within noise"
    assert any("no per-sample predictions file" in note for note in comparison.notes)


def test_without_any_interval_the_tolerance_alone_decides_and_says_so(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, set(range(100)), per_sample=False)
    new = _write_run(tmp_path / "new", data_root, set(range(96)), per_sample=False)
    comparison = compare_runs(load_run(base), load_run(new), tolerance=1.0)
    (d,) = comparison.deltas
    assert (d.method, d.delta, d.status) == (NO_INTERVAL, pytest.approx(-2.0), "regression")
    assert "none = no interval (the tolerance alone decides)" in to_markdown(comparison)


def test_a_task_missing_from_the_new_run_fails(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, BASE)
    new = _write_run(tmp_path / "new", data_root, BASE)
    results = json.loads((new / "results.json").read_text())
    results["tasks"] = {"other": results["tasks"]["fake"]}
    (new / "results.json").write_text(json.dumps(results))
    comparison = compare_runs(load_run(base), load_run(new))
    assert [d.status for d in comparison.deltas] == ["missing"] and not comparison.passed


def test_other_metric_variants_are_not_comparable(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, BASE)
    new = _write_run(tmp_path / "new", data_root, BASE)
    results = json.loads((new / "results.json").read_text())
    results["tasks"]["fake"]["variants"] = {"f_score": "per_frame"}
    (new / "results.json").write_text(json.dumps(results))
    with pytest.raises(AVBenchError, match="metric variants differ"):
        compare_runs(load_run(base), load_run(new))


def test_ground_truth_mismatch_falls_back_to_the_aggregates(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, BASE)
    new = _write_run(tmp_path / "new", data_root, BASE)
    lines = (new / "fake_test.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["target_hash"] = "0" * 16
    (new / "fake_test.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    comparison = compare_runs(load_run(base), load_run(new))
    assert comparison.deltas[0].method == NO_INTERVAL
    assert any("ground truth for 't000' differs" in note for note in comparison.notes)


def test_a_zero_width_interval_is_no_evidence_of_noise(tmp_path: Path, data_root: Path) -> None:
    base = _write_run(tmp_path / "base", data_root, BASE)
    new = _write_run(tmp_path / "new", data_root, set(range(1, 160)))  # t000 flips to wrong
    for run in (base, new):  # keep one sample: every resample draws it, so the interval has zero width
        lines = (run / "fake_test.jsonl").read_text().splitlines()
        (run / "fake_test.jsonl").write_text(lines[0] + "\n")
    comparison = compare_runs(load_run(base), load_run(new))
    (d,) = comparison.deltas
    assert (d.delta, d.low, d.method, d.status) == (-100.0, None, NO_INTERVAL, "regression")
    assert any("zero-width interval (a single resampling unit)" in note for note in comparison.notes)


def test_a_missing_results_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(tmp_path / "nowhere"), str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "results file not found" in result.output
