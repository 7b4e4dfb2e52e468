"""Decoded media as models receive it: the contract between the data side and model adapters.

An adapter that reads media sets `ModelAdapter.media_spec`; the runner then decodes each batch's
media to that spec (frames at a fixed count and size, audio resampled to mono at a fixed rate) and
passes one `DecodedMedia` per sample to `predict(..., media=...)`. Adapters that read no media
(the baselines) leave `media_spec` as None and the runner decodes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


@dataclass
class DecodedMedia:
    """One sample's media. `frames`: (T, S, S, 3) uint8 RGB; `audio`: (n,) float32 in [-1, 1]."""

    frames: np.ndarray | None = None
    audio: np.ndarray | None = None
