"""AVSS task: loading v1s / v1m / v2 videos padded to 10 frames, parsing maps, oracle and padding scores."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avsbench_tree import PALETTE, write_metadata, write_video
from avbench.errors import DataError, ParseError, UnknownNameError
from avbench.types import ModelOutput, Sample
from avbench.vocab import AVSS_CLASSES
from avbench.tasks.avss import AVSSTask, read_class_map

SIZE = 112  # masks are written at 112 x 112; the task scores at 224 (nearest: each pixel becomes 2 x 2)


def _rect(cls: int, rows: slice, cols: slice) -> np.ndarray:
    labels = np.zeros((SIZE, SIZE), dtype=np.int64)
    labels[rows, cols] = cls
    return labels


def _upscale(labels: np.ndarray) -> np.ndarray:
    return np.kron(labels, np.ones((2, 2), dtype=np.int64))


@pytest.fixture()
def data_root(tmp_path: Path) -> Path:
    v2_masks = {i: _rect(28, slice(10, 60), slice(20, 80)) for i in range(10)}
    v2_masks[9][80:100, 80:100] = 70  # `woman`, the class the official noBg drops
    write_video(tmp_path, "v2", "v2a_1000_11000", v2_masks)
    write_video(tmp_path, "v1m", "v1m_1", {i: _rect(3, slice(0, 30), slice(0, 30)) + _rect(7, slice(50, 90), slice(50, 90)) for i in range(5)})
    write_video(tmp_path, "v1s", "v1s_0_5000", {i: _rect(14, slice(20, 40), slice(20, 40)) for i in range(5)})
    # Train v1s videos annotate frame 0 only, as the official release.
    write_video(tmp_path, "v1s", "tra_0_5000", {0: _rect(28, slice(0, 56), slice(0, 56))})
    write_video(tmp_path, "v1s", "trb_0_5000", {0: _rect(5, slice(0, 28), slice(0, 28))})
    write_metadata(tmp_path, [
        ("v2a_1000_11000", "test", "v2"), ("tra_0_5000", "train", "v1s"), ("v1m_1", "test", "v1m"),
        ("v1s_0_5000", "test", "v1s"), ("trb_0_5000", "train", "v1s"),
    ])
    return tmp_path


@pytest.fixture()
def all_classes_root(tmp_path: Path) -> Path:
    # One v2 video; frame f holds classes 7f+1 .. 7f+7 in 13-row stripes below a background band:
    # 10 frames x 7 = the 70 foreground classes, plus background in every frame.
    masks = {}
    for f in range(10):
        labels = np.zeros((SIZE, SIZE), dtype=np.int64)
        for k in range(7):
            labels[16 + 13 * k: 29 + 13 * k] = 7 * f + k + 1
        masks[f] = labels
    write_video(tmp_path, "v2", "all_0_10000", masks)
    write_metadata(tmp_path, [("all_0_10000", "test", "v2")])
    return tmp_path


def _run(task: AVSSTask, samples: list[Sample], outputs: list[ModelOutput]) -> dict[str, float]:
    stats = [task.score(s, task.parse(o, s)).stats for s, o in zip(samples, outputs)]
    return task.aggregate(samples, stats)


def test_load_pads_v1_videos_to_ten_frames(data_root: Path) -> None:
    samples = AVSSTask().load(data_root, "test")
    assert [s.id for s in samples] == ["v2a_1000_11000", "v1m_1", "v1s_0_5000"]
    v2, v1m, v1s = samples
    assert len(v2.media["frames"]) == 10 and v2.meta["n_real_frames"] == 10 and v2.meta["n_padded_frames"] == 0
    assert len(v1m.media["frames"]) == 5 and v1m.meta["n_padded_frames"] == 5 and v1m.meta["subset"] == "v1m"
    assert v1s.media["frames"][4].endswith("avsbench/v1s/v1s_0_5000/frames/4.jpg")
    assert v1s.media["audio"].endswith("avsbench/v1s/v1s_0_5000/audio.wav")
    assert [Path(m).name for m in v1s.target["masks"]] == [f"{i}.png" for i in range(5)]


def test_train_v1s_has_only_frame_zero_annotated(data_root: Path) -> None:
    samples = AVSSTask().load(data_root, "train")
    assert [s.id for s in samples] == ["tra_0_5000", "trb_0_5000"]
    assert samples[0].target["masks"][1:] == [None] * 4
    assert samples[0].meta["annotated_frames"] == [0]


def test_missing_test_mask_is_a_data_error(data_root: Path) -> None:
    (data_root / "avsbench/v1m/v1m_1/labels_rgb/3.png").unlink()
    with pytest.raises(DataError, match="3.png"):
        AVSSTask().load(data_root, "test")
    (data_root / "avsbench/v1s/tra_0_5000/labels_rgb/0.png").unlink()
    with pytest.raises(DataError, match="without any mask"):
        AVSSTask().load(data_root, "train")


def test_prompt_has_video_and_audio_blocks() -> None:
    prompt = AVSSTask().build_prompt(Sample(id="x", task="avss", split="test", media={}))
    assert prompt.startswith("This is a video:\n<video_start><video><video_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n")


def test_oracle_on_a_subset_of_classes_scores_below_100(data_root: Path) -> None:
    task = AVSSTask()
    samples = task.load(data_root, "test")
    scores = _run(task, samples, [task.reference_output(s) for s in samples])
    # Seen classes: background, 28, 70, 3, 7, 14 -> six classes at 1, 65 at 0: 100 * 6 / 71.
    assert scores == {"miou": pytest.approx(600 / 71), "f_score": pytest.approx(600 / 71)}


def test_oracle_on_all_71_classes_scores_100(all_classes_root: Path) -> None:
    for classes in ("all", "no_bg"):
        task = AVSSTask(classes=classes)
        samples = task.load(all_classes_root, "test")
        assert _run(task, samples, [task.reference_output(s) for s in samples]) == {
            "miou": pytest.approx(100.0), "f_score": pytest.approx(100.0)
        }


def test_padded_frames_are_scored_as_background(data_root: Path) -> None:
    task = AVSSTask()
    v1s = task.load(data_root, "test")[2]  # class 14 in every real frame
    truth = task.reference_output(v1s).masks
    # Five maps: the padded frames count as predicted background, so background is perfect on 10 frames.
    assert _run(task, [v1s], [ModelOutput("", truth)])["miou"] == pytest.approx(200 / 71)
    # Ten maps, the padded ones all class 3: background is right on 5 real frames and has IoU 0 (and F 0,
    # precision 0/0) on the 5 padded ones -> 5 / 10; class 14 -> 1; class 3 is counted 5 times at 0.
    padded = [np.full((224, 224), 3, dtype=np.int64)] * 5
    scores = _run(task, [v1s], [ModelOutput("", truth + padded)])
    assert scores == {"miou": pytest.approx(100 * 1.5 / 71), "f_score": pytest.approx(100 * 1.5 / 71)}
    no_bg = AVSSTask(classes="no_bg")
    assert _run(no_bg, [v1s], [ModelOutput("", truth + padded)])["miou"] == pytest.approx(100 * 1.5 / 70)


def test_parse_failure_scores_as_an_empty_prediction(data_root: Path) -> None:
    task = AVSSTask()
    v1s = task.load(data_root, "test")[2]
    empty = [np.zeros((224, 224), dtype=np.int64)] * 5
    failed = task.score(v1s, None).stats
    assert failed == task.score(v1s, task.parse(ModelOutput("", empty), v1s)).stats
    # Class 14 is in the ground truth of all 5 real frames: counted 5 times, IoU 0.
    assert failed["count"][14] == 5 and failed["iou_sum"][14] == 0.0
    # Background: real frames 224^2 - 40^2 true background of 224^2 predicted (IoU 48576 / 50176),
    # padded frames IoU 1 -> count 10.
    assert failed["count"][0] == 10
    assert failed["iou_sum"][0] == pytest.approx(5 * 48576 / 50176 + 5)


def test_parse_errors(data_root: Path) -> None:
    task = AVSSTask()
    v1s = task.load(data_root, "test")[2]
    good = np.zeros((224, 224), dtype=np.int64)
    bad_outputs = [
        ModelOutput("no masks"),
        ModelOutput("", [good] * 3),  # neither 5 (real) nor 10
        ModelOutput("", [good.astype(np.float32)] * 5),
        ModelOutput("", [good + 71] * 5),
        ModelOutput("", [good - 1] * 5),
        ModelOutput("", [np.zeros((2, 4, 4), dtype=np.int64)] * 5),
    ]
    for output in bad_outputs:
        with pytest.raises(ParseError):
            task.parse(output, v1s)
    with pytest.raises(ParseError):
        task.parsed_from_json({"masks": [{"size": [2, 2], "counts": "04"}] * 5}, v1s)
    parsed = task.parse(ModelOutput("", [good] * 10), v1s)
    assert task.parsed_from_json(parsed, v1s) == parsed


def test_predictions_of_another_size_are_resized_with_nearest(data_root: Path) -> None:
    task = AVSSTask()
    samples = task.load(data_root, "test")
    # The 112 x 112 source maps upscale exactly like the ground truth does.
    small = [ModelOutput("", [read_class_map(p, size=SIZE) for p in s.target["masks"]]) for s in samples]
    assert _run(task, samples, small)["miou"] == pytest.approx(600 / 71)
    assert np.array_equal(_upscale(read_class_map(samples[2].target["masks"][0], size=SIZE)), task.reference_output(samples[2]).masks[0])


def test_random_output_is_well_formed_and_seeded(data_root: Path) -> None:
    task = AVSSTask()
    samples = task.load(data_root, "test")
    for sample in samples:
        output = task.random_output(sample, np.random.default_rng(0))
        assert len(output.masks) == sample.meta["n_real_frames"]
        task.parse(output, sample)
        classes = np.unique(np.concatenate([m.ravel() for m in output.masks]))
        assert classes.min() >= 0 and classes.max() <= 70
    a = task.random_output(samples[0], np.random.default_rng(5)).masks
    b = task.random_output(samples[0], np.random.default_rng(5)).masks
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_prior_paints_the_frequent_class_where_objects_usually_are(data_root: Path) -> None:
    task = AVSSTask()
    prior = task.fit_prior(task.load(data_root, "train"))
    # At 224: class 28 covers rows/cols 0..111 (12544 px), class 5 rows/cols 0..55 (3136 px).
    # Mean foreground area (12544 + 3136) / 2 = 7840 px, class 28 the most frequent.
    # Pixels ranked by foreground frequency: the 56 x 56 block (twice), then the rest of the quadrant
    # in raster order: rows 0..55 cols 56..111 (3136), then 1568 more = rows 56..69 -> rows 0..69, cols 0..111.
    expected = np.zeros((224, 224), dtype=np.int64)
    expected[0:70, 0:112] = 28
    sample = task.load(data_root, "test")[1]
    output = task.prior_output(prior, sample)
    assert len(output.masks) == 5
    assert all(np.array_equal(m, expected) for m in output.masks)


def test_target_hash_depends_on_mask_bytes_not_location(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    task = AVSSTask()
    copy = tmp_path_factory.mktemp("copy")
    shutil.copytree(data_root / "avsbench", copy / "avsbench")
    here, there = task.load(data_root, "test"), task.load(copy, "test")
    assert [task.target_hash(s) for s in here] == [task.target_hash(s) for s in there]
    Image.fromarray(PALETTE[_rect(14, slice(0, 5), slice(0, 5))], mode="RGB").save(copy / "avsbench/v1s/v1s_0_5000/labels_rgb/0.png")
    assert task.target_hash(task.load(copy, "test")[2]) != task.target_hash(here[2])


def test_variants_and_options() -> None:
    assert AVSSTask().variants() == {"classes": "all"}
    assert AVSSTask(classes="no_bg").variants() == {"classes": "no_bg"}
    with pytest.raises(UnknownNameError, match="valid AVSS class selections: all, no_bg"):
        AVSSTask(classes="foreground")
    with pytest.raises(TypeError):
        AVSSTask(grouping="per_frame")


def test_real_avss_example_decodes_to_clarinet(avdata: Path) -> None:
    path = avdata / "examples/avss/0.png"
    assert AVSS_CLASSES[14] == "clarinet" and PALETTE[14].tolist() == [64, 128, 128]
    with Image.open(path) as image:
        rgb = np.array(image.convert("RGB"))
    full_fraction = np.all(rgb == [64, 128, 128], axis=-1).mean()
    labels = read_class_map(path)
    assert labels.shape == (224, 224)
    assert set(np.unique(labels).tolist()) == {0, 14}
    # Nearest resampling keeps the clarinet's share of the frame to within a few percent.
    assert abs((labels == 14).mean() - full_fraction) < 0.03
