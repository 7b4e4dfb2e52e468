"""Binary segmentation metrics of AVSBench S4 / MS3 and Ref-AVS, over per-frame sufficient statistics.

Official references:
- OpenNLPLab/AVSBench `avs_scripts/avs_{s4,ms3}/utils/utility.py` (`mask_iou`, `Eval_Fmeasure`) and the
  loop of `avs_scripts/avs_s4/test.py` (test batch size 1: one call per video, averaged over calls);
- GeWu-Lab/Ref-AVS `utils/metric/utility.py` (`mask_iou` with threshold 0.4, `Eval_Fmeasure`,
  `metric_s_for_null`) and `scripts/train.py:test` with the test loaders of `run_refavs.py`
  (batch size 4, no shuffling: one call = 4 consecutive expressions x 10 frames);
- GeWu-Lab/Crab `utils/avss_utils.py` and `scripts/finetune/inference_hyper_lora.py`, which call the
  same functions on ONE frame at a time (threshold 0.5 everywhere).

Arithmetic of one call over frames i = 1..N (probabilities p, ground truth g):
- `mask_iou`: foreground = p > t (t = 0.5; Ref-AVS official 0.4). IoU_i = |P and G| / (|P or G| + 1e-7);
  a frame whose ground truth is empty scores |not P| / (#pixels + 1e-7), the background fraction
  (an empty prediction scores 1.0). The call's value is the mean over its N frames.
- `Eval_Fmeasure`: 255 thresholds linspace(0, 1 - 1e-10, 255), positive = p >= th (threshold 0
  marks every pixel positive); per frame and threshold P = TP / (#pos + 1e-20), R = TP / (#gt + 1e-20),
  F = 1.3 P R / (0.3 P + R), NaN -> 0; frames with empty ground truth are skipped; the F curve is
  averaged over the kept frames and its MAXIMUM over thresholds is the call's value; a call with no
  kept frame returns 0 (and still counts in the mean over calls).
- `metric_s_for_null`: S = sqrt(#(p > 0.5) / #pixels) pooled over the call's frames.
The task's number is the mean over calls, so it depends on the grouping into calls.

Per frame we reduce the pixels once to two 255-bin histograms (pixels, and ground-truth pixels, by
the highest threshold they reach), whose suffix sums give #pos and TP at every threshold, hence the
frame's F curve; no thresholds x pixels array is ever built. A frame's statistics are then: its IoU
value, its F curve (255 values), its ground-truth size, the count of pixels above 0.5 and the pixel
count. Every grouping into calls is aggregated from those (sums and a max), cheaply enough to
re-aggregate bootstrap resamples.

Probabilities are compared in float32, as the official torch code holds them. The thresholds are
numpy's float64 linspace; torch's float32 linspace differs from them by at most one float32 ulp,
which moves a pixel only when its probability lies within ~1e-7 of a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Side of the square on which the official test loaders evaluate (masks resized to 224 x 224).
EVAL_SIZE = 224
IOU_EPS = 1e-7
F_BETA2 = 0.3
F_BINS = 255
F_THRESHOLDS = np.linspace(0.0, 1.0 - 1e-10, F_BINS)
PR_EPS = 1e-20
#: Foreground threshold of the null-set metric S (both Ref-AVS and Crab).
NULL_THRESHOLD = 0.5


@dataclass(frozen=True)
class FrameStats:
    """Sufficient statistics of a stack of F frames (all arrays have F rows)."""

    iou: np.ndarray  # (F,) float64: the official per-frame IoU value at the chosen threshold
    f_curve: np.ndarray  # (F, 255) float32: F at each threshold (float32, as the official torch code)
    gt_pixels: np.ndarray  # (F,) int64: ground-truth size (0 = skipped by Eval_Fmeasure)
    fg_pixels: np.ndarray  # (F,) int64: pixels with probability > 0.5 (null-set S)
    n_pixels: np.ndarray  # (F,) int64

    @property
    def n_frames(self) -> int:
        return int(self.iou.shape[0])

    @property
    def has_gt(self) -> np.ndarray:
        return self.gt_pixels > 0

    @staticmethod
    def concat(parts: Sequence["FrameStats"]) -> "FrameStats":
        if not parts:
            empty = np.zeros((0,), dtype=np.int64)
            return FrameStats(np.zeros((0,)), np.zeros((0, F_BINS), np.float32), empty, empty, empty)
        return FrameStats(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))


_FIELDS = ("iou", "f_curve", "gt_pixels", "fg_pixels", "n_pixels")


def _as_stacks(prob: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prob = np.asarray(prob, dtype=np.float32)
    gt = np.asarray(gt).astype(bool)
    if prob.ndim == 2:
        prob, gt = prob[None], gt[None]
    if prob.ndim != 3 or prob.shape != gt.shape:
        raise ValueError(f"prediction and ground truth must both be (frames, H, W); got {prob.shape} and {gt.shape}")
    return prob, gt


def frame_iou(prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Official per-frame `mask_iou` value, shape (F,): foreground = prob > threshold."""
    prob, gt = _as_stacks(prob, gt)
    pred = prob > np.float32(threshold)
    n_pixels = gt.shape[1] * gt.shape[2]
    inter = (pred & gt).sum(axis=(1, 2))
    union = (pred | gt).sum(axis=(1, 2))
    empty = ~gt.any(axis=(1, 2))
    # Empty ground truth: the official code swaps in the background agreement over all pixels.
    inter = np.where(empty, (~pred).sum(axis=(1, 2)), inter)
    union = np.where(empty, n_pixels, union)
    return inter / (union + IOU_EPS)


def threshold_histograms(prob: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, counts of pixels (all, and ground-truth ones) by the highest threshold they reach: (F, 255) each.

    A pixel with probability p is positive at threshold i iff bin(p) >= i, so suffix sums of these
    histograms give #pos and TP at every threshold.
    """
    prob, gt = _as_stacks(prob, gt)
    n_frames = prob.shape[0]
    # A probability below 0 would reach no threshold at all and has no bin: reject it (and NaN).
    if prob.size and (np.isnan(prob).any() or prob.min() < 0 or prob.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    # Bin = index of the last threshold <= p.
    bins = np.searchsorted(F_THRESHOLDS, prob.astype(np.float64).reshape(n_frames, -1), side="right") - 1
    flat = bins + (np.arange(n_frames, dtype=np.int64) * F_BINS)[:, None]
    size = n_frames * F_BINS
    hist_all = np.bincount(flat.ravel(), minlength=size).reshape(n_frames, F_BINS)
    hist_gt = np.bincount(flat[gt.reshape(n_frames, -1)], minlength=size).reshape(n_frames, F_BINS)
    return hist_all, hist_gt


def frame_stats(prob: np.ndarray, gt: np.ndarray, iou_threshold: float = 0.5) -> FrameStats:
    """All per-frame statistics of (F, H, W) probabilities (or booleans) against (F, H, W) ground truth."""
    prob, gt = _as_stacks(prob, gt)
    hist_all, hist_gt = threshold_histograms(prob, gt)
    return FrameStats(
        iou=frame_iou(prob, gt, iou_threshold),
        f_curve=f_curves(hist_all, hist_gt).astype(np.float32),
        gt_pixels=gt.sum(axis=(1, 2)).astype(np.int64),
        fg_pixels=(prob > np.float32(NULL_THRESHOLD)).sum(axis=(1, 2)).astype(np.int64),
        n_pixels=np.full(prob.shape[0], gt.shape[1] * gt.shape[2], dtype=np.int64),
    )


def f_curves(hist_all: np.ndarray, hist_gt: np.ndarray, beta2: float = F_BETA2) -> np.ndarray:
    """Per frame, the F value at each of the 255 thresholds: (F, 255), NaN -> 0."""
    # Suffix sums: pixels reaching threshold i or higher.
    positives = np.cumsum(np.asarray(hist_all, dtype=np.float64)[:, ::-1], axis=1)[:, ::-1]
    true_pos = np.cumsum(np.asarray(hist_gt, dtype=np.float64)[:, ::-1], axis=1)[:, ::-1]
    gt_size = true_pos[:, :1]
    precision = true_pos / (positives + PR_EPS)
    recall = true_pos / (gt_size + PR_EPS)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (1 + beta2) * precision * recall / (beta2 * precision + recall)
    return np.nan_to_num(f, nan=0.0)


def _group_sums(values: np.ndarray, calls: np.ndarray, n_calls: int) -> np.ndarray:
    """Sum rows of `values` (F, ...) by call id (F,) -> (n_calls, ...)."""
    out = np.zeros((n_calls, *values.shape[1:]), dtype=np.float64)
    if values.shape[0]:
        if np.any(calls[1:] < calls[:-1]):  # calls are contiguous runs in every task; sort otherwise
            order = np.argsort(calls, kind="stable")
            calls, values = calls[order], values[order]
        starts = np.flatnonzero(np.r_[True, calls[1:] != calls[:-1]])
        out[calls[starts]] = np.add.reduceat(values, starts, axis=0, dtype=np.float64)
    return out


def _n_calls(calls: np.ndarray) -> int:
    return int(calls.max()) + 1 if calls.size else 0


def call_iou(stats: FrameStats, calls: np.ndarray) -> np.ndarray:
    """Official `mask_iou` of each call: the mean of its frames' IoU values, (n_calls,)."""
    calls = np.asarray(calls, dtype=np.int64)
    n = _n_calls(calls)
    counts = np.bincount(calls, minlength=n)
    return _group_sums(stats.iou, calls, n) / np.maximum(counts, 1)


def call_fmeasure(stats: FrameStats, calls: np.ndarray) -> np.ndarray:
    """Official `Eval_Fmeasure` of each call, (n_calls,): max over thresholds of the F curve averaged
    over the call's frames with non-empty ground truth; 0 for a call without such a frame."""
    calls = np.asarray(calls, dtype=np.int64)
    n = _n_calls(calls)
    kept = stats.has_gt
    kept_calls = calls[kept]
    counts = np.bincount(kept_calls, minlength=n)
    mean_curves = _group_sums(stats.f_curve[kept], kept_calls, n) / np.maximum(counts, 1)[:, None]
    return np.where(counts > 0, mean_curves.max(axis=1, initial=0.0), 0.0)


def call_null_s(stats: FrameStats, calls: np.ndarray) -> np.ndarray:
    """Ref-AVS `metric_s_for_null` of each call: sqrt(foreground pixels / all pixels), pooled, (n_calls,)."""
    calls = np.asarray(calls, dtype=np.int64)
    n = _n_calls(calls)
    fg = _group_sums(stats.fg_pixels, calls, n)
    total = _group_sums(stats.n_pixels, calls, n)
    return np.sqrt(fg / np.maximum(total, 1))


# ---- groupings into calls ------------------------------------------------------------------------
def calls_per_unit(frames_per_unit: Sequence[int]) -> np.ndarray:
    """Call id of every frame when each unit (a video) is one call."""
    return np.repeat(np.arange(len(frames_per_unit), dtype=np.int64), np.asarray(frames_per_unit, dtype=np.int64))


def calls_per_frame(n_frames: int) -> np.ndarray:
    """Call id of every frame when each frame is its own call (Crab's scripts)."""
    return np.arange(n_frames, dtype=np.int64)


def calls_of_chunks(frames_per_unit: Sequence[int], units_per_call: int) -> np.ndarray:
    """Call id of every frame when consecutive units are batched `units_per_call` at a time
    (Ref-AVS: 4 expressions per test batch; the last call may hold fewer)."""
    unit_call = np.arange(len(frames_per_unit), dtype=np.int64) // units_per_call
    return np.repeat(unit_call, np.asarray(frames_per_unit, dtype=np.int64))


# ---- resizing to the evaluation size -------------------------------------------------------------
def _nearest_index(src: int, dst: int) -> np.ndarray:
    # OpenCV INTER_NEAREST (Crab's test loader): source index = floor(dst_index * src / dst).
    scale = 1.0 / (dst / src)
    return np.minimum(np.floor(np.arange(dst) * scale).astype(np.int64), src - 1)


def resize_nearest(array: np.ndarray, size: int = EVAL_SIZE) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D map to size x size, with OpenCV's INTER_NEAREST sampling."""
    array = np.asarray(array)
    if array.shape == (size, size):
        return array
    rows = _nearest_index(array.shape[0], size)
    cols = _nearest_index(array.shape[1], size)
    return array[rows[:, None], cols[None, :]]


def _linear_weights(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Half-pixel centres, no anti-aliasing (torch `interpolate(bilinear, align_corners=False)`, cv2 INTER_LINEAR).
    pos = np.maximum((np.arange(dst) + 0.5) * (src / dst) - 0.5, 0.0)
    low = np.minimum(np.floor(pos).astype(np.int64), src - 1)
    high = np.minimum(low + 1, src - 1)
    return low, high, pos - low


def resize_bilinear(prob: np.ndarray, size: int = EVAL_SIZE) -> np.ndarray:
    """Bilinear resize of a 2-D probability map to size x size (float32)."""
    prob = np.asarray(prob, dtype=np.float32)
    if prob.shape == (size, size):
        return prob
    r0, r1, rw = _linear_weights(prob.shape[0], size)
    c0, c1, cw = _linear_weights(prob.shape[1], size)
    rows = prob[r0] * (1 - rw)[:, None] + prob[r1] * rw[:, None]
    return (rows[:, c0] * (1 - cw)[None, :] + rows[:, c1] * cw[None, :]).astype(np.float32)


def to_eval_map(array: np.ndarray, size: int = EVAL_SIZE) -> np.ndarray:
    """A predicted map as float32 probabilities at size x size: booleans by nearest, probabilities bilinearly."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"a map must be 2-D, got shape {array.shape}")
    if array.dtype == bool:
        return resize_nearest(array, size).astype(np.float32)
    return resize_bilinear(array, size)
