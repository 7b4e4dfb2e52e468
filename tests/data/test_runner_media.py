"""The runner's media path: decoded media reach the adapter in order; broken media raise or are recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avbench import registry
from avbench.media import MediaError
from avbench.predictions import read_predictions
from avbench.runner import RunConfig, predictions_path, run

from fakes_media import ColourModel, write_clip, write_media_data


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN_TASKS, "fake", "fakes_media:MediaFakeTask")


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_media_data(tmp_path_factory.mktemp("media") / "data")


def _config(root: Path, out: Path, **kw) -> RunConfig:
    return RunConfig(model="colour", tasks=["fake"], output_dir=out, data_root=root, batch_size=3, **kw)


def _break(root: Path) -> tuple[Path, Path]:
    """t003: corrupt mp4 (its wav is fine); t005: both files missing."""
    media = root / "fake" / "media"
    corrupt = media / "t003.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (media / "t005.mp4").unlink()
    (media / "t005.wav").unlink()
    return corrupt, media / "t005.mp4"


def test_decoded_media_reach_the_adapter_in_sample_order(media_root: Path, tmp_path: Path) -> None:
    model = ColourModel()
    [result] = run(model, _config(media_root, tmp_path / "out"))
    # The model answers from the frames alone: 100% means every sample got its own clip.
    assert result.metrics == {"accuracy": 100.0}
    assert (result.n_parse_failures, result.n_media_errors) == (0, 0)
    assert model.seen == [f"t{i:03d}" for i in range(10)]
    first = model.media[0]
    assert first.frames.shape == (3, 32, 32, 3) and first.frames.dtype == np.uint8
    # 48 kHz stereo tone (0.5 in the left channel, silence right) -> 1 s of 16 kHz mono at amplitude 0.25.
    assert first.audio.shape == (16000,) and first.audio.dtype == np.float32
    assert np.abs(first.audio[1000:15000]).max() == pytest.approx(0.25, abs=0.01)


def test_broken_media_stop_the_run_naming_the_file(tmp_path: Path) -> None:
    root = write_media_data(tmp_path / "data")
    corrupt, _ = _break(root)
    config = _config(root, tmp_path / "out")
    with pytest.raises(MediaError) as info:
        run(ColourModel(), config)
    assert info.value.path == str(corrupt) and "t003" in str(info.value) and "--on-error skip" in str(info.value)
    # The batch before the broken sample (t000..t002) was written and is kept for a resume.
    assert [r.id for r in read_predictions(predictions_path(config.output_dir, "fake", "test"))] == ["t000", "t001", "t002"]


def test_skip_records_media_failures_scores_them_empty_and_retries_them_on_resume(tmp_path: Path) -> None:
    root = write_media_data(tmp_path / "data")
    corrupt, missing = _break(root)
    config = _config(root, tmp_path / "out", on_error="skip")
    model = ColourModel()
    [result] = run(model, config)
    assert "t003" not in model.seen and "t005" not in model.seen and len(model.seen) == 8
    assert result.metrics == {"accuracy": 80.0}  # 8 of 10: the two failures score as wrong, never dropped
    assert (result.n_samples, result.n_parse_failures, result.n_media_errors) == (10, 0, 2)
    records = {r.id: r.data for r in read_predictions(predictions_path(config.output_dir, "fake", "test"))}
    assert len(records) == 10
    failed = records["t003"]
    assert failed["error_kind"] == "media" and failed["parse_status"] == "failed" and failed["parsed"] is None
    assert failed["parse_error"].startswith(f"media error: {corrupt}: cannot decode video")
    assert records["t005"]["parse_error"] == f"media error: {missing}: video file not found"
    assert "error_kind" not in records["t000"]

    # Repair the files and re-run: only the two failures are predicted again.
    media = root / "fake" / "media"
    write_clip(media, "t003", "red")
    write_clip(media, "t005", "blue")
    again = ColourModel()
    [result] = run(again, config)
    assert again.seen == ["t003", "t005"]
    assert result.metrics == {"accuracy": 100.0} and result.n_media_errors == 0
    lines = read_predictions(predictions_path(config.output_dir, "fake", "test"))
    assert sorted(r.id for r in lines) == [f"t{i:03d}" for i in range(10)]
    assert not any("error_kind" in r.data for r in lines)


def test_unknown_on_error_value_is_refused(media_root: Path, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="--on-error takes raise or skip"):
        run(ColourModel(), _config(media_root, tmp_path / "out", on_error="ignore"))
