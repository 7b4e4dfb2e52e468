"""Resuming into an output folder left in an odd state: a last line without its newline beside media
failures that are retried, and a run.json that is not JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from avbench import registry
from avbench.errors import DataError
from avbench.predictions import read_predictions
from avbench.runner import RUN_FILE, RunConfig, predictions_path, run

from fakes_media import ColourModel, write_media_data


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN_TASKS, "fake", "fakes_media:MediaFakeTask")


def _config(root: Path, out: Path) -> RunConfig:
    return RunConfig(model="colour", tasks=["fake"], output_dir=out, data_root=root, batch_size=3, on_error="skip")


def test_a_last_line_without_newline_is_redone_once_when_media_failures_are_retried(tmp_path: Path) -> None:
    root = write_media_data(tmp_path / "data", n_test=6)
    video = root / "fake" / "media" / "t001.mp4"
    video.rename(video.with_suffix(".bak"))
    config = _config(root, tmp_path / "out")
    [first] = run(ColourModel(), config)
    assert first.n_media_errors == 1
    video.with_suffix(".bak").rename(video)
    # The run was killed after writing t005's line but before its newline: the line is complete JSON.
    path = predictions_path(config.output_dir, "fake", "test")
    content = path.read_bytes()
    assert content.endswith(b"\n") and b'"id":"t005"' in content.rsplit(b"\n", 2)[1]
    path.write_bytes(content[:-1])

    model = ColourModel()
    [second] = run(model, config)
    # t001 is retried (its media failure), t005 redone (its line was never finished): each once.
    assert model.seen == ["t001", "t005"]
    assert second.metrics == {"accuracy": 100.0} and second.n_media_errors == 0
    ids = [r.id for r in read_predictions(path)]  # used to fail: duplicate id 't005'
    assert sorted(ids) == [f"t{i:03d}" for i in range(6)]
    again = ColourModel()
    [third] = run(again, config)
    assert again.seen == [] and third.metrics == {"accuracy": 100.0}


def test_a_run_json_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    root = write_media_data(tmp_path / "data", n_test=3)
    config = _config(root, tmp_path / "out")
    config.output_dir.mkdir()
    (config.output_dir / RUN_FILE).write_text("")  # e.g. the disk was full when the first run started
    with pytest.raises(DataError, match="not valid JSON") as info:
        run(ColourModel(), config)
    assert info.value.path == str(config.output_dir / RUN_FILE)
