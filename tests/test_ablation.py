"""`--ablate audio|video`: the transform of decoded media, the runner applying it before `predict`, the
resume rule, and the command line (errors for models without media, the ablation shown in the results)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytest
import soundfile
from PIL import Image
from typer.testing import CliRunner

from avbench import registry
from avbench.ablation import ablate_media, ablated_label, check_ablation, default_output_name
from avbench.adapter import ModelAdapter
from avbench.cli import app
from avbench.errors import AVBenchError
from avbench.media import DecodedMedia, MediaSpec
from avbench.runner import RunConfig, run
from avbench.task import Task
from avbench.types import ModelOutput, Sample

from fakes import ANSWERS, FakeTask, write_fake_data

COLOURS = {"red": (200, 0, 0), "green": (0, 200, 0), "blue": (0, 0, 200)}


class MediaColourTask(FakeTask):
    """FakeTask whose samples list two frame images (the answer's colour) and a tone (wav)."""

    def load(self, data_root: Path, split: str) -> list[Sample]:
        media = Path(data_root) / "fake" / "media"
        return [
            Sample(s.id, s.task, s.split, {"frames": [str(media / f"{s.id}_{k}.png") for k in range(2)],
                                            "audio": str(media / f"{s.id}.wav")}, s.inputs, s.target)
            for s in super().load(data_root, split)
        ]


class MediaProbe(ModelAdapter):
    """Names the colour of its frames and keeps every `DecodedMedia` it was given, in order."""

    name = "probe"
    media_spec = MediaSpec(n_frames=2, frame_size=16, sample_rate=16000, audio_seconds=0.5)
    received: list[DecodedMedia] = []  # class-level: the CLI builds its own instance

    def predict(self, task: Task, samples: Sequence[Sample], prompts: Sequence[str],
                media: Sequence[DecodedMedia] | None = None) -> list[ModelOutput]:
        assert media is not None
        MediaProbe.received.extend(media)
        return [ModelOutput(f"<answer>{ANSWERS[int(np.argmax(m.frames.reshape(-1, 3).mean(axis=0)))]}</answer>")
                for m in media]


@pytest.fixture(autouse=True)
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BUILTIN_TASKS, "fake", "test_ablation:MediaColourTask")
    monkeypatch.setitem(registry.BUILTIN_MODELS, "probe", "test_ablation:MediaProbe")
    MediaProbe.received = []


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_fake_data(tmp_path_factory.mktemp("ablation") / "data", n_test=4)
    folder = root / "fake" / "media"
    folder.mkdir()
    t = np.arange(8000) / 16000
    for i in range(4):
        for k in range(2):
            Image.new("RGB", (16, 16), COLOURS[ANSWERS[i % 3]]).save(folder / f"t{i:03d}_{k}.png")
        soundfile.write(folder / f"t{i:03d}.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    return root


def _media() -> DecodedMedia:
    rng = np.random.default_rng(0)
    return DecodedMedia(frames=rng.integers(1, 256, (3, 8, 8, 3), dtype=np.uint8),
                        audio=rng.uniform(-1, 1, 1234).astype(np.float32))


def test_audio_ablation_is_silence_of_the_same_length_and_keeps_the_frames() -> None:
    media = _media()
    original_audio = media.audio.copy()
    ablated = ablate_media(media, "audio")
    assert ablated.audio.shape == (1234,) and ablated.audio.dtype == np.float32
    assert not ablated.audio.any()
    assert ablated.frames is media.frames  # the other modality is passed through untouched
    np.testing.assert_array_equal(media.audio, original_audio)  # the input is not modified in place


def test_video_ablation_is_black_frames_of_the_same_shape_and_keeps_the_audio() -> None:
    media = _media()
    ablated = ablate_media(media, "video")
    assert ablated.frames.shape == (3, 8, 8, 3) and ablated.frames.dtype == np.uint8
    assert int(ablated.frames.max()) == 0
    assert ablated.audio is media.audio
    assert media.frames.min() >= 1  # input untouched
    assert ablate_media(media, None) is media
    assert ablate_media(DecodedMedia(frames=None, audio=media.audio), "video").frames is None


def test_ablation_values_and_models_are_checked() -> None:
    with pytest.raises(AVBenchError, match="--ablate takes audio or video, got 'smell'"):
        check_ablation("smell", MediaProbe())
    with pytest.raises(AVBenchError, match="model 'random' reads no media"):
        check_ablation("audio", registry.get_model("random"))

    class FramesOnly(MediaProbe):
        media_spec = MediaSpec(need_audio=False)

    with pytest.raises(AVBenchError, match="does not read audio"):
        check_ablation("audio", FramesOnly())
    check_ablation("video", FramesOnly())
    check_ablation(None, registry.get_model("random"))
    assert ablated_label("crab", "audio") == "crab (no audio)" and ablated_label("crab", None) == "crab"
    assert default_output_name("crab", "video") == "crab-no-video" and default_output_name("crab", None) == "crab"


def _config(root: Path, out: Path, **kw: Any) -> RunConfig:
    return RunConfig(model="probe", tasks=["fake"], output_dir=out, data_root=root, batch_size=3, bootstrap=None, **kw)


def test_the_runner_hands_the_model_ablated_media(media_root: Path, tmp_path: Path) -> None:
    plain = run(MediaProbe(), _config(media_root, tmp_path / "plain"))
    normal, MediaProbe.received = MediaProbe.received, []
    assert plain[0].metrics == {"accuracy": 100.0}
    assert len(normal) == 4 and all(np.abs(m.audio).max() > 0.4 and m.frames.max() == 200 for m in normal)

    run(MediaProbe(), _config(media_root, tmp_path / "no-audio", ablate="audio"))
    silenced, MediaProbe.received = MediaProbe.received, []
    assert [m.audio.shape for m in silenced] == [(8000,)] * 4 and not any(m.audio.any() for m in silenced)
    for got, expected in zip(silenced, normal):
        np.testing.assert_array_equal(got.frames, expected.frames)

    [blind] = run(MediaProbe(), _config(media_root, tmp_path / "no-video", ablate="video"))
    blanked = MediaProbe.received
    assert [m.frames.shape for m in blanked] == [(2, 16, 16, 3)] * 4 and not any(m.frames.any() for m in blanked)
    for got, expected in zip(blanked, normal):
        np.testing.assert_array_equal(got.audio, expected.audio)
    # black frames: the probe's argmax picks channel 0 ("red") for all, right only on the red samples (t000, t003)
    assert blind.metrics == {"accuracy": 50.0}


def test_ablate_enters_the_resume_identity_only_when_set(media_root: Path, tmp_path: Path) -> None:
    assert _config(media_root, tmp_path).identity() == {"model": "probe", "seed": 0, "model_options": {}}
    assert _config(media_root, tmp_path, ablate="audio").identity()["ablate"] == "audio"
    out = tmp_path / "out"
    run(MediaProbe(), _config(media_root, out))
    # run.json of a run before --ablate existed has no "ablate" key: a plain re-run still resumes (nothing predicted)
    assert "ablate" not in json.loads((out / "run.json").read_text())
    MediaProbe.received = []
    run(MediaProbe(), _config(media_root, out))
    assert MediaProbe.received == []
    with pytest.raises(AVBenchError, match="pass another --output-dir"):
        run(MediaProbe(), _config(media_root, out, ablate="audio"))
    with pytest.raises(AVBenchError, match="reads no media"):
        run(registry.get_model("random"), _config(media_root, tmp_path / "random", ablate="video"))


def test_cli_refuses_ablation_for_a_baseline_before_touching_the_data() -> None:
    result = CliRunner().invoke(app, ["run", "--model", "prior", "--tasks", "fake", "--ablate", "audio",
                                      "--data-root", "/no/such/dir"])
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "--ablate audio: model 'prior' reads no media" in message and "/no/such/dir" not in message
    bad = CliRunner().invoke(app, ["run", "--model", "probe", "--tasks", "fake", "--ablate", "both"])
    assert bad.exit_code == 2 and "--ablate takes audio or video, got 'both'" in " ".join(bad.output.split())


def test_cli_shows_the_ablation_in_the_title_and_the_results(media_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--model", "probe", "--tasks", "fake", "--ablate", "video",
                                      "--data-root", str(media_root), "--output-dir", str(out), "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "model probe (no video)" in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["ablate"] == "video"
    assert results["model"] == {"name": "probe (no video)", "ablate": "video"}
    assert results["tasks"]["fake"]["metrics"]["accuracy"] == 50.0
    assert json.loads((out / "run.json").read_text())["ablate"] == "video"
