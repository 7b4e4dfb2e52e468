"""A modality-blind answer cannot exceed chance on the MUSIC-AVQA audio-visual items.

Scenes and questions come from the sampler alone (no rendering). For each sub-type we fit the
Bayes-optimal single-modality predictor -- the majority answer per (question text, view) -- on one
half and score it on the other. Instruments are drawn uniformly, so the question statistics are
symmetric under renaming them; we therefore key on the view with instruments renamed in order of
first mention (text, then view), which pools equivalent cases without losing information, and
lets the lookup see most keys. An unseen key falls back to the text-only majority.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

import pytest

from avbench.synthav import music_avqa
from avbench.synthav.common import rng_for

N_VIDEOS = 8000
CLASS_FIELD = {"audio": 0, "visual": 1}  # where the instrument name sits in a view row


def _canonical(values: list[str], view: list[list[Any]], answer: str, class_field: int) -> tuple[Any, Any, str]:
    names: dict[str, str] = {}

    def rename(name: str) -> str:
        return names.setdefault(name, f"I{len(names)}")

    text = tuple(rename(v) if v in music_avqa.INSTRUMENTS else v for v in values)
    rows = tuple(tuple(rename(x) if k == class_field else x for k, x in enumerate(row)) for row in view)
    if answer in music_avqa.INSTRUMENTS:
        answer = names.get(answer, "unnamed")
    return text, rows, answer


@pytest.fixture(scope="module")
def items() -> list[tuple[music_avqa.Question, list[list[Any]], list[list[Any]]]]:
    out = []
    for index in range(N_VIDEOS):
        video = music_avqa.sample_video(rng_for(0, "blindness", index), index, fourth_question=0.5)
        views = music_avqa.audio_view(video.instruments), music_avqa.visual_view(video.instruments)
        out.extend((q, *views) for q in video.questions)
    return out


def _single_view_accuracy(items: list[Any], subtype: str, modality: str) -> dict[str, float]:
    """Held-out accuracies of the view lookup and of the text-only majority, over all held-out
    items and over those whose (text, view) key occurs in the fitting half (`seen_*`)."""
    rows = []
    for k, (q, audio, visual) in enumerate(items):
        if q.subtype == subtype:
            view = audio if modality == "audio" else visual
            text, key, answer = _canonical(q.values, view, q.answer, CLASS_FIELD[modality])
            rows.append((k % 2 == 0, (q.template, text), key, answer))
    by_view: dict[Any, Counter] = defaultdict(Counter)
    by_text: dict[Any, Counter] = defaultdict(Counter)
    for fit, text, key, answer in rows:
        if fit:
            by_view[(text, key)][answer] += 1
            by_text[text][answer] += 1
    totals = Counter()
    for fit, text, key, answer in rows:
        if fit:
            continue
        text_guess = by_text[text].most_common(1)[0][0] if by_text[text] else None
        view_counts = by_view.get((text, key))
        guess = view_counts.most_common(1)[0][0] if view_counts else text_guess
        totals["n"] += 1
        totals["hits"] += guess == answer
        totals["base"] += text_guess == answer
        if view_counts:
            totals["seen_n"] += 1
            totals["seen_hits"] += guess == answer
            totals["seen_base"] += text_guess == answer
    return {
        "accuracy": totals["hits"] / totals["n"], "baseline": totals["base"] / totals["n"], "n": totals["n"],
        "seen_accuracy": totals["seen_hits"] / max(totals["seen_n"], 1),
        "seen_baseline": totals["seen_base"] / max(totals["seen_n"], 1), "seen_n": totals["seen_n"],
    }


def _margin(p: float, n: int) -> float:
    """Three binomial standard errors, plus a hair for the fitted baseline's own noise."""
    return 3 * math.sqrt(p * (1 - p) / n) + 0.01


AV_SUBTYPES = [f"Audio-Visual/{k}" for k in ("Existential", "Counting", "Location", "Comparative", "Temporal")]


@pytest.mark.parametrize("modality", ["audio", "visual"])
@pytest.mark.parametrize("subtype", AV_SUBTYPES)
def test_one_modality_cannot_beat_the_text_prior_on_audio_visual_items(items: list[Any], subtype: str, modality: str) -> None:
    r = _single_view_accuracy(items, subtype, modality)
    assert r["n"] > 600 and r["seen_n"] > 300
    # the question text alone is at chance too: yes/no and left/right(/middle) coins, counts 0..2 uniform
    chance = 1 / 3 if subtype.endswith("Counting") else 1 / 2
    assert r["baseline"] <= chance + _margin(chance, r["n"]), (subtype, r)
    assert r["accuracy"] <= r["baseline"] + _margin(r["baseline"], r["n"]), (subtype, modality, r)
    # also where the lookup had data for the key (no dilution by fallbacks to the text prior)
    assert r["seen_accuracy"] <= r["seen_baseline"] + _margin(r["seen_baseline"], r["seen_n"]), (subtype, modality, r)


@pytest.mark.parametrize(("subtype", "modality"), [
    ("Audio/Counting", "audio"), ("Audio/Comparative", "audio"),
    ("Visual/Counting", "visual"), ("Visual/Location", "visual"),
])
def test_the_same_predictor_solves_single_modality_items(items: list[Any], subtype: str, modality: str) -> None:
    """Power: the test above would notice a leak, since the same lookup solves these."""
    r = _single_view_accuracy(items, subtype, modality)
    assert r["seen_n"] > 0.4 * r["n"], r
    assert r["seen_accuracy"] >= 0.97 and r["seen_accuracy"] >= r["seen_baseline"] + 0.15, (subtype, r)


def test_both_views_together_determine_every_answer(items: list[Any]) -> None:
    """With both views the lookup is perfect: no (text, audio, visual) key has two answers."""
    answers: dict[Any, set[str]] = defaultdict(set)
    repeats = Counter()
    for q, audio, visual in items:
        # rename instruments jointly across both views (audio rows first, then visual rows)
        names: dict[str, str] = {}
        rename = lambda x: names.setdefault(x, f"I{len(names)}") if x in music_avqa.INSTRUMENTS else x  # noqa: E731
        key = (q.template, tuple(map(rename, q.values)),
               tuple(tuple(map(rename, r)) for r in audio), tuple(tuple(map(rename, r)) for r in visual))
        answers[key].add(rename(q.answer) if q.answer in music_avqa.INSTRUMENTS else q.answer)
        repeats[key] += 1
    assert all(len(a) == 1 for a in answers.values())
    # not vacuous: most items share their key with another item
    assert sum(c for c in repeats.values() if c > 1) > 0.5 * len(items)


def test_audio_visual_answers_are_balanced_over_the_answer_space(items: list[Any]) -> None:
    counts = Counter((q.kind, q.answer) for q, _, _ in items if q.modality == "Audio-Visual")
    # yes/no coins: existential, location, comparative; counting uniform over zero..two
    for kind in ("Existential", "Location", "Comparative"):
        yes, no = counts[(kind, "yes")], counts[(kind, "no")]
        assert abs(yes - no) < 4 * math.sqrt(yes + no), kind
    zero, one, two = (counts[("Counting", a)] for a in ("zero", "one", "two"))
    assert max(zero, one, two) - min(zero, one, two) < 4 * math.sqrt(zero + one + two)
