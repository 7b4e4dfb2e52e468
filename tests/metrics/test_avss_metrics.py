"""AVSS metrics against hand-computed cases and a plain loop over the official definition."""

from __future__ import annotations

import numpy as np
import pytest

from avbench.metrics.avss import IOU_EPS, NUM_CLASSES, AVSSStats, avss_scores, avss_stats, class_areas, per_class

B2 = 0.3


def _f(p: float, r: float) -> float:
    return (1 + B2) * p * r / (B2 * p + r)


def test_one_frame_by_hand() -> None:
    gt = np.array([[1, 1], [0, 0]])
    pred = np.array([[1, 0], [0, 0]])
    stats = avss_stats(pred[None], gt[None])
    # class 1: |P|=1, |G|=2, inter=1, union=2 -> IoU 1/2; P=1, R=1/2 -> F = 1.3*0.5/(0.3+0.5) = 0.8125.
    # class 0: |P|=3, |G|=2, inter=2, union=3 -> IoU 2/3; P=2/3, R=1 -> F = 1.3*(2/3)/(0.2+1) = 13/18.
    assert stats.iou_sum[1] == pytest.approx(0.5)
    assert stats.f_sum[1] == pytest.approx(0.8125)
    assert stats.iou_sum[0] == pytest.approx(2 / 3)
    assert stats.f_sum[0] == pytest.approx(13 / 18)
    assert stats.count[:2].tolist() == [1.0, 1.0] and stats.count[2:].sum() == 0
    scores = avss_scores(stats)
    # Mean over ALL 71 classes; the 69 unseen classes count 0.
    assert scores["miou"] == pytest.approx((0.5 + 2 / 3) / 71)
    assert scores["f_score"] == pytest.approx((0.8125 + 13 / 18) / 71)


def test_class_counts_in_frames_where_it_is_in_prediction_or_ground_truth() -> None:
    gt = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]]])
    pred = np.array([[[1, 0], [0, 0]], [[5, 0], [0, 0]]])
    stats = avss_stats(pred, gt)
    # Frame 2: class 5 only predicted -> counted, IoU 0, F 0 (recall is 0/0 = NaN -> 0).
    # Class 0 in frame 2: |P|=3, |G|=4, inter=3 -> IoU 3/4; P=1, R=3/4 -> F = 1.3*0.75/(0.3+0.75).
    assert stats.count[[0, 1, 5]].tolist() == [2.0, 1.0, 1.0]
    assert stats.iou_sum[5] == 0.0 and stats.f_sum[5] == 0.0
    miou, fscore = per_class(stats)
    assert miou[0] == pytest.approx((2 / 3 + 3 / 4) / 2)
    assert fscore[0] == pytest.approx((13 / 18 + _f(1.0, 0.75)) / 2)
    assert avss_scores(stats)["miou"] == pytest.approx(((2 / 3 + 3 / 4) / 2 + 0.5 + 0.0) / 71)


def test_overlap_free_class_in_both_scores_zero_f() -> None:
    gt = np.array([[[2, 0]]])
    pred = np.array([[[0, 2]]])
    stats = avss_stats(pred, gt)
    # Class 2 in both, inter 0: P = R = 0 -> F = 0/0 -> 0; IoU = 0 / (2 + eps) = 0.
    assert stats.count[2] == 1 and stats.f_sum[2] == 0.0 and stats.iou_sum[2] == 0.0


def test_perfect_on_a_subset_scores_below_one_and_on_all_classes_one() -> None:
    gt = np.array([[[0, 3], [3, 0]]])
    # Two classes seen, both perfect: mIoU = 2 / 71, not 1.
    assert avss_scores(avss_stats(gt, gt))["miou"] == pytest.approx(2 / 71)
    every = np.arange(NUM_CLASSES).reshape(1, 1, NUM_CLASSES)
    scores = avss_scores(avss_stats(every, every))
    assert scores == {"miou": pytest.approx(1.0), "f_score": pytest.approx(1.0)}


def test_padded_background_frame_counts_for_background() -> None:
    gt = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 0]]])
    pred = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]]])
    miou, fscore = per_class(avss_stats(pred, gt))
    # The all-background frame predicted background: class 0 IoU 1 (4 / (4 + eps)), F 1, count + 1.
    assert miou[0] == pytest.approx((2 / 3 + 1.0) / 2)
    assert fscore[0] == pytest.approx((13 / 18 + 1.0) / 2)


def test_no_bg_variant_drops_the_last_class_not_the_background() -> None:
    gt = np.array([[[0, 70]]])
    stats = avss_stats(gt, gt)
    # Classes 0 and 70 perfect. all: 2 / 71. no_bg averages classes 0..69: class 0 stays, 70 goes -> 1 / 70.
    assert avss_scores(stats, "all")["miou"] == pytest.approx(2 / 71)
    assert avss_scores(stats, "no_bg")["miou"] == pytest.approx(1 / 70)
    assert avss_scores(stats, "no_bg")["f_score"] == pytest.approx(1 / 70)
    with pytest.raises(ValueError):
        avss_scores(stats, "bg")


def test_stats_add_and_round_trip_json() -> None:
    gt = np.array([[[1, 1], [0, 0]]])
    a = avss_stats(gt, gt)
    b = AVSSStats.from_json(a.to_json())
    total = a + b
    assert total.count[:2].tolist() == [2.0, 2.0]
    assert np.array_equal(total.iou_sum, 2 * a.iou_sum)


def _official_loop(pred: np.ndarray, gt: np.ndarray, classes: str = "all") -> tuple[float, float]:
    """The official accumulation written plainly: frames x classes, sums, counts, NaN -> 0, mean."""
    iou_sum = [0.0] * NUM_CLASSES
    f_sum = [0.0] * NUM_CLASSES
    count = [0] * NUM_CLASSES
    for p, g in zip(pred, gt):
        for c in range(NUM_CLASSES):
            inter = int(np.sum((p == c) & (g == c)))
            area_p, area_g = int(np.sum(p == c)), int(np.sum(g == c))
            union = area_p + area_g - inter
            iou_sum[c] += inter / (union + IOU_EPS)
            if union > 0:
                count[c] += 1
            if area_p > 0 and area_g > 0 and inter > 0:
                precision, recall = inter / area_p, inter / area_g
                f_sum[c] += (1 + B2) * precision * recall / (B2 * precision + recall)
    miou = [s / n if n else 0.0 for s, n in zip(iou_sum, count)]
    fs = [s / n if n else 0.0 for s, n in zip(f_sum, count)]
    if classes == "no_bg":
        miou, fs = miou[:-1], fs[:-1]
    return sum(miou) / len(miou), sum(fs) / len(fs)


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_matches_plain_loop_on_random_maps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Few classes per frame (some shared, some only predicted, 70 included) and frames of pure background.
    palette = np.array([0, 3, 7, 12, 40, 70])
    gt = palette[rng.integers(0, len(palette), size=(6, 12, 12))]
    pred = np.where(rng.random(gt.shape) < 0.6, gt, palette[rng.integers(0, len(palette), size=gt.shape)])
    pred[4] = rng.integers(0, NUM_CLASSES, size=(12, 12))
    gt[5] = 0
    pred[5] = 0
    stats = avss_stats(pred, gt)
    for classes in ("all", "no_bg"):
        expected_miou, expected_f = _official_loop(pred, gt, classes)
        got = avss_scores(stats, classes)
        assert got["miou"] == pytest.approx(expected_miou, rel=1e-12)
        assert got["f_score"] == pytest.approx(expected_f, rel=1e-12)


def test_rejects_ids_outside_the_classes() -> None:
    with pytest.raises(ValueError):
        avss_stats(np.array([[[71]]]), np.array([[[0]]]))


def _areas_by_bincount(pred: np.ndarray, gt: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, ...]:
    """The three official histograms, frame by frame, with plain numpy bincounts."""
    inter = np.stack([np.bincount(g[p == g], minlength=num_classes) for p, g in zip(pred, gt)])
    area_p = np.stack([np.bincount(p.ravel(), minlength=num_classes) for p in pred])
    area_g = np.stack([np.bincount(g.ravel(), minlength=num_classes) for g in gt])
    return inter, area_p, area_g


def _blocky_maps(rng: np.random.Generator, frames: int, size: int, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Runs of equal ids (as real masks have; what the lanes of the pixel pass are for) plus noise."""
    gt = np.repeat(rng.integers(0, num_classes, size=(frames, size, size // 8)), 8, axis=2)
    pred = np.where(rng.random(gt.shape) < 0.8, gt, rng.integers(0, num_classes, size=gt.shape))
    return pred, gt


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.int64])
def test_class_areas_equal_plain_bincounts_for_every_integer_dtype(dtype) -> None:
    rng = np.random.default_rng(3)
    # 19 frames: two full chunks of FRAME_CHUNK = 8 and a partial one; a width that is no multiple of the lanes.
    pred, gt = _blocky_maps(rng, 19, 40)
    pred, gt = pred[:, :, :37], gt[:, :, :37]
    got = class_areas(pred.astype(dtype), gt.astype(dtype))
    for a, b in zip(got, _areas_by_bincount(pred, gt)):
        assert a.dtype == np.float64 and np.array_equal(a, b)


def test_class_areas_with_more_classes_than_16_bit_keys_hold() -> None:
    rng = np.random.default_rng(4)
    pred, gt = _blocky_maps(rng, 3, 16, num_classes=300)  # 4 lanes x 300^2 keys need more than 16 bits
    for a, b in zip(class_areas(pred, gt, num_classes=300), _areas_by_bincount(pred, gt, 300)):
        assert np.array_equal(a, b)


def test_class_areas_of_no_frames_and_of_empty_frames() -> None:
    assert all(a.shape == (0, NUM_CLASSES) for a in class_areas(np.zeros((0, 4, 4), np.uint8), np.zeros((0, 4, 4), np.uint8)))
    assert all(not a.any() for a in class_areas(np.zeros((2, 0, 4), np.uint8), np.zeros((2, 0, 4), np.uint8)))


def test_class_areas_restores_the_torch_thread_count() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    class_areas(np.zeros((1, 4, 4), np.uint8), np.zeros((1, 4, 4), np.uint8))
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        class_areas(np.full((1, 2, 2), 200, np.uint8), np.zeros((1, 2, 2), np.uint8))
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("pred", "gt", "message"),
    [
        (np.array([[[0.0, 1.0]]]), np.array([[[0, 1]]]), "integer class ids"),
        (np.array([[[True, False]]]), np.array([[[0, 1]]]), "integer class ids"),
        (np.array([[[0, 1]]]), np.array([[[-1, 1]]]), r"ground truth class ids must lie in 0\.\.70"),
        (np.array([[[0, 71]]], dtype=np.uint8), np.array([[[0, 1]]], dtype=np.uint8), r"prediction class ids must lie"),
        (np.zeros((2, 3, 3), np.uint8), np.zeros((2, 3, 4), np.uint8), "must both be"),
    ],
)
def test_class_areas_rejects_bad_maps(pred, gt, message) -> None:
    with pytest.raises(ValueError, match=message):
        class_areas(pred, gt)
