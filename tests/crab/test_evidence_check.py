"""tools/evidence_check.py: candidates per template, the pick and its accounting, and the likelihood it ranks by."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avbench.synthav import MANIFEST

TOOL = Path(__file__).resolve().parents[2] / "tools" / "evidence_check.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("avbench_tools_evidence_check", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def asked(tool, synthav_tiny: Path):
    return tool.questions(synthav_tiny, "val", 0)


def test_every_question_is_asked_with_its_template_and_the_answers_that_template_takes(tool, asked, synthav_tiny: Path) -> None:
    records, template, candidates = asked
    known = json.loads((synthav_tiny / MANIFEST).read_text())["music_avqa"]["questions"]
    val = {qid for qid, q in known.items() if q["split"] == "val"}
    assert {r.id.split("/", 1)[1] for r in records} == val
    for record in records:
        question = known[record.id.split("/", 1)[1]]
        assert template[record.id] == question["template"] and tool.answer_word(record) == question["answer"]
        assert record.answer.startswith("Seen from left to right: ")
        assert candidates[question["template"]] == sorted({q["answer"] for q in known.values() if q["template"] == question["template"]})
    assert len(tool.questions(synthav_tiny, "val", 2)[0]) == 2


def test_with_answer_swaps_only_the_tagged_answer(tool, asked) -> None:
    record = asked[0][0]
    swapped = tool.with_answer(record, "seven")
    assert swapped.answer == record.answer.replace(f"<answer>{tool.answer_word(record)}</answer>", "<answer>seven</answer>")
    assert tool.answer_word(swapped) == "seven" and swapped.id != record.id and swapped.media == record.media


def test_the_pick_is_the_most_likely_candidate_and_is_counted_per_template(tool, asked) -> None:
    records, template, candidates = asked
    truthful = tool.check(records, template, candidates, lambda r, options: [float(o == tool.answer_word(r)) for o in options])
    assert set(truthful["accuracy"].values()) == {100.0} and truthful["questions"]["all"] == len(records)

    # a model that always prefers the alphabetically last candidate: right exactly where the truth is last
    last = tool.check(records, template, candidates, lambda r, options: list(range(len(options))))
    by_hand = [tool.answer_word(r) == candidates[template[r.id]][-1] for r in records]
    assert last["accuracy"]["all"] == pytest.approx(100.0 * sum(by_hand) / len(records))
    per_template = {t: [h for r, h in zip(records, by_hand) if template[r.id] == t] for t in set(template.values())}
    for name, hits in per_template.items():
        assert last["questions"][name] == len(hits) and last["accuracy"][name] == pytest.approx(100.0 * sum(hits) / len(hits))
    assert sum(n for k, n in last["questions"].items() if k != "all") == len(records)
    assert all(last["picks"][r.id] == candidates[template[r.id]][-1] for r in records)


def test_the_score_is_the_answers_summed_log_likelihood(tool, asked, tiny_checkpoint: Path) -> None:
    from avbench.adapters.crab.adapter import CrabAdapter
    from avbench.adapters.crab.checkpoint import load_checkpoint
    from avbench.adapters.crab.prompts import IGNORE_INDEX
    from avbench.adapters.crab.training.data import ExampleBuilder, MediaCache

    record = asked[0][0]
    options = asked[2][asked[1][record.id]][:2]
    scores = tool.model_scorer(tiny_checkpoint, blank_media=False)(record, options)
    loaded = load_checkpoint(tiny_checkpoint)
    model = loaded.model.eval()
    builder = ExampleBuilder(loaded.tokenizer, model.config, MediaCache(CrabAdapter.media_spec))
    for option, score in zip(options, scores):
        inputs = builder.example(tool.with_answer(record, option)).inputs
        prepared = model.prepare_batch([inputs])
        with torch.no_grad():
            logits = model(prepared).logits[0]
        labels = prepared[0].labels
        log_probs = F.log_softmax(logits[:-1].float(), dim=-1)
        wanted = labels[1:] != IGNORE_INDEX
        by_hand = log_probs[wanted].gather(1, labels[1:][wanted][:, None]).sum().item()
        assert score == pytest.approx(by_hand, rel=1e-4)
    blank = tool.model_scorer(tiny_checkpoint, blank_media=True)(record, options)
    assert blank != scores  # the media reach the answer's likelihood


@pytest.fixture(scope="module")
def slots(tool, synthav_tiny: Path):
    return tool.name_slots(synthav_tiny, "val", 0)


def test_names_mode_asks_the_first_seen_and_heard_instrument_of_each_music_second(tool, slots, synthav_tiny: Path) -> None:
    from avbench.synthav.music_avqa import INSTRUMENTS

    records, slot, candidates = slots
    known = json.loads((synthav_tiny / MANIFEST).read_text())["music_avqa"]["videos"]
    val_seconds = sum(len(v["segments"]) for v in known.values() if v["split"] == "val")
    seconds = {r.id.rsplit("#", 1)[0] for r in records}
    assert 0 < len(seconds) <= val_seconds and all(r.task == "caption_second" and "/music_avqa/" in r.id for r in records)
    assert set(slot.values()) == {"first seen", "first heard"} and candidates == {s: sorted(INSTRUMENTS) for s in slot.values()}
    for record in records:
        name = tool.named(record)
        assert name in INSTRUMENTS and slot[record.id] == tool.slot_of(record)
        marker = "Seen: " if slot[record.id] == "first seen" else "Heard: "
        assert record.answer.split(marker, 1)[1].startswith(name)
        swapped = tool.with_name(record, "piccolo")
        before, after = record.answer.split(marker, 1)
        assert swapped.answer == before + marker + "piccolo" + after[len(name):]
        assert swapped.second == record.second and swapped.media == record.media
    assert len({r.id.rsplit("#", 1)[0] for r in tool.name_slots(synthav_tiny, "val", 3)[0]}) == 3


def test_names_mode_counts_a_pick_right_when_it_is_the_slots_name(tool, slots) -> None:
    records, slot, candidates = slots
    truthful = tool.check(records, slot, candidates, lambda r, options: [float(o == tool.named(r)) for o in options],
                          truth=tool.named)
    assert truthful["accuracy"]["all"] == 100.0
    first = tool.check(records, slot, candidates, lambda r, options: [-i for i in range(len(options))], truth=tool.named)
    by_hand = [tool.named(r) == candidates[slot[r.id]][0] for r in records]
    assert first["accuracy"]["all"] == pytest.approx(100.0 * sum(by_hand) / len(records))


def test_the_names_scorer_scores_the_answer_with_the_candidate_written_in(tool, slots, tiny_checkpoint: Path) -> None:
    record = slots[0][0]
    pair = tool.model_scorer(tiny_checkpoint, False, tool.with_name)(record, ["cello", "flute"])
    as_written = tool.model_scorer(tiny_checkpoint, False, lambda r, _: r)
    assert pair == [pytest.approx(as_written(tool.with_name(record, n), ["-"])[0], rel=1e-5) for n in ("cello", "flute")]
    assert pair[0] != pair[1]
