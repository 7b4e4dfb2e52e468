"""Decoded media as models receive it: the contract between the data side and model adapters.

An adapter that reads media sets `ModelAdapter.media_spec`; the runner then decodes each batch's
media to that spec (frames at a fixed count and size, audio resampled to mono at a fixed rate) and
passes one `DecodedMedia` per sample to `predict(..., media=...)`. Adapters that read no media
(the baselines) leave `media_spec` as None and the runner decodes nothing.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import av
import numpy as np
import soundfile
from PIL import Image, UnidentifiedImageError

from .errors import DataError
from .types import Sample


@dataclass(frozen=True)
class MediaSpec:
    """What an adapter wants decoded, per sample."""

    #: Frames per sample, sampled uniformly over the clip (an mp4 `video`) or taken from the listed
    #: `frames` images (repeated/sub-sampled to this count); a single `image` gives one frame.
    n_frames: int = 10
    #: Frames and images are resized to frame_size x frame_size (RGB).
    frame_size: int = 224
    #: Audio is decoded to mono float32 at this rate ...
    sample_rate: int = 16000
    #: ... and cut or zero-padded to this many seconds (None: the whole stream).
    audio_seconds: float | None = 10.0
    need_video: bool = True
    need_audio: bool = True
    #: Where in each of the n_frames equal parts of a video the frame is taken: "centre" (default: 10
    #: frames of a 10 s clip fall mid-second, on the segments they stand for) or "start" (the first
    #: frame of each part, as Crab's loader `np.arange(0, n, n / n_frames).astype(int)`).
    frame_anchor: str = "centre"


@dataclass
class DecodedMedia:
    """One sample's media. `frames`: (T, S, S, 3) uint8 RGB; `audio`: (n,) float32 in [-1, 1]."""

    frames: np.ndarray | None = None
    audio: np.ndarray | None = None


class MediaError(DataError):
    """A media file that is missing or cannot be decoded; `path` names it, `reason` says what is wrong."""

    def __init__(self, reason: str, path: str | Path | None = None):
        self.reason = reason
        super().__init__(reason, path)


#: File types soundfile reads natively; others (mp3, mp4, ...) go through PyAV.
_SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg"})


def uniform_indices(n_available: int, n_wanted: int, anchor: str = "centre") -> list[int]:
    """Indices of `n_wanted` items spread uniformly over `n_available`: the centre of each of
    `n_wanted` equal parts, `floor((i + 0.5) * n_available / n_wanted)`.

    Centres rather than part starts so that 10 frames of a 10 s clip fall mid-second, on the AVE/AVVP
    one-second segments they stand for. Fewer items than wanted repeat items (5 listed frames -> 0, 0,
    1, 1, ...); more are sub-sampled.
    """
    if n_available <= 0 or n_wanted <= 0:
        raise ValueError(f"need positive counts, got {n_available} available, {n_wanted} wanted")
    if anchor == "start":
        return [(i * n_available) // n_wanted for i in range(n_wanted)]
    if anchor != "centre":
        raise ValueError(f"frame anchor must be 'centre' or 'start', got {anchor!r}")
    return [((2 * i + 1) * n_available) // (2 * n_wanted) for i in range(n_wanted)]


def load_image(path: str | Path, size: int) -> np.ndarray:
    """One image as a (size, size, 3) uint8 RGB array (bicubic resize, aspect not kept, as the spec asks)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
    except FileNotFoundError:
        raise MediaError("image file not found", path) from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        # DecompressionBombError: an image of absurd size is a broken file to skip, not a reason to stop the run
        raise MediaError(f"cannot decode image: {exc}", path) from None


def load_frames(paths: Sequence[str | Path], n_frames: int, size: int) -> np.ndarray:
    """(n_frames, size, size, 3) uint8 from a list of frame images, picked with `uniform_indices`."""
    if not paths:
        raise MediaError("empty list of frame images")
    picked = uniform_indices(len(paths), n_frames)
    cache: dict[int, np.ndarray] = {}  # a repeated index is read once
    for index in picked:
        if index not in cache:
            cache[index] = load_image(paths[index], size)
    return np.stack([cache[i] for i in picked])


def decode_video(path: str | Path, n_frames: int, size: int, anchor: str = "centre") -> np.ndarray:
    """(n_frames, size, size, 3) uint8 RGB frames of an mp4 (any container PyAV reads), uniformly
    sampled over all its frames (`uniform_indices`) and resized with bicubic interpolation.

    Every frame must be decoded anyway (inter-coded video), but only the picked ones are converted
    to RGB. The frame count comes from the container header; if the stream turns out to hold another
    number of frames (or the header has none), a second pass decodes with the true count.
    """
    if not Path(path).is_file():
        raise MediaError("video file not found", path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError("no video stream", path)
            expected = _frame_count_hint(container.streams.video[0])
        frames, counted = _decode_picked(path, expected, n_frames, size, anchor)
        if frames is None:
            frames, counted = _decode_picked(path, counted, n_frames, size, anchor)
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot decode video: {exc}", path) from None
    if frames is None:
        raise MediaError(f"video stream changed between two reads ({counted} frames)", path)
    return frames


def _frame_count_hint(stream: av.video.stream.VideoStream) -> int:
    return int(stream.frames) if stream.frames and stream.frames > 0 else 0


def _decode_picked(path: str | Path, n_total: int, n_frames: int, size: int, anchor: str) -> tuple[np.ndarray | None, int]:
    """Decode once, converting the frames `uniform_indices(n_total, n_frames)` picks.

    Returns (frames, count); frames is None when the stream did not hold exactly `n_total` frames
    (count is then the true number, for a second pass).
    """
    picked = uniform_indices(n_total, n_frames, anchor) if n_total > 0 else []
    wanted = set(picked)
    kept: dict[int, np.ndarray] = {}
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if count in wanted:
                kept[count] = frame.to_ndarray(width=size, height=size, format="rgb24", interpolation="BICUBIC")
            count += 1
    if count == 0:
        raise MediaError("video stream holds no frames", path)
    if count != n_total:
        return None, count
    return np.stack([kept[i] for i in picked]), count


def decode_audio(path: str | Path, sample_rate: int, seconds: float | None) -> np.ndarray:
    """Mono float32 audio at `sample_rate`, cut or zero-padded to `seconds` (None: as long as it is).

    Channels are averaged (not FFmpeg's default downmix, which scales stereo by 1/sqrt(2) per channel
    and can clip). wav/flac/ogg already at the rate are read with soundfile (no resampling needed);
    anything else, an mp4's audio stream included, is decoded and resampled with PyAV (libswresample).
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError("audio file not found", path)
    limit = None if seconds is None else int(round(seconds * sample_rate))
    try:
        audio = None
        if path.suffix.lower() in _SOUNDFILE_SUFFIXES:
            audio = _read_soundfile(path, sample_rate, limit)
        if audio is None:
            audio = _decode_with_pyav(path, sample_rate, limit)
    except MediaError:
        raise
    except (av.FFmpegError, soundfile.LibsndfileError, OSError, ValueError, RuntimeError) as exc:
        raise MediaError(f"cannot decode audio: {exc}", path) from None
    if audio.size == 0:
        raise MediaError("audio stream holds no samples", path)
    if limit is not None and audio.size < limit:
        audio = np.concatenate([audio, np.zeros(limit - audio.size, dtype=np.float32)])
    return audio


def _read_soundfile(path: Path, sample_rate: int, limit: int | None) -> np.ndarray | None:
    """The file's samples if it is at `sample_rate` already, else None (it needs resampling)."""
    info = soundfile.info(str(path))
    if info.samplerate != sample_rate:
        return None
    data, _ = soundfile.read(str(path), frames=-1 if limit is None else limit, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.mean(axis=1, dtype=np.float32))


def _decode_with_pyav(path: Path, sample_rate: int, limit: int | None) -> np.ndarray:
    chunks: list[np.ndarray] = []
    total = 0
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise MediaError("no audio stream", path)
        stream = container.streams.audio[0]
        # Keep the channel layout, planar float: channels are averaged below, not by swresample.
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=sample_rate)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
                total += chunks[-1].size
            if limit is not None and total >= limit:
                break
        else:
            for out in resampler.resample(None):  # flush the resampler's delay at the end of the stream
                chunks.append(out.to_ndarray().mean(axis=0, dtype=np.float32))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return audio[:limit] if limit is not None else audio


def decode_media(sample: Sample, spec: MediaSpec) -> DecodedMedia:
    """Decode one sample's media roles to `spec` (the module docstring lists the roles).

    Visual: `video` (frames sampled over the clip), else `frames` (listed images, `uniform_indices`),
    else `image` (T = 1). Audio: the `audio` file when it exists, else the audio stream of `video`.
    Raises `MediaError` naming the file that is missing or cannot be decoded.
    """
    media = sample.media
    frames = audio = None
    if spec.need_video:
        if "video" in media:
            frames = decode_video(_one_path(media["video"], sample, "video"), spec.n_frames, spec.frame_size,
                                  spec.frame_anchor)
        elif "frames" in media:
            paths = media["frames"]
            frames = load_frames([paths] if isinstance(paths, str) else list(paths), spec.n_frames, spec.frame_size)
        elif "image" in media:
            frames = load_image(_one_path(media["image"], sample, "image"), spec.frame_size)[None]
        else:
            raise MediaError(f"sample {sample.id!r} has no visual media (roles: {', '.join(media) or 'none'})")
    if spec.need_audio:
        audio_path = media.get("audio")
        audio_path = _one_path(audio_path, sample, "audio") if audio_path is not None else None
        if audio_path is not None and Path(audio_path).is_file():
            audio = decode_audio(audio_path, spec.sample_rate, spec.audio_seconds)
        elif "video" in media:
            video = _one_path(media["video"], sample, "video")
            try:
                audio = decode_audio(video, spec.sample_rate, spec.audio_seconds)
            except MediaError as exc:
                if audio_path is None:
                    raise
                raise MediaError(f"audio file not found, and the video gives none ({exc})", audio_path) from None
        elif audio_path is not None:
            raise MediaError("audio file not found", audio_path)
        else:
            raise MediaError(f"sample {sample.id!r} has no audio media (roles: {', '.join(media) or 'none'})")
    return DecodedMedia(frames=frames, audio=audio)


def _one_path(value: str | list[str], sample: Sample, role: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    raise MediaError(f"sample {sample.id!r}: media role {role!r} must be one path, got {value!r}")


def decode_or_error(sample: Sample, spec: MediaSpec) -> DecodedMedia | MediaError:
    """`decode_media`, with a media failure returned instead of raised (for `--on-error skip`)."""
    try:
        return decode_media(sample, spec)
    except MediaError as exc:
        return exc


class MediaStream:
    """Decodes batches of samples in background threads, a bounded number of batches ahead, in order.

    Iterating yields `(batch, decoded)` with one `DecodedMedia` or `MediaError` per sample of the
    batch. At most `prefetch` batches beyond the one being consumed are decoded or in flight, so memory
    does not grow with the data set. Threads suffice: PyAV, soundfile and Pillow release the GIL
    while they decode and resize.
    """

    def __init__(self, batches: Iterable[Sequence[Sample]], spec: MediaSpec, workers: int = 2, prefetch: int = 2):
        if workers < 1 or prefetch < 0:
            raise ValueError(f"need workers >= 1 and prefetch >= 0, got {workers}, {prefetch}")
        self.spec, self.workers, self.prefetch = spec, workers, prefetch
        self._batches = iter(batches)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="avbench-media")
        self._pending: deque[tuple[Sequence[Sample], list[Future]]] = deque()
        self._lock = threading.Lock()
        self._closed = False

    def _submit_next(self) -> bool:
        batch = next(self._batches, None)
        if batch is None:
            return False
        self._pending.append((batch, [self._pool.submit(decode_or_error, s, self.spec) for s in batch]))
        return True

    def __iter__(self) -> Iterator[tuple[Sequence[Sample], list[DecodedMedia | MediaError]]]:
        try:
            while True:
                while len(self._pending) <= self.prefetch and self._submit_next():
                    pass
                if not self._pending:
                    return
                # `prefetch` batches stay queued behind this one while it is consumed.
                batch, futures = self._pending.popleft()
                yield batch, [f.result() for f in futures]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers; decodes not started yet are cancelled."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def __enter__(self) -> "MediaStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
