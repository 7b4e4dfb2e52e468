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


def _iou_of_counts(inter: np.ndarray, pred_pixels: np.ndarray, gt_pixels: np.ndarray, n_pixels: int) -> np.ndarray:
    union = pred_pixels + gt_pixels - inter
    empty = gt_pixels == 0
    # Empty ground truth: the official code swaps in the background agreement over all pixels.
    inter = np.where(empty, n_pixels - pred_pixels, inter)
    union = np.where(empty, n_pixels, union)
    return inter / (union + IOU_EPS)


def frame_iou(prob: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Official per-frame `mask_iou` value, shape (F,): foreground = prob > threshold."""
    prob, gt = _as_stacks(prob, gt)
    n_frames, n_pixels = prob.shape[0], gt.shape[1] * gt.shape[2]
    pred = (prob > np.float32(threshold)).reshape(n_frames, n_pixels)
    flat_gt = gt.reshape(n_frames, n_pixels)
    inter = np.count_nonzero(pred & flat_gt, axis=1)
    return _iou_of_counts(inter, np.count_nonzero(pred, axis=1), np.count_nonzero(flat_gt, axis=1), n_pixels)


#: For each threshold, the smallest float32 value that reaches it (float64(x) >= threshold): comparing
#: float32 probabilities with these edges is comparing them with the float64 thresholds, without
#: converting every pixel to float64.
_F32_EDGES = np.where(
    F_THRESHOLDS.astype(np.float32).astype(np.float64) < F_THRESHOLDS,
    np.nextafter(F_THRESHOLDS.astype(np.float32), np.float32(2)),
    F_THRESHOLDS.astype(np.float32),
).astype(np.float32)
#: Frames per chunk of the pixel passes: bounds the temporaries (a few bytes per pixel of one chunk).
FRAME_CHUNK = 32


def threshold_bins(prob: np.ndarray) -> np.ndarray:
    """Index of the highest threshold each float32 probability in [0, 1] reaches (int16, same shape).

    The thresholds are evenly spaced, so floor(p x 254) is the bin up to one step of rounding; one
    comparison with each neighbouring edge corrects it. Equal to `searchsorted(F_THRESHOLDS, p,
    "right") - 1`, at a fraction of its cost.
    """
    guess = np.minimum((prob * np.float32(F_BINS - 1)).astype(np.int16), F_BINS - 1)
    guess -= _F32_EDGES[guess] > prob
    above = np.minimum(guess + 1, F_BINS - 1)
    guess += (_F32_EDGES[above] <= prob) & (guess < F_BINS - 1)
    return guess


def _check_probabilities(prob: np.ndarray) -> None:
    # A probability below 0 would reach no threshold at all and has no bin: reject it (and NaN).
    if prob.size and not (prob.min() >= 0 and prob.max() <= 1):
        raise ValueError("probabilities must lie in [0, 1]")


def _chunk_histograms(p: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, pixels) float32 probabilities and booleans -> per row the 255-bin histograms (all, gt)."""
    rows = p.shape[0]
    # One bincount per chunk: key = row * 510 + bin * 2 + is_gt.
    key = threshold_bins(p).astype(np.int32) * 2 + g
    key += (np.arange(rows, dtype=np.int32) * (2 * F_BINS))[:, None]
    counts = np.bincount(key.ravel(), minlength=rows * 2 * F_BINS).reshape(rows, F_BINS, 2)
    return counts.sum(axis=2), counts[:, :, 1]


def threshold_histograms(prob: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, counts of pixels (all, and ground-truth ones) by the highest threshold they reach: (F, 255) each.

    A pixel with probability p is positive at threshold i iff bin(p) >= i, so suffix sums of these
    histograms give #pos and TP at every threshold.
    """
    return frame_stats_parts(prob, gt)[0:2]


def frame_stats_parts(prob: np.ndarray, gt: np.ndarray, iou_threshold: float = 0.5
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """One chunked pass over the pixels: histograms (all, gt), IoU intersections, pixels above the IoU
    threshold, pixels above the null-set threshold. Frames go `FRAME_CHUNK` at a time, so the memory
    is a few bytes per pixel of one chunk whatever the number of frames (never thresholds x pixels)."""
    prob, gt = _as_stacks(prob, gt)
    _check_probabilities(prob)
    n_frames, n_pixels = prob.shape[0], gt.shape[1] * gt.shape[2]
    hist_all = np.empty((n_frames, F_BINS), dtype=np.int64)
    hist_gt = np.empty((n_frames, F_BINS), dtype=np.int64)
    inter = np.empty(n_frames, dtype=np.int64)
    pred_pixels = np.empty(n_frames, dtype=np.int64)
    fg_pixels = np.empty(n_frames, dtype=np.int64)
    for start in range(0, n_frames, FRAME_CHUNK):
        stop = min(start + FRAME_CHUNK, n_frames)
        p = prob[start:stop].reshape(stop - start, n_pixels)
        g = gt[start:stop].reshape(stop - start, n_pixels)
        hist_all[start:stop], hist_gt[start:stop] = _chunk_histograms(p, g)
        pred = p > np.float32(iou_threshold)
        inter[start:stop] = np.count_nonzero(pred & g, axis=1)
        pred_pixels[start:stop] = np.count_nonzero(pred, axis=1)
        fg_pixels[start:stop] = (pred_pixels[start:stop] if iou_threshold == NULL_THRESHOLD
                                 else np.count_nonzero(p > np.float32(NULL_THRESHOLD), axis=1))
    return hist_all, hist_gt, _iou_of_counts(inter, pred_pixels, hist_gt.sum(axis=1), n_pixels), fg_pixels, n_pixels


def frame_stats(prob: np.ndarray, gt: np.ndarray, iou_threshold: float = 0.5) -> FrameStats:
    """All per-frame statistics of (F, H, W) probabilities (or booleans) against (F, H, W) ground truth."""
    hist_all, hist_gt, iou, fg_pixels, n_pixels = frame_stats_parts(prob, gt, iou_threshold)
    return FrameStats(
        iou=iou,
        f_curve=f_curves(hist_all, hist_gt).astype(np.float32),
        gt_pixels=hist_gt.sum(axis=1),
        fg_pixels=fg_pixels,
        n_pixels=np.full(hist_all.shape[0], n_pixels, dtype=np.int64),
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


def unit_call_sums(stats: FrameStats, calls: np.ndarray, unit_of_call: np.ndarray, n_units: int) -> np.ndarray:
    """Per resampling unit, sums over its calls of the call's IoU, F-measure and null S, and its number
    of calls: (n_units, 4). Each metric is a mean over calls, so these column sums (plain or bootstrap-
    weighted) determine all three: e.g. mIoU = sum of column 0 / sum of column 3."""
    calls = np.asarray(calls, dtype=np.int64)
    unit_of_call = np.asarray(unit_of_call, dtype=np.int64)
    per_call = np.stack([call_iou(stats, calls), call_fmeasure(stats, calls), call_null_s(stats, calls),
                         np.ones(_n_calls(calls))], axis=1)
    if len(unit_of_call) != len(per_call):
        raise ValueError(f"unit_of_call has {len(unit_of_call)} entries for {len(per_call)} calls")
    return _group_sums(per_call, unit_of_call, n_units)


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


def interpolate_bilinear(array: np.ndarray, size: int) -> np.ndarray:
    """A 2-D map (booleans as 0/1) resized to size x size exactly as the official Ref-AVS post-processing
    resizes its masks: `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`, no
    anti-aliasing, in float32. torch itself rather than `resize_bilinear`, so that every value, hence every
    threshold decision, is the official one to the last bit (numpy's float64 weights may differ by an ulp)."""
    import torch  # only the Ref-AVS official variant needs it; keeps `import avbench` light

    prob = np.asarray(array, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"a map must be 2-D, got shape {prob.shape}")
    if prob.shape == (size, size):
        return prob
    resized = torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(prob))[None, None], size=(size, size),
                                              mode="bilinear", align_corners=False, antialias=False)
    return resized[0, 0].numpy()


def to_eval_map(array: np.ndarray, size: int = EVAL_SIZE) -> np.ndarray:
    """A predicted map as float32 probabilities at size x size: booleans by nearest, probabilities bilinearly."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(f"a map must be 2-D, got shape {array.shape}")
    if array.dtype == bool:
        return resize_nearest(array, size).astype(np.float32)
    return resize_bilinear(array, size)
