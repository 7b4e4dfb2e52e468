"""Instruction records -> model inputs: reading the JSONL (docs/training.md), decoding media once,
tokenising prompt and answer, reading mask targets.

Media are decoded once per distinct file set and kept in memory as uint8 frames and int16 audio
(about 2 MB per 10-frame clip), because an epoch revisits every clip and PyAV decoding costs more than
the tiny model's step. Several records share a clip (MUSIC-AVQA questions, Ref-AVS expressions,
AVSBench videos used by S4, AVSS and ARIG), so the cache is keyed by the media paths.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from avbench.errors import DataError
from avbench.masks import read_binary_mask
from avbench.metrics.segmentation import resize_nearest
from avbench.media import DecodedMedia, MediaSpec, decode_media
from avbench.types import Sample

from ..config import CrabConfig
from ..model import SampleInputs
from ..beats import SegmentSpec, crab_segments
from ..preprocess import SampleMedia, listed_frame_positions, prepare_media
from ..vision import frames_to_pixels
from ..prompts import IGNORE_INDEX, chat_prompt, encode

REQUIRED = ("id", "task", "media", "instruction", "answer")
MASK_KINDS = ("binary", "semantic")


@dataclass(frozen=True)
class InstructionRecord:
    id: str
    task: str
    media: dict[str, Any]  # absolute paths
    instruction: str
    answer: str
    mask_kind: str | None = None
    mask_frames: tuple[int, ...] = ()
    mask_files: tuple[str, ...] = ()
    #: Only second k of the clip: its frame k as an image and its audio [k, k + 1) s (one segment).
    second: int | None = None
    #: Label names per modality ("seen", "heard") for the encoders' objective (recipe `objective: encoders`).
    labels: dict[str, tuple[str, ...]] | None = None
    #: The start of `answer` that is teacher-forced but not supervised (a drill's given evidence).
    given: str = ""

    @property
    def media_key(self) -> str:
        return json.dumps(self.media, sort_keys=True)


def _absolute(value: Any, root: Path) -> Any:
    if isinstance(value, list):
        return [str(root / v) for v in value]
    return str(root / value)


def parse_record(data: Any, root: Path, path: Path, line: int) -> InstructionRecord:
    """One JSONL line as a record; malformed content raises DataError naming the file and line."""
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object, got {type(data).__name__}", path, line)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise DataError(f"record lacks {', '.join(missing)} (each record needs {', '.join(REQUIRED)})", path, line)
    for key in ("id", "task", "instruction", "answer"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise DataError(f"{key!r} must be a non-empty string", path, line)
    if not isinstance(data["media"], dict):
        raise DataError("'media' must be an object of media roles (video, audio, frames, image), {} for text only",
                        path, line)
    masks = data.get("masks")
    kind, frames, files = None, (), ()
    if masks is not None:
        if not isinstance(masks, dict) or masks.get("kind") not in MASK_KINDS:
            raise DataError(f"'masks' needs kind {' or '.join(MASK_KINDS)}, frames and files", path, line)
        frames, files = tuple(masks.get("frames") or ()), tuple(masks.get("files") or ())
        if len(frames) != len(files) or not all(isinstance(f, int) and f >= 0 for f in frames):
            raise DataError(f"'masks' has {len(frames)} frames for {len(files)} files (frames: indices >= 0)", path, line)
        if list(frames) != sorted(set(frames)):
            raise DataError(f"mask frames must be increasing and distinct, got {list(frames)}", path, line)
        kind = masks["kind"]
        files = tuple(str(root / f) for f in files)
    second = data.get("second")
    if second is not None and (not isinstance(second, int) or isinstance(second, bool) or second < 0):
        raise DataError(f"'second' must be a whole number >= 0, got {second!r}", path, line)
    labels = data.get("labels")
    if labels is not None:
        if not isinstance(labels, dict) or set(labels) - {"seen", "heard"} or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in labels.values()):
            raise DataError("'labels' must map seen / heard to lists of label names", path, line)
        labels = {k: tuple(v) for k, v in labels.items()}
    if not data["media"] and (masks is not None or second is not None or labels is not None):
        raise DataError("a text-only record ('media': {}) cannot have masks, a second or labels", path, line)
    given = data.get("given", "")
    if not isinstance(given, str) or not data["answer"].strip().startswith(given.strip()):
        raise DataError("'given' must be a string the answer starts with", path, line)
    media = {role: _absolute(value, root) for role, value in data["media"].items()}
    return InstructionRecord(data["id"], data["task"], media, data["instruction"], data["answer"], kind, frames, files,
                             second, labels, given.strip())


def read_instructions(path: str | Path, root: str | Path) -> list[InstructionRecord]:
    """All records of a JSONL file; paths inside are relative to `root` (the data root)."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise DataError("instruction file not found", path)
    records: list[InstructionRecord] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg}, column {exc.colno})", path, line_number) from None
            record = parse_record(data, root, path, line_number)
            if record.id in seen:
                raise DataError(f"duplicate id {record.id!r} (first on line {seen[record.id]})", path, line_number)
            seen[record.id] = line_number
            records.append(record)
    if not records:
        raise DataError("no records", path)
    return records


# ---- media cache --------------------------------------------------------------------------------------
@dataclass
class CachedMedia:
    frames: np.ndarray  # (T, S, S, 3) uint8
    audio: np.ndarray | None  # int16 samples at 16 kHz

    def decoded(self) -> DecodedMedia:
        audio = None if self.audio is None else self.audio.astype(np.float32) / 32767.0
        return DecodedMedia(frames=self.frames, audio=audio)


def _as_sample(record: InstructionRecord) -> Sample:
    return Sample(id=record.id, task=record.task, split="train", media=record.media)


class MediaCache:
    """Decoded media of every record, filled once (`fill`, in threads) and kept in memory."""

    def __init__(self, spec: MediaSpec):
        self.spec = spec
        self._items: dict[str, CachedMedia] = {}

    def __len__(self) -> int:
        return len(self._items)

    def fill(self, records: Sequence[InstructionRecord], workers: int = 2,
             progress: Callable[[int, int], None] | None = None) -> None:
        todo = {r.media_key: r for r in records if r.media and r.media_key not in self._items}
        if not todo:
            return

        def load(record: InstructionRecord) -> tuple[str, CachedMedia]:
            media = decode_media(_as_sample(record), self.spec)
            audio = None if media.audio is None else np.clip(np.rint(media.audio * 32767.0), -32768, 32767).astype(np.int16)
            return record.media_key, CachedMedia(np.ascontiguousarray(media.frames, dtype=np.uint8), audio)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for done, (key, item) in enumerate(pool.map(load, todo.values()), start=1):
                self._items[key] = item
                if progress is not None:
                    progress(done, len(todo))

    def get(self, record: InstructionRecord) -> DecodedMedia:
        if record.media_key not in self._items:
            self.fill([record], workers=1)
        return self._items[record.media_key].decoded()


# ---- one training example -----------------------------------------------------------------------------
@dataclass
class TrainingExample:
    inputs: SampleInputs
    mask_frames: list[int] | None  # frame k is decoded from the answer's k-th mask-token group
    mask_targets: torch.Tensor | None  # (G, S, S): {0, 1} or class ids
    semantic: bool

    def subsample_masks(self, keep: int, rng: np.random.Generator) -> "TrainingExample":
        """At most `keep` of the annotated frames, drawn by `rng` (a 10-frame clip costs 10 decoder passes)."""
        if self.mask_frames is None or len(self.mask_frames) <= keep:
            return self
        chosen = np.sort(rng.choice(len(self.mask_frames), size=keep, replace=False))
        return TrainingExample(self.inputs, [self.mask_frames[i] for i in chosen], self.mask_targets[chosen], self.semantic)


def read_mask_targets(record: InstructionRecord, size: int) -> torch.Tensor:
    """(G, size, size) targets of the record's annotated frames, read as the evaluation reads them."""
    if record.mask_kind == "semantic":
        from avbench.tasks.avss import read_class_map

        maps = [read_class_map(f, size) for f in record.mask_files]
        return torch.from_numpy(np.stack(maps).astype(np.int64))
    maps = [resize_nearest(read_binary_mask(f), size) for f in record.mask_files]
    return torch.from_numpy(np.stack(maps).astype(np.float32))


def answer_tokens(tokenizer: PreTrainedTokenizerBase, record: InstructionRecord) -> tuple[list[int], list[int]]:
    """The answer's token ids and EOS, split into the teacher-forced `given` start and the supervised rest
    (what the LM loss averages over)."""
    # a leading space: the answer follows "[/INST] " as in LLaMA-2's chat rendering
    answer = encode(tokenizer, " " + record.answer.strip()) + [int(tokenizer.eos_token_id)]
    given = encode(tokenizer, " " + record.given) if record.given else []
    if answer[:len(given)] != given:
        raise DataError(f"record {record.id!r}: its 'given' text does not end on a token boundary of the answer")
    return given, answer[len(given):]


class ExampleBuilder:
    """Tokenises records (cached: the same record recurs every epoch) and pairs them with media."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: CrabConfig, cache: MediaCache, mask_size: int | None = None):
        self.tokenizer, self.config, self.cache = tokenizer, config, cache
        self.mask_size = mask_size or config.image_size
        self._tokens: dict[str, tuple[list[int], list[int]]] = {}
        self._masks: dict[str, torch.Tensor] = {}

    def _second(self, record: InstructionRecord):
        listed = record.media.get("frames")
        media = second_of(self.cache.get(record), len(listed) if isinstance(listed, list) else None, record.second)
        segments = None
        if media.audio is not None:
            segments = crab_segments(torch.from_numpy(media.audio), SegmentSpec(1))
        return SampleMedia(frames_to_pixels(media.frames, self.config.image_size), segments, True)

    def tokens(self, record: InstructionRecord) -> tuple[list[int], list[int]]:
        """(input ids, labels): the chat prompt then the answer and EOS; labels only on the answer after its
        `given` start."""
        if record.id not in self._tokens:
            tok = self.tokenizer
            prompt = encode(tok, chat_prompt(record.instruction, self.config.system_prompt, tok.bos_token or "<s>"))
            given, supervised = answer_tokens(tok, record)
            self._tokens[record.id] = (prompt + given + supervised, [IGNORE_INDEX] * (len(prompt) + len(given)) + supervised)
        return self._tokens[record.id]

    def example(self, record: InstructionRecord) -> TrainingExample:
        ids, labels = self.tokens(record)
        if not record.media:
            return TrainingExample(SampleInputs(ids, None, None, False, labels), None, None, False)
        if record.second is not None:
            inputs = self._second(record)
            return TrainingExample(SampleInputs(ids, inputs.pixels, inputs.segments, True, labels), None, None, False)
        media = prepare_media(record.task, _as_sample(record), self.cache.get(record), self.config.image_size)
        targets = None
        if record.mask_kind is not None:
            if record.id not in self._masks:
                self._masks[record.id] = read_mask_targets(record, self.mask_size)
            targets = self._masks[record.id]
        inputs = SampleInputs(ids, media.pixels, media.segments, media.is_image, labels)
        return TrainingExample(inputs, list(record.mask_frames) or None, targets, record.mask_kind == "semantic")


def second_of(media: DecodedMedia, listed_frames: int | None, second: int, sample_rate: int = 16000) -> DecodedMedia:
    """Frame `second` (of a 1-frame-per-second clip: the decoded video frame at that second, or the listed
    image) and audio samples [second, second + 1) s, zero-padded when the clip is shorter."""
    frames = np.asarray(media.frames)
    index = second
    if listed_frames is not None:
        if second >= listed_frames:
            raise DataError(f"second {second} of a clip of {listed_frames} frames")
        index = listed_frame_positions(listed_frames, frames.shape[0])[second]
    elif second >= frames.shape[0]:
        raise DataError(f"second {second} of a clip of {frames.shape[0]} decoded frames")
    audio = None
    if media.audio is not None:
        audio = np.zeros(sample_rate, dtype=np.float32)
        piece = np.asarray(media.audio[second * sample_rate:(second + 1) * sample_rate], dtype=np.float32)
        audio[: piece.shape[0]] = piece
    return DecodedMedia(frames=frames[index:index + 1], audio=audio)


def count_by_task(records: Iterable[InstructionRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.task] = counts.get(record.task, 0) + 1
    return counts
