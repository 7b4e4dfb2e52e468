"""AVE segment accuracy on hand-computed cases (METRICS.md: pooled over all segments, background included)."""

import numpy as np
import pytest

from avbench.metrics.ave import correct_segments, segment_accuracy, segment_labels

BG = 28  # background id: after the 28 event classes


def test_segment_labels_mark_start_inclusive_end_exclusive():
    labels = segment_labels([7], [7], [10], background=BG)
    # event 7 on segments 7, 8, 9; background on 0..6
    assert labels.tolist() == [[BG] * 7 + [7] * 3]


def test_empty_range_is_all_background():
    # The release has one such row (0&0): no event segment at all.
    assert segment_labels([0], [0], [0], background=BG).tolist() == [[BG] * 10]


def test_correct_segments_counts_background_too():
    gt = segment_labels([7, 7], [7, 7], [10, 10], background=BG)
    pred = segment_labels([7, 2], [5, 7], [10, 10], background=BG)
    # video 0: right class on 5..9; segments 5, 6 are background in truth -> wrong; 0..4 and 7..9 right = 8
    # video 1: wrong class on 7..9 -> wrong; background 0..6 right = 7
    assert correct_segments(pred, gt).tolist() == [8, 7]


def test_accuracy_is_pooled_not_a_mean_of_videos():
    # 3/5 and 10/10 pooled = 13/15 = 86.67 %; a mean of ratios would give (60 + 100) / 2 = 80 %
    assert segment_accuracy(np.array([3, 10]), np.array([5, 10])) == pytest.approx(100 * 13 / 15)


def test_accuracy_of_nothing_is_nan():
    assert np.isnan(segment_accuracy(np.array([]), np.array([])))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        correct_segments(np.zeros((1, 10)), np.zeros((2, 10)))
