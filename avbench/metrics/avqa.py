"""MUSIC-AVQA accuracy: exact match per sub-type, per modality group (pooled) and overall (pooled).

Official reference: GeWu-Lab/MUSIC-AVQA `net_grd_avst/main_avst.py:test` — each question's 0/1
correctness is appended to the list of its (modality, kind) sub-type; a sub-type's accuracy is the
mean of its list, a modality group's accuracy is the sum of its sub-types' correct answers over the
sum of their sizes (pooled, not a mean of sub-type accuracies), and "Avg" is over all questions.
The official code divides by zero on an empty group; here an empty group or sub-type is absent
from the result.

Answers are compared after `normalize_answer` (case, whitespace, `_`, digits vs number words).
"""

from __future__ import annotations

import re

import numpy as np

from avbench.vocab import AVQA_NUMBERS, AVQA_QUESTION_TYPES

#: Modality groups as the metric names them, in the order of AVQA_QUESTION_TYPES' prefixes.
MODALITY_KEYS: dict[str, str] = {"Audio": "audio", "Visual": "visual", "Audio-Visual": "audio_visual"}
OVERALL_KEY = "avg"

_WORD_OF_NUMBER = {str(i): word for i, word in enumerate(AVQA_NUMBERS)}
_MORE_THAN_TEN = "more than ten"


def type_key(question_type: str) -> str:
    """'Audio-Visual/Temporal' -> 'audio_visual_temporal' (the metric name of a sub-type)."""
    modality, kind = question_type.split("/")
    return f"{MODALITY_KEYS[modality]}_{kind.lower()}"


def normalize_answer(text: str) -> str:
    """Canonical form for matching: lower case, `_`/`-` as spaces, single spaces, no end punctuation,
    no leading article; a bare integer becomes its number word ("2" -> "two"), above ten "more than ten"."""
    text = text.strip().lower().replace("_", " ").replace("-", " ")
    text = re.sub(r"\s+", " ", text).strip(" .,!;:\"'")
    text = re.sub(r"^(the|a|an) ", "", text)
    if text.isdigit():
        return _WORD_OF_NUMBER.get(str(int(text)), _MORE_THAN_TEN)
    return text


def answers_match(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Element-wise exact match of normalised answers: (N,) bool."""
    pred, target = np.asarray(pred, dtype=object), np.asarray(target, dtype=object)
    return np.array([normalize_answer(p) == normalize_answer(t) for p, t in zip(pred, target)], dtype=bool)


def unit_values(correct: np.ndarray, type_ids: np.ndarray) -> np.ndarray:
    """Per question: one-hot of its sub-type times its correctness, then the one-hot itself: (N, 2T)
    with T = len(AVQA_QUESTION_TYPES). Column sums are (right answers, questions) per sub-type."""
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    type_ids = np.asarray(type_ids, dtype=np.int64).reshape(-1)
    one_hot = np.zeros((len(type_ids), len(AVQA_QUESTION_TYPES)))
    one_hot[np.arange(len(type_ids)), type_ids] = 1.0
    return np.concatenate([one_hot * correct[:, None], one_hot], axis=1)


def avqa_accuracies_of_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Percent accuracies from column sums (B, 2T) of `unit_values` rows: name -> (B,) values, NaN where
    a sub-type or group has no question in that row. Keys as `avqa_accuracies`, all of them."""
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    n_types = len(AVQA_QUESTION_TYPES)
    right, asked = sums[:, :n_types], sums[:, n_types:]

    def ratio(r: np.ndarray, a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, 100.0 * r / a, np.nan)

    result = {type_key(name): ratio(right[:, t], asked[:, t]) for t, name in enumerate(AVQA_QUESTION_TYPES)}
    modality_of = np.array([name.split("/")[0] for name in AVQA_QUESTION_TYPES])
    for modality, key in MODALITY_KEYS.items():
        members = modality_of == modality
        # Pooled over the group's questions, as the official print of "Audio Accuracy" etc.
        result[key] = ratio(right[:, members].sum(axis=1), asked[:, members].sum(axis=1))
    result[OVERALL_KEY] = ratio(right.sum(axis=1), asked.sum(axis=1))
    return result


def avqa_accuracies(correct: np.ndarray, type_ids: np.ndarray) -> dict[str, float]:
    """Percent accuracies from per-question correctness and sub-type index into AVQA_QUESTION_TYPES.

    Keys: one per non-empty sub-type (`audio_counting`, ...), one per non-empty modality group
    (`audio`, `visual`, `audio_visual`) and `avg` (absent when there are no questions).
    """
    sums = unit_values(correct, type_ids).sum(axis=0)
    return {name: float(v[0]) for name, v in avqa_accuracies_of_sums(sums).items() if not np.isnan(v[0])}
