"""Merging results files into a leaderboard: entries, idempotence, merging, refusals, and the CLI."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from avbench.cli import app
from avbench.errors import DataError
from avbench.leaderboard import add_results, read_results, save, validate
from avbench.leaderboard.store import dumps

from leaderboard_fixtures import task_result

runner = CliRunner()


def _ave(accuracy: float = 55.0) -> dict[str, Any]:
    return task_result("ave", {"accuracy": accuracy}, n=40, failures=2, intervals={"accuracy": [30.0, 80.0]})


def _s4(**options: Any) -> dict[str, Any]:
    return task_result("s4", {"miou": 8.94, "f_score": 22.03}, n=20, **options)


def test_a_results_file_becomes_a_measured_entry(empty_leaderboard: dict, write_results: Callable[..., Path]) -> None:
    path = write_results("r.json", "prior", {"ave": _ave(), "s4": _s4()})
    document, outcome = add_results(empty_leaderboard, read_results(path))
    assert (outcome.status, outcome.model, outcome.tasks) == ("added", "prior", ("ave", "s4"))
    (entry,) = document["entries"]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["model"] == {"name": "prior", "parameters": None, "checkpoint_hash": None}
    assert entry["provenance"] == {"kind": "measured", "results": [
        {"sha256": sha, "created": "2025-06-01T12:00:00+00:00", "avbench_version": "0.1.0", "git_revision": "0123456789abcdef0123"}]}
    assert (entry["date"], entry["avbench_version"]) == ("2025-06-01", "0.1.0")
    assert entry["data"] == {"source": "synthav", "synthav": {"version": "1", "seed": 0, "size": "small"}}
    ave = entry["tasks"]["ave"]
    assert ave["metrics"] == {"accuracy": {"value": 55.0, "interval": [30.0, 80.0]}}
    assert (ave["n_samples"], ave["n_parse_failures"], ave["results_sha256"]) == (40, 2, sha)
    assert ave["data_version"]["hash"] == "1e2d483070c32f1c"
    assert entry["tasks"]["s4"]["metrics"]["miou"] == {"value": 8.94, "interval": None}  # no interval in the file
    assert empty_leaderboard["entries"] == []  # the input is not modified


def test_adding_the_same_file_twice_changes_nothing(tmp_path: Path, empty_leaderboard: dict, write_results: Callable[..., Path]) -> None:
    results = read_results(write_results("r.json", "prior", {"ave": _ave()}))
    once, _ = add_results(empty_leaderboard, results)
    twice, outcome = add_results(once, results)
    assert outcome.status == "unchanged"
    assert dumps(twice) == dumps(once)


def test_runs_of_one_model_on_the_same_data_merge_into_one_entry(empty_leaderboard: dict, write_results: Callable[..., Path]) -> None:
    first = read_results(write_results("a.json", "prior", {"ave": _ave()}, created="2025-06-01T12:00:00+00:00"))
    second = read_results(write_results("b.json", "prior", {"s4": _s4()}, created="2025-06-03T08:00:00+00:00"))
    document, _ = add_results(empty_leaderboard, first)
    document, outcome = add_results(document, second)
    assert (outcome.status, outcome.tasks) == ("merged", ("s4",))
    (entry,) = document["entries"]
    assert sorted(entry["tasks"]) == ["ave", "s4"]
    assert [s["sha256"] for s in entry["provenance"]["results"]] == [first.sha256, second.sha256]
    assert entry["date"] == "2025-06-03"  # the newest results file
    assert entry["tasks"]["ave"]["results_sha256"] == first.sha256 and entry["tasks"]["s4"]["results_sha256"] == second.sha256
    # the same numbers again in another file (e.g. re-scored): nothing to change
    again = read_results(write_results("c.json", "prior", {"s4": _s4()}, created="2025-06-04T08:00:00+00:00"))
    document, outcome = add_results(document, again)
    assert outcome.status == "unchanged" and len(document["entries"][0]["provenance"]["results"]) == 2


def test_other_numbers_for_a_held_task_need_replace(empty_leaderboard: dict, write_results: Callable[..., Path]) -> None:
    old = read_results(write_results("a.json", "prior", {"ave": _ave(55.0)}))
    new = read_results(write_results("b.json", "prior", {"ave": _ave(60.0)}, created="2025-07-01T00:00:00+00:00"))
    document, _ = add_results(empty_leaderboard, old)
    with pytest.raises(DataError, match=r"already holds task 'ave' with other numbers .*pass --replace"):
        add_results(document, new)
    document, outcome = add_results(document, new, replace=True)
    (entry,) = document["entries"]
    assert outcome.status == "merged" and entry["tasks"]["ave"]["metrics"]["accuracy"]["value"] == 60.0
    assert [s["sha256"] for s in entry["provenance"]["results"]] == [new.sha256]  # the replaced file is no longer a source


def test_other_data_or_another_model_is_another_entry(empty_leaderboard: dict, write_results: Callable[..., Path]) -> None:
    document, _ = add_results(empty_leaderboard, read_results(write_results("a.json", "prior", {"ave": _ave()})))
    document, _ = add_results(document, read_results(write_results("b.json", "prior", {"ave": _ave()}, seed=1)))
    document, _ = add_results(document, read_results(write_results("c.json", "random", {"ave": _ave(40.0)})))
    assert [(e["model"]["name"], e["data"]["synthav"]["seed"]) for e in document["entries"]] == [("prior", 0), ("prior", 1), ("random", 0)]


@pytest.mark.parametrize(
    "task, message",
    [
        (_s4(f_grouping="per_frame"), "task 's4': metric variants {'f_score': 'per_frame'"),
        ({**_ave(), "task_version": "2"}, "task 'ave': task version '2' differs from the leaderboard's '1'"),
        ({**_ave(), "split": "val"}, "task 'ave': split 'val' differs from the leaderboard's 'test'"),
    ],
)
def test_a_results_file_with_other_task_versions_is_refused_whole(
    empty_leaderboard: dict, write_results: Callable[..., Path], task: dict, message: str
) -> None:
    name = "s4" if "f_score" in task["metrics"] else "ave"
    path = write_results("r.json", "prior", {"arig": task_result("arig", {"ciou": 1.0, "auc": 0.069}), name: task})
    with pytest.raises(DataError, match="nothing was added") as info:
        add_results(empty_leaderboard, read_results(path))
    assert message in str(info.value) and str(path) in str(info.value)


def test_undefined_metrics_become_null_and_unnamed_results_need_a_name(empty_leaderboard: dict, write_results: Callable[..., Path]) -> None:
    task = task_result("ave", {"accuracy": math.nan})
    path = write_results("r.json", None, {"ave": task})
    with pytest.raises(DataError, match="names no model .*--model-name"):
        add_results(empty_leaderboard, read_results(path))
    document, _ = add_results(empty_leaderboard, read_results(path), model_name="mine", parameters="7B")
    entry = document["entries"][0]
    assert entry["model"]["name"] == "mine" and entry["model"]["parameters"] == "7B"
    assert entry["tasks"]["ave"]["metrics"]["accuracy"] == {"value": None, "interval": None}


def test_a_task_new_to_the_leaderboard_gets_its_header_from_the_plugin(write_results: Callable[..., Path]) -> None:
    from avbench.leaderboard import new_leaderboard

    path = write_results("r.json", "prior", {"ref_avs": task_result("ref_avs", {"j_seen": 12.11, "s_null": 0.266, "j": 3.0})})
    document, _ = add_results(new_leaderboard(), read_results(path))
    spec = document["tasks"]["ref_avs"]
    assert spec["metrics"] == ["j_seen", "s_null"] and spec["primary_metric"] == "j_seen"
    assert spec["lower_is_better"] == ["s_null"] and "s_null" in spec["fraction_metrics"]


def test_a_bad_results_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema_version": 1, "avbench_version": "0.1.0", "created": "x", "config": {},
                                "model": {}, "data": {}, "tasks": {"ave": {"split": "test", "metrics": {}}}}))
    with pytest.raises(DataError, match=r"r.json: not an avbench results file: tasks.ave.metrics must be a non-empty object"):
        read_results(path)


def test_cli_add_show_render(tmp_path: Path, empty_leaderboard: dict, write_results: Callable[..., Path]) -> None:
    board = tmp_path / "board" / "leaderboard.json"
    save(board, empty_leaderboard)
    path = write_results("r.json", "prior [bold]x[/bold]", {"ave": _ave(), "s4": _s4()})
    added = runner.invoke(app, ["leaderboard", "add", str(path), "-l", str(board)])
    assert added.exit_code == 0, added.output
    assert "added a new entry for prior [bold]x[/bold]: ave, s4" in " ".join(added.output.split())
    before = board.read_bytes()
    again = runner.invoke(app, ["leaderboard", "add", str(path), "-l", str(board)])
    assert again.exit_code == 0 and "unchanged" in again.output and board.read_bytes() == before
    validate(json.loads(before))
    shown = runner.invoke(app, ["leaderboard", "show", "-l", str(board)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.output.splitlines() if "prior" in line)
    assert "prior [bold]x[/bold]" in row and "55.00" in row and "8.94" in row  # markup in a name is printed, not applied
    detail = runner.invoke(app, ["leaderboard", "show", "-l", str(board), "--task", "ave"], env={"COLUMNS": "200"})
    assert "55.00 [30.00, 80.00]" in detail.output
    for fmt in ("md", "html"):
        out = tmp_path / f"site.{fmt}"
        rendered = runner.invoke(app, ["leaderboard", "render", "--format", fmt, str(out), "-l", str(board)])
        assert rendered.exit_code == 0, rendered.output
        assert "prior" in out.read_text()
    bad = runner.invoke(app, ["leaderboard", "render", "--format", "pdf", str(tmp_path / "x"), "-l", str(board)])
    assert bad.exit_code == 2 and "--format takes md or html" in bad.output
    missing = runner.invoke(app, ["leaderboard", "show", "-l", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "leaderboard file not found" in " ".join(missing.output.split())
