"""AVE segment accuracy: every one-second segment of every video pooled (micro), background included.

Official reference: YapengTian/AVE-ECCV18 `supervised_main.py:compute_acc` — the argmax label of each
of the 10 segments of each test video is compared with the ground-truth label (28 events +
background); accuracy = correct segments / (videos x 10). A video's label sequence is the event class
on the segments `[start, end)` of its annotation and background elsewhere.

Per video the sufficient statistics are (correct segments, segments); the score is their pooled ratio.
"""

from __future__ import annotations

import numpy as np

N_SEGMENTS = 10


def segment_labels(event_ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, background: int,
                   n_segments: int = N_SEGMENTS) -> np.ndarray:
    """Per-segment labels (N x n_segments): `event_ids[i]` on `[starts[i], ends[i])`, `background` elsewhere."""
    event_ids, starts, ends = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (event_ids, starts, ends))
    t = np.arange(n_segments)[None, :]
    inside = (t >= starts[:, None]) & (t < ends[:, None])
    return np.where(inside, event_ids[:, None], background)


def correct_segments(pred_labels: np.ndarray, gt_labels: np.ndarray) -> np.ndarray:
    """Number of segments whose predicted label equals the ground truth, per video: (N,)."""
    pred_labels, gt_labels = np.asarray(pred_labels), np.asarray(gt_labels)
    if pred_labels.shape != gt_labels.shape:
        raise ValueError(f"shape mismatch: prediction {pred_labels.shape} vs ground truth {gt_labels.shape}")
    return (pred_labels == gt_labels).sum(axis=-1)


def segment_accuracy(correct: np.ndarray, total: np.ndarray) -> float:
    """Pooled accuracy in percent: sum(correct) / sum(total) x 100 (0 segments -> nan)."""
    total_sum = float(np.sum(total))
    return float("nan") if total_sum == 0 else 100.0 * float(np.sum(correct)) / total_sum


def accuracy_of_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Percent accuracy from column sums (B, 2) of per-video (correct, segments): one value per row."""
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"accuracy": np.where(sums[:, 1] > 0, 100.0 * sums[:, 0] / sums[:, 1], np.nan)}
