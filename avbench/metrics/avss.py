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

The per-frame work reduces to one confusion matrix per frame (`np.bincount` over frame-offset
(prediction, ground truth) pairs), whose diagonal, row and column sums are the three histograms of the
official code: one pass over the pixels whatever the number of classes.
"""

from __future__ import annotations

from dataclasses import dataclass
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


#: Frames per chunk of the pixel pass: bounds the temporaries (8-byte keys for the pixels of one chunk).
FRAME_CHUNK = 16


def class_areas(pred: np.ndarray, target: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame and class: intersection, predicted area, ground-truth area, each (F, C) float64.

    `pred` and `target` are integer class-id maps of shape (F, H, W) (or one (H, W) frame).
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.ndim == 2:
        pred, target = pred[None], target[None]
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"prediction and ground truth must both be (frames, H, W); got {pred.shape} and {target.shape}")
    for name, array in (("prediction", pred), ("ground truth", target)):
        if array.size and (array.min() < 0 or array.max() >= num_classes):
            raise ValueError(f"{name} class ids must lie in 0..{num_classes - 1}")
    n_frames, n_pixels = pred.shape[0], pred.shape[1] * pred.shape[2]
    cells = num_classes * num_classes
    confusion = np.empty((n_frames, num_classes, num_classes), dtype=np.int64)
    for start in range(0, n_frames, FRAME_CHUNK):
        stop = min(start + FRAME_CHUNK, n_frames)
        # One bincount per chunk gives each frame's confusion matrix: key = frame * C^2 + pred * C + target.
        # Built in place in bincount's own index type, so it needs no converted copy.
        key = pred[start:stop].reshape(stop - start, n_pixels).astype(np.intp)
        key *= num_classes
        key += target[start:stop].reshape(stop - start, n_pixels)
        key += (np.arange(stop - start, dtype=np.intp) * cells)[:, None]
        confusion[start:stop] = np.bincount(key.ravel(), minlength=(stop - start) * cells).reshape(-1, num_classes, num_classes)
    inter = np.diagonal(confusion, axis1=1, axis2=2)
    return inter.astype(np.float64), confusion.sum(axis=2).astype(np.float64), confusion.sum(axis=1).astype(np.float64)


def frame_scores(inter: np.ndarray, pred_area: np.ndarray, target_area: np.ndarray, beta2: float = BETA2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame and class: IoU, F and whether the class counts (in prediction or ground truth)."""
    union = pred_area + target_area - inter
    iou = inter / (union + IOU_EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = inter / pred_area
        recall = inter / target_area
        f = (1.0 + beta2) * precision * recall / (beta2 * precision + recall)
    f = np.nan_to_num(f, nan=0.0)
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


def avss_scores_of_sums(sums: np.ndarray, classes: ClassSelection = "all", num_classes: int = NUM_CLASSES) -> dict[str, np.ndarray]:
    """mIoU and F-score (fractions) from column sums (B, 3C) of `unit_values` rows: name -> (B,) values."""
    if classes not in CLASS_SELECTIONS:
        raise ValueError(f"classes must be one of {CLASS_SELECTIONS}, got {classes!r}")
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    iou_sum, f_sum, count = (sums[:, i * num_classes : (i + 1) * num_classes] for i in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        miou = np.nan_to_num(iou_sum / count, nan=0.0)
        fscore = np.nan_to_num(f_sum / count, nan=0.0)
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
