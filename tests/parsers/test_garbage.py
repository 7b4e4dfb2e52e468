"""Garbage through every task's parser: a ParseError with a short reason, or a valid prediction; never a crash.

Property-style: seeded random strings built from tag fragments, numbers, class names and junk, plus
hand-picked pathological outputs (empty, binary, 100 KB, nested tags, code blocks, only reasoning).
Every successful parse must also survive the predictions file: JSON and back through
`parsed_from_json` unchanged (so `avbench score` gives `avbench run`'s numbers).
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
import torch

from avbench.errors import ParseError
from avbench.scoring import parse_output
from avbench.task import Task
from avbench.tasks.arig import ARIGTask
from avbench.tasks.ave import AVETask
from avbench.tasks.avsbench import MASK_TOKENS, MS3Task, S4Task
from avbench.tasks.avss import AVSSTask
from avbench.tasks.avvp import AVVPTask
from avbench.tasks.music_avqa import MusicAVQATask
from avbench.tasks.ref_avs import RefAVSTask
from avbench.types import ModelOutput, Sample

from parser_cases import arig_sample, ave_sample, avqa_sample, avss_sample, avvp_sample, frames_sample

TASKS: list[tuple[Task, Sample]] = [
    (AVETask(), ave_sample()), (AVVPTask(), avvp_sample()), (MusicAVQATask(), avqa_sample()),
    (ARIGTask(), arig_sample()), (S4Task(), frames_sample("s4", 5)), (MS3Task(), frames_sample("ms3", 5)),
    (AVSSTask(), avss_sample(5)), (RefAVSTask(), frames_sample("ref_avs", 10)),
]
IDS = [task.name for task, _ in TASKS]

FRAGMENTS = [
    "<event>", "</event>", "<range>", "</range>", "<audio>", "</audio>", "<visual>", "</visual>", "<audio_event>",
    "</visual_event>", "<answer>", "</answer>", "<obj>", "</obj>", "< /answer >", "<\\obj>", "</s>", "<unk>",
    "<audio_start>", "<audio_end>", MASK_TOKENS, "<mask_0>", "<", ">", "/", "(", ")", "[", "]", ",", ";", ":", "-", "~",
    " ", "\n", "\t", "0", "1", "3", "8", "10", "12", "-1", "2.5", "224", "1000", "1e9", "x1", "yes", "no", "two",
    "Dog", "dog barking", "Violin, fiddle", "Speech", "Bark", "Accordian", "Frying (food)", "acoustic_guitar", "none",
    "**", "`", "```", '"', "\u201c", "\uff1c", "\uff08", "\uff0c", "\u2212", "\u200b", "\x00", "\ufffd", "\ud800",
    "more than ten", "to", "and", "the answer is",
]


def random_text(rng: random.Random) -> str:
    pieces = []
    for _ in range(rng.randint(0, 40)):
        if rng.random() < 0.15:
            pieces.append(chr(rng.randint(0, 0x2FFFF)))  # any code point, lone surrogates included
        else:
            pieces.append(rng.choice(FRAGMENTS))
    return "".join(pieces)


PATHOLOGICAL = [
    "",
    " \n\t ",
    bytes(range(256)).decode("latin-1"),
    "".join(chr(c) for c in range(0xD800, 0xD810)),  # lone surrogates
    "Let me think step by step. " * 4000,  # ~100 KB of reasoning and no tag
    "<answer>" + "a" * 100_000,
    "<event>" + "Bark " * 20_000 + "</event><range>0,1</range>",
    "<" * 100_000,
    "<answer>" * 20_000,
    "<obj>" + "(1,2)" * 20_000 + "</obj>",
    "<audio>" + "Dog,(0 1)" * 10_000 + "</audio>",
    "<audio>" + "(" * 50_000 + "</audio>",
    "<answer><answer><answer>yes</answer></answer></answer>",
    "<event><range>0,3</range></event>",
    "```xml\n<answer>...</answer>\n<event>event name</event><range>start,end</range>\n<obj>(x1,y1)(x2,y2)</obj>\n```",
    "I cannot determine this from the video and audio provided.",
    "<audio_start><audio><audio_end><video_start><video><video_end>",
    "<range>99999999999999999999999999,1</range><event>Bark</event>",
    "<obj>(" + "9" * 400 + ",1)(2,3)</obj>",
    "<answer>\u0000\u0000</answer>",
]


def check(task: Task, sample: Sample, output: ModelOutput) -> Any | None:
    """Parse directly (only ParseError may come out) and through parse_output (the failure is recorded)."""
    try:
        parsed = task.parse(output, sample)
    except ParseError as exc:
        reason = str(exc)
        assert reason and len(reason) < 300 and "\n" not in reason, reason
        recorded = parse_output(task, sample, output)
        assert not recorded.ok and recorded.parse_error == reason
        return None
    # A prediction must survive the predictions file unchanged.
    again = task.parsed_from_json(json.loads(json.dumps(parsed)), sample)
    assert again == parsed
    assert parse_output(task, sample, output).parsed == parsed
    return parsed


@pytest.mark.parametrize("task, sample", TASKS, ids=IDS)
def test_random_text_never_crashes(task: Task, sample: Sample) -> None:
    rng = random.Random(f"garbage-{task.name}")
    outcomes = [check(task, sample, ModelOutput(random_text(rng))) for _ in range(300)]
    if task.output_kind == "text":
        # The fragments make some valid answers too, so both paths are exercised.
        assert any(o is None for o in outcomes)


@pytest.mark.parametrize("task, sample", TASKS, ids=IDS)
@pytest.mark.parametrize("case", range(len(PATHOLOGICAL)))
def test_pathological_text_never_crashes(task: Task, sample: Sample, case: int) -> None:
    check(task, sample, ModelOutput(PATHOLOGICAL[case]))


VALID_ANSWERS = {
    "ave": "So the event is <event>Bark</event>, and the time range is <range>2,6</range>.",
    "avvp": "Thus <audio>Dog,(2 5)</audio> and <visual>Dog,(0 10); Speech,(1 3)</visual>",
    "music_avqa": "So the answer is <answer>two</answer>.",
    "arig": "Its coordinates are <obj>(20,60)(39,99)</obj>.",
}


def mutate(text: str, rng: random.Random) -> str:
    """1-4 random edits: delete a span, insert a fragment, duplicate a span, truncate, change case."""
    for _ in range(rng.randint(1, 4)):
        i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
        op = rng.randrange(5)
        if op == 0:
            text = text[:i] + text[j:]
        elif op == 1:
            text = text[:i] + rng.choice(FRAGMENTS) + text[i:]
        elif op == 2:
            text = text[:j] + text[i:j] + text[j:]
        elif op == 3:
            text = text[:j]
        else:
            text = text[:i] + text[i:j].swapcase() + text[j:]
        if not text:
            break
    return text


@pytest.mark.parametrize("task, sample", [t for t in TASKS if t[0].name in VALID_ANSWERS], ids=list(VALID_ANSWERS))
def test_mutated_answers_never_crash(task: Task, sample: Sample) -> None:
    # Edits of a valid answer reach the deeper paths (numbers, names, ranges) that random text rarely does.
    rng = random.Random(f"mutate-{task.name}")
    outcomes = [check(task, sample, ModelOutput(mutate(VALID_ANSWERS[task.name], rng))) for _ in range(300)]
    n_valid = sum(o is not None for o in outcomes)
    assert 0 < n_valid < len(outcomes)


def test_some_random_text_is_a_valid_answer() -> None:
    # Not just failures: random fragments do assemble valid AVQA answers, and those round-trip.
    rng = random.Random("garbage-valid")
    task, sample = MusicAVQATask(), avqa_sample()
    parsed = [check(task, sample, ModelOutput(f"<answer>{random_text(rng)}</answer>")) for _ in range(200)]
    assert sum(p is not None for p in parsed) > 50


def random_map(rng: np.random.Generator) -> Any:
    kind = int(rng.integers(12))
    shape = tuple(int(v) for v in rng.integers(0, 6, size=int(rng.integers(0, 4))))
    if kind == 0:
        return None
    if kind == 1:
        return "mask"
    if kind == 2:
        return {"size": [2, 2]}
    if kind == 3:
        return [[0.5, 0.2], [0.1]]  # ragged
    if kind == 4:
        return rng.normal(size=shape)  # any shape, logits
    if kind == 5:
        return rng.integers(-3, 300, size=shape)
    if kind == 6:
        return np.full((8, 8), np.nan)
    if kind == 7:
        return torch.rand(1, 8, 8, dtype=torch.bfloat16)  # numpy cannot read bf16
    if kind == 8:
        return torch.rand(1, 8, 8)
    if kind == 9:
        return rng.normal(size=(71, 4, 4)).astype(np.float32)
    if kind == 10:
        return rng.random((8, 8)) > 0.5
    return np.array([1 + 2j])


@pytest.mark.parametrize("task, sample", [t for t in TASKS if t[0].output_kind == "mask"], ids=["s4", "ms3", "avss", "ref_avs"])
def test_random_masks_never_crash(task: Task, sample: Sample) -> None:
    rng = np.random.default_rng(0)
    n_frames = len(sample.media["frames"])
    for _ in range(150):
        count = int(rng.choice([0, 1, n_frames, n_frames, n_frames, 10, 11]))
        masks: Any = [random_map(rng) for _ in range(count)]
        if rng.random() < 0.1:
            masks = random_map(rng)  # not a list at all
        check(task, sample, ModelOutput(random_text(random.Random(int(rng.integers(1 << 30)))), masks))
