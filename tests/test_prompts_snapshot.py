"""The prompt gate: every task's prompts on SynthAV tiny must match the committed snapshot.

When `test_prompts_match_the_committed_snapshot` fails, a change altered what models are asked, which
moves scores silently. If that was intended: bump the task's TASK_VERSION and write the snapshot again
with `avbench prompts --tasks all --out tests/snapshots/prompts.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avbench.cli import app
from avbench.prompts import build_snapshot, check_snapshot, read_snapshot
from avbench.registry import get_task, task_names
from avbench.task import stable_hash

SNAPSHOT = Path(__file__).parent / "snapshots" / "prompts.json"
runner = CliRunner()


@pytest.fixture(scope="module")
def current() -> dict:
    return build_snapshot(task_names(), max_texts=10**9)


def test_prompts_match_the_committed_snapshot(current: dict) -> None:
    changes = check_snapshot(read_snapshot(SNAPSHOT), current)
    assert not changes, "prompts changed:\n" + "\n".join(c.format() for c in changes)


def test_the_snapshot_holds_every_sample_hash_and_the_texts_hash_to_them(current: dict) -> None:
    committed = read_snapshot(SNAPSHOT)
    assert set(committed["tasks"]) == set(task_names())
    for name, entry in committed["tasks"].items():
        assert entry["n_samples"] == len(entry["prompt_hashes"]) > 0, name
        for digest, text in entry["texts"].items():
            assert stable_hash(text) == digest, name
        # the hash the predictions files carry as prompt_hash
        sample = get_task(name).load(_root(), entry["split"])[0]
        assert entry["prompt_hashes"][sample.id] == stable_hash(get_task(name).build_prompt(sample))


def _root() -> Path:
    from avbench.synthav import ensure_synthav

    return ensure_synthav(seed=0, size="tiny")


def test_a_changed_prompt_is_named_with_a_diff(current: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from avbench.tasks.ave import AVETask as PluginAVE

    original = PluginAVE.build_prompt
    monkeypatch.setattr(PluginAVE, "build_prompt", lambda self, s: original(self, s).replace("whole seconds", "seconds"))
    changed = build_snapshot(["ave", "avvp"], max_texts=10**9)
    expected = {**current, "tasks": {k: current["tasks"][k] for k in ("ave", "avvp")}}
    (change,) = check_snapshot(expected, changed)
    assert change.task == "ave"
    assert change.reason == f"{expected['tasks']['ave']['n_samples']} of {expected['tasks']['ave']['n_samples']} prompts changed"
    lines = change.diff.splitlines()
    assert lines[0] == "--- snapshot/ave/" + next(iter(expected["tasks"]["ave"]["prompt_hashes"]))
    assert any(line.startswith("-") and "time range in whole seconds" in line for line in lines[2:])
    assert any(line.startswith("+") and "time range in seconds" in line for line in lines[2:])


def test_new_and_removed_tasks_are_drift(current: dict) -> None:
    only_ave = {**current, "tasks": {"ave": current["tasks"]["ave"]}}
    without_ave = {**current, "tasks": {k: v for k, v in current["tasks"].items() if k != "ave"}}
    changes = check_snapshot(only_ave, without_ave)
    assert [c.task for c in changes] == ["ave"] + [k for k in current["tasks"] if k != "ave"]
    assert changes[0].reason.startswith("in the snapshot but not checked now")
    assert all(c.reason.startswith("not in the snapshot") for c in changes[1:])


def test_cli_check_passes_then_fails_on_an_edited_snapshot(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["prompts", "--tasks", "ave,avvp", "--check", str(SNAPSHOT)])
    assert ok.exit_code == 0, ok.output
    assert "prompts unchanged: 2 tasks" in ok.output
    edited = json.loads(SNAPSHOT.read_text())
    entry = edited["tasks"]["avvp"]
    (digest, text), = entry["texts"].items()
    old_text = text.replace("Please", "Kindly", 1)
    new_digest = stable_hash(old_text)
    entry["texts"] = {new_digest: old_text}
    entry["prompt_hashes"] = {k: new_digest for k in entry["prompt_hashes"]}
    entry["all_prompts_hash"] = "0" * 16
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(edited))
    failed = runner.invoke(app, ["prompts", "--tasks", "ave,avvp", "--check", str(path)])
    assert failed.exit_code == 1
    assert "avvp: 2 of 2 prompts changed" in failed.output
    assert "-This is a video:" not in failed.output and "-Kindly" in failed.output and "+Please" in failed.output


def test_out_and_check_are_exclusive() -> None:
    result = runner.invoke(app, ["prompts"])
    assert result.exit_code == 2 and "exactly one of --out FILE" in result.output
