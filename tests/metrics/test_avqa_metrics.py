"""MUSIC-AVQA accuracies on hand-computed cases (METRICS.md; MUSIC-AVQA main_avst.py:test)."""

import pytest

from avbench.metrics.avqa import answers_match, avqa_accuracies, normalize_answer, type_key
from avbench.vocab import AVQA_QUESTION_TYPES

T = {name: i for i, name in enumerate(AVQA_QUESTION_TYPES)}


@pytest.mark.parametrize("raw, canonical", [
    ("  Two ", "two"), ("2", "two"), ("02", "two"), ("10", "ten"), ("11", "more than ten"),
    ("Acoustic_Guitar", "acoustic guitar"), ("acoustic   guitar", "acoustic guitar"),
    ("The piano.", "piano"), ("Yes!", "yes"), ("more than ten", "more than ten"),
])
def test_normalize_answer(raw, canonical):
    assert normalize_answer(raw) == canonical


def test_answers_match_after_normalisation():
    assert answers_match(["2", "Piano", "left"], ["two", "piano", "right"]).tolist() == [True, True, False]


def test_type_key():
    assert type_key("Audio-Visual/Temporal") == "audio_visual_temporal"
    assert type_key("Visual/Location") == "visual_location"


def test_group_is_pooled_and_empty_groups_are_absent():
    correct = [1, 1, 0, 0, 1]
    types = [T["Audio/Counting"]] * 3 + [T["Audio/Comparative"], T["Visual/Location"]]
    result = avqa_accuracies(correct, types)
    assert result["audio_counting"] == pytest.approx(200 / 3)  # 2 of 3
    assert result["audio_comparative"] == 0.0  # 0 of 1
    # pooled: (2 + 0) / (3 + 1) = 50 %, not the mean of the sub-types (66.7 + 0) / 2 = 33.3 %
    assert result["audio"] == pytest.approx(50.0)
    assert result["visual"] == result["visual_location"] == 100.0
    assert result["avg"] == pytest.approx(60.0)  # 3 of 5
    assert "audio_visual" not in result and "visual_counting" not in result
    assert not any(key.startswith("audio_visual") for key in result)


def test_no_questions_no_numbers():
    assert avqa_accuracies([], []) == {}
