"""Review of the scoring side (bootstrap, compare, results, leaderboard): regression tests for the bugs found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avbench import registry
from avbench.cli import app
from avbench.compare import PAIRED, compare_runs, load_run

from fakes import write_fake_data

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN_TASKS, "fake", "fakes:FakeTask")


def _run(root: Path, out: Path, limit: int) -> None:
    result = runner.invoke(app, ["run", "--model", "oracle", "--tasks", "fake", "--data-root", str(root),
                                 "--output-dir", str(out), "--limit", str(limit), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output


def test_compare_scores_only_the_samples_the_results_cover(tmp_path: Path) -> None:
    """A folder re-run with a smaller --limit keeps the earlier run's extra lines in its predictions file
    (the runner reuses them); its results cover the first `n_samples` only. Comparing it with a fresh run
    of the same model at that limit must find no difference, not score the extra samples as missing
    answers of the other run."""
    root = write_fake_data(tmp_path / "data", n_test=40)
    base, new = tmp_path / "base", tmp_path / "new"
    _run(root, base, 40)
    _run(root, base, 20)  # resumes: the file keeps 40 lines, results.json covers the first 20
    _run(root, new, 20)
    assert len((base / "fake_test.jsonl").read_text().splitlines()) == 40
    assert json.loads((base / "results.json").read_text())["tasks"]["fake"]["n_samples"] == 20

    comparison = compare_runs(load_run(base), load_run(new), tolerance=1.0)
    (d,) = comparison.deltas
    # the oracle answers all 20 evaluated samples right in both runs: 100 vs 100, no regression
    assert (d.method, d.baseline, d.new, d.delta, d.status) == (PAIRED, 100.0, 100.0, 0.0, "ok")
    assert comparison.passed
    assert not any("other values than its results file" in note for note in comparison.notes)


def _results_file(folder: Path, task: str, split: str, metrics: dict[str, float]) -> Path:
    folder.mkdir(parents=True)
    results = {"schema_version": 1, "avbench_version": "0.1.0", "created": "2025-01-01T00:00:00+00:00",
               "config": {"model": "m", "task_options": {}}, "model": {"name": "m"}, "data": {"root": None},
               "tasks": {task: {"split": split, "metrics": metrics, "variants": {}, "n_samples": 40, "n_parse_failures": 0}}}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_compare_table_metrics_of_a_split_outside_the_task_table_are_all_gated(tmp_path: Path) -> None:
    """Ref-AVS on val reports `j` and `f`, none of the task's table metrics (j_seen, ...): the summary table
    then shows every metric the split has (results.metric_rows), and so must the gate; comparing `j` alone
    let a drop of F pass."""
    base = _results_file(tmp_path / "base", "ref_avs", "val", {"j": 50.0, "f": 0.50})
    new = _results_file(tmp_path / "new", "ref_avs", "val", {"j": 50.0, "f": 0.30})
    comparison = compare_runs(load_run(base), load_run(new), tolerance=1.0)
    assert [(d.metric, d.status) for d in comparison.deltas] == [("j", "ok"), ("f", "regression")]
    assert not comparison.passed
    # --metrics primary still gates one metric: the split's first one, as before
    primary = compare_runs(load_run(base), load_run(new), tolerance=1.0, metrics="primary")
    assert [d.metric for d in primary.deltas] == ["j"]


def test_compare_says_when_the_runs_scored_different_sample_counts(tmp_path: Path) -> None:
    root = write_fake_data(tmp_path / "data", n_test=40)
    _run(root, tmp_path / "base", 30)
    _run(root, tmp_path / "new", 20)
    comparison = compare_runs(load_run(tmp_path / "base"), load_run(tmp_path / "new"), tolerance=1.0)
    assert any("different numbers of samples (baseline 30, new 20)" in note for note in comparison.notes)


def test_score_records_its_task_options_so_compare_can_rebuild_the_variants(tmp_path: Path) -> None:
    root = write_fake_data(tmp_path / "data", n_test=4)
    _run(root, tmp_path / "run", 4)
    out = tmp_path / "scored.json"
    result = runner.invoke(app, ["score", "--task", "fake", "--predictions", str(tmp_path / "run" / "fake_test.jsonl"),
                                 "--data-root", str(root), "--output", str(out), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["config"]["task_options"] == {}
