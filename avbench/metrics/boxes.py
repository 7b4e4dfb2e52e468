"""Box grounding metrics for ARIG: exact box IoU, cIoU and the AUC of the success curve.

No official ARIG evaluation script exists (see METRICS.md); these follow sound-source localisation
practice: cIoU = share of samples whose IoU reaches 0.5, AUC = trapezoid area of the success rate over
the 21 thresholds 0, 0.05, ..., 1.0.

Boxes are `[x1, y1, x2, y2]` in inclusive pixel indices: the box covers the pixel columns x1..x2 and
rows y1..y2, so its area is `(x2 - x1 + 1) * (y2 - y1 + 1)` and the IoU of two integer boxes equals the
IoU of the pixel sets they cover (a one-pixel object is a 1 x 1 box, never an empty one). Crab's boxes
are integer pixel indices of this kind (its no-object sentinel is a coordinate of 1000, the start of a
min over pixel indices).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: The thresholds of the success curve: 0, 0.05, ..., 1.0 (21 points).
AUC_THRESHOLDS = np.linspace(0.0, 1.0, 21)
CIOU_THRESHOLD = 0.5


def box_iou(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of boxes `pred` (N x 4) with one `target` box (4,), inclusive-pixel convention, exact.

    Corners may come in any order; each axis is sorted first, so `[x2, y2, x1, y1]` is the same box.
    """
    pred = np.atleast_2d(np.asarray(pred, dtype=np.float64))
    target = np.asarray(target, dtype=np.float64)
    if pred.shape[-1] != 4 or target.shape != (4,):
        raise ValueError(f"boxes must be [x1, y1, x2, y2]; got shapes {pred.shape} and {target.shape}")
    pred = _ordered(pred)
    target = _ordered(target[None])[0]
    inter_w = np.clip(np.minimum(pred[:, 2], target[2]) - np.maximum(pred[:, 0], target[0]) + 1.0, 0.0, None)
    inter_h = np.clip(np.minimum(pred[:, 3], target[3]) - np.maximum(pred[:, 1], target[1]) + 1.0, 0.0, None)
    inter = inter_w * inter_h
    union = _area(pred) + _area(target[None]) - inter
    # union >= 1 always (every box covers at least one pixel), so no epsilon is needed: a perfect box scores 1.
    return inter / union


def best_iou(pred_boxes: Sequence[Sequence[float]], target: Sequence[float]) -> float:
    """The IoU of the best of several predicted boxes; no box at all scores 0."""
    if len(pred_boxes) == 0:
        return 0.0
    return float(box_iou(np.asarray(pred_boxes), np.asarray(target)).max())


def success_rates(ious: Sequence[float], thresholds: np.ndarray = AUC_THRESHOLDS) -> np.ndarray:
    """Share of samples with IoU >= each threshold (inclusive, so threshold 0 always gives 1)."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        return np.zeros(len(thresholds))
    return (ious[None, :] >= np.asarray(thresholds)[:, None]).mean(axis=1)


def ciou(ious: Sequence[float], threshold: float = CIOU_THRESHOLD) -> float:
    """Share (fraction) of samples whose IoU is at least `threshold`; exactly 0.5 counts."""
    return float(success_rates(ious, np.array([threshold]))[0])


def auc(ious: Sequence[float], thresholds: np.ndarray = AUC_THRESHOLDS) -> float:
    """Trapezoid area under the success-rate curve over `thresholds` (on [0, 1] for the default grid)."""
    rates = success_rates(ious, thresholds)
    steps = np.diff(np.asarray(thresholds, dtype=np.float64))
    return float(np.sum(steps * (rates[1:] + rates[:-1]) / 2.0))


def _ordered(boxes: np.ndarray) -> np.ndarray:
    return np.stack(
        [np.minimum(boxes[:, 0], boxes[:, 2]), np.minimum(boxes[:, 1], boxes[:, 3]),
         np.maximum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 1], boxes[:, 3])],
        axis=1,
    )


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0] + 1.0) * (boxes[:, 3] - boxes[:, 1] + 1.0)


def unit_values(ious: Sequence[float], thresholds: np.ndarray = AUC_THRESHOLDS) -> np.ndarray:
    """Per sample: success at the cIoU threshold, success at each AUC threshold, and a 1: (N, 2 + len(thresholds)).
    Column sums of these rows (plain or bootstrap-weighted) determine cIoU and AUC."""
    ious = np.asarray(ious, dtype=np.float64).reshape(-1, 1)
    hits = np.concatenate([ious >= CIOU_THRESHOLD, ious >= np.asarray(thresholds)[None, :]], axis=1)
    return np.concatenate([hits.astype(np.float64), np.ones((len(ious), 1))], axis=1)


def scores_of_sums(sums: np.ndarray, thresholds: np.ndarray = AUC_THRESHOLDS) -> dict[str, np.ndarray]:
    """cIoU (percent) and AUC (fraction) from column sums (B, 2 + len(thresholds)) of `unit_values` rows."""
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    count = sums[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ciou_values = np.where(count > 0, 100.0 * sums[:, 0] / count, np.nan)
        rates = sums[:, 1:-1] / count[:, None]
    steps = np.diff(np.asarray(thresholds, dtype=np.float64))
    auc_values = np.sum(steps * (rates[:, 1:] + rates[:, :-1]) / 2.0, axis=1)
    return {"ciou": ciou_values, "auc": np.where(count > 0, auc_values, np.nan)}
