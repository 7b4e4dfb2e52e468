"""AVE: audio-visual event localisation. One sample = one 10 s video with one event on `[start, end)`.

Data (docs/data-layout.md, `avbench.datasets.ave`): `ave/Annotations.txt`
(`Category&VideoID&Quality&StartTime&EndTime`; the zip's header line is skipped) with the split as
`<split>_order.h5` (HDF5 dataset `order`: 0-based row indices into Annotations.txt) or as the release's
`trainSet.txt` / `valSet.txt` / `testSet.txt`; videos in `videos/` or `AVE/`. The release annotates a
few videos twice (two classes); within a split the first occurrence keeps the video id as sample id
and later ones get `#2`, `#3`, ...

Output: `<event>Class</event>` and `<range>s,e</range>` as in Crab's README ("from the beginning until
the 8th second ... <range> 0,8 </range>"): whole seconds, end exclusive, the same convention as
Annotations.txt, so the event covers segments s .. e-1. Parsing (docs/parsing.md) takes the last tag
of each kind (a missing closing tag ends the value at the next tag or line break), reads the two
numbers of the range whatever surrounds them (`0,8`, `[0 - 8)`, `0s to 8s`), maps the class name onto
the 28 with `avbench.parsing.ClassMatcher` (case, punctuation, plurals, one part of a comma name,
misspellings; unknown or ambiguous names fail), rounds decimal seconds to the nearest integer (halves
up) and clips both ends to [0, 10]; end < start is a parse error, end == start predicts no event
segment (all background: the release itself has one such row, `VWi2ENBuTbw` 0&0 in train).

Metric: segment accuracy pooled over all segments (avbench.metrics.ave). A parse failure scores 0
correct segments (a wrong answer, not an all-background one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avbench.datasets import ave as ave_release
from avbench.data_versions import records_hash
from avbench.datasets.layout import AUDIO_SUFFIXES, VIDEO_SUFFIXES, MediaIndex, dataset_folder
from avbench.errors import DataError, ParseError
from avbench.metrics.ave import N_SEGMENTS, accuracy_of_sums, correct_segments, segment_accuracy, segment_labels
from avbench.parsing import ClassMatcher, RepeatedIds, last_tag, normalize_text, numbers_in, whole_second_range
from avbench.task import Task
from avbench.types import ModelOutput, Sample, ScoredSample, UnitSums
from avbench.vocab import AVE_EVENTS

BACKGROUND_ID = len(AVE_EVENTS)

#: Names for an AVE class that its release name does not contain: AVE's only dog class is AudioSet's
#: "Bark" (a child of "Dog" in the AudioSet ontology). The parts of comma names ("Violin" for
#: "Violin, fiddle") need no entry: ClassMatcher matches any words found in one class only.
AVE_ALIASES = {"Bark": ("Dog", "Dog barking")}
_EVENTS = ClassMatcher(AVE_EVENTS, AVE_ALIASES, what="AVE event")


def _event_name(text: str) -> str:
    return _EVENTS.match(text)


class AVETask(Task):
    name = "ave"
    family = "temporal"
    dataset_dir = "ave"
    primary_metric = "accuracy"
    table_metrics = ("accuracy",)
    description = "AVE event localisation: event class + time range, segment accuracy (%)"

    # ---- data -------------------------------------------------------------------------------
    def load(self, data_root: Path, split: str) -> list[Sample]:
        if split not in self.splits:
            raise DataError(f"unknown split {split!r}; AVE has {', '.join(self.splits)}")
        root = dataset_folder(data_root, "ave")
        rows = ave_release.read_split(root, split)
        # Videos: videos/ (conventional) or AVE/ (the release zip); audio: audios/ if extracted, else the mp4's.
        videos = MediaIndex([root / "videos", root / "AVE", root], VIDEO_SUFFIXES)
        audios = MediaIndex([root / "audios", root / "audio"], AUDIO_SUFFIXES)
        unique_id = RepeatedIds()
        samples = []
        for row in rows:
            samples.append(Sample(
                id=unique_id(row.video_id), task=self.name, split=split,
                media={"video": videos.path(row.video_id), "audio": audios.path(row.video_id)},
                target={"event": row.event, "start": row.start, "end": row.end},
                meta={"video_id": row.video_id, "annotation_file": row.path.name, "annotation_line": row.line,
                      "quality": row.quality},
            ))
        return samples

    def annotation_files(self, data_root: Path, split: str) -> list[Path]:
        return ave_release.split_files(dataset_folder(data_root, "ave"), split)

    def annotation_fingerprint(self, data_root: Path, split: str) -> str:
        # The split's rows, not the files: `*_order.h5` + Annotations.txt and `testSet.txt` are one version.
        return records_hash(row.record() for row in ave_release.read_split(dataset_folder(data_root, "ave"), split))

    # ---- prompting and parsing ----------------------------------------------------------------
    def build_prompt(self, sample: Sample) -> str:
        return (
            "This is a video:\n<video_start><video><video_end>\n"
            "This is an audio:\n<audio_start><audio><audio_end>\n"
            "Please identify the event in the video that is both audible and visible, and when it "
            f"happens. The event is one of: {'; '.join(AVE_EVENTS)}. Explain briefly, then give the "
            "event as <event>event name</event> and its time range in whole seconds as "
            "<range>start,end</range> (0 to 10, end exclusive)."
        )

    def parse(self, output: ModelOutput, sample: Sample) -> dict[str, Any]:
        text = normalize_text(output.text)
        event = last_tag(text, ("event",), "<event>...</event>")
        time_range = last_tag(text, ("range",), "<range>s,e</range>")
        numbers = numbers_in(time_range.body)  # "0,8", "[0 - 8)", "0s to 8s", "2nd to 8th" all say two numbers
        if len(numbers) != 2:
            raise ParseError(f"expected two numbers (start, end) in <range>, got {len(numbers)}")
        start, end = whole_second_range(numbers[0], numbers[1], N_SEGMENTS)
        return {"event": _event_name(event.body), "start": start, "end": end}

    def parsed_from_json(self, obj: Any, sample: Sample) -> dict[str, Any]:
        if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
            raise ParseError('expected {"event": class name, "start": int, "end": int}')
        start, end = obj.get("start"), obj.get("end")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, end)):
            raise ParseError("'start' and 'end' must be numbers (seconds)")
        start, end = whole_second_range(start, end, N_SEGMENTS)
        return {"event": _event_name(obj["event"]), "start": start, "end": end}

    # ---- scoring --------------------------------------------------------------------------------
    def score(self, sample: Sample, parsed: dict[str, Any] | None) -> ScoredSample:
        if parsed is None:
            correct = 0
        else:
            gt, pred = (_labels(t) for t in (sample.target, parsed))
            correct = int(correct_segments(pred, gt)[0])
        return ScoredSample(summary={"correct_segments": float(correct), "accuracy": 100.0 * correct / N_SEGMENTS},
                            stats=(correct, N_SEGMENTS))

    def aggregate(self, samples: Sequence[Sample], stats: Sequence[Any]) -> dict[str, float]:
        counts = np.asarray(stats, dtype=np.int64).reshape(-1, 2)
        return {"accuracy": segment_accuracy(counts[:, 0], counts[:, 1])}

    def unit_sums(self, samples: Sequence[Sample], stats: Sequence[Any]) -> UnitSums:
        return UnitSums(np.asarray(stats, dtype=np.float64).reshape(-1, 2), accuracy_of_sums)

    # ---- baseline support -----------------------------------------------------------------------
    def reference_output(self, sample: Sample) -> ModelOutput:
        t = sample.target
        return ModelOutput(text=f"The audible and visible event is <event>{t['event']}</event>, "
                                f"and the time range is <range>{t['start']},{t['end']}</range>.")

    def random_output(self, sample: Sample, rng: np.random.Generator) -> ModelOutput:
        event = AVE_EVENTS[int(rng.integers(len(AVE_EVENTS)))]
        spans = _all_spans()
        start, end = spans[int(rng.integers(len(spans)))]
        return ModelOutput(text=f"<event>{event}</event> <range>{start},{end}</range>")

    def fit_prior(self, train_samples: Sequence[Sample]) -> dict[str, Any]:
        """The one (event, span) answer with the highest segment accuracy on the train split.

        A constant answer is what a modality-blind model can give; choosing it by train accuracy
        (rather than the majority class over the majority span) accounts for the background segments,
        which the metric counts like any other label.
        """
        if not train_samples:
            raise DataError("cannot fit the AVE prior on an empty train split")
        gt = _labels([s.target for s in train_samples])  # (N, 10)
        label_counts = np.stack([(gt == k).sum(0) for k in range(BACKGROUND_ID + 1)])  # (29, 10)
        spans = np.array(_all_spans())  # (S, 2)
        inside = (np.arange(N_SEGMENTS)[None] >= spans[:, :1]) & (np.arange(N_SEGMENTS)[None] < spans[:, 1:])
        outside_bg = (~inside * label_counts[BACKGROUND_ID][None]).sum(1)  # (S,)
        inside_event = inside.astype(np.int64) @ label_counts[:BACKGROUND_ID].T  # (S, 28)
        correct = inside_event + outside_bg[:, None]
        span_index, event_index = np.unravel_index(int(np.argmax(correct)), correct.shape)
        start, end = spans[span_index]
        return {"event": AVE_EVENTS[event_index], "start": int(start), "end": int(end),
                "train_accuracy": 100.0 * float(correct.max()) / gt.size}

    def prior_output(self, prior: dict[str, Any], sample: Sample) -> ModelOutput:
        return ModelOutput(text=f"<event>{prior['event']}</event> <range>{prior['start']},{prior['end']}</range>")


def _all_spans() -> list[tuple[int, int]]:
    return [(s, e) for s in range(N_SEGMENTS) for e in range(s + 1, N_SEGMENTS + 1)]


def _labels(targets: dict[str, Any] | list[dict[str, Any]]) -> np.ndarray:
    targets = [targets] if isinstance(targets, dict) else targets
    event_ids = [AVE_EVENTS.index(t["event"]) for t in targets]
    return segment_labels(event_ids, [t["start"] for t in targets], [t["end"] for t in targets], BACKGROUND_ID)
