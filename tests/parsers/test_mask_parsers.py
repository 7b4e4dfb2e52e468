"""Segmentation parsers (S4, MS3, Ref-AVS, AVSS): the maps in `ModelOutput.masks`, what is tolerated (docs/parsing.md)."""

from __future__ import annotations

import numpy as np
import pytest

from avbench.errors import ParseError
from avbench.masks import decode_map
from avbench.metrics.avss import NUM_CLASSES
from avbench.tasks.avsbench import MASK_TOKENS, MS3Task, S4Task
from avbench.tasks.avss import AVSSTask
from avbench.tasks.ref_avs import RefAVSTask
from avbench.types import ModelOutput

from parser_cases import avss_sample, frames_sample

S4, MS3, REF, AVSS = S4Task(), MS3Task(), RefAVSTask(), AVSSTask()
H = W = 224
#: Crab's answer text for a segmentation task: one block of six mask tokens per frame.
CRAB_TEXT = "The object making the sound in the video is guitar. " + " ".join(
    f"The mask of the object that makes the sound at the {n} second is {MASK_TOKENS}."
    for n in ("first", "second", "third", "fourth", "fifth"))


def left_half(dtype=bool) -> np.ndarray:
    mask = np.zeros((H, W), dtype=dtype)
    mask[:, : W // 2] = 1
    return mask


def decoded(parsed: dict) -> list[np.ndarray]:
    return [decode_map(m) for m in parsed["masks"]]


# ---- binary tasks --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task, n_frames", [(S4, 5), (MS3, 5), (REF, 10)])
def test_one_boolean_map_per_frame(task, n_frames) -> None:
    sample = frames_sample(task.name, n_frames)
    parsed = task.parse(ModelOutput(CRAB_TEXT, [left_half()] * n_frames), sample)
    assert all(np.array_equal(m, left_half()) for m in decoded(parsed))
    assert task.parsed_from_json(parsed, sample) == parsed


@pytest.mark.parametrize("raw, expected", [
    (left_half(np.uint8) * 255, left_half()),  # an 8-bit PNG-style mask
    (left_half(np.int64), left_half()),  # 0/1 integers
    (left_half()[None], left_half()),  # a (1, H, W) decoder output
    (left_half()[..., None], left_half()),  # (H, W, 1)
    (left_half(np.float64), left_half()),
    (left_half(np.float16), left_half()),
])
def test_binary_forms_are_read_as_the_same_mask(raw, expected) -> None:
    parsed = S4.parse(ModelOutput("", [raw] * 5), frames_sample("s4", 5))
    assert all(m.dtype == bool and np.array_equal(m, expected) for m in decoded(parsed))


def test_probabilities_nan_and_rounding_overshoot() -> None:
    prob = np.full((H, W), 0.25, np.float32)
    prob[0, 0] = np.nan  # read as 0: never above a threshold, as in the official code
    prob[0, 1] = 1.0004  # a bf16 sigmoid's rounding: clipped to 1
    prob[0, 2] = -0.0004  # clipped to 0
    maps = decoded(S4.parse(ModelOutput("", [prob] * 5), frames_sample("s4", 5)))
    # Stored as 8-bit probabilities: 0.25 -> 64 / 255.
    assert maps[0][0, 0] == 0.0 and maps[0][0, 1] == 1.0 and maps[0][0, 2] == 0.0
    assert maps[0][5, 5] == pytest.approx(64 / 255)


def test_a_map_of_another_size_is_kept_and_resized_when_scored() -> None:
    sample = frames_sample("s4", 5)
    small = np.zeros((56, 56), bool)
    small[:, :28] = True
    parsed = S4.parse(ModelOutput("", [small] * 5), sample)
    assert decoded(parsed)[0].shape == (56, 56)
    assert np.array_equal(S4.predicted_maps(parsed, 5)[0] > 0.5, left_half())


def test_a_stacked_array_works_as_the_list_of_maps() -> None:
    sample = frames_sample("s4", 5)
    stacked = np.stack([left_half()] * 5)  # (5, H, W)
    assert S4.parse(ModelOutput("", stacked), sample) == S4.parse(ModelOutput("", list(stacked)), sample)


@pytest.mark.parametrize("masks, reason", [
    (None, "no masks"),
    ([left_half()] * 4, "expected 5 maps"),
    ([left_half()] * 6, "expected 5 maps"),  # which frame each belongs to would be a guess
    (7, "must be a list"),
    ("mask", "must be a list"),
    ([np.linspace(-3, 4, H * W).reshape(H, W)] * 5, "outside \\[0, 1\\].*logits"),
    ([np.full((H, W), np.inf)] * 5, "infinite"),
    ([left_half(np.int64) * 3] * 5, "values other than 0/1"),
    ([left_half().astype(np.complex64)] * 5, "unsupported dtype"),
    ([np.zeros((2, H, W))] * 5, "2-D"),
    ([np.zeros((0, W))] * 5, "non-empty"),
    ([None] * 5, "not a numeric array"),
    ([[[0.1, 0.2], [0.3]]] * 5, "not an array"),  # ragged
])
def test_binary_failures_name_the_reason(masks, reason) -> None:
    with pytest.raises(ParseError, match=reason):
        S4.parse(ModelOutput(CRAB_TEXT, masks), frames_sample("s4", 5))


# ---- AVSS ----------------------------------------------------------------------------------------------------
def class_map(class_id: int, dtype=np.int64) -> np.ndarray:
    labels = np.zeros((H, W), dtype=dtype)
    labels[:, : W // 2] = class_id
    return labels


@pytest.mark.parametrize("n_maps", [5, 10])  # the real frames, or all 10 with the padding
def test_avss_class_id_maps(n_maps) -> None:
    sample = avss_sample(5)
    parsed = AVSS.parse(ModelOutput("", [class_map(7, np.uint8)] * n_maps), sample)
    assert all(m.dtype == np.int64 and np.array_equal(m, class_map(7)) for m in decoded(parsed))
    assert AVSS.parsed_from_json(parsed, sample) == parsed


def test_avss_class_scores_are_read_by_arg_max() -> None:
    scores = np.zeros((NUM_CLASSES, H, W), np.float32)
    scores[7, :, : W // 2] = 2.0  # class 7 wins on the left half, background (0, first of the ties) elsewhere
    scores[:, 0, 0] = np.nan
    scores[3, 0, 0] = -5.0  # the only number at pixel (0, 0): NaN scores never win
    parsed = AVSS.parse(ModelOutput("", [scores] * 5), avss_sample(5))
    expected = class_map(7)
    expected[0, 0] = 3
    assert np.array_equal(decoded(parsed)[0], expected)


def test_avss_singleton_axis_is_dropped() -> None:
    parsed = AVSS.parse(ModelOutput("", [class_map(2)[None]] * 5), avss_sample(5))
    assert np.array_equal(decoded(parsed)[0], class_map(2))


@pytest.mark.parametrize("masks, reason", [
    (None, "no masks"),
    ([class_map(1)] * 3, "expected 5 maps .* or 10"),
    ([class_map(1).astype(np.float32)] * 5, "integer class ids"),  # probabilities or ids? ambiguous
    ([left_half()] * 5, "integer class ids"),  # a binary mask names no class
    ([class_map(NUM_CLASSES)] * 5, "outside 0..70"),
    ([class_map(1) - 2] * 5, "outside 0..70"),
    ([np.zeros((2, 4, 4), np.int64)] * 5, "2-D"),
    ([np.full((NUM_CLASSES, 4, 4), np.nan, np.float32)] * 5, "all NaN"),
])
def test_avss_failures_name_the_reason(masks, reason) -> None:
    with pytest.raises(ParseError, match=reason):
        AVSS.parse(ModelOutput("", masks), avss_sample(5))
