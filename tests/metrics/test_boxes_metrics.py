"""ARIG box metrics: exact IoU in the inclusive-pixel convention, cIoU at 0.5 (inclusive), 21-point AUC."""

from __future__ import annotations

import numpy as np
import pytest

from avbench.metrics.boxes import AUC_THRESHOLDS, auc, best_iou, box_iou, ciou, success_rates


def test_identical_boxes_score_exactly_one() -> None:
    # No epsilon in the denominator (Crab's helper adds 1e-6 and would give 0.99999...).
    assert box_iou([[10, 20, 30, 40]], [10, 20, 30, 40])[0] == 1.0
    # A one-pixel object is a 1 x 1 box (area 1), not an empty one.
    assert box_iou([[5, 5, 5, 5]], [5, 5, 5, 5])[0] == 1.0


def test_touching_boxes() -> None:
    # Columns 0..9 and 10..19: adjacent, no shared pixel -> IoU 0.
    assert box_iou([[0, 0, 9, 9]], [10, 0, 19, 9])[0] == 0.0
    # Columns 0..10 and 10..20 share column 10: inter = 1 x 11 = 11, each area 11 x 11 = 121,
    # union = 121 + 121 - 11 = 231.
    assert box_iou([[0, 0, 10, 10]], [10, 0, 20, 10])[0] == pytest.approx(11 / 231, abs=1e-15)


def test_nested_partial_and_disjoint_boxes() -> None:
    # 10 x 10 = 100 pixels inside 20 x 20 = 400 -> 100 / 400.
    assert box_iou([[0, 0, 9, 9]], [0, 0, 19, 19])[0] == 0.25
    # Overlap rows/cols 5..9 -> 5 x 5 = 25; union = 100 + 100 - 25 = 175 -> 1/7.
    assert box_iou([[0, 0, 9, 9]], [5, 5, 14, 14])[0] == pytest.approx(1 / 7, abs=1e-15)
    assert box_iou([[0, 0, 4, 4]], [50, 50, 60, 60])[0] == 0.0


def test_corners_in_any_order_give_the_same_box() -> None:
    assert box_iou([[9, 9, 0, 0], [0, 9, 9, 0]], [0, 0, 9, 9]).tolist() == [1.0, 1.0]


def test_best_of_several_boxes_counts_and_no_box_scores_zero() -> None:
    # Against [0,0,19,19] (400 px): disjoint -> 0; nested 100 px -> 0.25; [5..14]^2 nested 100 px -> 0.25;
    # [0,0,14,14] nested 225 px -> 225/400 = 0.5625, the best.
    boxes = [[50, 50, 60, 60], [0, 0, 9, 9], [0, 0, 14, 14], [5, 5, 14, 14]]
    assert best_iou(boxes, [0, 0, 19, 19]) == 0.5625
    assert best_iou([], [0, 0, 19, 19]) == 0.0


def test_ciou_threshold_is_inclusive() -> None:
    # 0.5 and 1.0 reach the threshold, 0.49 and 0 do not -> 2 / 4.
    assert ciou([0.5, 0.49, 1.0, 0.0]) == 0.5
    assert ciou([0.4999999]) == 0.0


def test_auc_is_the_trapezoid_over_21_thresholds() -> None:
    assert AUC_THRESHOLDS.tolist() == pytest.approx([0.05 * i for i in range(21)])
    # All perfect: the success rate is 1 at every threshold -> area 1.
    assert auc([1.0, 1.0]) == pytest.approx(1.0)
    # IoU 0 still succeeds at threshold 0 (>=): one trapezoid (1 + 0) / 2 * 0.05 = 0.025.
    assert auc([0.0]) == pytest.approx(0.025)
    # IoU 0.5: rate 1 on 0..0.5 (10 full steps = 0.5) plus the step 0.5 -> 0.55 at half height (0.025).
    assert auc([0.5]) == pytest.approx(0.525)
    # IoU 0.26: rate 1 on 0..0.25 (5 steps = 0.25) + half step 0.025 = 0.275.
    assert auc([0.26]) == pytest.approx(0.275)
    # The curve is an average over samples, so the area is too: (0.525 + 1) / 2.
    assert auc([0.5, 1.0]) == pytest.approx(0.7625)


def test_success_rates_per_threshold() -> None:
    rates = success_rates([0.3, 0.7], np.array([0.0, 0.3, 0.5, 0.7, 0.9]))
    # 0 and 0.3: both reach; 0.5 and 0.7: only 0.7 reaches; 0.9: none.
    assert rates.tolist() == [1.0, 1.0, 0.5, 0.5, 0.0]
