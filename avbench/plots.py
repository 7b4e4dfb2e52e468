"""PNG charts for reports: a heatmap with the values written in its cells, and a line chart.

Drawn with Pillow (already a dependency, for masks and frames): matplotlib is not in the approved
stack, and these two charts need only rectangles, lines and text. Output is deterministic: the same
input gives the same PNG bytes (Pillow's bundled default font, no timestamps in the file), so a chart
committed to the docs only changes when its numbers do.

Both functions return the chart's geometry (`HeatmapLayout`, `LineChartLayout`), for callers that
want to know where a cell or a data point was drawn (the tests use it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]

WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
AXIS: RGB = (60, 60, 60)
GRID: RGB = (225, 225, 225)
MISSING: RGB = (200, 200, 200)
#: A sequential scale from dark blue-purple (low) to yellow (high), interpolated linearly between these
#: stops; monotonic in lightness, so it also reads in greyscale.
SCALE_STOPS: tuple[RGB, ...] = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
#: Line colours, in series order (distinguishable, and none of them close to the grid grey).
PALETTE: tuple[RGB, ...] = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
                            (140, 86, 75), (227, 119, 194), (23, 190, 207))

PAD = 8
TEXT_SIZE = 12
TITLE_SIZE = 15


@lru_cache(maxsize=None)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_size(text: str, size: int = TEXT_SIZE) -> tuple[int, int]:
    left, top, right, bottom = _font(size).getbbox(text or " ")
    return int(math.ceil(right - left)), int(math.ceil(bottom - top))


def _line_height(size: int = TEXT_SIZE) -> int:
    """Height of a line of text whatever its letters (ascenders and descenders included)."""
    return _text_size("Ag|", size)[1] + 2


def _centred_text(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str, fill: RGB, size: int = TEXT_SIZE) -> None:
    x0, y0, x1, y1 = box
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), text, fill=fill, font=_font(size), anchor="mm")


def colour_of(value: float, low: float, high: float) -> RGB:
    """The scale's colour for `value` on [low, high] (clipped); the middle colour when low == high."""
    if not math.isfinite(value):
        return MISSING
    t = 0.5 if high <= low else min(max((value - low) / (high - low), 0.0), 1.0)
    position = t * (len(SCALE_STOPS) - 1)
    k = min(int(position), len(SCALE_STOPS) - 2)
    frac = position - k
    a, b = SCALE_STOPS[k], SCALE_STOPS[k + 1]
    return tuple(int(round(a[i] + (b[i] - a[i]) * frac)) for i in range(3))  # type: ignore[return-value]


def _text_colour_on(background: RGB) -> RGB:
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return BLACK if luminance > 140 else WHITE


# --------------------------------------------------------------------------------------------- heatmap


@dataclass(frozen=True)
class HeatmapLayout:
    width: int
    height: int
    left: int  # x of the first column's left edge
    top: int  # y of the first row's top edge
    cell_width: int
    cell_height: int
    low: float  # the colour scale's range: the matrix's smallest and largest finite values
    high: float

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a cell, x1 and y1 exclusive."""
        x0, y0 = self.left + col * self.cell_width, self.top + row * self.cell_height
        return x0, y0, x0 + self.cell_width, y0 + self.cell_height


def heatmap(path: str | Path, matrix: Sequence[Sequence[float]] | np.ndarray, row_labels: Sequence[str],
            col_labels: Sequence[str], title: str, value_format: str = "{:.2f}") -> HeatmapLayout:
    """Write `matrix` (rows x columns) as a PNG heatmap: each cell coloured by its value on the matrix's
    own range (`colour_of`), the value written in it with `value_format`, labels left and above, the
    title on top and a colour bar on the right. NaN cells are grey and read "n/a"."""
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"heatmap: matrix of shape {values.shape} does not match {len(row_labels)} row labels "
                         f"and {len(col_labels)} column labels")
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    texts = [[value_format.format(v) if math.isfinite(v) else "n/a" for v in row] for row in values]
    widest_value = max((_text_size(t)[0] for row in texts for t in row), default=0)
    cell_width = max(48, widest_value + 2 * PAD, *(_text_size(c)[0] + PAD for c in col_labels))
    cell_height = _line_height() + 2 * PAD
    left = PAD * 2 + max((_text_size(r)[0] for r in row_labels), default=0)
    title_height = _line_height(TITLE_SIZE) + PAD
    top = PAD + title_height + _line_height() + PAD
    bar_left = left + cell_width * values.shape[1] + 2 * PAD
    bar_labels = [value_format.format(v) for v in (high, (low + high) / 2, low)]
    width = max(bar_left + 16 + PAD + max(_text_size(t)[0] for t in bar_labels) + PAD,
                _text_size(title, TITLE_SIZE)[0] + 2 * PAD)
    height = top + cell_height * values.shape[0] + PAD
    layout = HeatmapLayout(width, height, left, top, cell_width, cell_height, low, high)

    image = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(image)
    draw.text((PAD, PAD), title, fill=BLACK, font=_font(TITLE_SIZE))
    for c, label in enumerate(col_labels):
        x0, _, x1, _ = layout.cell_box(0, c)
        _centred_text(draw, (x0, top - _line_height() - PAD // 2, x1, top - PAD // 2), label, BLACK)
    for r, label in enumerate(row_labels):
        _, y0, _, y1 = layout.cell_box(r, 0)
        draw.text((left - PAD, (y0 + y1) / 2), label, fill=BLACK, font=_font(TEXT_SIZE), anchor="rm")
        for c in range(values.shape[1]):
            box = layout.cell_box(r, c)
            fill = colour_of(float(values[r, c]), low, high)
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=fill, outline=WHITE)
            _centred_text(draw, box, texts[r][c], _text_colour_on(fill))
    _colour_bar(draw, bar_left, top, top + cell_height * values.shape[0] - 1, bar_labels)
    _save(image, path)
    return layout


def _colour_bar(draw: ImageDraw.ImageDraw, x: int, y_top: int, y_bottom: int, labels: Sequence[str]) -> None:
    """A vertical gradient, high at the top, with the high, middle and low values beside it."""
    span = max(y_bottom - y_top, 1)
    for y in range(y_top, y_bottom + 1):
        draw.line((x, y, x + 15, y), fill=colour_of(1.0 - (y - y_top) / span, 0.0, 1.0))
    draw.rectangle((x, y_top, x + 15, y_bottom), outline=AXIS)
    for label, y in zip(labels, (y_top, (y_top + y_bottom) / 2, y_bottom)):
        draw.text((x + 16 + PAD // 2, y), label, fill=BLACK, font=_font(TEXT_SIZE), anchor="lm")


# ------------------------------------------------------------------------------------------ line chart

CHART_WIDTH, CHART_HEIGHT = 800, 500
#: Margins around the plot area: room for the title, tick labels and axis labels.
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 80, 24, 44, 64
LINE_WIDTH = 2


def nice_ticks(low: float, high: float, target: int = 6) -> list[float]:
    """About `target` round tick values (steps of 1, 2 or 5 x 10^k) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"tick range must be finite, got [{low}, {high}]")
    if high <= low:
        low, high = low - (abs(low) * 0.5 or 1.0), high + (abs(high) * 0.5 or 1.0)
    raw = (high - low) / max(target - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def _tick_label(value: float, ticks: Sequence[float]) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


@dataclass(frozen=True)
class LineChartLayout:
    width: int
    height: int
    plot: tuple[int, int, int, int]  # (x0, y0, x1, y1) of the plot area; x0, y1 are the axes
    x_ticks: tuple[float, ...]
    y_ticks: tuple[float, ...]

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Image coordinates of the data point (x, y)."""
        x0, y0, x1, y1 = self.plot
        (xa, xb), (ya, yb) = (self.x_ticks[0], self.x_ticks[-1]), (self.y_ticks[0], self.y_ticks[-1])
        return x0 + (x - xa) / (xb - xa) * (x1 - x0), y1 - (y - ya) / (yb - ya) * (y1 - y0)


def line_chart(path: str | Path, series: dict[str, list[tuple[float, float]]], title: str, xlabel: str,
               ylabel: str) -> LineChartLayout:
    """Write one line per series ({name: [(x, y), ...]}, drawn in the given point order) as a PNG line
    chart: axes with round ticks and a light grid, axis labels, the title on top and a legend in the
    plot's top-right corner. Non-finite points are skipped (a loss that overflowed does not hide the
    rest of the curve); a series of one point is drawn as a dot."""
    points = {name: [(float(x), float(y)) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
              for name, pts in series.items()}
    every = [p for pts in points.values() for p in pts]
    if not every:
        raise ValueError(f"line chart {title!r}: no finite data points in {list(series) or 'no series'}")
    xs, ys = [p[0] for p in every], [p[1] for p in every]
    plot = (MARGIN_LEFT, MARGIN_TOP, CHART_WIDTH - MARGIN_RIGHT, CHART_HEIGHT - MARGIN_BOTTOM)
    layout = LineChartLayout(CHART_WIDTH, CHART_HEIGHT, plot, tuple(nice_ticks(min(xs), max(xs))),
                             tuple(nice_ticks(min(ys), max(ys))))
    x0, y0, x1, y1 = plot

    image = Image.new("RGB", (CHART_WIDTH, CHART_HEIGHT), WHITE)
    draw = ImageDraw.Draw(image)
    _centred_text(draw, (0, 0, CHART_WIDTH, MARGIN_TOP), title, BLACK, TITLE_SIZE)
    for tick in layout.x_ticks:
        px = round(layout.to_pixel(tick, layout.y_ticks[0])[0])
        draw.line((px, y0, px, y1), fill=GRID)
        draw.line((px, y1, px, y1 + 4), fill=AXIS)
        draw.text((px, y1 + 6), _tick_label(tick, layout.x_ticks), fill=BLACK, font=_font(TEXT_SIZE), anchor="mt")
    for tick in layout.y_ticks:
        py = round(layout.to_pixel(layout.x_ticks[0], tick)[1])
        draw.line((x0, py, x1, py), fill=GRID)
        draw.line((x0 - 4, py, x0, py), fill=AXIS)
        draw.text((x0 - 6, py), _tick_label(tick, layout.y_ticks), fill=BLACK, font=_font(TEXT_SIZE), anchor="rm")
    draw.line((x0, y1, x1, y1), fill=AXIS)
    draw.line((x0, y0, x0, y1), fill=AXIS)
    _centred_text(draw, (x0, CHART_HEIGHT - _line_height() - PAD, x1, CHART_HEIGHT - PAD), xlabel, BLACK)
    _vertical_label(image, ylabel, (PAD, y0, PAD + _line_height(), y1))
    for k, pts in enumerate(points.values()):
        colour = PALETTE[k % len(PALETTE)]
        pixels = [layout.to_pixel(x, y) for x, y in pts]
        if len(pixels) == 1:
            (px, py), r = pixels[0], LINE_WIDTH + 1
            draw.ellipse((px - r, py - r, px + r, py + r), fill=colour)
        elif pixels:
            draw.line(pixels, fill=colour, width=LINE_WIDTH, joint="curve")
    _legend(draw, list(points), plot)
    _save(image, path)
    return layout


def _vertical_label(image: Image.Image, text: str, box: tuple[int, int, int, int]) -> None:
    """`text` rotated a quarter turn (reading upwards), centred in `box`."""
    width, height = _text_size(text)
    label = Image.new("RGB", (width + 4, _line_height()), WHITE)
    ImageDraw.Draw(label).text((2, _line_height() / 2), text, fill=BLACK, font=_font(TEXT_SIZE), anchor="lm")
    rotated = label.rotate(90, expand=True)
    x0, y0, x1, y1 = box
    image.paste(rotated, ((x0 + x1 - rotated.width) // 2, (y0 + y1 - rotated.height) // 2))


def _legend(draw: ImageDraw.ImageDraw, names: Sequence[str], plot: tuple[int, int, int, int]) -> None:
    row = _line_height() + 4
    width = 28 + max(_text_size(n)[0] for n in names) + 2 * PAD
    x1, y0 = plot[2] - PAD, plot[1] + PAD
    x0 = x1 - width
    draw.rectangle((x0, y0, x1, y0 + row * len(names) + PAD), fill=WHITE, outline=AXIS)
    for k, name in enumerate(names):
        y = y0 + PAD // 2 + row * k + row / 2
        draw.line((x0 + PAD, y, x0 + PAD + 20, y), fill=PALETTE[k % len(PALETTE)], width=LINE_WIDTH + 1)
        draw.text((x0 + PAD + 26, y), name, fill=BLACK, font=_font(TEXT_SIZE), anchor="lm")


def _save(image: Image.Image, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=False)
