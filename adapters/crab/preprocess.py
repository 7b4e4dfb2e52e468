"""Decoded media -> model inputs the way Crab prepares them per task.

Frames: the runner delivers `n_frames` frames (`avbench.media`); when a sample lists its frames as
images (AVSBench, Ref-AVS: 5 or 10 per clip) the runner repeats them to the spec's count with
`uniform_indices`, and Crab feeds each listed frame once (GeWu-Lab/Crab `dataset/unified_dataset.py`,
`image_path_list`), so the repeats are dropped again here. Audio: Crab's per-task segmentation
(`beats.CRAB_SEGMENTS`: 10 x 1 s, 5 x 1 s for 5-second clips, 10 x 2 s windows for MUSIC-AVQA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from avbench.media import DecodedMedia, uniform_indices
from avbench.types import Sample

from .beats import CRAB_SEGMENTS, SegmentSpec, crab_segments
from .vision import frames_to_pixels

DEFAULT_SEGMENTS = SegmentSpec(10)
#: The shortest segment BEATs encodes: one patch of 16 fbank frames of 25 ms every 10 ms at 16 kHz.
MIN_SEGMENT_SAMPLES = 400 + 15 * 160


def listed_frame_positions(n_listed: int, n_decoded: int) -> list[int]:
    """For each listed frame j, the index of a decoded frame showing it (the first one).

    Inverse of `uniform_indices(n_listed, n_decoded)`; when there are fewer decoded frames than listed
    (sub-sampling), a listed frame that was not picked maps to the decoded frame nearest in time.
    """
    picked = uniform_indices(n_listed, n_decoded)
    first: dict[int, int] = {}
    for position, listed in enumerate(picked):
        first.setdefault(listed, position)
    return [first[j] if j in first else min(range(n_decoded), key=lambda p: abs(picked[p] - j)) for j in range(n_listed)]


@dataclass
class SampleMedia:
    pixels: torch.Tensor  # (T, 3, S, S) normalised frames, one per listed frame / sampled video frame
    segments: torch.Tensor | None  # (n_segments, samples) audio segments at 16 kHz
    is_image: bool  # a single still image (ARIG): fills `<image>` instead of `<video>`


def prepare_media(task_name: str, sample: Sample, media: DecodedMedia, image_size: int) -> SampleMedia:
    if media.frames is None:
        raise ValueError(f"sample {sample.id!r}: no decoded frames")
    frames = np.asarray(media.frames)
    listed = sample.media.get("frames")
    if isinstance(listed, list) and listed and len(listed) != frames.shape[0]:
        frames = frames[listed_frame_positions(len(listed), frames.shape[0])]
    segments = None
    if media.audio is not None:
        spec = CRAB_SEGMENTS.get(task_name, DEFAULT_SEGMENTS)
        waveform = torch.from_numpy(np.ascontiguousarray(media.audio, dtype=np.float32))
        # Too short for every segment to hold one BEATs patch (16 fbank frames = 2,800 samples): Crab would fail
        # here; we pad with silence at the end, so a clip with a truncated audio track is still answered.
        per_second = math.ceil(MIN_SEGMENT_SAMPLES / (spec.before + spec.after))
        needed = int(spec.total_seconds * per_second)
        if waveform.shape[0] < needed:
            waveform = torch.nn.functional.pad(waveform, (0, needed - waveform.shape[0]))
        segments = crab_segments(waveform, spec)
    return SampleMedia(frames_to_pixels(frames, image_size), segments, is_image="image" in sample.media)
