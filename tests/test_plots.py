"""Pillow charts: sizes, a cell's colour is its value's colour, a line goes through its data's pixels,
the same input gives the same bytes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avbench.plots import AXIS, GRID, MISSING, PALETTE, SCALE_STOPS, WHITE, colour_of, heatmap, line_chart, nice_ticks


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


def test_colour_scale_maps_the_range_onto_the_stops() -> None:
    assert colour_of(0.0, 0.0, 1.0) == SCALE_STOPS[0] and colour_of(1.0, 0.0, 1.0) == SCALE_STOPS[-1]
    assert colour_of(0.25, 0.0, 1.0) == SCALE_STOPS[1] and colour_of(0.5, 0.0, 1.0) == SCALE_STOPS[2]
    # halfway between two stops is the rounded mean of their channels
    assert colour_of(0.125, 0.0, 1.0) == tuple(int(round((a + b) / 2)) for a, b in zip(SCALE_STOPS[0], SCALE_STOPS[1]))
    assert colour_of(-5.0, 0.0, 1.0) == SCALE_STOPS[0] and colour_of(7.0, 0.0, 1.0) == SCALE_STOPS[-1]  # clipped
    assert colour_of(3.0, 3.0, 3.0) == SCALE_STOPS[2] and colour_of(math.nan, 0.0, 1.0) == MISSING


def test_heatmap_cells_have_their_values_colour_and_text(tmp_path: Path) -> None:
    matrix = [[0.2, 0.6, 0.4], [1.0, math.nan, 0.4]]
    path = tmp_path / "h.png"
    layout = heatmap(path, matrix, ["layer 0", "all layers"], ["h0", "h1", "h2"], "router weights", "{:.2f}")
    pixels = _pixels(path)
    assert pixels.shape == (layout.height, layout.width, 3)
    assert (layout.low, layout.high) == (0.2, 1.0)
    assert layout.left + 3 * layout.cell_width < layout.width and layout.top + 2 * layout.cell_height <= layout.height
    expected = {(0, 0): SCALE_STOPS[0], (1, 0): SCALE_STOPS[-1], (0, 1): SCALE_STOPS[2], (1, 1): MISSING,
                (0, 2): SCALE_STOPS[1]}
    for (row, col), colour in expected.items():
        x0, y0, x1, y1 = layout.cell_box(row, col)
        assert tuple(pixels[y0 + 3, x0 + 3]) == colour, (row, col)  # a corner: no text there
        middle = pixels[y0 + 6 : y1 - 6, x0 + 6 : x1 - 6].reshape(-1, 3)
        # the value is written in the middle: pixels of another colour than the fill
        assert (np.abs(middle.astype(int) - np.array(colour)).sum(axis=1) > 60).sum() > 10, (row, col)
    with pytest.raises(ValueError, match="does not match 2 row labels and 2 column labels"):
        heatmap(tmp_path / "bad.png", matrix, ["a", "b"], ["x", "y"], "bad")


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    assert nice_ticks(0.53, 6.5) == [0, 2, 4, 6, 8]
    assert nice_ticks(0.31, 0.36) == [0.31, 0.32, 0.33, 0.34, 0.35, 0.36]
    low, high = nice_ticks(2.0, 2.0)[0], nice_ticks(2.0, 2.0)[-1]
    assert low < 2.0 < high


def test_line_chart_draws_each_series_through_its_points(tmp_path: Path) -> None:
    path = tmp_path / "loss.png"
    series = {"rising": [(0, 0), (10, 10)], "flat": [(0, 2), (4, 2), (10, 2)], "gap": [(0, 8), (5, math.nan), (10, 8)]}
    layout = line_chart(path, series, "loss", "step", "value")
    pixels = _pixels(path)
    assert pixels.shape == (500, 800, 3) and (layout.width, layout.height) == (800, 500)
    assert layout.x_ticks == (0, 2, 4, 6, 8, 10) and layout.y_ticks == (0, 2, 4, 6, 8, 10)
    x0, y0, x1, y1 = layout.plot
    assert layout.to_pixel(0, 0) == (x0, y1) and layout.to_pixel(10, 10) == (x1, y0)
    assert tuple(pixels[(y0 + y1) // 2, x0]) == AXIS  # the y axis at the left edge of the plot

    def near(x: float, y: float, colour: tuple[int, int, int]) -> bool:
        px, py = (int(round(v)) for v in layout.to_pixel(x, y))
        window = pixels[py - 2 : py + 3, px - 2 : px + 3].reshape(-1, 3)
        return bool((window == np.array(colour)).all(axis=1).any())

    for t in (1.0, 3.0, 5.0):  # the diagonal passes through (t, t); the legend sits in the top-right corner
        assert near(t, t, PALETTE[0]), t
    assert near(1.5, 2, PALETTE[1]) and near(7.5, 2, PALETTE[1])
    assert near(2.5, 8, PALETTE[2])  # the NaN point is skipped, the line joins its neighbours
    assert not near(2.0, 6.0, PALETTE[0])  # away from the line: background or grid
    px, py = (int(v) for v in layout.to_pixel(3, 5))
    assert tuple(pixels[py, px]) in (WHITE, GRID)
    with pytest.raises(ValueError, match="no finite data points"):
        line_chart(tmp_path / "empty.png", {"a": [(0, math.nan)]}, "t", "x", "y")


def test_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    series = {"train": [(i, 5 * math.exp(-i / 30)) for i in range(100)], "val": [(i, 5.5 * math.exp(-i / 35)) for i in range(0, 100, 10)]}
    line_chart(tmp_path / "a.png", series, "training", "step", "loss")
    line_chart(tmp_path / "b.png", dict(series), "training", "step", "loss")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    matrix = np.arange(12, dtype=float).reshape(4, 3) / 11
    heatmap(tmp_path / "c.png", matrix, [f"layer {i}" for i in range(4)], ["h0", "h1", "h2"], "t")
    heatmap(tmp_path / "d.png", matrix.tolist(), [f"layer {i}" for i in range(4)], ["h0", "h1", "h2"], "t")
    assert (tmp_path / "c.png").read_bytes() == (tmp_path / "d.png").read_bytes()
