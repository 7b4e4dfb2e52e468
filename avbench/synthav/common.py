"""Pieces every SynthAV writer shares: per-clip random streams, clip sizes, rendering a clip to disk."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from . import look, media, scene

CLIP_SECONDS = 10
#: AVE / AVVP / MUSIC-AVQA clips: small frames, few of them (the models sample ~10 frames anyway).
CLIP_SIDE = 128
AVSBENCH_SIDE = 224


def clip_folders(root: Path, dataset: str) -> Path:
    """`<root>/<dataset>/` with its `videos/` and `audios/` media folders, as docs/data-layout.md names them."""
    out = root / dataset
    (out / "videos").mkdir(parents=True)
    (out / "audios").mkdir()
    return out


def rng_for(seed: int, *path: str | int) -> np.random.Generator:
    """An independent stream per (seed, data set, split, clip): adding clips never shifts the others."""
    words = [seed] + [zlib.crc32(p.encode()) if isinstance(p, str) else int(p) for p in path]
    return np.random.default_rng(np.random.SeedSequence(words))


def segment_runs(rng: np.random.Generator, segments: int, with_hole: bool) -> list[bool]:
    """A random set of segments: one run, or two runs with a gap (an event with a hole)."""
    flags = [False] * segments
    if with_hole:
        a, b, c, d = sorted(rng.choice(segments + 1, size=4, replace=False).tolist())
        # [a, b) and [c, d) with b < c: at least one segment between the two runs
        for i in [*range(a, b), *range(c, d)]:
            flags[i] = True
        return flags
    start = int(rng.integers(0, segments))
    end = int(rng.integers(start + 1, segments + 1))
    for i in range(start, end):
        flags[i] = True
    return flags


def drifting_boxes(rng: np.random.Generator, cell: int, cells: int, side: int, size: tuple[int, int], n: int) -> list[look.Box]:
    box = look.grid_box(rng, cell, cells, side, *size)
    boxes = [box]
    for _ in range(n - 1):
        box = look.jitter(rng, box, cell, cells, side, step=max(2, side // 40))
        boxes.append(box)
    return boxes


def write_clip(video: Path, audio: Path, objects: list[scene.SceneObject], rng: np.random.Generator,
               fps: int, pulse: bool) -> None:
    """The clip as mp4 (frames only) and 16 kHz wav."""
    base = look.background(rng, CLIP_SIDE, CLIP_SIDE)
    frames = scene.render_frames(objects, base, CLIP_SECONDS, fps, pulse)
    media.write_mp4(video, frames, fps)
    media.write_wav(audio, scene.render_audio(objects, CLIP_SECONDS, rng))
