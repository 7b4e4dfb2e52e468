"""Ref-AVS task plugin on a tiny tree in the release layout, plus the real metadata.csv."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avbench.errors import DataError, ParseError, UnknownNameError
from avbench.scoring import parse_output
from avbench.tasks.ref_avs import RefAVSTask
from avbench.types import ModelOutput

H, W = 30, 40
FULL = np.ones((H, W), bool)


def left_half() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[:, : W // 2] = True
    return mask


ROWS = [
    # vid, uid, split, fid, exp
    ("clipA_0_10", "clipA_0_10_guitar_1", "test_s", "0", "The guitar on the left."),
    ("clipA_0_10", "clipA_0_10_guitar_2", "test_s", "0", "The loudest instrument"),
    ("clipA_0_10", "clipA_0_10_man_1", "test_s", "1", "The man, singing"),
    ("clipB_5_15", "clipB_5_15_dog_1", "test_s", "0", "The barking dog."),
    ("clipB_5_15", "clipB_5_15_dog_2", "test_s", "0", "The animal making sound."),
    ("clipC_1_11", "clipC_1_11_cat_1", "test_u", "0", "The cat."),
    ("clipC_1_11", "clipC_1_11_cat_1", "test_u", "0", "The cat."),  # repeated row, as in the release
    ("clipA_0_10", "null_c-clipA_0_10_null_1", "test_n", "0", "The piano."),
    ("clipB_5_15", "null_c-clipB_5_15_null_1", "test_n", "0", "The drum."),
    ("clipB_5_15", "clipB_5_15_dog_3", "train", "0", "The dog."),
    ("clipC_1_11", "clipC_1_11_cat_2", "train", "0", "The small cat."),
    ("clipC_1_11", "clipC_1_11_cat_3", "val", "0", "The cat again."),
    ("clipC_1_11", "clipC_1_11_cat_4", "TODO", "0", "Unassigned."),
]
#: Ground truth of each (vid, fid): the same mask on all 10 frames.
MASKS = {("clipA_0_10", 0): left_half(), ("clipA_0_10", 1): ~left_half(), ("clipB_5_15", 0): FULL, ("clipC_1_11", 0): left_half()}


def write_tree(root: Path, rows=ROWS) -> Path:
    base = root / "ref_avs"
    base.mkdir(parents=True, exist_ok=True)
    with (base / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["vid", "uid", "split", "fid", "exp"])
        writer.writerows(rows)
    for vid in {r[0] for r in rows}:
        (base / "media" / vid / "frames").mkdir(parents=True, exist_ok=True)
        for k in range(10):
            Image.new("RGB", (W, H), (k * 20, 50, 50)).save(base / "media" / vid / "frames" / f"{k}.jpg")
        (base / "media" / vid / "audio.wav").write_bytes(b"")
    for (vid, fid), mask in MASKS.items():
        folder = base / "gt_mask" / vid / f"fid_{fid}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(10):
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(folder / f"{k:05d}.png")
    return root


@pytest.fixture()
def ref_root(tmp_path: Path) -> Path:
    return write_tree(tmp_path)


def evaluate(task, samples, outputs):
    parsed = [parse_output(task, s, o) for s, o in zip(samples, outputs)]
    assert all(p.ok for p in parsed), [p.parse_error for p in parsed]
    stats = [task.score(s, p.parsed).stats for s, p in zip(samples, parsed)]
    return task.aggregate(samples, stats)


def test_load_splits_ids_and_paths(ref_root):
    task = RefAVSTask()
    test = task.load(ref_root, "test")
    assert [s.meta["subset"] for s in test] == ["test_s"] * 5 + ["test_u"] * 2 + ["test_n"] * 2
    # A repeated uid gets "#2"; ids are unique and the same whether loaded via "test" or "test_u".
    assert [s.id for s in test][5:7] == ["clipC_1_11_cat_1", "clipC_1_11_cat_1#2"]
    assert [s.id for s in task.load(ref_root, "test_u")] == [s.id for s in test][5:7]
    first = test[0]
    assert first.inputs == {"expression": "The guitar on the left."}
    assert first.media["frames"][3] == str(ref_root / "ref_avs/media/clipA_0_10/frames/3.jpg")
    assert test[2].target["masks"][7] == str(ref_root / "ref_avs/gt_mask/clipA_0_10/fid_1/00007.png")
    assert test[7].target == {"null": True, "masks": [], "referent": "null"}
    # The TODO row belongs to no split.
    assert sum(len(task.load(ref_root, s)) for s in ("train", "val", "test")) == len(ROWS) - 1


def test_bad_rows_are_data_errors_with_line_numbers(tmp_path):
    write_tree(tmp_path, ROWS[:2] + [("clipA_0_10", "clipA_0_10_x_1", "test_q", "0", "x")])
    with pytest.raises(DataError, match=r"metadata.csv:4:.*test_q"):
        RefAVSTask().load(tmp_path, "test")
    with pytest.raises(UnknownNameError):
        RefAVSTask(variant="paper")


@pytest.mark.parametrize("variant", ["official", "crab"])
def test_oracle_reaches_the_maximum(ref_root, variant):
    task = RefAVSTask(variant=variant)
    samples = task.load(ref_root, "test")
    metrics = evaluate(task, samples, [task.reference_output(s) for s in samples])
    assert metrics["j_seen"] == pytest.approx(100.0, abs=1e-4) and metrics["j_unseen"] == pytest.approx(100.0, abs=1e-4)
    assert metrics["f_seen"] == pytest.approx(1.0) and metrics["f_unseen"] == pytest.approx(1.0)
    assert metrics["s_null"] == 0.0
    assert list(metrics) == list(task.table_metrics)


def test_official_calls_batch_four_expressions(ref_root):
    official, crab = RefAVSTask(), RefAVSTask(variant="crab")
    samples = official.load(ref_root, "test_s")
    # The first 4 expressions answered empty, the 5th perfectly. Official calls: [1-4] J = 0, [5] J = 100
    # -> mean over calls 50. Crab (per frame): 10 perfect frames of 50 -> 20.
    outputs = [ModelOutput("", [np.zeros((H, W), bool)] * 10) for _ in range(4)] + [official.reference_output(samples[4])]
    assert evaluate(official, samples, outputs)["j_seen"] == pytest.approx(50.0, abs=1e-4)
    assert evaluate(crab, samples, outputs)["j_seen"] == pytest.approx(20.0, abs=1e-4)


def test_official_ground_truth_is_the_dilated_bilinear_mask(ref_root):
    # The left half of a 40-pixel-wide file (columns 0-19) at 256: output column d samples
    # f = (d + 0.5) * 40 / 256 - 0.5; d = 130 gives f = 19.890625, weight (1 - 0.890625) * 2048 = 224 on
    # column 19, so > 0; d = 131 gives f = 20.046875, both taps background. 131 columns, every row.
    task = RefAVSTask()
    gt = task._gt(task.load(ref_root, "test_u")[0])
    assert gt.shape == (10, 256, 256)
    assert gt[:, :, :131].all() and not gt[:, :, 131:].any()
    # Crab's loader: nearest neighbour at 224, the exact half.
    crab = RefAVSTask(variant="crab")
    gt = crab._gt(crab.load(ref_root, "test_u")[0])
    assert gt.shape == (10, 224, 224) and gt[:, :, :112].all() and not gt[:, :, 112:].any()


@pytest.mark.parametrize("variant", ["official", "crab"])
def test_j_threshold_is_04_officially_and_05_for_crab(ref_root, variant):
    task = RefAVSTask(variant=variant)
    samples = task.load(ref_root, "test_u")
    # 0.45 on the ground truth as scored, 0 elsewhere, at the evaluation size (no resampling):
    # foreground at 0.4 (official), background at 0.5 (crab).
    prob = np.where(task._gt(samples[0])[0], np.float32(0.45), np.float32(0.0))
    outputs = [ModelOutput("", [prob] * 10) for _ in samples]
    expected = 100.0 if variant == "official" else 0.0
    assert evaluate(task, samples, outputs)["j_unseen"] == pytest.approx(expected, abs=1e-4)


def test_hand_computed_official_pipeline_at_size_4(tmp_path):
    # eval_size=4 keeps the arithmetic by hand. Ground truth: a 2 x 2 file with its top-left pixel set.
    # cv2 INTER_LINEAR to 4 x 4 (scale 0.5): columns take taps (0 | 1, 0), (0, 1 | 0.75, 0.25),
    # (0, 1 | 0.25, 0.75), (1 | 1, 0); rows the same weights, indices clamped. Output values
    # [[255, 191, 64, 0], [191, 143, 48, 0], [64, 48, 16, 0], [0, 0, 0, 0]] -> foreground = top-left 3 x 3.
    write_tree(tmp_path, [ROWS[5]])
    corner = np.zeros((2, 2), np.uint8)
    corner[0, 0] = 255
    folder = tmp_path / "ref_avs/gt_mask/clipC_1_11/fid_0"
    for k in range(10):
        Image.fromarray(corner, "L").save(folder / f"{k:05d}.png")
    task = RefAVSTask(eval_size=4)
    sample = task.load(tmp_path, "test_u")[0]
    expected_gt = np.zeros((4, 4), bool)
    expected_gt[:3, :3] = True
    assert (task._gt(sample) == expected_gt).all()
    # Prediction: the same corner as a 2 x 2 boolean map, bilinear to 4 x 4 (torch, align_corners=False):
    # outer product of [1, 0.75, 0.25, 0] with itself. p > 0.4: 1, 0.75, 0.75, 0.5625 -> 4 pixels, all in
    # the ground truth: J = 4 / 9. F: at thresholds in (0, 0.0625] the 9 positive pixels are exactly the
    # ground truth (P = R = 1), so max F = 1.
    output = ModelOutput("", [corner > 0] * 10)
    metrics = evaluate(task, [sample], [output])
    assert metrics["j_unseen"] == pytest.approx(100 * 4 / (9 + 1e-7), rel=1e-9)
    assert metrics["f_unseen"] == pytest.approx(1.0, rel=1e-6)


def test_null_s_pooled_per_call_against_per_frame(ref_root):
    samples = RefAVSTask().load(ref_root, "test_n")
    # Expression 1 predicts every pixel on frame 0 only; expression 2 nothing.
    first = [FULL] + [np.zeros((H, W), bool)] * 9
    outputs = [ModelOutput("", first), ModelOutput("", [np.zeros((H, W), bool)] * 10)]
    # Official: one call of 20 frames: sqrt(1 / 20) = 0.223607. Crab: per frame (1 + 19 * 0) / 20 = 0.05.
    assert evaluate(RefAVSTask(), samples, outputs)["s_null"] == pytest.approx(np.sqrt(1 / 20))
    assert evaluate(RefAVSTask(variant="crab"), samples, outputs)["s_null"] == pytest.approx(0.05)


def test_parse_errors_and_failures(ref_root):
    task = RefAVSTask()
    samples = task.load(ref_root, "test")
    with pytest.raises(ParseError, match="expected 10"):
        task.parse(ModelOutput("x", [np.zeros((H, W), bool)] * 5), samples[0])
    # A failure is the empty prediction: J = 0 on seen/unseen (non-empty ground truth), S = 0 on null.
    # F of an empty prediction comes from threshold 0 alone: P = foreground share q, R = 1,
    # F = 1.3 q / (0.3 q + 1). clipA fid 0 is the left half: 131 of 256 columns as the official loader
    # resizes it (see test_official_ground_truth_is_the_dilated_bilinear_mask); clipB fid 0 is full (F = 1).
    stats = [task.score(s, None).stats for s in samples]
    metrics = task.aggregate(samples, stats)
    assert metrics["j_seen"] == 0.0 and metrics["j_unseen"] == 0.0 and metrics["s_null"] == 0.0
    # Call 1 = expressions 1-4, 40 frames: 30 half frames (the man, fid 1, is the right half: columns
    # 125-255, also 131) and 10 full ones; call 2 = expression 5 (full) = 1.
    q = 131 / 256
    call1 = (30 * 1.3 * q / (0.3 * q + 1) + 10 * 1.0) / 40
    assert metrics["f_seen"] == pytest.approx((call1 + 1.0) / 2)


def test_target_hash(ref_root, tmp_path_factory):
    task = RefAVSTask()
    copy = tmp_path_factory.mktemp("copy")
    shutil.copytree(ref_root / "ref_avs", copy / "ref_avs")
    a, b = task.load(ref_root, "test"), task.load(copy, "test")
    assert [task.target_hash(s) for s in a] == [task.target_hash(s) for s in b]
    assert task.target_hash(a[0]) != task.target_hash(a[3])


def test_baselines(ref_root):
    task = RefAVSTask()
    sample = task.load(ref_root, "test_s")[0]
    random = task.random_output(sample, np.random.default_rng(3))
    assert len(task.parse(random, sample)["masks"]) == 10
    prior = task.fit_prior(task.load(ref_root, "train"))
    # Train: clipB fid 0 (full) and clipC fid 0 (left half, 131 of 256 columns as the official loader
    # resizes it) -> 1.0 on the left, 0.5 on the right, at the evaluation size 256.
    assert prior[:, :131] == pytest.approx(np.ones((256, 131)))
    assert prior[:, 131:] == pytest.approx(np.full((256, 125), 0.5))
    output = task.prior_output(prior, sample)
    assert len(output.masks) == 10 and output.masks[0].shape == (256, 256)
    crab_prior = RefAVSTask(variant="crab").fit_prior(task.load(ref_root, "train"))
    assert crab_prior[:, :112] == pytest.approx(np.ones((224, 112)))
    assert crab_prior[:, 112:] == pytest.approx(np.full((224, 112), 0.5))
    prompt = task.build_prompt(sample)
    assert prompt.startswith("This is a video:\n<video_start><video><video_end>\nThis is an audio:")
    assert prompt.endswith("The guitar on the left.")


def test_real_metadata_split_counts(avdata, tmp_path):
    (tmp_path / "ref_avs").mkdir()
    shutil.copy(avdata / "refavs/metadata.csv", tmp_path / "ref_avs/metadata.csv")
    task = RefAVSTask()
    test = task.load(tmp_path, "test")
    counts = {s: sum(x.meta["subset"] == s for x in test) for s in ("test_s", "test_u", "test_n")}
    assert counts == {"test_s": 2288, "test_u": 1656, "test_n": 1028}
    assert len({s.id for s in test}) == len(test)
    assert len(task.load(tmp_path, "train")) == 14113 and len(task.load(tmp_path, "val")) == 1349
