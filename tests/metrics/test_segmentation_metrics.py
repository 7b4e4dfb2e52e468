"""AVSBench / Ref-AVS binary segmentation metrics: hand-computed cases and a loop from the official definition."""

from __future__ import annotations

import numpy as np
import pytest

from avbench.metrics.segmentation import (
    F_THRESHOLDS,
    FrameStats,
    call_fmeasure,
    call_iou,
    call_null_s,
    calls_of_chunks,
    calls_per_frame,
    calls_per_unit,
    frame_iou,
    frame_stats,
    threshold_histograms,
    resize_bilinear,
    resize_nearest,
    to_eval_map,
)


def frames(*rows: list[float]) -> np.ndarray:
    """Each argument is one frame given as a flat list, shaped 2 x (len / 2)."""
    return np.stack([np.asarray(r, dtype=np.float32).reshape(2, -1) for r in rows])


# ---- mask_iou -------------------------------------------------------------------------------------
def test_iou_uses_the_1e7_epsilon_and_a_strict_threshold():
    gt = frames([1, 1, 1, 0, 0, 0, 0, 0])
    # Foreground = p > 0.5: 0.5 itself is background. P = {0, 1, 3}: inter = 2, union = 4.
    prob = frames([0.9, 0.6, 0.5, 0.7, 0, 0, 0, 0])
    iou = frame_iou(prob, gt > 0)
    assert iou[0] == 2 / (4 + 1e-7)
    assert iou[0] != 0.5


def test_empty_ground_truth_scores_the_background_fraction():
    gt = np.zeros((2, 2, 4), dtype=bool)
    # Frame 0 predicts 3 of 8 pixels: 5 / (8 + 1e-7). Frame 1 predicts nothing: 8 / (8 + 1e-7) ~ 1.0.
    prob = frames([1, 1, 1, 0, 0, 0, 0, 0], [0] * 8)
    iou = frame_iou(prob, gt)
    assert iou[0] == 5 / (8 + 1e-7)
    assert iou[1] == pytest.approx(1.0, abs=1e-7)


def test_iou_threshold_04_against_05():
    gt = frames([1, 1, 0, 0]) > 0
    prob = frames([0.45, 0.45, 0.0, 0.0])
    # At 0.4 both pixels are foreground: IoU = 2 / (2 + 1e-7); at 0.5 none are: 0 / (2 + 1e-7) = 0.
    assert frame_iou(prob, gt, 0.4)[0] == 2 / (2 + 1e-7)
    assert frame_iou(prob, gt, 0.5)[0] == 0.0


def test_call_iou_is_the_mean_over_the_frames_of_each_call():
    gt = frames([1, 0], [1, 0], [1, 0]) > 0
    prob = frames([1, 0], [0, 0], [1, 1])
    # Per frame: 1/(1+eps), 0, 1/(2+eps). Calls [0, 0, 1]: (1/(1+eps) + 0) / 2 and 1/(2+eps).
    stats = frame_stats(prob, gt)
    values = call_iou(stats, np.array([0, 0, 1]))
    assert values == pytest.approx([0.5 / (1 + 1e-7), 1 / (2 + 1e-7)], rel=1e-12)


# ---- Eval_Fmeasure --------------------------------------------------------------------------------
# Frame A: GT = pixels {0, 1}, probabilities (0.9, 0.3, 0.6, 0.0). F = 1.3 P R / (0.3 P + R):
#   th = 0           : all 4 positive, TP 2 -> P 1/2, R 1 -> 0.65 / 1.15 = 0.565217
#   0 < th <= 0.3    : {0.9, 0.3, 0.6}, TP 2 -> P 2/3, R 1 -> (1.3 * 2/3) / 1.2 = 13/18 = 0.722222
#   0.3 < th <= 0.6  : {0.9, 0.6}, TP 1 -> P 1/2, R 1/2 -> 0.325 / 0.65 = 0.5
#   0.6 < th <= 0.9  : {0.9}, TP 1 -> P 1, R 1/2 -> 0.65 / 0.8 = 0.8125
#   th > 0.9         : nothing positive -> P = 0 / 1e-20 = 0, R = 0 -> NaN -> 0
# Max = 0.8125.
FRAME_A = ([0.9, 0.3, 0.6, 0.0], [1, 1, 0, 0])
# Frame B: empty ground truth (skipped by Eval_Fmeasure).
FRAME_B = ([0.9, 0.3, 0.6, 0.0], [0, 0, 0, 0])
# Frame C: GT = pixel {0}, probabilities (0.2, 0, 0, 0):
#   th = 0: P 1/4, R 1 -> 0.325 / 1.075 = 0.302326;  0 < th <= 0.2: P 1, R 1 -> 1;  th > 0.2: 0.
FRAME_C = ([0.2, 0.0, 0.0, 0.0], [1, 0, 0, 0])


def stats_of(*frame_defs) -> FrameStats:
    prob = frames(*[f[0] for f in frame_defs])
    gt = frames(*[f[1] for f in frame_defs]) > 0
    return frame_stats(prob, gt)


def test_fmeasure_of_one_frame_by_hand():
    assert call_fmeasure(stats_of(FRAME_A), np.array([0]))[0] == pytest.approx(0.8125, rel=1e-6)


def test_fmeasure_takes_the_max_of_the_mean_curve_not_the_mean_of_maxima():
    # Mean curve of A and C: th=0: (0.565217 + 0.302326) / 2; (0, 0.2]: (13/18 + 1) / 2 = 31/36 = 0.861111;
    # (0.2, 0.3]: 13/36; (0.3, 0.6]: 0.25; (0.6, 0.9]: 0.40625. Max = 31/36 (mean of maxima would be 0.90625).
    assert call_fmeasure(stats_of(FRAME_A, FRAME_C), np.array([0, 0]))[0] == pytest.approx(31 / 36, rel=1e-6)


def test_threshold_zero_marks_every_pixel_positive():
    # Empty prediction, GT 1 of 4 pixels: only th = 0 has TP > 0: P = 1/4, R = 1 -> 0.325 / 1.075.
    value = call_fmeasure(stats_of(([0, 0, 0, 0], [1, 0, 0, 0])), np.array([0]))[0]
    assert value == pytest.approx(0.325 / 1.075, rel=1e-6)


def test_probability_one_reaches_the_last_threshold():
    # GT {0}; p = (1.0, 0.999): only 1.0 >= 1 - 1e-10, so the last threshold has P = R = 1 -> F = 1.
    value = call_fmeasure(stats_of(([1.0, 0.999, 0, 0], [1, 0, 0, 0])), np.array([0]))[0]
    assert value == pytest.approx(1.0, rel=1e-6)


def test_empty_gt_frames_are_skipped_and_an_all_empty_call_scores_zero_but_counts():
    stats = stats_of(FRAME_A, FRAME_B)
    # One call [A, B]: B is skipped -> 0.8125.
    assert call_fmeasure(stats, np.array([0, 0]))[0] == pytest.approx(0.8125, rel=1e-6)
    # Calls [A], [B]: B has no kept frame -> 0, and both calls count: mean = 0.40625.
    per_call = call_fmeasure(stats, np.array([0, 1]))
    assert per_call == pytest.approx([0.8125, 0.0], rel=1e-6)
    assert per_call.mean() == pytest.approx(0.40625, rel=1e-6)


def test_per_video_and_per_frame_groupings_differ():
    # Two videos of two frames: video 1 = (A, C), video 2 = (A, B).
    stats = stats_of(FRAME_A, FRAME_C, FRAME_A, FRAME_B)
    per_video = call_fmeasure(stats, calls_per_unit([2, 2])).mean()
    per_frame = call_fmeasure(stats, calls_per_frame(4)).mean()
    # per video: (31/36 + 0.8125) / 2 = 0.836806; per frame: (0.8125 + 1 + 0.8125 + 0) / 4 = 0.65625.
    assert per_video == pytest.approx((31 / 36 + 0.8125) / 2, rel=1e-6)
    assert per_frame == pytest.approx(0.65625, rel=1e-6)


# ---- null-set S ---------------------------------------------------------------------------------
def test_null_s_pooled_per_call_against_per_frame():
    prob = frames([1, 1, 1, 1], [0.5, 0.2, 0, 0])  # 4 of 4 and 0 of 4 pixels above 0.5 (0.5 is not)
    stats = frame_stats(prob, np.zeros(prob.shape, bool))
    # Pooled: sqrt(4 / 8) = 0.707107; per frame: (sqrt(1) + sqrt(0)) / 2 = 0.5.
    assert call_null_s(stats, np.array([0, 0]))[0] == pytest.approx(np.sqrt(0.5), rel=1e-12)
    assert call_null_s(stats, calls_per_frame(2)).mean() == pytest.approx(0.5, rel=1e-12)


def test_calls_of_chunks_batch_four_units_per_call():
    # 5 expressions of 2 frames, 4 per call: frames 0-7 -> call 0, frames 8-9 -> call 1.
    assert calls_of_chunks([2] * 5, 4).tolist() == [0] * 8 + [1] * 2


# ---- against a plain loop written from the official definition -----------------------------------
def loop_mask_iou(prob: np.ndarray, gt: np.ndarray, threshold: float) -> float:
    total = 0.0
    for p, g in zip(prob, gt):
        pred = p > threshold
        if g.sum() == 0:
            total += (~pred).sum() / (g.size + 1e-7)
        else:
            total += (pred & g).sum() / ((pred | g).sum() + 1e-7)
    return total / len(prob)


def loop_fmeasure(prob: np.ndarray, gt: np.ndarray) -> float:
    curve_sum, kept = np.zeros(255), 0
    for p, g in zip(prob, gt):
        if g.mean() == 0:
            continue
        curve = np.zeros(255)
        for i, th in enumerate(np.linspace(0, 1 - 1e-10, 255)):
            positive = p >= th
            tp = (positive & g).sum()
            precision, recall = tp / (positive.sum() + 1e-20), tp / (g.sum() + 1e-20)
            with np.errstate(invalid="ignore"):
                f = 1.3 * precision * recall / (0.3 * precision + recall)
            curve[i] = 0.0 if np.isnan(f) else f
        curve_sum += curve
        kept += 1
    return float((curve_sum / kept).max()) if kept else 0.0


def loop_null_s(prob: np.ndarray) -> float:
    return float(np.sqrt((prob > 0.5).sum() / prob.size))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_calls_match_the_loop(seed):
    rng = np.random.default_rng(seed)
    n_frames, calls = 12, np.sort(rng.integers(0, 4, 12))
    calls = np.unique(calls, return_inverse=True)[1]  # ids 0..k-1, every call non-empty
    prob = (rng.integers(0, 256, (n_frames, 6, 7)) / 255).astype(np.float32)
    prob[0] = rng.random((6, 7)).astype(np.float32)  # unquantised values too
    gt = rng.random((n_frames, 6, 7)) < rng.uniform(0.1, 0.6, (n_frames, 1, 1))
    gt[[1, 5]] = False  # some empty-GT frames
    for threshold in (0.4, 0.5):
        stats = frame_stats(prob, gt, threshold)
        for call in range(calls.max() + 1):
            sel = calls == call
            assert call_iou(stats, calls)[call] == pytest.approx(loop_mask_iou(prob[sel], gt[sel], threshold), rel=1e-12)
            # Curves are kept in float32, as the official code computes them.
            assert call_fmeasure(stats, calls)[call] == pytest.approx(loop_fmeasure(prob[sel], gt[sel]), rel=1e-6, abs=1e-7)
            assert call_null_s(stats, calls)[call] == pytest.approx(loop_null_s(prob[sel]), rel=1e-12)


def test_histograms_bin_each_pixel_by_its_highest_threshold():
    # Thresholds i / 254 (x (1 - 1e-10)): 0 -> bin 0, 0.3 -> bin 76 (76 / 254 = 0.2992 <= 0.3 < 77 / 254),
    # 0.6 -> bin 152 (0.5984), 0.9 -> bin 228 (0.8976), 1.0 -> bin 254.
    prob, gt = frames([0.0, 0.3, 0.6, 0.9, 1.0, 0.3]), frames([0, 1, 0, 0, 1, 0]) > 0
    hist_all, hist_gt = threshold_histograms(prob, gt)
    assert np.flatnonzero(hist_all[0]).tolist() == [0, 76, 152, 228, 254]
    assert hist_all[0, 76] == 2 and hist_gt[0, 76] == 1 and hist_gt[0].sum() == 2
    assert F_THRESHOLDS[0] == 0.0 and F_THRESHOLDS[-1] == 1 - 1e-10
    stats = frame_stats(prob, gt)
    assert stats.f_curve.shape == (1, 255) and stats.gt_pixels.tolist() == [2]


def test_probabilities_outside_the_unit_interval_are_rejected():
    with pytest.raises(ValueError):
        frame_stats(frames([1.5, 0]), frames([1, 0]) > 0)


# ---- resizing to 224 -------------------------------------------------------------------------------
def test_resize_nearest_samples_like_opencv():
    # 6 -> 4: source index floor(i * 6 / 4) = floor(0, 1.5, 3, 4.5) = 0, 1, 3, 4 (PIL would take 0, 2, 3, 5).
    row = np.arange(6)[None, :].repeat(6, axis=0)
    assert resize_nearest(row, 4)[0].tolist() == [0, 1, 3, 4]


def test_resize_bilinear_uses_half_pixel_centres():
    # 2 -> 4: positions (i + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the edge).
    out = resize_bilinear(np.array([[0.0, 1.0], [0.0, 1.0]]), 4)
    assert out[0].tolist() == pytest.approx([0.0, 0.25, 0.75, 1.0])


def test_to_eval_map_keeps_booleans_binary():
    mask = np.zeros((10, 20), bool)
    mask[:, :10] = True
    out = to_eval_map(mask, 8)
    assert out.dtype == np.float32 and set(np.unique(out).tolist()) == {0.0, 1.0}
    # Columns floor(j * 20 / 8) < 10 -> j < 4: the left half stays foreground.
    assert out[0].tolist() == [1.0] * 4 + [0.0] * 4
