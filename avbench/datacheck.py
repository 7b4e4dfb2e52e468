"""`avbench data check`: is a data set copy complete, readable and the official version?

For one task: every split's annotations are loaded (a malformed line is reported with its file and
line), counted against the official counts and identified (avbench.data_versions); then the media of
one split (default: the task's test split) are checked: every file a sample names must exist and
open (container / image header), or, with `decode=True`, decode fully to the spec an adapter would
ask for (avbench.media, in background threads). Missing or undecodable files are listed with their
paths. A copy is broken when a split cannot be loaded or a media file is missing or unreadable; an
unknown version or a count that differs from the official one is a warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import av
from PIL import Image, UnidentifiedImageError

from .data_versions import DataVersion, known_counts, version_of
from .errors import DataError, UnknownNameError
from .media import MediaError, MediaSpec, MediaStream
from .task import Task, load_samples
from .types import Sample

_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass
class SplitCheck:
    split: str
    n_samples: int = 0
    version: DataVersion | None = None
    #: Official counts of this split by version name ({} when none is known).
    official: dict[str, int] = field(default_factory=dict)
    #: Why the split could not be loaded (file and line included), or None.
    error: str | None = None
    #: The split's annotation files are absent: a warning for a split not asked for (a copy may hold
    #: the test split only), an error otherwise (`error` is then set too).
    absent: list[str] = field(default_factory=list)

    @property
    def count_matches(self) -> bool | None:
        """Whether the count is one of the official ones; None when none is known."""
        return None if not self.official else self.n_samples in self.official.values()


@dataclass(frozen=True)
class MediaProblem:
    path: str
    reason: str
    sample_id: str


@dataclass
class CheckReport:
    task: str
    data_root: Path
    splits: list[SplitCheck]
    media_split: str | None = None
    n_media_samples: int = 0
    n_media_files: int = 0
    problems: list[MediaProblem] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return bool(self.problems) or any(s.error for s in self.splits)

    def warnings(self) -> list[str]:
        """Unknown versions and counts that differ from the official ones."""
        out = []
        for s in self.splits:
            if s.absent and not s.error:
                out.append(f"{self.task}/{s.split}: not in this copy (missing {', '.join(s.absent)})")
            if s.error or s.absent:
                continue
            if s.version is not None and not s.version.known:
                out.append(f"{self.task}/{s.split}: unknown data version (hash {s.version.hash}, {s.n_samples} samples)")
            if s.count_matches is False:
                official = ", ".join(f"{name}: {n}" for name, n in s.official.items())
                out.append(f"{self.task}/{s.split}: {s.n_samples} samples, official {official}")
        return out


def check_task(
    task: Task, data_root: Path, splits: Sequence[str] | None = None, media_split: str | None = None,
    decode: bool = False, spec: MediaSpec | None = None, workers: int = 2, check_media: bool = True,
) -> CheckReport:
    """Check `task`'s data under `data_root` (see the module docstring)."""
    data_root = Path(data_root)
    # A misspelt split is a usage error, named up front: some loaders return no samples for a split
    # they do not know, which would read as an empty but healthy split, and a media split left unloaded
    # would go unchecked without a word.
    for name in [*(splits or []), *([media_split] if media_split else [])]:
        if name not in task.splits:
            raise UnknownNameError("split", name, list(task.splits))
    to_load = list(splits or task.splits)
    if media_split and media_split not in to_load:
        to_load.append(media_split)  # loaded like an asked-for split: its media are what was asked
    report = CheckReport(task.name, data_root, [])
    loaded: dict[str, list[Sample]] = {}
    for split in to_load:
        check = SplitCheck(split, official=known_counts(task.name, split))
        check.absent = [str(p) for p in task.annotation_files(data_root, split) if not Path(p).is_file()]
        if check.absent and not splits and split not in (task.default_split, media_split):
            report.splits.append(check)
            continue
        try:
            samples = load_samples(task, data_root, split)
            check.n_samples = len(samples)
            check.version = version_of(task, data_root, split, len(samples))
            if check.version.known and check.version.name not in check.official:
                check.official = {}  # e.g. SynthAV: its own version, not a copy of the release
            loaded[split] = samples
        except DataError as exc:
            check.error = str(exc)
        report.splits.append(check)
    media_split = media_split or (task.default_split if task.default_split in loaded else None)
    if check_media and media_split in loaded:
        report.media_split = media_split
        samples = loaded[media_split]
        report.n_media_samples = len(samples)
        if decode:
            report.problems, report.n_media_files = _decode_all(samples, spec or MediaSpec(), workers)
        else:
            report.problems, report.n_media_files = _probe_all(samples, workers)
    return report


def _media_files(sample: Sample) -> Iterator[tuple[str, str]]:
    """(role, path) of every file a sample names: its media roles and its ground-truth masks."""
    for role, value in sample.media.items():
        for path in [value] if isinstance(value, str) else value:
            yield role, path
    target = sample.target if isinstance(sample.target, dict) else {}
    for path in target.get("masks") or []:
        if isinstance(path, str):
            yield "mask", path


def _probe(path: str) -> str | None:
    """Why `path` cannot be read (None when its header opens): cheap, no full decode."""
    file = Path(path)
    if not file.is_file():
        return "file not found"
    try:
        if file.suffix.lower() in _IMAGE_SUFFIXES:
            with Image.open(file) as image:
                image.verify()
            return None
        with av.open(str(file)) as container:
            if not container.streams.video and not container.streams.audio:
                return "no audio or video stream"
        return None
    except (UnidentifiedImageError, OSError, SyntaxError, av.FFmpegError) as exc:
        return f"cannot open: {exc}"


def _has_audio_stream(path: str) -> bool:
    try:
        with av.open(path) as container:
            return bool(container.streams.audio)
    except (OSError, av.FFmpegError):
        return False


def _probe_all(samples: Sequence[Sample], workers: int) -> tuple[list[MediaProblem], int]:
    first_user: dict[str, str] = {}
    roles: dict[str, str] = {}
    for sample in samples:
        for role, path in _media_files(sample):
            first_user.setdefault(path, sample.id)
            roles.setdefault(path, role)
    paths = list(first_user)  # many samples share files (Ref-AVS frames, MUSIC-AVQA videos): each is probed once
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reasons = dict(zip(paths, pool.map(_probe, paths)))
    problems = []
    for sample in samples:
        video = sample.media.get("video")
        for role, path in _media_files(sample):
            reason = reasons[path]
            if reason is None or first_user[path] != sample.id:
                continue
            if role == "audio" and isinstance(video, str) and reasons.get(video) is not None:
                continue  # the audio file is optional beside a video, which is reported already
            # A missing extracted audio file is fine when the video carries the audio (as decode_media reads it).
            if role == "audio" and reason == "file not found" and isinstance(video, str) and reasons.get(video) is None:
                if _has_audio_stream(video):
                    continue
                reason = "file not found, and the video has no audio stream"
            problems.append(MediaProblem(path, reason, sample.id))
    return problems, len(paths)


def _decode_all(samples: Sequence[Sample], spec: MediaSpec, workers: int) -> tuple[list[MediaProblem], int]:
    problems: list[MediaProblem] = []
    batches = (samples[i : i + 8] for i in range(0, len(samples), 8))
    with MediaStream(batches, spec, workers=max(1, workers), prefetch=2) as stream:
        for batch, decoded in stream:
            for sample, item in zip(batch, decoded):
                if isinstance(item, MediaError):
                    problems.append(MediaProblem(item.path or "", item.reason, sample.id))
    masks = [(path, sample.id) for sample in samples for role, path in _media_files(sample) if role == "mask"]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for (path, sample_id), reason in zip(masks, pool.map(_probe, [p for p, _ in masks])):
            if reason is not None:
                problems.append(MediaProblem(path, reason, sample_id))
    n_files = len({path for sample in samples for _, path in _media_files(sample)})
    return problems, n_files
