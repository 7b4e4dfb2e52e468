"""What a class looks like and how a scene becomes frames: shape x colour sprites on a muted background.

A class key k (its index in the data set's vocabulary) has shape `SHAPES[k % 7]` and colour
`COLOURS[(k // 7) % 10]`, so the 70 AVSBench-semantic classes get 70 distinct looks. Backgrounds
are dark and desaturated, far from every object colour, so colour alone tells objects from ground.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross", "diamond")
COLOUR_NAMES: tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple", "white", "pink")
COLOURS = np.array(
    [
        (230, 40, 40), (40, 200, 60), (50, 90, 240), (240, 220, 40), (220, 50, 220),
        (40, 220, 230), (250, 140, 20), (130, 60, 200), (245, 245, 245), (255, 150, 190),
    ],
    dtype=np.uint8,
)

#: Box = (x0, y0, x1, y1) in pixels, end-exclusive.
Box = tuple[int, int, int, int]


def shape_of(key: int) -> str:
    return SHAPES[key % len(SHAPES)]


def colour_of(key: int) -> str:
    return COLOUR_NAMES[(key // len(SHAPES)) % len(COLOUR_NAMES)]


@lru_cache(maxsize=4096)
def sprite(shape: str, height: int, width: int) -> np.ndarray:
    """Boolean mask of `shape` filling a height x width box (cached: scenes reuse a few sizes)."""
    v, u = np.meshgrid(
        (np.arange(height) + 0.5) / height * 2 - 1, (np.arange(width) + 0.5) / width * 2 - 1, indexing="ij"
    )
    r, theta = np.hypot(u, v), np.arctan2(v, u)
    if shape == "circle":
        mask = r <= 1.0
    elif shape == "square":
        mask = (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    elif shape == "triangle":
        mask = (np.abs(u) <= (v + 1.0) / 2.0) & (v <= 0.9)
    elif shape == "star":
        mask = r <= 0.45 + 0.5 * (0.5 + 0.5 * np.cos(5 * (theta + np.pi / 2)))
    elif shape == "ring":
        mask = (r <= 1.0) & (r >= 0.55)
    elif shape == "cross":
        mask = ((np.abs(u) <= 0.3) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.95))
    elif shape == "diamond":
        mask = np.abs(u) + np.abs(v) <= 1.0
    else:
        raise ValueError(f"unknown shape {shape!r}")
    mask.setflags(write=False)
    return mask


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dark, low-saturation vertical gradient: different per clip, never mistaken for an object."""
    top = rng.integers(15, 70, size=3)
    bottom = np.clip(top + rng.integers(-20, 21, size=3), 10, 80)
    weights = np.linspace(0.0, 1.0, height)[:, None, None]
    rows = (1 - weights) * top[None, None, :] + weights * bottom[None, None, :]
    return np.broadcast_to(np.rint(rows), (height, width, 3)).astype(np.uint8)


@dataclass(frozen=True)
class Placement:
    """One object drawn in one frame: class key, box, and whether it is on a rhythmic pulse."""

    key: int
    box: Box
    pulse: bool = False


def object_mask(placement: Placement, height: int, width: int) -> np.ndarray:
    x0, y0, x1, y1 = placement.box
    full = np.zeros((height, width), dtype=bool)
    full[y0:y1, x0:x1] = sprite(shape_of(placement.key), y1 - y0, x1 - x0)
    return full


def draw(base: np.ndarray, placements: list[Placement]) -> np.ndarray:
    """Paint objects onto a copy of `base`; a pulsing object is drawn brighter (towards white)."""
    frame = base.copy()
    for placement in placements:
        x0, y0, x1, y1 = placement.box
        mask = sprite(shape_of(placement.key), y1 - y0, x1 - x0)
        colour = COLOURS[(placement.key // len(SHAPES)) % len(COLOURS)].astype(np.int16)
        if placement.pulse:
            colour = colour + (255 - colour) * 2 // 5
        frame[y0:y1, x0:x1][mask] = colour.astype(np.uint8)
    return frame


def grid_box(rng: np.random.Generator, cell: int, cells: int, frame: int, min_size: int, max_size: int) -> Box:
    """A random box inside cell `cell` of a cells x cells grid over a square frame of side `frame`."""
    side = frame // cells
    row, col = divmod(cell, cells)
    size_w = int(rng.integers(min_size, max_size + 1))
    size_h = int(np.clip(size_w + rng.integers(-4, 5), min_size, side - 2))
    size_w = min(size_w, side - 2)
    x0 = col * side + int(rng.integers(1, side - size_w))
    y0 = row * side + int(rng.integers(1, side - size_h))
    return (x0, y0, x0 + size_w, y0 + size_h)


def jitter(rng: np.random.Generator, box: Box, cell: int, cells: int, frame: int, step: int) -> Box:
    """Move a box by up to `step` pixels, staying inside its grid cell (objects drift, never overlap)."""
    side = frame // cells
    row, col = divmod(cell, cells)
    x0, y0, x1, y1 = box
    dx, dy = (int(v) for v in rng.integers(-step, step + 1, size=2))
    dx = int(np.clip(dx, col * side + 1 - x0, (col + 1) * side - 1 - x1))
    dy = int(np.clip(dy, row * side + 1 - y0, (row + 1) * side - 1 - y1))
    return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
