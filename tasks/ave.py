"""AVE: audio-visual event localisation. One sample = one 10 s video with one event on `[start, end)`.

Data (docs/data-layout.md): `ave/Annotations.txt` (`Category&VideoID&Quality&StartTime&EndTime`, no
header) and `ave/<split>_order.h5` (HDF5 dataset `order`: 0-based row indices into Annotations.txt).
The release annotates a few videos twice (two classes); within a split the first occurrence keeps the
video id as sample id and later ones get `#2`, `#3`, ...

Output: `<event>Class</event>` and `<range>s,e</range>` as in Crab's README ("from the beginning until
the 8th second ... <range> 0,8 </range>"): whole seconds, end exclusive, the same convention as
Annotations.txt, so the event covers segments s .. e-1. Parsing takes the last tag of each kind,
reads the two numbers of the range whatever surrounds them (`0,8`, `[0 - 8)`, `0s to 8s`), matches the
class ignoring case, spaces and punctuation, rounds decimal seconds to the nearest integer (halves
up) and clips both ends to [0, 10]; end < start is a parse error, end == start predicts no event
segment (all background: the release itself has one such row, `VWi2ENBuTbw` 0&0 in train).

Metric: segment accuracy pooled over all segments (avbench.metrics.ave). A parse failure scores 0
correct segments (a wrong answer, not an all-background one).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np

from avbench.errors import DataError, ParseError
from avbench.metrics.ave import N_SEGMENTS, correct_segments, segment_accuracy, segment_labels
from avbench.parsing import RepeatedIds, class_key, class_lookup, whole_second_range
from avbench.task import Task
from avbench.types import ModelOutput, Sample, ScoredSample
from avbench.vocab import AVE_EVENTS

BACKGROUND_ID = len(AVE_EVENTS)
_NUMBER = r"(\d+(?:\.\d+)?)"
_EVENT_TAG = re.compile(r"<event>(.*?)</event>", re.IGNORECASE | re.DOTALL)
_RANGE_TAG = re.compile(r"<range>(.*?)</range>", re.IGNORECASE | re.DOTALL)
_NUMBER_PATTERN = re.compile(_NUMBER)


_EVENT_BY_KEY = class_lookup(AVE_EVENTS)


def _event_name(text: str) -> str:
    name = _EVENT_BY_KEY.get(class_key(text))
    if name is None:
        raise ParseError(f"unknown AVE event {text.strip()!r}")
    return name


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
        root = Path(data_root) / self.dataset_dir
        rows = _read_annotations(root / "Annotations.txt")
        order_path = root / f"{split}_order.h5"
        if not order_path.is_file():
            raise DataError("split file not found", order_path)
        with h5py.File(order_path, "r") as handle:
            if "order" not in handle:
                raise DataError("HDF5 file has no dataset 'order'", order_path)
            order = np.asarray(handle["order"][()]).reshape(-1)
        unique_id = RepeatedIds()
        samples = []
        for index in order.tolist():
            if not 0 <= index < len(rows):
                raise DataError(f"row index {index} outside Annotations.txt ({len(rows)} rows)", order_path)
            event, video_id, quality, start, end = rows[index]
            sample_id = unique_id(video_id)
            samples.append(Sample(
                id=sample_id, task=self.name, split=split,
                media={"video": str(root / "videos" / f"{video_id}.mp4"),
                       "audio": str(root / "audios" / f"{video_id}.wav")},
                target={"event": event, "start": start, "end": end},
                meta={"video_id": video_id, "annotation_line": index + 1, "quality": quality},
            ))
        return samples

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
        events, ranges = _EVENT_TAG.findall(output.text), _RANGE_TAG.findall(output.text)
        if not events or not ranges:
            raise ParseError("expected <event>...</event> and <range>s,e</range>")
        numbers = _NUMBER_PATTERN.findall(ranges[-1])  # "0,8", "[0 - 8)", "0s to 8s" all say 0 and 8
        if len(numbers) != 2:
            raise ParseError(f"expected two numbers (start, end) in <range>{ranges[-1]}</range>")
        start, end = whole_second_range(numbers[0], numbers[1], N_SEGMENTS)
        return {"event": _event_name(events[-1]), "start": start, "end": end}

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


def _read_annotations(path: Path) -> list[tuple[str, str, str, int, int]]:
    if not path.is_file():
        raise DataError("AVE annotations not found", path)
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():  # a trailing empty line is harmless; rows are indexed by position
                continue
            fields = line.rstrip("\r\n").split("&")
            if len(fields) != 5:
                raise DataError(f"expected 5 '&'-separated fields (Category&VideoID&Quality&StartTime&EndTime), "
                                f"got {len(fields)}", path, line_no)
            event, video_id, quality, start, end = fields
            if not (start.isdigit() and end.isdigit()):
                hint = " (Annotations.txt has no header line)" if line_no == 1 else ""
                raise DataError(f"StartTime/EndTime must be whole seconds, got {start!r}, {end!r}{hint}", path, line_no)
            if event not in AVE_EVENTS:
                raise DataError(f"unknown AVE category {event!r}", path, line_no)
            if not 0 <= int(start) <= int(end) <= N_SEGMENTS:
                raise DataError(f"time range {start}..{end} is not within 0..{N_SEGMENTS} with start <= end",
                                path, line_no)
            rows.append((event, video_id, quality, int(start), int(end)))
    return rows
