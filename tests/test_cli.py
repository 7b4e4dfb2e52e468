"""The command line: listings, clear one-line errors, run and score round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avbench import registry
from avbench.cli import app

from fakes import write_fake_data

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN_TASKS, "fake", "fakes:FakeTask")


def test_tasks_and_models_list_one_line_each() -> None:
    tasks = runner.invoke(app, ["tasks"])
    assert tasks.exit_code == 0
    for name in ("ave", "avvp", "music_avqa", "arig", "s4", "ms3", "avss", "ref_avs"):
        assert any(line.startswith(name + " ") for line in tasks.output.splitlines()), name
    assert "pixel = s4,ms3,avss,ref_avs" in tasks.output
    models = runner.invoke(app, ["models"])
    assert [line.split()[0] for line in models.output.splitlines()] == ["random", "prior", "oracle", "crab"]


def test_crab_without_its_bundled_weights_says_how_to_get_them_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avbench.adapters.crab import adapter as crab_adapter

    monkeypatch.setattr(crab_adapter, "BUNDLED_CHECKPOINT", tmp_path / "missing")
    result = runner.invoke(app, ["run", "--model", "crab", "--tasks", "all"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "crab-tiny" in lines[0] and "avbench train --config configs/crab-tiny.yaml" in lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--model", "nosuchmodel"], "unknown model 'nosuchmodel'; valid models: crab, oracle, prior, random"),
        (["run", "--model", "random", "--tasks", "ave,nosuchtask"], "unknown task 'nosuchtask'; valid tasks: all, arig, ave"),
        (["run", "--model", "random", "--data-root", "/no/such/dir"], "data root /no/such/dir does not exist"),
    ],
)
def test_bad_names_and_paths_are_clear_errors(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())


def test_run_then_score_gives_the_same_numbers(tmp_path: Path) -> None:
    root = write_fake_data(tmp_path / "data")
    out = tmp_path / "out"
    ran = runner.invoke(app, ["run", "--model", "random", "--tasks", "fake", "--data-root", str(root), "--output-dir", str(out), "--seed", "5"])
    assert ran.exit_code == 0, ran.output
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"]["fake"]["n_samples"] == 10 and results["config"]["seed"] == 5
    assert "| fake |" in (out / "results.md").read_text()

    scored_file = tmp_path / "scored.json"
    scored = runner.invoke(app, ["score", "--task", "fake", "--predictions", str(out / "fake_test.jsonl"), "--data-root", str(root), "--output", str(scored_file)])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored_file.read_text())["tasks"]["fake"]["metrics"] == results["tasks"]["fake"]["metrics"]


def test_score_accepts_raw_text_only_and_counts_missing_samples(tmp_path: Path) -> None:
    root = write_fake_data(tmp_path / "data")
    predictions = tmp_path / "p.jsonl"
    # t000 red (right), t001 says blue (truth green: wrong), t002 garbage (parse failure), t003..t009 missing.
    predictions.write_text(
        '{"id": "t000", "raw_output": "<answer>red</answer>"}\n'
        '{"id": "t001", "parsed": {"answer": "blue"}}\n'
        '{"id": "t002", "raw_output": "no idea"}\n'
    )
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["score", "--task", "fake", "-p", str(predictions), "--data-root", str(root), "--output", str(out)])
    assert result.exit_code == 0, result.output
    entry = json.loads(out.read_text())["tasks"]["fake"]
    assert entry["metrics"]["accuracy"] == pytest.approx(10.0)  # 1 of 10
    assert entry["n_parse_failures"] == 8 and entry["n_missing"] == 7  # t002 + 7 missing
    assert "7 of 10 samples have no line" in " ".join(result.output.split())


@pytest.mark.parametrize(
    "content, line, message",
    [
        ('{"id": "t000", "raw_output": "x"}\n{"id": "t001", "raw_output": \n', 2, "not valid JSON"),
        ('{"id": "t000"}\n\n["t001"]\n', 3, "must be a JSON object"),
        ('{"raw_output": "x"}\n', 1, "missing or non-string 'id'"),
        ('{"id": "t000"}\n{"id": "t000"}\n', 2, "duplicate id 't000' (first on line 1)"),
    ],
)
def test_malformed_predictions_name_file_and_line(tmp_path: Path, content: str, line: int, message: str) -> None:
    root = write_fake_data(tmp_path / "data")
    predictions = tmp_path / "bad.jsonl"
    predictions.write_text(content)
    result = runner.invoke(app, ["score", "--task", "fake", "-p", str(predictions), "--data-root", str(root)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"bad.jsonl:{line}:" in text and message in text


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--task-option", "fake.colour=red"], "task 'fake' does not take the options ['colour']"),
        (["--task-option", "s4.f_grouping=per_frame"], "--task-option names tasks that are not run: s4"),
        (["--task-option", "s4-per-frame"], "--task-option takes TASK.OPTION=VALUE"),
    ],
)
def test_bad_task_options_are_clear_errors(tmp_path: Path, options: list[str], expected: str) -> None:
    root = write_fake_data(tmp_path / "data")
    result = runner.invoke(app, ["run", "--model", "oracle", "--tasks", "fake", "--data-root", str(root), *options])
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())


def test_an_interrupted_run_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import avbench.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(avbench.cli, "run", interrupted)
    root = write_fake_data(tmp_path / "data")
    result = runner.invoke(app, ["run", "--model", "oracle", "--tasks", "fake", "--data-root", str(root), "--output-dir", str(tmp_path / "o")])
    assert result.exit_code == 130
    assert "run the same command again to resume" in " ".join(result.output.split())
