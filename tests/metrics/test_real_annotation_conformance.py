"""The metrics equal the official loops on the real annotation files (../shared/avdata), with
deterministic perturbations of the ground truth as predictions.

The annotation files are read here directly, in the official code's own way (not through the task
loaders), so these tests pin the metric arithmetic on the real data distribution: 1,200 AVVP test
videos (121 without visual rows), the 402 AVE test videos, the 9,129 MUSIC-AVQA test questions.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from avbench.metrics.ave import correct_segments, segment_accuracy, segment_labels
from avbench.metrics.avqa import answers_match, avqa_accuracies
from avbench.metrics.avvp import avvp_scores, unit_counts
from avbench.vocab import AVE_EVENTS, AVQA_ANSWERS, AVQA_QUESTION_TYPES, LLP_CLASSES
from metrics.official_reference import ave_accuracy, avqa_test, avvp_eval


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def avvp_truth(avdata: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    return read_avvp_truth(avdata)


def read_avvp_truth(avdata: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Test ids and (N, 25, 10) audio / visual ground truth, built as `main_avvp.py:eval` does."""
    ids = [row["filename"] for row in _tsv(avdata / "avvp" / "AVVP_test_pd.csv")]
    index = {name: i for i, name in enumerate(ids)}
    class_index = {name: i for i, name in enumerate(LLP_CLASSES)}
    truth = []
    for file_name in ("AVVP_eval_audio.csv", "AVVP_eval_visual.csv"):
        gt = np.zeros((len(ids), len(LLP_CLASSES), 10), dtype=np.int64)
        for row in _tsv(avdata / "avvp" / file_name):
            if row["filename"] in index:
                # GT[idx, int(onset):int(offset)] = 1, as the official loop
                gt[index[row["filename"]], class_index[row["event_labels"]], int(float(row["onset"])):int(float(row["offset"]))] = 1
        truth.append(gt)
    return ids, truth[0], truth[1]


def perturb_events(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Video i: exact (i % 4 == 0), shifted later by one segment, one annotated class dropped, or one
    random event added (a run of a random class)."""
    pred = gt.copy()
    for i in range(len(pred)):
        kind = i % 4
        if kind == 1:
            pred[i] = np.roll(pred[i], 1, axis=1)
            pred[i][:, 0] = 0  # a shift, not a rotation
        elif kind == 2:
            present = np.flatnonzero(pred[i].any(axis=1))
            if len(present):
                pred[i][rng.choice(present)] = 0
        elif kind == 3:
            start = int(rng.integers(0, 9))
            pred[i][int(rng.integers(0, 25)), start : start + int(rng.integers(1, 11 - start))] = 1
    return pred


def test_avvp_on_the_full_test_set_with_perturbed_predictions(avvp_truth) -> None:
    ids, gt_a, gt_v = avvp_truth
    assert len(ids) == 1200
    assert int((gt_v.reshape(1200, -1).sum(1) == 0).sum()) == 121  # videos without visual rows
    rng = np.random.default_rng(0)
    pred_a, pred_v = perturb_events(gt_a, rng), perturb_events(gt_v[::-1], rng)[::-1]
    fast = avvp_scores(unit_counts(pred_a, pred_v, gt_a, gt_v))
    reference = avvp_eval(list(zip(pred_a, pred_v, gt_a, gt_v)))
    assert set(fast) == set(reference)
    for key, value in reference.items():
        assert fast[key] == pytest.approx(value, abs=1e-6 * 100, rel=0), key
    # the perturbations cost something, and the ground truth itself scores 100 everywhere
    assert 40 < fast["segment_avg"] < 99
    perfect = avvp_scores(unit_counts(gt_a, gt_v, gt_a, gt_v))
    assert all(v == pytest.approx(100.0) for v in perfect.values())


def test_ave_on_the_test_split_with_perturbed_predictions(avdata: Path) -> None:
    rows = [line.split("&") for line in (avdata / "ave" / "Annotations.txt").read_text(encoding="utf-8").splitlines() if line]
    with h5py.File(avdata / "ave" / "test_order.h5", "r") as handle:
        order = np.asarray(handle["order"])
    assert len(order) == 402
    test = [rows[i] for i in order]
    event_id = {name: i for i, name in enumerate(AVE_EVENTS)}
    classes = np.array([event_id[r[0]] for r in test])
    starts, ends = np.array([int(r[3]) for r in test]), np.array([int(r[4]) for r in test])
    gt = segment_labels(classes, starts, ends, background=len(AVE_EVENTS))
    rng = np.random.default_rng(1)
    kind = np.arange(len(test)) % 3
    pred_classes = np.where(kind == 2, (classes + 1 + rng.integers(0, 27, len(test))) % 28, classes)  # wrong class
    pred_starts = np.where(kind == 1, np.clip(starts + 1, 0, 10), starts)  # late start
    pred_ends = np.where(kind == 1, np.clip(ends + 1, 0, 10), ends)
    pred = segment_labels(pred_classes, pred_starts, pred_ends, background=len(AVE_EVENTS))
    fast = segment_accuracy(correct_segments(pred, gt), np.full(len(test), 10))
    assert fast == pytest.approx(ave_accuracy(pred.tolist(), gt.tolist()), abs=1e-9)
    assert 40 < fast < 95


def test_music_avqa_on_the_test_questions_with_perturbed_answers(avdata: Path) -> None:
    questions = json.loads((avdata / "music_avqa" / "json_update" / "avqa-test.json").read_text(encoding="utf-8"))
    assert len(questions) == 9129
    types = [tuple(json.loads(q["type"])) for q in questions]
    target = [q["anser"] for q in questions]
    rng = np.random.default_rng(2)
    digits = {word: str(i) for i, word in enumerate(AVQA_ANSWERS[2:13])}  # "zero".."ten" -> "0".."10"
    written, meant = [], []
    for i, answer in enumerate(target):
        kind = i % 5
        if kind == 0:
            written.append(answer)
            meant.append(answer)
        elif kind == 1:  # case, spacing, underscores as spaces, end punctuation
            written.append("  The " + answer.upper().replace("_", " ") + ". ")
            meant.append(answer)
        elif kind == 2:  # a digit for a number word (else unchanged)
            written.append(digits.get(answer, answer))
            meant.append(answer)
        else:  # a wrong answer from the 42
            wrong = AVQA_ANSWERS[(AVQA_ANSWERS.index(answer) + 1 + int(rng.integers(0, 41))) % 42]
            written.append(wrong)
            meant.append(wrong)
    type_ids = np.array([AVQA_QUESTION_TYPES.index("/".join(t)) for t in types])
    fast = avqa_accuracies(answers_match(np.array(written, dtype=object), np.array(target, dtype=object)), type_ids)
    answer_index = {a: i for i, a in enumerate(AVQA_ANSWERS)}
    reference = avqa_test([answer_index[a] for a in meant], [answer_index[a] for a in target], types)
    assert set(fast) == set(reference) and len(fast) == 13
    for key, value in reference.items():
        assert fast[key] == pytest.approx(value, abs=1e-6 * 100, rel=0), key
    assert fast["avg"] == pytest.approx(60.0, abs=0.5)  # 3 of every 5 answers mean the truth
