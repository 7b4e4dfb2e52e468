"""The runner: outputs, resume after a killed run, torn lines, mismatched data, garbage outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from avbench import registry
from avbench.errors import AVBenchError, DataError
from avbench.predictions import read_predictions
from avbench.runner import RunConfig, predictions_path, run

from fakes import GarbageModel, write_fake_data


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN_TASKS, "fake", "fakes:FakeTask")
    monkeypatch.setitem(registry.BUILTIN_MODELS, "garbage", "fakes:GarbageModel")


def _config(tmp_path: Path, model: str = "oracle", **kw) -> RunConfig:
    root = write_fake_data(tmp_path / "data")
    return RunConfig(model=model, tasks=["fake"], output_dir=tmp_path / "out", data_root=root, batch_size=3, **kw)


def test_oracle_reaches_the_maximum_and_writes_every_sample(tmp_path: Path) -> None:
    config = _config(tmp_path)
    [result] = run(registry.get_model("oracle"), config)
    assert result.metrics == {"accuracy": 100.0}
    assert (result.n_samples, result.n_parse_failures) == (10, 0)
    records = read_predictions(predictions_path(config.output_dir, "fake", "test"))
    assert [r.id for r in records] == [f"t{i:03d}" for i in range(10)]
    first = records[0].data
    assert first["parse_status"] == "ok" and first["parsed"] == {"answer": "red"} and first["score"] == {"accuracy": 100.0}
    assert len(first["prompt_hash"]) == 16 and len(first["target_hash"]) == 16


def test_prior_uses_the_train_majority(tmp_path: Path) -> None:
    # train answers: i % 3 != 0 -> red (4 of 6), else green; test answers cycle red, green, blue:
    # red on t000, t003, t006, t009 -> 4 of 10 correct.
    [result] = run(registry.get_model("prior"), _config(tmp_path, model="prior"))
    assert result.metrics["accuracy"] == pytest.approx(40.0)


def test_random_is_deterministic_per_sample_whatever_the_batch(tmp_path: Path) -> None:
    a = _config(tmp_path / "a", model="random")
    b = _config(tmp_path / "b", model="random")
    b.batch_size = 7
    run(registry.get_model("random", seed=3), a)
    run(registry.get_model("random", seed=3), b)
    lines_a = [r.data["raw_output"] for r in read_predictions(predictions_path(a.output_dir, "fake", "test"))]
    lines_b = [r.data["raw_output"] for r in read_predictions(predictions_path(b.output_dir, "fake", "test"))]
    assert lines_a == lines_b and len(set(lines_a)) > 1


def test_garbage_outputs_are_counted_not_fatal(tmp_path: Path) -> None:
    config = _config(tmp_path, model="garbage")
    [result] = run(GarbageModel(), config)
    # batches of 3: positions 1 in each batch (and the 2nd of the last) are garbage:
    # batch [0,1,2] -> 1 bad, [3,4,5] -> 1, [6,7,8] -> 1, [9] -> 0  => 3 failures, 7 correct.
    assert result.n_parse_failures == 3
    assert result.metrics["accuracy"] == pytest.approx(70.0)
    failed = [r.data for r in read_predictions(predictions_path(config.output_dir, "fake", "test")) if r.data["parse_status"] == "failed"]
    assert len(failed) == 3 and all(f["parsed"] is None and "answer" in f["parse_error"] for f in failed)


class _DiesAfter(GarbageModel):
    """Oracle answers, but the process 'dies' (KeyboardInterrupt) on the given call."""

    def __init__(self, die_on_call: int):
        super().__init__()
        self.calls, self.die_on_call, self.seen = 0, die_on_call, []

    def predict(self, task, samples, prompts):
        self.calls += 1
        if self.calls == self.die_on_call:
            raise KeyboardInterrupt
        self.seen.extend(s.id for s in samples)
        return [task.reference_output(s) for s in samples]


def test_resume_after_an_interrupted_run(tmp_path: Path) -> None:
    reference = _config(tmp_path / "ref", model="garbage")
    [expected] = run(_DiesAfter(die_on_call=0), reference)

    config = _config(tmp_path / "resumed", model="garbage")
    with pytest.raises(KeyboardInterrupt):
        run(_DiesAfter(die_on_call=3), config)  # batches 1 and 2 (6 samples) are on disk
    path = predictions_path(config.output_dir, "fake", "test")
    assert len(read_predictions(path)) == 6

    second = _DiesAfter(die_on_call=0)
    [resumed] = run(second, config)
    assert second.seen == ["t006", "t007", "t008", "t009"]  # only what was missing is predicted
    assert resumed.metrics == expected.metrics and resumed.n_samples == expected.n_samples
    ids = [r.id for r in read_predictions(path)]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 10


def test_a_torn_last_line_is_dropped_and_redone(tmp_path: Path) -> None:
    config = _config(tmp_path)
    run(registry.get_model("oracle"), config)
    path = predictions_path(config.output_dir, "fake", "test")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # killed in the middle of writing t009
    [result] = run(registry.get_model("oracle"), config)
    assert result.metrics == {"accuracy": 100.0}
    assert [r.id for r in read_predictions(path)][-1] == "t009"
    assert len(read_predictions(path)) == 10


def test_resume_refuses_changed_ground_truth(tmp_path: Path) -> None:
    config = _config(tmp_path)
    run(registry.get_model("oracle"), config)
    data = config.data_root / "fake" / "test.tsv"
    data.write_text(data.read_text().replace("t004\tgreen", "t004\tblue"))
    with pytest.raises(DataError, match=r"t004.*different prompt or ground truth") as info:
        run(registry.get_model("oracle"), config)
    assert info.value.path.endswith("fake_test.jsonl") and info.value.line == 5


def test_resume_refuses_another_model_in_the_same_folder(tmp_path: Path) -> None:
    config = _config(tmp_path)
    run(registry.get_model("oracle"), config)
    other = _config(tmp_path, model="random")
    with pytest.raises(AVBenchError, match="another --output-dir"):
        run(registry.get_model("random"), other)


def test_missing_data_root_is_a_clear_error(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.data_root = tmp_path / "nowhere"
    with pytest.raises(DataError, match="data root not found"):
        run(registry.get_model("oracle"), config)


def test_unknown_split_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(AVBenchError, match="no split 'dev'.*train, test"):
        run(registry.get_model("oracle"), _config(tmp_path, split="dev"))


def test_a_data_set_listing_a_sample_twice_is_an_error_naming_the_id(tmp_path) -> None:
    from avbench.errors import DataError
    from avbench.task import load_samples
    from fakes import FakeTask, write_fake_data

    root = write_fake_data(tmp_path / "data", n_test=3)
    task = FakeTask()
    samples = task.load(root, "test")
    task.load = lambda data_root, split: samples + samples[:1]  # type: ignore[method-assign]
    with pytest.raises(DataError, match=f"sample id {samples[0].id!r} occurs twice"):
        load_samples(task, root, "test")
