"""S4 and MS3 task plugins on a tiny AVSBench-semantic tree (docs/data-layout.md), plus the real example masks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avsbench_tree import write_metadata
from avsbench_tree import write_video as write_avsbench_video
from avbench.errors import DataError, ParseError, UnknownNameError
from avbench.masks import avsbench_palette
from avbench.scoring import parse_output
from avbench.tasks.avsbench import MS3Task, S4Task, read_gt_stack
from avbench.types import ModelOutput

H, W = 40, 60  # masks are not 224 x 224: scoring must resize them
GUITAR = tuple(int(v) for v in avsbench_palette()[28])  # a non-black palette colour


def left_half() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[:, : W // 2] = True
    return mask


def top_rows(n: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[:n] = True
    return mask


def save_rgb_mask(path: Path, mask: np.ndarray) -> None:
    rgb = np.zeros((*mask.shape, 3), np.uint8)
    rgb[mask] = GUITAR
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path)


def save_palette_mask(path: Path, mask: np.ndarray) -> None:
    image = Image.fromarray(mask.astype(np.uint8) * 5, "P")  # palette index 5 = a colour
    image.putpalette(avsbench_palette(256).ravel().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_video(root: Path, subset: str, uid: str, masks: dict[int, np.ndarray], n_frames: int | None = None, palette: bool = False) -> None:
    save = save_palette_mask if palette else save_rgb_mask
    write_avsbench_video(root, subset, uid, masks, n_frames, frame_size=(W, H), save_mask=save)


@pytest.fixture()
def avs_root(tmp_path: Path) -> Path:
    rows = [
        ("vidA", "s4_a", "0", "1", "guitar", "test", "v1s"),
        ("vidB", "s4_b", "0", "2", "dog", "test", "v1s"),
        ("vidC", "s4_c", "0", "3", "piano", "train", "v1s"),
        ("vidD", "s4_d", "0", "4", "man", "train", "v1s"),
        ("vidG", "s4_g", "0", "7", "car", "train", "v1s"),
        ("vidE", "ms3_e", "0", "5", "guitar_man", "test", "v1m"),
        ("vidF", "v2_f", "0", "6", "cat", "test", "v2"),
    ]
    write_metadata(tmp_path, rows)
    write_video(tmp_path, "v1s", "s4_a", {i: left_half() for i in range(5)})
    write_video(tmp_path, "v1s", "s4_b", {i: top_rows(10 + i) for i in range(5)}, palette=True)
    # Train videos of v1s carry only frame 0's mask, as in the official release.
    write_video(tmp_path, "v1s", "s4_c", {0: np.ones((H, W), bool)})
    write_video(tmp_path, "v1s", "s4_d", {0: left_half()})
    write_video(tmp_path, "v1s", "s4_g", {0: np.zeros((H, W), bool)})
    write_video(tmp_path, "v1m", "ms3_e", {i: top_rows(20) | left_half() for i in range(5)})
    write_video(tmp_path, "v2", "v2_f", {i: left_half() for i in range(10)}, n_frames=10)
    return tmp_path


def evaluate(task, samples, outputs):
    parsed = [parse_output(task, s, o) for s, o in zip(samples, outputs)]
    assert all(p.ok for p in parsed), [p.parse_error for p in parsed]
    scores = [task.score(s, p.parsed) for s, p in zip(samples, parsed)]
    return task.aggregate(samples, [s.stats for s in scores]), scores


def test_load_reads_the_v1s_rows_of_the_split(avs_root):
    samples = S4Task().load(avs_root, "test")
    assert [s.id for s in samples] == ["s4_a", "s4_b"]
    first = samples[0]
    assert first.media["frames"] == [str(avs_root / "avsbench/v1s/s4_a/frames" / f"{i}.jpg") for i in range(5)]
    assert first.media["audio"] == str(avs_root / "avsbench/v1s/s4_a/audio.wav")
    assert first.target["mask_frames"] == [0, 1, 2, 3, 4]
    assert first.target["masks"][2] == str(avs_root / "avsbench/v1s/s4_a/labels_rgb/2.png")
    assert first.target["category"] == "guitar"
    assert [s.id for s in MS3Task().load(avs_root, "test")] == ["ms3_e"]


def test_train_videos_keep_only_the_masks_that_exist(avs_root):
    train = S4Task().load(avs_root, "train")
    assert [s.target["mask_frames"] for s in train] == [[0], [0], [0]]
    assert all(len(s.media["frames"]) == 5 for s in train)


def test_a_missing_test_mask_is_a_data_error(avs_root):
    (avs_root / "avsbench/v1s/s4_b/labels_rgb/3.png").unlink()
    with pytest.raises(DataError, match="3.png"):
        S4Task().load(avs_root, "test")


def test_unknown_options_and_splits_are_refused(avs_root):
    with pytest.raises(UnknownNameError):
        S4Task(f_grouping="per_call")
    with pytest.raises(UnknownNameError):
        S4Task().load(avs_root, "test_s")


@pytest.mark.parametrize("task", [S4Task(), S4Task(f_grouping="per_frame"), MS3Task()])
def test_oracle_reaches_the_maximum(avs_root, task):
    samples = task.load(avs_root, "test")
    metrics, _ = evaluate(task, samples, [task.reference_output(s) for s in samples])
    assert metrics["miou"] == pytest.approx(100.0, abs=1e-4)  # 1 / (1 + 1e-7 / |union|) per frame
    assert metrics["f_score"] == pytest.approx(100.0, abs=1e-9)
    assert "<mask_start>" in task.reference_output(samples[0]).text


def test_failures_score_as_the_empty_prediction(avs_root):
    task = S4Task()
    sample = task.load(avs_root, "test")[0]  # every frame: the left half (exactly 112 of 224 columns at 224)
    failed = task.score(sample, None)
    # Empty prediction: IoU 0 on every frame; F only at threshold 0: P = 1/2, R = 1 -> 0.65 / 1.15.
    assert failed.summary["miou"] == 0.0
    assert failed.summary["f_score"] == pytest.approx(100 * 0.65 / 1.15, rel=1e-6)
    zeros = parse_output(task, sample, ModelOutput("", [np.zeros((H, W), np.float32)] * 5))
    assert task.score(sample, zeros.parsed).summary == failed.summary


def test_parse_requires_one_valid_map_per_frame(avs_root):
    task = S4Task()
    sample = task.load(avs_root, "test")[0]
    with pytest.raises(ParseError, match="expected 5"):
        task.parse(ModelOutput("x", [np.zeros((H, W), bool)] * 4), sample)
    with pytest.raises(ParseError, match="no masks"):
        task.parse(ModelOutput("x", None), sample)
    with pytest.raises(ParseError, match="outside"):
        task.parse(ModelOutput("x", [np.full((H, W), 1.5)] * 5), sample)
    with pytest.raises(ParseError):
        task.parsed_from_json({"masks": [{"size": [2, 2], "labels_png": "x"}] * 5}, sample)
    # A wrong count from the model is a recorded parse failure, not a crash.
    assert not parse_output(task, sample, ModelOutput("x", [np.zeros((H, W), bool)] * 6)).ok


def test_probability_maps_are_resized_and_scored(avs_root):
    task = S4Task()
    sample = task.load(avs_root, "test")[0]
    # 0.8 on the left half, 0.2 on the right, at 112 x 112: bilinear to 224 keeps the halves
    # (columns 0-111 interpolate between 0.8s, except the two columns around the edge, 0.65 and 0.35).
    prob = np.full((112, 112), 0.2, np.float32)
    prob[:, :56] = 0.8
    parsed = task.parse(ModelOutput("", [prob] * 5), sample)
    assert task.parsed_from_json(parsed, sample) == parsed
    score = task.score(sample, parsed)
    # Foreground (> 0.5) = exactly the left half: IoU = 1 / (1 + 1e-7 / 25088) per frame.
    assert score.summary["miou"] == pytest.approx(100.0, abs=1e-6)


def test_per_video_and_per_frame_f_score_differ_on_an_empty_frame(avs_root):
    # Make frame 4 of s4_a empty: per video it is skipped, per frame it scores 0 and counts.
    save_rgb_mask(avs_root / "avsbench/v1s/s4_a/labels_rgb/4.png", np.zeros((H, W), bool))
    results = {}
    for grouping in ("per_video", "per_frame"):
        task = S4Task(f_grouping=grouping)
        samples = task.load(avs_root, "test")
        results[grouping], _ = evaluate(task, samples, [task.reference_output(s) for s in samples])
    assert results["per_video"]["f_score"] == pytest.approx(100.0)
    # 10 frames, 9 perfect: (9 * 1 + 0) / 10.
    assert results["per_frame"]["f_score"] == pytest.approx(90.0)
    assert S4Task(f_grouping="per_frame").variants() == {"f_score": "per_frame"}


def test_target_hash_depends_on_mask_bytes_not_on_the_root(avs_root, tmp_path_factory):
    task = S4Task()
    copy = tmp_path_factory.mktemp("copy")
    shutil.copytree(avs_root / "avsbench", copy / "avsbench")
    original, copied = task.load(avs_root, "test")[0], task.load(copy, "test")[0]
    assert task.target_hash(original) == task.target_hash(copied)
    save_rgb_mask(copy / "avsbench/v1s/s4_a/labels_rgb/0.png", top_rows(3))
    assert task.target_hash(original) != task.target_hash(copied)


def test_random_output_is_well_formed_and_seeded(avs_root):
    task = S4Task()
    sample = task.load(avs_root, "test")[0]
    first = task.random_output(sample, np.random.default_rng(7))
    again = task.random_output(sample, np.random.default_rng(7))
    assert task.parse(first, sample) == task.parse(again, sample)
    assert len(first.masks) == 5 and first.masks[0].dtype == bool
    assert 0 < first.masks[0].sum() < first.masks[0].size


def test_prior_is_the_calibrated_mean_train_mask(avs_root):
    task = S4Task()
    prior = task.fit_prior(task.load(avs_root, "train"))
    # Train frame-0 masks: all foreground, the left half, empty -> mean 2/3 on the left, 1/3 on the right.
    # Mean foreground area 1/2, so the calibration threshold t is (about) the median of the mean map,
    # 1/2, and the scale 0.5 / t is (about) 1: the ranking (left twice the right) is kept exactly
    # and p > 0.5 covers exactly the left half.
    assert prior.shape == (224, 224)
    assert prior[:, :112] == pytest.approx(np.full((224, 112), 2 / 3), rel=1e-2)
    assert prior[:, :112] == pytest.approx(2 * prior[:, 112:], rel=1e-6)
    assert (prior[:, :112] > 0.5).all() and (prior[:, 112:] < 0.5).all()
    sample = task.load(avs_root, "test")[0]
    output = task.prior_output(prior, sample)
    assert len(output.masks) == 5
    # Foreground (> 0.5) = the left half, the ground truth of s4_a.
    assert task.score(sample, task.parse(output, sample)).summary["miou"] == pytest.approx(100.0, abs=1e-6)


def test_prompt_puts_media_blocks_first(avs_root):
    sample = S4Task().load(avs_root, "test")[0]
    prompt = S4Task().build_prompt(sample)
    assert prompt.startswith("This is a video:\n<video_start><video><video_end>\nThis is an audio:\n<audio_start><audio><audio_end>\n")
    assert "5 seconds" in prompt


def test_real_example_masks_read_as_binary(avdata):
    examples = avdata / "examples"
    s4 = np.array(Image.open(examples / "s4/0.png"))
    assert set(np.unique(s4).tolist()) == {0, 45}
    for path in (examples / "s4/0.png", examples / "ms3/1.png", examples / "ref-avs/00007.png"):
        raw = np.array(Image.open(path))
        stack = read_gt_stack([path])
        assert stack.shape == (1, 224, 224) and stack.dtype == bool
        # Nearest-neighbour resampling keeps the foreground share (up to sampling of the edges).
        assert stack.mean() == pytest.approx((raw > 0).mean(), abs=0.02)
        assert 0 < stack.sum() < stack.size
