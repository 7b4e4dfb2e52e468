"""The whole product on SynthAV: `avbench run` over all eight tasks with the three baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avbench.cli import app
from avbench.registry import expand_tasks, get_task

runner = CliRunner()
ALL_TASKS = ["ave", "avvp", "music_avqa", "arig", "s4", "ms3", "avss", "ref_avs"]


@pytest.fixture(scope="session")
def baseline_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Run each baseline once on the default SynthAV (generated into the test session's cache)."""
    out = tmp_path_factory.mktemp("runs")
    results = {}
    for model in ("oracle", "random", "prior"):
        result = runner.invoke(app, ["run", "--model", model, "--tasks", "all", "--output-dir", str(out / model)])
        assert result.exit_code == 0, result.output
        results[model] = {"output": result.output, **json.loads((out / model / "results.json").read_text())}
    return results


def test_all_expands_to_the_eight_tasks() -> None:
    assert expand_tasks("all") == ALL_TASKS
    assert expand_tasks("temporal,pixel,ave") == ["ave", "avvp", "s4", "ms3", "avss", "ref_avs"]


def test_the_table_lists_all_eight_tasks_and_four_families(baseline_results: dict) -> None:
    output = baseline_results["random"]["output"]
    for name in ALL_TASKS:
        assert f"│ {name} " in output, name
    for family in ("temporal", "spatial", "spatiotemporal", "pixel"):
        assert f"│ {family} " in output
    results = baseline_results["random"]
    assert list(results["tasks"]) == ALL_TASKS
    assert results["data"]["synthav"] == {"version": "2", "seed": 0, "size": "small"}
    assert all(entry["n_samples"] > 0 and entry["n_parse_failures"] == 0 for entry in results["tasks"].values())


def test_oracle_reaches_the_maximum_on_every_metric(baseline_results: dict) -> None:
    for name, entry in baseline_results["oracle"]["tasks"].items():
        task = get_task(name)
        for metric, value in entry["metrics"].items():
            best = 0.0 if metric in task.lower_is_better else 1.0 if metric in task.fraction_metrics else 100.0
            assert value == pytest.approx(best, abs=1e-4), (name, metric, value)
    assert all(f["score"] == pytest.approx(100.0) for f in baseline_results["oracle"]["families"].values())


@pytest.mark.parametrize(
    "task, metric",
    [("ave", "accuracy"), ("avvp", "segment_avg"), ("music_avqa", "avg"), ("s4", "miou"), ("s4", "f_score"),
     ("ms3", "miou"), ("ms3", "f_score"), ("ref_avs", "j_seen"), ("ref_avs", "j_unseen")],
)
def test_prior_beats_random_where_a_prior_helps(baseline_results: dict, task: str, metric: str) -> None:
    prior = baseline_results["prior"]["tasks"][task]["metrics"][metric]
    random = baseline_results["random"]["tasks"][task]["metrics"][metric]
    assert prior > random


def test_baselines_stay_far_below_the_oracle(baseline_results: dict) -> None:
    for model in ("random", "prior"):
        for name, entry in baseline_results[model]["tasks"].items():
            primary = entry["metrics"][entry["primary_metric"]]
            assert primary < 70.0, (model, name, primary)


def test_a_rerun_resumes_without_predicting_again(baseline_results: dict, tmp_path: Path) -> None:
    out = Path(baseline_results["oracle"]["config"]["output_dir"])
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    again = runner.invoke(app, ["run", "--model", "oracle", "--tasks", "all", "--output-dir", str(out)])
    assert again.exit_code == 0, again.output
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == before
    def without_timings(tasks: dict) -> dict:
        return {name: {k: v for k, v in entry.items() if k != "seconds"} for name, entry in tasks.items()}

    rerun = json.loads((out / "results.json").read_text())["tasks"]
    assert without_timings(rerun) == without_timings(baseline_results["oracle"]["tasks"])


def test_score_gives_the_numbers_run_gave(baseline_results: dict, tmp_path: Path) -> None:
    """`avbench score` on the files `avbench run` wrote reproduces every metric (masks included)."""
    out = Path(baseline_results["random"]["config"]["output_dir"])
    for name, entry in baseline_results["random"]["tasks"].items():
        scored_file = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["score", "--task", name, "-p", str(out / f"{name}_test.jsonl"), "--output", str(scored_file)])
        assert result.exit_code == 0, result.output
        assert json.loads(scored_file.read_text())["tasks"][name]["metrics"] == entry["metrics"], name
