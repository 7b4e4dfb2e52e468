"""AVVP (LLP) segment- and event-level F-scores for audio, visual and audio-visual events.

Official reference: YapengTian/AVVP-ECCV20 `utils/eval_metrics.py` (`segment_level`, `event_level`,
`extract_event`, `event_wise_metric`) and the loop of `main_avvp.py:eval`. Per video the inputs are
binary class x segment matrices (25 x 10) for audio A and visual V; the audio-visual matrix is A * V for
prediction and ground truth alike.

- Segment level: per class TP/FP/FN over the 10 segments.
- Event level: an event is a maximal run of positive segments of a class. A predicted event is a TP if
  its IoU with some ground-truth event of the class is >= 0.5 (several predictions may match the same
  ground-truth event), else an FP; FN = ground-truth events matched by no prediction.
- Per video and modality: F = 2TP / (2TP + FP + FN) per class, classes with no prediction and no
  ground truth skipped, mean over the rest, or 1.0 when none remain. Final = mean over videos x 100.
- Type@AV = mean of the audio, visual and audio-visual results; Event@AV = the per-video F of the
  pooled counts (TP_a + TP_v, FP_a + FP_v, FN_a + FN_v), averaged over videos.

Per video the sufficient statistics are the counts array (level, modality, tp/fp/fn, class); every
score is a function of the counts of the videos, so `avvp_scores` needs nothing else.
"""

from __future__ import annotations

import numpy as np

LEVELS = ("segment", "event")
MODALITIES = ("audio", "visual", "av")
#: The five numbers per level, in the order of the Crab paper's average.
PER_LEVEL = ("audio", "visual", "av", "type_av", "event_av")


def segment_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-class segment TP, FP, FN of binary (..., C, T) matrices: (..., 3, C)."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    tp = (pred & gt).sum(-1)
    fp = (pred & ~gt).sum(-1)
    fn = (~pred & gt).sum(-1)
    return np.stack([tp, fp, fn], axis=-2)


def runs(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of True along the last axis of a (rows x T) matrix: (row, start, end), end exclusive,
    sorted by row then start."""
    binary = np.asarray(binary, dtype=bool)
    padded = np.pad(binary.astype(np.int8), ((0, 0), (1, 1)))
    step = np.diff(padded, axis=1)
    rising, falling = np.argwhere(step == 1), np.argwhere(step == -1)
    return rising[:, 0], rising[:, 1], falling[:, 1]


def _same_row_pairs(p_rows: np.ndarray, g_rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """All (prediction, ground truth) run index pairs that share a row; both inputs sorted by row."""
    g_count = np.bincount(g_rows, minlength=n_rows)
    g_first = np.concatenate([[0], np.cumsum(g_count)[:-1]])
    per_pred = g_count[p_rows]
    p_index = np.repeat(np.arange(len(p_rows)), per_pred)
    offset = np.arange(per_pred.sum()) - np.repeat(np.cumsum(per_pred) - per_pred, per_pred)
    return p_index, g_first[p_rows][p_index] + offset


def event_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-class event TP, FP, FN of binary (..., C, T) matrices: (..., 3, C)."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"shape mismatch: prediction {pred.shape} vs ground truth {gt.shape}")
    lead, n_steps = pred.shape[:-1], pred.shape[-1]
    n_rows = int(np.prod(lead))
    p_row, p_start, p_end = runs(pred.reshape(n_rows, n_steps))
    g_row, g_start, g_end = runs(gt.reshape(n_rows, n_steps))
    pi, gi = _same_row_pairs(p_row, g_row, n_rows)
    inter = np.clip(np.minimum(p_end[pi], g_end[gi]) - np.maximum(p_start[pi], g_start[gi]), 0, None)
    union = (p_end[pi] - p_start[pi]) + (g_end[gi] - g_start[gi]) - inter
    hit = 2 * inter >= union  # IoU >= 0.5 in integers: exactly one half counts, as in the official code
    pred_matched = np.zeros(len(p_row), dtype=bool)
    gt_matched = np.zeros(len(g_row), dtype=bool)
    pred_matched[pi[hit]] = True
    gt_matched[gi[hit]] = True
    tp = np.bincount(p_row[pred_matched], minlength=n_rows)
    fp = np.bincount(p_row[~pred_matched], minlength=n_rows)
    fn = np.bincount(g_row[~gt_matched], minlength=n_rows)
    return np.stack([c.reshape(lead) for c in (tp, fp, fn)], axis=-2)


def video_f(counts: np.ndarray) -> np.ndarray:
    """Mean per-class F over the classes with a prediction or a ground truth; 1.0 when none: (...,)."""
    counts = np.asarray(counts, dtype=np.float64)
    tp, fp, fn = counts[..., 0, :], counts[..., 1, :], counts[..., 2, :]
    kept = (tp + fp > 0) | (tp + fn > 0)
    f = np.where(kept, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    n_kept = kept.sum(-1)
    return np.where(n_kept > 0, f.sum(-1) / np.maximum(n_kept, 1), 1.0)


def unit_counts(pred_audio: np.ndarray, pred_visual: np.ndarray, gt_audio: np.ndarray,
                gt_visual: np.ndarray) -> np.ndarray:
    """Sufficient statistics of videos: (..., level, modality, tp/fp/fn, class) = (..., 2, 3, 3, C)."""
    pred_audio, pred_visual, gt_audio, gt_visual = (
        np.asarray(a, dtype=bool) for a in (pred_audio, pred_visual, gt_audio, gt_visual))
    pred = np.stack([pred_audio, pred_visual, pred_audio & pred_visual], axis=-3)  # (..., 3, C, T)
    gt = np.stack([gt_audio, gt_visual, gt_audio & gt_visual], axis=-3)
    return np.stack([segment_counts(pred, gt), event_counts(pred, gt)], axis=-4)


def video_scores(counts: np.ndarray) -> np.ndarray:
    """Per-video F values (..., level, PER_LEVEL) in [0, 1] from `unit_counts` output."""
    counts = np.asarray(counts)
    audio, visual, av = (video_f(counts[..., m, :, :]) for m in range(3))
    pooled = video_f(counts[..., 0, :, :] + counts[..., 1, :, :])
    return np.stack([audio, visual, av, (audio + visual + av) / 3.0, pooled], axis=-1)


#: Columns of `unit_values`: the ten per-video F values (level-major), then the video count.
N_UNIT_COLUMNS = len(LEVELS) * len(PER_LEVEL) + 1


def unit_values(counts: np.ndarray) -> np.ndarray:
    """Per video, its ten F values (fractions, level-major) and a 1: (N, 11). Every score is a mean over
    videos, so the column sums of these rows (plain or bootstrap-weighted) determine all of them."""
    per_video = video_scores(np.asarray(counts)).reshape(-1, len(LEVELS) * len(PER_LEVEL))
    return np.concatenate([per_video, np.ones((per_video.shape[0], 1))], axis=1)


def avvp_scores_of_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Percent scores from column sums (B, 11) of `unit_values` rows: name -> (B,) values.

    Keys `<level>_<audio|visual|av|type_av|event_av>` and `<level>_avg`, the mean of the level's five
    numbers (Crab's "segment" and "event" columns). No video: NaN.
    """
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        means = 100.0 * sums[:, :-1] / sums[:, -1:]  # (B, 10)
    means = means.reshape(-1, len(LEVELS), len(PER_LEVEL))
    result: dict[str, np.ndarray] = {}
    for li, level in enumerate(LEVELS):
        for ki, key in enumerate(PER_LEVEL):
            result[f"{level}_{key}"] = means[:, li, ki]
        result[f"{level}_avg"] = means[:, li].mean(axis=1)
    return result


def avvp_scores(counts: np.ndarray) -> dict[str, float]:
    """Percent scores over videos from stacked `unit_counts` (N, 2, 3, 3, C): `avvp_scores_of_sums` of
    the videos' `unit_values`."""
    sums = unit_values(counts).sum(axis=0)
    return {name: float(values[0]) for name, values in avvp_scores_of_sums(sums).items()}
