"""MUSIC-AVQA: audio-visual question answering on music videos. One sample = one question.

Data (docs/data-layout.md): `music_avqa/avqa-<split>.json`, a list of `{video_id, question_id, type,
question_content, templ_values, question_deleted, anser}` where `type` and `templ_values` are JSON
strings (`'["Audio-Visual", "Location"]'`, `'["violin"]'`). Point the folder at the release you want:
the original `json/` (test: 9,185 questions) or `json_update/` (test: 9,129).

- Question text: as in the official loader (MUSIC-AVQA `dataloader_avst.py`) the question is split on
  spaces and every word containing `<` is replaced by the next template value, in order (so
  `<Object>?` becomes the value; Crab then restores the final `?`). We do the same, turn the full-width
  `？` into `?` and end the question with `?`.
- `question_deleted`: 0 on every question of both releases; the official code never reads it and
  scores every question, so do we (the flag is kept in `meta`).
- The original release repeats 55 test question ids (same question, another answer): the first
  occurrence keeps the id as sample id, later ones get `#2`, `#3`, ... ; the official code scores both.

Output: `<answer>...</answer>` (the last one counts). Answers are compared after
`avbench.metrics.avqa.normalize_answer` (case, whitespace, `_`, "2" == "two"); an answer outside the
42 is not a parse error, just wrong. An output without the tag is a parse error, scored as wrong.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avbench.errors import DataError, ParseError
from avbench.metrics.avqa import avqa_accuracies, normalize_answer
from avbench.parsing import RepeatedIds
from avbench.task import Task
from avbench.types import ModelOutput, Sample, ScoredSample
from avbench.vocab import AVQA_ANSWERS, AVQA_QUESTION_TYPES

FIELDS = ("video_id", "question_id", "type", "question_content", "templ_values", "anser")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_ANSWER_BY_FORM = {normalize_answer(a): a for a in AVQA_ANSWERS}


def _canonical(text: str) -> str:
    """The release's spelling of a known answer (`acoustic guitar` -> `acoustic_guitar`), else normalised text."""
    form = normalize_answer(text)
    return _ANSWER_BY_FORM.get(form, form)


def fill_question(content: str, values: list[str]) -> str:
    """Question text from a template, filled as the official loader does (see the module docstring)."""
    words = content.replace("\uff1f", "?").strip().split()
    holes = [i for i, word in enumerate(words) if "<" in word]
    if len(holes) != len(values):
        raise ValueError(f"{len(holes)} placeholders but {len(values)} template values")
    for i, value in zip(holes, values):
        words[i] = str(value)
    question = " ".join(words)
    return question if question.endswith("?") else question + "?"


class MusicAVQATask(Task):
    name = "music_avqa"
    family = "spatiotemporal"
    dataset_dir = "music_avqa"
    primary_metric = "avg"
    table_metrics = ("audio", "visual", "audio_visual", "avg")
    description = "MUSIC-AVQA question answering: exact-match accuracy per question type (%)"

    # ---- data -------------------------------------------------------------------------------
    def load(self, data_root: Path, split: str) -> list[Sample]:
        if split not in self.splits:
            raise DataError(f"unknown split {split!r}; MUSIC-AVQA has {', '.join(self.splits)}")
        root = Path(data_root) / self.dataset_dir
        path = root / f"avqa-{split}.json"
        if not path.is_file():
            raise DataError("MUSIC-AVQA question file not found", path)
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON ({exc.msg})", path, exc.lineno) from None
        if not isinstance(entries, list):
            raise DataError("expected a JSON list of questions", path)
        unique_id = RepeatedIds()
        samples = []
        for index, entry in enumerate(entries):
            where = f"question #{index + 1}"
            if not isinstance(entry, dict) or any(f not in entry for f in FIELDS):
                raise DataError(f"{where}: expected the fields {', '.join(FIELDS)}", path)
            modality, kind = _json_list(entry["type"], 2, f"{where}: 'type'", path)
            question_type = f"{modality}/{kind}"
            if question_type not in AVQA_QUESTION_TYPES:
                raise DataError(f"{where}: unknown question type {question_type!r}", path)
            values = _json_list(entry["templ_values"], None, f"{where}: 'templ_values'", path)
            try:
                question = fill_question(str(entry["question_content"]), values)
            except ValueError as exc:
                raise DataError(f"{where} (id {entry['question_id']}): {exc}", path) from None
            question_id, video_id = str(entry["question_id"]), str(entry["video_id"])
            sample_id = unique_id(question_id)
            samples.append(Sample(
                id=sample_id, task=self.name, split=split,
                media={"video": str(root / "videos" / f"{video_id}.mp4"),
                       "audio": str(root / "audios" / f"{video_id}.wav")},
                inputs={"question": question},
                target={"answer": str(entry["anser"])},
                meta={"type": question_type, "modality": modality, "kind": kind, "video_id": video_id,
                      "question_id": entry["question_id"], "template": str(entry["question_content"]),
                      "question_deleted": entry.get("question_deleted", 0)},
            ))
        return samples

    # ---- prompting and parsing ----------------------------------------------------------------
    def build_prompt(self, sample: Sample) -> str:
        return (
            "This is a video:\n<video_start><video><video_end>\n"
            "This is an audio:\n<audio_start><audio><audio_end>\n"
            f"Please answer this question: {sample.inputs['question']}\n"
            "Explain briefly, then give the answer in one or a few words (an instrument, a number, "
            "yes/no, left/right/middle, ...) as <answer>...</answer>."
        )

    def parse(self, output: ModelOutput, sample: Sample) -> dict[str, str]:
        answers = _ANSWER_TAG.findall(output.text)
        if not answers or not normalize_answer(answers[-1]):
            raise ParseError("expected a non-empty <answer>...</answer>")
        return {"answer": _canonical(answers[-1])}

    def parsed_from_json(self, obj: Any, sample: Sample) -> dict[str, str]:
        if not isinstance(obj, dict) or not isinstance(obj.get("answer"), str) or not normalize_answer(obj["answer"]):
            raise ParseError('expected {"answer": non-empty string}')
        return {"answer": _canonical(obj["answer"])}

    # ---- scoring --------------------------------------------------------------------------------
    def score(self, sample: Sample, parsed: dict[str, str] | None) -> ScoredSample:
        correct = parsed is not None and normalize_answer(parsed["answer"]) == normalize_answer(sample.target["answer"])
        return ScoredSample(summary={"correct": float(correct)},
                            stats=(int(correct), AVQA_QUESTION_TYPES.index(sample.meta["type"])))

    def aggregate(self, samples: Sequence[Sample], stats: Sequence[Any]) -> dict[str, float]:
        pairs = np.asarray(stats, dtype=np.int64).reshape(-1, 2)
        return avqa_accuracies(pairs[:, 0], pairs[:, 1])

    # ---- baseline support -----------------------------------------------------------------------
    def reference_output(self, sample: Sample) -> ModelOutput:
        return ModelOutput(text=f"So the answer is <answer>{sample.target['answer']}</answer>.")

    def random_output(self, sample: Sample, rng: np.random.Generator) -> ModelOutput:
        return ModelOutput(text=f"<answer>{AVQA_ANSWERS[int(rng.integers(len(AVQA_ANSWERS)))]}</answer>")

    def fit_prior(self, train_samples: Sequence[Sample]) -> dict[str, Any]:
        """Majority train answer per question template (the unfilled `question_content`), falling back to
        the majority of the sub-type, then of all questions: a text-only prior that sees no media."""
        if not train_samples:
            raise DataError("cannot fit the MUSIC-AVQA prior on an empty train split")
        by_template: dict[str, Counter[str]] = defaultdict(Counter)
        by_type: dict[str, Counter[str]] = defaultdict(Counter)
        overall: Counter[str] = Counter()
        for sample in train_samples:
            answer = _canonical(sample.target["answer"])
            by_template[_template_key(sample)][answer] += 1
            by_type[sample.meta["type"]][answer] += 1
            overall[answer] += 1
        return {"template": {k: _majority(c) for k, c in sorted(by_template.items())},
                "type": {k: _majority(c) for k, c in sorted(by_type.items())},
                "overall": _majority(overall)}

    def prior_output(self, prior: dict[str, Any], sample: Sample) -> ModelOutput:
        answer = prior["template"].get(_template_key(sample)) or prior["type"].get(sample.meta["type"]) \
            or prior["overall"]
        return ModelOutput(text=f"<answer>{answer}</answer>")


def _majority(counts: Counter[str]) -> str:
    """Most frequent answer; ties go to the alphabetically first, so the prior does not depend on order."""
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]


def _template_key(sample: Sample) -> str:
    return sample.meta["type"] + "|" + " ".join(sample.meta["template"].replace("\uff1f", "?").split())


def _json_list(value: Any, length: int | None, what: str, path: Path) -> list[str]:
    """The release stores lists as JSON strings; accept a real list too."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{what} is not a JSON list: {value!r}", path) from None
    if not isinstance(value, list) or (length is not None and len(value) != length):
        raise DataError(f"{what} must be a list{f' of {length}' if length else ''}, got {value!r}", path)
    return [str(v) for v in value]
