"""MUSIC-AVQA: audio-visual question answering on music videos. One sample = one question.

Data (docs/data-layout.md): `music_avqa/avqa-<split>.json`, a list of `{video_id, question_id, type,
question_content, templ_values, question_deleted, anser}` where `type` and `templ_values` are JSON
strings (`'["Audio-Visual", "Location"]'`, `'["violin"]'`). The release's two versions may sit in
their own sub-folders, picked by the task option `version`: `json_update/` ("updated", the default:
test 9,129 questions, what Crab reports on) or `json/` ("original": test 9,185); files placed directly
in `music_avqa/` are read whatever their version (avbench.datasets.music_avqa).

- Question text: as in the official loader (MUSIC-AVQA `dataloader_avst.py`) the question is split on
  spaces and every word containing `<` is replaced by the next template value, in order (so
  `<Object>?` becomes the value; Crab then restores the final `?`). We do the same, turn the full-width
  `？` into `?` and end the question with `?`.
- `question_deleted`: 0 on every question of both releases; the official code never reads it and
  scores every question, so do we (the flag is kept in `meta`).
- The original release repeats 55 test question ids (same question, another answer): the first
  occurrence keeps the id as sample id, later ones get `#2`, `#3`, ... ; the official code scores both.

Output: `<answer>...</answer>` (the last one counts; a missing closing tag ends the value at the next
tag or line break). Answers are compared after `avbench.metrics.avqa.normalize_answer` (case,
whitespace, `_`, "2" == "two"); `_canonical` maps a few unambiguous longer forms onto the 42 ("Yes, it
is", "two violins"). An answer outside the 42 is not a parse error, just wrong. An output without the
tag, an empty tag, or prose over 100 characters in it is a parse error, scored as wrong (docs/parsing.md).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avbench.datasets.layout import AUDIO_SUFFIXES, VIDEO_SUFFIXES, MediaIndex, dataset_folder
from avbench.datasets.music_avqa import check_version, question_file
from avbench.errors import DataError, ParseError, read_json
from avbench.metrics.avqa import avqa_accuracies, avqa_accuracies_of_sums, normalize_answer
from avbench.metrics.avqa import unit_values as avqa_unit_values
from avbench.parsing import RepeatedIds, clean_value, last_tag, normalize_text
from avbench.task import Task
from avbench.types import ModelOutput, Sample, ScoredSample, UnitSums
from avbench.vocab import AVQA_ANSWERS, AVQA_NUMBERS, AVQA_QUESTION_TYPES

FIELDS = ("video_id", "question_id", "type", "question_content", "templ_values", "anser")
_ANSWER_BY_FORM = {normalize_answer(a): a for a in AVQA_ANSWERS}
#: Longest text kept as an answer: the longest of the 42 is 15 characters; longer is prose, not an answer.
MAX_ANSWER_CHARS = 100
_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\s*(?:is\b|:)\s*", re.IGNORECASE)
_YES_NO = re.compile(r"^(yes|yeah|yep|yup|no|nope)(?:[\s,;:!.].*)?$")
_NUMBER_WORDS = {word: value for value, word in enumerate(AVQA_NUMBERS)} | {
    word: 11 + i for i, word in enumerate(("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                                           "seventeen", "eighteen", "nineteen", "twenty"))}
_LEADING_NUMBER = re.compile(r"^(\d+|[a-z]+)((?: [a-z]+){0,2})$")
#: Words after a number that make it more than "N things" ("two or three", "one on the left").
_NOT_A_NOUN = frozenset({"or", "and", "to", "more", "than", "of", "on", "in", "at", "is", "are", "the", *_NUMBER_WORDS})


def _canonical(text: str) -> str:
    """The release's spelling of the answer `text` gives, else its normalised text (then simply wrong).

    After `normalize_answer` (case, `_`/`-`, spacing, end punctuation, a leading article, "2" == "two"),
    only forms that say one of the 42 unambiguously are mapped onto it: markdown and quotes around the
    value, an "answer:" prefix, a yes/no followed by more words ("Yes, it is" -> yes), a number
    followed by one or two nouns ("two violins" -> two; "11", "eleven" -> more than ten), "more than
    10". No spelling correction: the official model picks one of the 42 answers, so anything else is
    a wrong answer, not a parse failure.
    """
    form = _PREFIX.sub("", clean_value(normalize_text(text)))
    for _ in range(4):  # until stable: dropping an article can expose quotes, and so on
        form, previous = normalize_answer(clean_value(form)), form
        if form == previous:
            break
    if not form:
        raise ParseError("empty answer")
    if len(form) > MAX_ANSWER_CHARS:
        raise ParseError(f"a {len(form)}-character answer is prose, not one of the short MUSIC-AVQA answers")
    if form in _ANSWER_BY_FORM:
        return _ANSWER_BY_FORM[form]
    yes_no = _YES_NO.match(form)
    if yes_no:
        return "no" if yes_no.group(1) in ("no", "nope") else "yes"
    if re.fullmatch(r"more than (?:10|ten)", form):
        return "more than ten"
    number = _LEADING_NUMBER.match(form)
    rest = number.group(2).split() if number else []
    if number and not _NOT_A_NOUN.intersection(rest):
        head = number.group(1)
        value_of = int(head) if head.isdigit() else _NUMBER_WORDS.get(head)
        if value_of is not None:
            return AVQA_NUMBERS[value_of] if value_of <= 10 else "more than ten"
    return form


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

    def __init__(self, version: str = "updated"):
        #: Which question files: "updated" (json_update/, test 9,129; what Crab reports) or "original" (json/, 9,185).
        self.version = check_version(version)

    def variants(self) -> dict[str, str]:
        return {"questions": self.version}

    # ---- data -------------------------------------------------------------------------------
    def annotation_files(self, data_root: Path, split: str) -> list[Path]:
        return [question_file(dataset_folder(data_root, "music_avqa"), split, self.version)]

    def load(self, data_root: Path, split: str) -> list[Sample]:
        if split not in self.splits:
            raise DataError(f"unknown split {split!r}; MUSIC-AVQA has {', '.join(self.splits)}")
        root = dataset_folder(data_root, "music_avqa")
        path = question_file(root, split, self.version)
        if not path.is_file():
            raise DataError(f"MUSIC-AVQA question file not found ({self.version} version; "
                            "--task-option music_avqa.version=original|updated)", path)
        # Media by video_id: videos/ and audios/ (conventional), or the release's folder names.
        videos = MediaIndex([root / "videos", root / "MUSIC-AVQA-videos-Real", root / "video"], VIDEO_SUFFIXES)
        audios = MediaIndex([root / "audios", root / "audio"], AUDIO_SUFFIXES)
        entries = read_json(path)
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
                media={"video": videos.path(video_id), "audio": audios.path(video_id)},
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
        answer = last_tag(normalize_text(output.text), ("answer",), "<answer>...</answer>")
        return {"answer": _canonical(answer.body)}

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

    def unit_sums(self, samples: Sequence[Sample], stats: Sequence[Any]) -> UnitSums:
        pairs = np.asarray(stats, dtype=np.int64).reshape(-1, 2)
        return UnitSums(avqa_unit_values(pairs[:, 0], pairs[:, 1]), avqa_accuracies_of_sums)

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
