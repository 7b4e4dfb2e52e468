"""AVVP F-scores on hand-computed videos (METRICS.md; AVVP-ECCV20 utils/eval_metrics.py)."""

import numpy as np
import pytest

from avbench.metrics.avvp import avvp_scores, event_counts, runs, segment_counts, unit_counts, video_f

C, T = 25, 10


def rows(**spans):
    """A (25 x 10) matrix with class index -> list of (start, end) runs, e.g. rows(c0=[(0, 4)])."""
    m = np.zeros((C, T), dtype=bool)
    for key, ranges in spans.items():
        for s, e in ranges:
            m[int(key[1:]), s:e] = True
    return m


def test_runs_are_maximal_and_end_exclusive():
    row, start, end = runs(np.array([[0, 1, 1, 0, 1], [1, 1, 1, 1, 1]], dtype=bool))
    assert list(zip(row.tolist(), start.tolist(), end.tolist())) == [(0, 1, 3), (0, 4, 5), (1, 0, 5)]


def test_segment_f_skips_classes_with_neither_prediction_nor_truth():
    pred = rows(c0=[(0, 5)], c2=[(0, 3)])
    gt = rows(c0=[(0, 10)])
    counts = segment_counts(pred, gt)
    assert counts[:, 0].tolist() == [5, 0, 5]  # class 0: tp 5, fp 0, fn 5
    # class 0: F = 2*5 / (2*5 + 0 + 5) = 2/3; class 2 (prediction only): F = 0; the other 23 skipped
    assert video_f(counts) == pytest.approx((2 / 3 + 0) / 2)


def test_empty_truth_and_empty_prediction_score_one():
    empty = rows()
    assert video_f(segment_counts(empty, empty)) == 1.0
    assert video_f(event_counts(empty, empty)) == 1.0
    # any prediction on an empty truth: one kept class with F = 0
    assert video_f(segment_counts(rows(c3=[(0, 1)]), empty)) == 0.0


def test_event_iou_of_exactly_one_half_counts():
    gt = rows(c0=[(0, 4)])
    # [0, 2) vs [0, 4): intersection 2, union 4 -> IoU 0.5 -> TP
    assert event_counts(rows(c0=[(0, 2)]), gt)[:, 0].tolist() == [1, 0, 0]
    # [0, 2) vs [0, 5): 2 / 5 = 0.4 -> the prediction is an FP and the truth an FN
    assert event_counts(rows(c0=[(0, 2)]), rows(c0=[(0, 5)]))[:, 0].tolist() == [0, 1, 1]


def test_a_one_segment_hole_makes_two_events():
    pred = rows(c0=[(0, 3), (4, 10)])  # hole at segment 3
    gt = rows(c0=[(0, 10)])
    # segment level: tp 9, fn 1 -> F = 18 / 19
    assert video_f(segment_counts(pred, gt)) == pytest.approx(18 / 19)
    # event level: [0,3) IoU 0.3 -> FP; [4,10) IoU 0.6 -> TP; the truth is matched -> FN 0
    counts = event_counts(pred, gt)
    assert counts[:, 0].tolist() == [1, 1, 0]
    assert video_f(counts) == pytest.approx(2 / (2 + 1))


def test_events_of_another_class_never_match():
    counts = event_counts(rows(c1=[(0, 10)]), rows(c0=[(0, 10)]))
    assert counts[:, 0].tolist() == [0, 0, 1] and counts[:, 1].tolist() == [0, 1, 0]


def test_event_av_pools_counts_while_type_av_averages():
    # class 0 heard over the whole video and predicted so; predicted visible on 0..4 but never visible
    pred_a, pred_v = rows(c0=[(0, 10)]), rows(c0=[(0, 5)])
    gt_a, gt_v = rows(c0=[(0, 10)]), rows()
    scores = avvp_scores(unit_counts(pred_a, pred_v, gt_a, gt_v)[None])
    # segment: audio F = 1; visual: fp 5 -> 0; AV: truth A*V empty, prediction A*V = 0..4 -> 0
    assert scores["segment_audio"] == pytest.approx(100.0)
    assert scores["segment_visual"] == pytest.approx(0.0)
    assert scores["segment_av"] == pytest.approx(0.0)
    assert scores["segment_type_av"] == pytest.approx(100 / 3)  # (1 + 0 + 0) / 3
    assert scores["segment_event_av"] == pytest.approx(80.0)  # pooled tp 10, fp 5, fn 0: 20 / 25
    assert scores["segment_avg"] == pytest.approx((100 + 0 + 0 + 100 / 3 + 80) / 5)
    # event: audio 1 TP -> 1; visual 1 FP -> 0; AV 1 FP -> 0; pooled tp 1, fp 1 -> 2/3
    assert scores["event_type_av"] == pytest.approx(100 / 3)
    assert scores["event_event_av"] == pytest.approx(200 / 3)
    assert scores["event_avg"] == pytest.approx((100 + 0 + 0 + 100 / 3 + 200 / 3) / 5)


def test_final_score_is_a_mean_over_videos():
    empty = rows()
    perfect = unit_counts(empty, empty, empty, empty)  # 1.0 everywhere (nothing to find, nothing said)
    wrong = unit_counts(rows(c0=[(0, 10)]), empty, empty, empty)  # audio F 0 (one kept class)
    scores = avvp_scores(np.stack([perfect, wrong]))
    assert scores["segment_audio"] == pytest.approx(50.0)  # (1 + 0) / 2
    assert scores["segment_visual"] == pytest.approx(100.0)


def test_batched_counts_equal_per_video_counts():
    rng = np.random.default_rng(1)
    pa, pv, ga, gv = (rng.random((4, C, T)) < 0.3 for _ in range(4))
    batched = unit_counts(pa, pv, ga, gv)
    single = np.stack([unit_counts(pa[i], pv[i], ga[i], gv[i]) for i in range(4)])
    assert batched.shape == (4, 2, 3, 3, C)
    assert np.array_equal(batched, single)
