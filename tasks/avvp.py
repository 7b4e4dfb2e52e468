"""AVVP (LLP): audio-visual video parsing. One sample = one 10 s video; per modality, which of the 25
classes occur in which one-second segments.

Data (docs/data-layout.md, all tab-separated with a header): the split lists `AVVP_train.csv`,
`AVVP_val_pd.csv`, `AVVP_test_pd.csv` (`filename<TAB>event_labels`, the weak video-level labels) and the
dense labels `AVVP_eval_audio.csv` / `AVVP_eval_visual.csv`
(`filename<TAB>onset<TAB>offset<TAB>event_labels`, val + test). As in the official evaluation every
listed video is scored, one without dense rows has an all-zero ground truth, and a row sets the
segments `int(onset) .. int(offset) - 1`. The train split has only weak labels: it loads (the prior
baseline fits on it) but scoring it raises a DataError.

Targets and predictions share one form: `{"audio": {class: [[s, e], ...]}, "visual": {...}}`, the
maximal runs of each class's binary segment row (end exclusive), classes in LLP order. Targets also
carry `"weak"`, the video-level labels (the only key of a train target).

Output: `<audio>Class,(s e)</audio>` and `<visual>Class,(s e)</visual>` as in Crab's README (seconds,
end exclusive: `(0 10)` is the whole video). Crab's public code ships no AVVP parser, so several events
are read in every form that says the same thing: one tag per event, or one tag per class with several
ranges `Class,(0 1),(3 6)`, or several classes in one tag; `<audio_event>` / `<visual_event>` (Crab's
training tags) work too; every tag counts, and a missing closing tag ends the value at the next tag or
line break. An empty tag (or `none`) means no event in that modality; an output with no tag at all is a
parse error. Class names are mapped onto the 25 by `avbench.parsing.ClassMatcher` (case, spaces,
punctuation, plurals, one part of a name: `violin` = `Violin_fiddle`, misspellings); an unknown or
ambiguous class is a parse error. Seconds are rounded and clipped to [0, 10]; a range ending before it
starts is a parse error (docs/parsing.md). A parse failure scores as an empty prediction (which,
per the official rule, still scores 1.0 on a video whose ground truth is empty in that modality).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avbench.datasets.layout import AUDIO_SUFFIXES, VIDEO_SUFFIXES, MediaIndex, dataset_folder
from avbench.datasets.text import checked_lines
from avbench.errors import DataError, ParseError
from avbench.metrics.avvp import LEVELS, PER_LEVEL, avvp_scores, avvp_scores_of_sums, runs, unit_counts, video_scores
from avbench.metrics.avvp import unit_values as avvp_unit_values
from avbench.parsing import NUMBER, ClassMatcher, clean_value, find_tags, normalize_text, shorten, whole_second_range
from avbench.task import Task
from avbench.types import ModelOutput, Sample, ScoredSample, UnitSums
from avbench.vocab import LLP_CLASSES

N_SEGMENTS = 10
MODALITIES = ("audio", "visual")
SPLIT_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
DENSE_FILES = {"audio": "AVVP_eval_audio.csv", "visual": "AVVP_eval_visual.csv"}
CLASS_INDEX = {name: i for i, name in enumerate(LLP_CLASSES)}

#: Tag names per modality: Crab's README form first, then its training form.
_TAG_NAMES = {"audio": ("audio", "audio_event"), "visual": ("visual", "visual_event")}
_SECONDS = r"(?:\s*(?:s|secs?|seconds?)\b)?"
#: A bracketed time range: `(0 3)`, `[1, 2]`, `(2-4)`, `(0s to 3s)`, `(0 ~ 3)`.
_RANGE = re.compile(rf"[(\[]\s*({NUMBER}){_SECONDS}\s*(?:,|-|\u2013|\u2014|~|to|\s)\s*({NUMBER}){_SECONDS}\s*[)\]]",
                    re.IGNORECASE)
_SEPARATORS = re.compile(r"^(?:[\s,;:\-\u2013\u2014]|\band\b)+|(?:[\s,;:\-\u2013\u2014]|\band\b)+$", re.IGNORECASE)
#: Tag values that say "no event" in words rather than with an empty tag.
_NO_EVENT = frozenset({"none", "no event", "no events", "nothing", "n/a", "na", "null", "-"})

#: Names for an LLP class that its name does not contain (each unique among the 25); parts of a name
#: ("violin" for "Violin_fiddle") need no entry, ClassMatcher matches words found in one class only.
LLP_ALIASES = {"Dog": ("Dog barking",), "Speech": ("Speaking", "Talking")}
_CLASSES = ClassMatcher(LLP_CLASSES, LLP_ALIASES, what="AVVP event class")


class AVVPTask(Task):
    name = "avvp"
    family = "temporal"
    dataset_dir = "avvp"
    primary_metric = "segment_avg"
    table_metrics = ("segment_avg", "event_avg")
    description = "AVVP video parsing: audio/visual events with time ranges, segment- and event-level F (%)"

    # ---- data -------------------------------------------------------------------------------
    def load(self, data_root: Path, split: str) -> list[Sample]:
        if split not in SPLIT_FILES:
            raise DataError(f"unknown split {split!r}; AVVP has {', '.join(SPLIT_FILES)}")
        root = dataset_folder(data_root, "avvp")
        videos = _read_weak_labels(root / SPLIT_FILES[split])
        # Media named by `filename` (or its YouTube id) in videos/ (conventional) or video/ (LLP release).
        video_index = MediaIndex([root / "videos", root / "video"], VIDEO_SUFFIXES)
        audio_index = MediaIndex([root / "audios", root / "audio"], AUDIO_SUFFIXES)
        dense = None if split == "train" else {m: _read_dense_labels(root / f) for m, f in DENSE_FILES.items()}
        samples = []
        for filename, weak in videos:
            target: dict[str, Any] = {"weak": weak}
            if dense is not None:
                target.update({m: _runs_of(_matrix(dense[m].get(filename, []))) for m in MODALITIES})
            samples.append(Sample(
                id=filename, task=self.name, split=split,
                media={"video": _media_path(video_index, filename), "audio": _media_path(audio_index, filename)},
                target=target, meta={"weak_labels": weak},
            ))
        return samples

    def annotation_files(self, data_root: Path, split: str) -> list[Path]:
        root = dataset_folder(data_root, "avvp")
        dense = [] if split == "train" else [root / f for f in DENSE_FILES.values()]
        return [root / SPLIT_FILES[split], *dense]

    # ---- prompting and parsing ----------------------------------------------------------------
    def build_prompt(self, sample: Sample) -> str:
        return (
            "This is a video:\n<video_start><video><video_end>\n"
            "This is an audio:\n<audio_start><audio><audio_end>\n"
            "Please determine which events can be heard and which can be seen in the video, and when each "
            f"starts and ends. The events are among: {', '.join(LLP_CLASSES)}. Explain briefly, then give "
            "each audible event as <audio>Event,(start end)</audio> and each visible event as "
            "<visual>Event,(start end)</visual>, in whole seconds from 0 to 10 (end exclusive); several "
            "ranges of one event may follow its name, e.g. <visual>Dog,(0 2),(5 10)</visual>. "
            "Write an empty tag for a modality without events."
        )

    def parse(self, output: ModelOutput, sample: Sample) -> dict[str, dict[str, list[list[int]]]]:
        text = normalize_text(output.text)
        tags = [(m, tag) for m in MODALITIES for tag in find_tags(text, _TAG_NAMES[m])]
        if not tags:
            raise ParseError("no <audio>Class,(s e)</audio> or <visual>Class,(s e)</visual> tag in the output")
        # Every tag counts (one tag per event is a valid layout): the union of their events.
        active = np.zeros((len(MODALITIES), len(LLP_CLASSES), N_SEGMENTS), dtype=bool)
        for modality, tag in tags:
            for class_name, start, end in _events_in(tag.body):
                active[MODALITIES.index(modality), CLASS_INDEX[class_name], start:end] = True
        return {m: _runs_of(active[i]) for i, m in enumerate(MODALITIES)}

    def parsed_from_json(self, obj: Any, sample: Sample) -> dict[str, dict[str, list[list[int]]]]:
        if not isinstance(obj, dict) or not set(obj) <= set(MODALITIES):
            raise ParseError('expected {"audio": {class: [[start, end], ...]}, "visual": {...}}')
        active = np.zeros((len(MODALITIES), len(LLP_CLASSES), N_SEGMENTS), dtype=bool)
        for i, modality in enumerate(MODALITIES):
            events = obj.get(modality, {})
            if not isinstance(events, dict):
                raise ParseError(f"'{modality}' must map class names to lists of [start, end]")
            for name, ranges in events.items():
                class_name = _known_class(str(name))
                if not isinstance(ranges, list) or not all(
                        isinstance(r, list) and len(r) == 2
                        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r) for r in ranges):
                    raise ParseError(f"'{modality}'/{name!r}: expected a list of [start, end] pairs")
                for start, end in ranges:
                    start, end = whole_second_range(start, end, N_SEGMENTS)
                    active[i, CLASS_INDEX[class_name], start:end] = True
        return {m: _runs_of(active[i]) for i, m in enumerate(MODALITIES)}

    # ---- scoring --------------------------------------------------------------------------------
    def score(self, sample: Sample, parsed: dict[str, Any] | None) -> ScoredSample:
        if "audio" not in sample.target:
            raise DataError(f"video {sample.id} of split {sample.split!r} has only weak video-level labels; "
                            "AVVP scoring needs the dense labels of val or test")
        gt_audio, gt_visual = (_matrix_of_runs(sample.target[m]) for m in MODALITIES)
        pred_audio, pred_visual = (_matrix_of_runs(parsed[m]) if parsed is not None
                                   else np.zeros_like(gt_audio) for m in MODALITIES)
        counts = unit_counts(pred_audio, pred_visual, gt_audio, gt_visual)  # (2, 3, 3, 25)
        per_video = 100.0 * video_scores(counts)  # (2, 5)
        summary = {f"{level}_{key}": float(per_video[li, ki])
                   for li, level in enumerate(LEVELS) for ki, key in enumerate(PER_LEVEL)}
        return ScoredSample(summary=summary, stats=counts.tolist())

    def aggregate(self, samples: Sequence[Sample], stats: Sequence[Any]) -> dict[str, float]:
        counts = np.asarray(stats, dtype=np.int64).reshape(-1, 2, 3, 3, len(LLP_CLASSES))
        return avvp_scores(counts)

    def unit_sums(self, samples: Sequence[Sample], stats: Sequence[Any]) -> UnitSums:
        counts = np.asarray(stats, dtype=np.int64).reshape(-1, 2, 3, 3, len(LLP_CLASSES))
        return UnitSums(avvp_unit_values(counts), avvp_scores_of_sums)

    # ---- baseline support -----------------------------------------------------------------------
    def reference_output(self, sample: Sample) -> ModelOutput:
        if "audio" not in sample.target:
            raise DataError(f"video {sample.id}: no dense labels to render (split {sample.split!r})")
        return ModelOutput(text="The events are " + _render({m: sample.target[m] for m in MODALITIES}) + ".")

    def random_output(self, sample: Sample, rng: np.random.Generator) -> ModelOutput:
        # Uniform over all answers = every (modality, class, segment) bit a fair coin.
        active = rng.random((len(MODALITIES), len(LLP_CLASSES), N_SEGMENTS)) < 0.5
        return ModelOutput(text=_render({m: _runs_of(active[i]) for i, m in enumerate(MODALITIES)}))

    def fit_prior(self, train_samples: Sequence[Sample]) -> dict[str, Any]:
        """Weak-label class frequencies; the prior answers the k most frequent classes over the whole video
        in both modalities, k = the mean number of weak labels per train video, rounded (at least 1)."""
        if not train_samples:
            raise DataError("cannot fit the AVVP prior on an empty train split")
        counts = np.zeros(len(LLP_CLASSES))
        for sample in train_samples:
            for name in sample.target["weak"]:
                counts[CLASS_INDEX[name]] += 1
        k = max(1, int(round(counts.sum() / len(train_samples))))
        ranked = np.argsort(-counts, kind="stable")[:k]
        return {"frequency": dict(zip(LLP_CLASSES, (counts / len(train_samples)).tolist())),
                "classes": [LLP_CLASSES[i] for i in sorted(ranked)]}

    def prior_output(self, prior: dict[str, Any], sample: Sample) -> ModelOutput:
        whole = {name: [[0, N_SEGMENTS]] for name in prior["classes"]}
        return ModelOutput(text=_render({m: whole for m in MODALITIES}))


# ---- parsing helpers --------------------------------------------------------------------------------
def _known_class(text: str) -> str:
    return _CLASSES.match(text)


def _events_in(body: str) -> list[tuple[str, int, int]]:
    """(class, start, end) of each range in a tag body; a range belongs to the class named before it."""
    if clean_value(body).lower() in _NO_EVENT:
        return []
    events, current, cursor = [], None, 0
    for match in _RANGE.finditer(body):
        name = _SEPARATORS.sub("", body[cursor:match.start()])
        if name:
            current = _known_class(name)
        elif current is None:
            raise ParseError(f"time range {shorten(match.group(0))} without an event class")
        events.append((current, *whole_second_range(match.group(1), match.group(2), N_SEGMENTS)))
        cursor = match.end()
    rest = _SEPARATORS.sub("", body[cursor:])
    if rest:
        raise ParseError(f"event {shorten(rest)!r} without a time range")
    return events


def _render(events: dict[str, dict[str, list[list[int]]]]) -> str:
    """One tag per class with all its ranges; an empty tag for a modality without events."""
    parts = []
    for modality in MODALITIES:
        bodies = [f"{name}," + ",".join(f"({s} {e})" for s, e in spans) for name, spans in events[modality].items()]
        parts.extend(f"<{modality}>{body}</{modality}>" for body in bodies or [""])
    return " and ".join(parts)


# ---- matrices and runs ------------------------------------------------------------------------------
def _matrix(rows: list[tuple[int, int, int]]) -> np.ndarray:
    active = np.zeros((len(LLP_CLASSES), N_SEGMENTS), dtype=bool)
    for class_id, onset, offset in rows:
        active[class_id, onset:offset] = True
    return active


def _runs_of(active: np.ndarray) -> dict[str, list[list[int]]]:
    """Canonical form of a (25 x 10) binary matrix: class -> maximal runs [start, end), LLP class order."""
    events: dict[str, list[list[int]]] = {}
    for row, start, end in zip(*runs(active)):
        events.setdefault(LLP_CLASSES[int(row)], []).append([int(start), int(end)])
    return events


def _matrix_of_runs(events: dict[str, list[list[int]]]) -> np.ndarray:
    return _matrix([(CLASS_INDEX[name], s, e) for name, spans in events.items() for s, e in spans])


# ---- files --------------------------------------------------------------------------------------------
def _media_path(index: MediaIndex, filename: str) -> str:
    """`<filename>.<ext>`, or `<youtube id>.<ext>` where only that exists (both namings occur)."""
    found = index.find(filename) or index.find(filename.rsplit("_", 2)[0])
    return str(found) if found is not None else index.path(filename)


def _tsv_rows(path: Path, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        raise DataError("AVVP annotation file not found", path)
    with path.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(checked_lines(handle, path, "utf-8"), delimiter="\t"))
    if not lines or tuple(lines[0]) != header:
        raise DataError(f"expected the tab-separated header {'<TAB>'.join(header)}", path, 1)
    rows = [(n, row) for n, row in enumerate(lines[1:], start=2) if row]
    for line_no, row in rows:
        if len(row) != len(header):
            raise DataError(f"expected {len(header)} tab-separated fields, got {len(row)}", path, line_no)
    return rows


def _labels(text: str, path: Path, line_no: int) -> list[str]:
    labels = [label for label in text.split(",") if label]
    unknown = [label for label in labels if label not in CLASS_INDEX]
    if unknown:
        raise DataError(f"unknown LLP classes {unknown}", path, line_no)
    return labels


def _read_weak_labels(path: Path) -> list[tuple[str, list[str]]]:
    videos, seen = [], set()
    for line_no, (filename, labels) in _tsv_rows(path, ("filename", "event_labels")):
        if filename in seen:
            raise DataError(f"video {filename} listed twice", path, line_no)
        seen.add(filename)
        videos.append((filename, _labels(labels, path, line_no)))
    return videos


def _read_dense_labels(path: Path) -> dict[str, list[tuple[int, int, int]]]:
    """filename -> (class id, first segment, end segment) rows, segments int(onset) .. int(offset) - 1."""
    dense: dict[str, list[tuple[int, int, int]]] = {}
    for line_no, (filename, onset, offset, labels) in _tsv_rows(path, ("filename", "onset", "offset", "event_labels")):
        try:
            first, end = int(float(onset)), int(float(offset))
        except ValueError:
            raise DataError(f"onset/offset must be numbers, got {onset!r}, {offset!r}", path, line_no) from None
        if not 0 <= first <= N_SEGMENTS or not 0 <= end <= N_SEGMENTS:
            raise DataError(f"onset/offset {onset}, {offset} outside 0..{N_SEGMENTS}", path, line_no)
        for label in _labels(labels, path, line_no):
            dense.setdefault(filename, []).append((CLASS_INDEX[label], first, end))
    return dense
