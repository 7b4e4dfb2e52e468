"""A clip as ground truth: objects with a box (or none) and a loudness per one-second segment.

Every data set builds its clips from `SceneObject`s; the same objects are rendered to frames and
audio and written to synthav.json, so the media and the recorded truth cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import look, sound


@dataclass
class SceneObject:
    key: int  # look and sound of the class (index in the data set's vocabulary)
    name: str  # the label as the annotation files spell it
    boxes: list[look.Box | None]  # per segment; None = not visible
    gains: list[float]  # per segment; 0 = silent
    pattern: int | None = None  # rhythmic pattern of sound and pulse; None = steady sound
    extra: dict[str, Any] = field(default_factory=dict)

    def visible(self, segment: int) -> bool:
        return self.boxes[segment] is not None

    def audible(self, segment: int) -> bool:
        return self.gains[segment] > 0


def render_frames(objects: list[SceneObject], base: np.ndarray, segments: int, fps: int, pulse: bool) -> np.ndarray:
    """(segments * fps, H, W, 3) uint8. With `pulse`, an object with a pattern brightens on its strikes.

    Frame j of a second shows pattern step `j * PATTERN_STEPS // fps`, whether or not the object is
    heard: the pulse shows an object's rhythm, never whether it sounds.
    """
    frames = np.empty((segments * fps, *base.shape), dtype=np.uint8)
    for segment in range(segments):
        shown = [o for o in objects if o.visible(segment)]
        static = look.draw(base, [look.Placement(o.key, o.boxes[segment]) for o in shown])
        for j in range(fps):
            index = segment * fps + j
            if not pulse or not any(o.pattern is not None for o in shown):
                frames[index] = static
                continue
            step = j * sound.PATTERN_STEPS // fps
            placements = [
                look.Placement(o.key, o.boxes[segment], o.pattern is not None and step in sound.pattern_hits(o.pattern))
                for o in shown
            ]
            frames[index] = look.draw(base, placements)
    return frames


def render_audio(objects: list[SceneObject], seconds: int, rng: np.random.Generator) -> np.ndarray:
    return sound.mix([(o.key, o.gains[:seconds], o.pattern) for o in objects], seconds, rng)


def segment_truth(objects: list[SceneObject], segments: int) -> list[dict[str, Any]]:
    """Per segment: visible objects (class, box, object index) and audible classes, for synthav.json."""
    truth = []
    for segment in range(segments):
        truth.append(
            {
                "visible": [
                    {"object": i, "class": o.name, "box": list(o.boxes[segment])}
                    for i, o in enumerate(objects)
                    if o.visible(segment)
                ],
                "audible": sorted({o.name for o in objects if o.audible(segment)}),
            }
        )
    return truth


def runs(flags: list[bool]) -> list[tuple[int, int]]:
    """Maximal runs of True as [onset, offset) pairs: [F, T, T, F, T] -> [(1, 3), (4, 5)]."""
    out: list[tuple[int, int]] = []
    start = None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i))
            start = None
    return out
