"""AVSS (AVSBench-semantic) metrics: per-class accumulated IoU (mIoU) and F-score over 71 classes.

Official reference: OpenNLPLab/AVSBench `avs_scripts/avss/utils/compute_color_metrics.py`
(`_batch_miou_fscore`) and the accumulation in `avs_scripts/avss/test.py`. Their arithmetic:

- per frame and class c: inter = |P=c and G=c|, union = |P=c| + |G=c| - inter;
  IoU = inter / (union + 2.2e-16); F = (1 + b2) * P * R / (b2 * P + R) with P = inter / |P=c|,
  R = inter / |G=c|, b2 = 0.3 and NaN -> 0 (so a class missing from the prediction or the ground
  truth scores F = 0 in that frame, and so does a class in both without overlap);
- IoU and F are SUMMED over all frames, and the class's count grows by one in each frame where the
  class is in the prediction OR the ground truth (union > 0);
- per class: sum / count, NaN (never seen) -> 0; final = mean over ALL classes, so a class that never
  occurs counts as 0. The official "noBg" numbers average `[:-1]`, i.e. they drop the LAST class
  (id 70, `woman`), not the background.

The per-frame work reduces to one confusion matrix per frame (one `torch.bincount` over 16-bit
(prediction, ground truth) keys, `class_areas`), whose diagonal, row and column sums are the three
histograms of the official code: one counting pass over the pixels whatever the number of classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np

NUM_CLASSES = 71
#: The epsilon of the official IoU denominator (float64 machine epsilon).
IOU_EPS = 2.220446049250313e-16
BETA2 = 0.3

ClassSelection = Literal["all", "no_bg"]
CLASS_SELECTIONS: tuple[str, ...] = ("all", "no_bg")


@dataclass(frozen=True)
class AVSSStats:
    """Sufficient statistics of a set of frames: per class, the summed IoU, summed F and frame count."""

    iou_sum: np.ndarray  # (C,)
    f_sum: np.ndarray  # (C,)
    count: np.ndarray  # (C,)

    def __add__(self, other: "AVSSStats") -> "AVSSStats":
        return AVSSStats(self.iou_sum + other.iou_sum, self.f_sum + other.f_sum, self.count + other.count)

    def to_json(self) -> dict[str, list[float]]:
        return {"iou_sum": self.iou_sum.tolist(), "f_sum": self.f_sum.tolist(), "count": self.count.tolist()}

    @classmethod
    def from_json(cls, obj: dict[str, Sequence[float]]) -> "AVSSStats":
        return cls(*(np.asarray(obj[key], dtype=np.float64) for key in ("iou_sum", "f_sum", "count")))


#: Frames per chunk of the pixel pass: the chunk's 16-bit keys (2 bytes a pixel, 800 KB for 8 frames
#: of 224 x 224) stay in the CPU cache, and bound the temporaries whatever the number of frames.
FRAME_CHUNK = 8
#: Interleaved sub-histograms per frame (pixel i counts into sub-histogram i % _LANES). Neighbouring
#: pixels mostly share a class, so a single histogram increments the same few counters back to back
#: and each increment waits for the previous one; spreading neighbours over 4 copies of the counters
#: halved the counting time on realistic maps (measured; 3 to 4 was best, 6 slower again).
_LANES = 4


@lru_cache(maxsize=8)
def _lane_offsets(n_pixels: int, cells: int, dtype: str) -> np.ndarray:
    """`(pixel % _LANES) * cells` for every pixel of a frame; cached, since building it cost about a
    fifth of a 10-frame video's pass (read-only, as it is shared)."""
    offsets = ((np.arange(n_pixels) % _LANES) * cells).astype(dtype)
    offsets.flags.writeable = False
    return offsets


def _check_maps(pred: np.ndarray, target: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.ndim == 2:
        pred, target = pred[None], target[None]
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"prediction and ground truth must both be (frames, H, W); got {pred.shape} and {target.shape}")
    for name, array in (("prediction", pred), ("ground truth", target)):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class ids, got dtype {array.dtype}")
        # An unsigned map cannot go below 0: one pass (max) instead of two.
        below = array.dtype.kind == "i" and array.size and array.min() < 0
        if array.size and (below or array.max() >= num_classes):
            raise ValueError(f"{name} class ids must lie in 0..{num_classes - 1}")
    return pred, target


def class_areas(pred: np.ndarray, target: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame and class: intersection, predicted area, ground-truth area, each (F, C) float64.

    `pred` and `target` are integer class-id maps of shape (F, H, W) (or one (H, W) frame), of any
    integer dtype; uint8 (what 8-bit label PNGs decode to) is the fastest.

    Each frame's pixels become keys `lane * C^2 + pred * C + target` (16-bit where they fit) and one
    `torch.bincount` per frame counts them: the frame's C x C confusion matrix (summed over lanes),
    whose diagonal, row sums and column sums are the official code's three histograms (intersection,
    prediction, ground truth). One counting pass over the pixels, whatever the number of classes.
    torch's bincount, not numpy's: numpy's converts every key to 64 bits and scans it for its minimum
    and maximum with a scalar loop first, which made it 2 to 3 times slower here.
    """
    import torch  # imported here, not at module level: only this pass needs it, and it takes seconds to load

    pred, target = _check_maps(pred, target, num_classes)
    n_frames = pred.shape[0]
    n_pixels = pred.shape[1] * pred.shape[2]
    cells = num_classes * num_classes
    key_dtype = np.int16 if _LANES * cells <= np.iinfo(np.int16).max + 1 else np.int64
    lane_offset = _lane_offsets(n_pixels, cells, np.dtype(key_dtype).str)
    keys = np.empty((min(FRAME_CHUNK, n_frames), n_pixels), dtype=key_dtype)
    torch_keys = torch.from_numpy(keys)
    confusion = np.empty((n_frames, cells), dtype=np.int64)  # per frame, (pred, target) flattened
    torch_confusion = torch.from_numpy(confusion)
    flat_pred, flat_target = pred.reshape(n_frames, n_pixels), target.reshape(n_frames, n_pixels)
    # One torch thread for the pass, restored after: bincount's min / max scans of one frame are too
    # small for the thread pool, whose OpenMP waits made the pass 5 to 20 times slower when another
    # process held the second core (measured on the 2-core machine).
    key_rows, confusion_rows = torch_keys.unbind(0), torch_confusion.unbind(0)  # views, made once
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for start in range(0, n_frames, FRAME_CHUNK):
            stop = min(start + FRAME_CHUNK, n_frames)
            n = stop - start
            # The ids were checked to lie in 0..C-1, so the unsafe cast to the key type is exact.
            np.multiply(flat_pred[start:stop], num_classes, out=keys[:n], dtype=key_dtype, casting="unsafe")
            np.add(keys[:n], flat_target[start:stop], out=keys[:n], dtype=key_dtype, casting="unsafe")
            keys[:n] += lane_offset
            for row in range(n):
                lanes = torch.bincount(key_rows[row], minlength=_LANES * cells).view(_LANES, cells)
                torch.sum(lanes, dim=0, out=confusion_rows[start + row])
    finally:
        torch.set_num_threads(threads)
    confusion = confusion.reshape(n_frames, num_classes, num_classes)
    inter = np.diagonal(confusion, axis1=1, axis2=2).astype(np.float64)
    return inter, confusion.sum(axis=2).astype(np.float64), confusion.sum(axis=1).astype(np.float64)


def frame_scores(inter: np.ndarray, pred_area: np.ndarray, target_area: np.ndarray, beta2: float = BETA2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame and class: IoU, F and whether the class counts (in prediction or ground truth)."""
    union = pred_area + target_area - inter
    iou = inter / (union + IOU_EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = inter / pred_area
        recall = inter / target_area
        f = (1.0 + beta2) * precision * recall / (beta2 * precision + recall)
    f[np.isnan(f)] = 0.0  # P and R lie in [0, 1] or are NaN, so F is never infinite: only NaN needs the official fix
    return iou, f, union > 0


def avss_stats(pred: np.ndarray, target: np.ndarray, num_classes: int = NUM_CLASSES) -> AVSSStats:
    """Summed per-class IoU, F and counts over the frames of `pred` / `target` ((F, H, W) class-id maps)."""
    iou, f, present = frame_scores(*class_areas(pred, target, num_classes))
    return AVSSStats(iou.sum(axis=0), f.sum(axis=0), present.sum(axis=0).astype(np.float64))


def per_class(stats: AVSSStats) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mIoU and F: sum / count, 0 for a class never seen (the official NaN -> 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        miou = np.nan_to_num(stats.iou_sum / stats.count, nan=0.0)
        fscore = np.nan_to_num(stats.f_sum / stats.count, nan=0.0)
    return miou, fscore


def avss_scores(stats: AVSSStats, classes: ClassSelection = "all") -> dict[str, float]:
    """mIoU and F-score (fractions) from accumulated statistics.

    `classes="all"` averages over every class (official); `"no_bg"` reproduces the official `noBg`
    numbers, which drop the last class (`woman`), not the background.
    """
    if classes not in CLASS_SELECTIONS:
        raise ValueError(f"classes must be one of {CLASS_SELECTIONS}, got {classes!r}")
    miou, fscore = per_class(stats)
    if classes == "no_bg":
        miou, fscore = miou[:-1], fscore[:-1]
    return {"miou": float(miou.mean()), "f_score": float(fscore.mean())}


def unit_values(stats: AVSSStats) -> np.ndarray:
    """One unit's statistics as a row (3C,): summed IoU, summed F, counts. Column sums of such rows are
    the accumulated statistics of the units, so they determine the scores (`avss_scores_of_sums`)."""
    return np.concatenate([stats.iou_sum, stats.f_sum, stats.count])


def avss_scores_of_sums(
    sums: np.ndarray, classes: ClassSelection = "all", num_classes: int = NUM_CLASSES, full: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """mIoU and F-score (fractions) from column sums (B, 3C) of `unit_values` rows: name -> (B,) values.

    `full` (3C,), the column sums of all units, makes a bootstrap resample keep the full set's class
    set: a class the full set saw (count > 0) that the resample drew no frame of keeps its full-set
    score instead of scoring 0 (`avbench.bootstrap`, docs/metrics.md "Confidence intervals"). Without
    it, a class seen in one video is missing from about 37 % of resamples and scores 0 there, so the
    resampled values sit below the estimate. On the full set itself `full` changes nothing.
    """
    if classes not in CLASS_SELECTIONS:
        raise ValueError(f"classes must be one of {CLASS_SELECTIONS}, got {classes!r}")
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    iou_sum, f_sum, count = (sums[:, i * num_classes : (i + 1) * num_classes] for i in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        miou = np.nan_to_num(iou_sum / count, nan=0.0)
        fscore = np.nan_to_num(f_sum / count, nan=0.0)
    if full is not None:
        full = np.asarray(full, dtype=np.float64)
        if full.shape != (3 * num_classes,):
            raise ValueError(f"full must hold the {3 * num_classes} column sums of all units, got shape {full.shape}")
        full_miou, full_fscore = per_class(AVSSStats(*(full[i * num_classes : (i + 1) * num_classes] for i in range(3))))
        undrawn = (count == 0) & (full[2 * num_classes :] > 0)
        miou = np.where(undrawn, full_miou, miou)
        fscore = np.where(undrawn, full_fscore, fscore)
    if classes == "no_bg":
        miou, fscore = miou[:, :-1], fscore[:, :-1]
    return {"miou": miou.mean(axis=1), "f_score": fscore.mean(axis=1)}


def present_class_mean(stats: AVSSStats) -> dict[str, float]:
    """Means over the classes this unit saw only (a per-video summary, not the benchmark number)."""
    seen = stats.count > 0
    if not seen.any():
        return {"miou": 0.0, "f_score": 0.0}
    miou, fscore = per_class(stats)
    return {"miou": float(miou[seen].mean()), "f_score": float(fscore[seen].mean())}
