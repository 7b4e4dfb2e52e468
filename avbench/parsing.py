"""Small helpers shared by task parsers and loaders: class-name matching, time ranges, repeated ids."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

from .errors import ParseError


def class_key(name: str) -> str:
    """A class name reduced to lower-case letters and digits: 'Violin, fiddle' == 'violin fiddle'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def class_lookup(names: Iterable[str]) -> dict[str, str]:
    """`class_key(name) -> name` for a vocabulary, to map a model's spelling back to the release's."""
    return {class_key(name): name for name in names}


def whole_second_range(start: float | str, end: float | str, n_segments: int) -> tuple[int, int]:
    """A time range in whole seconds (end exclusive), rounded to the nearest second and clipped to [0, n].

    Halves round up: Python's round() would send 2.5 to 2 but 3.5 to 4. An end before the start
    is a parse failure.
    """
    start, end = (min(max(math.floor(float(v) + 0.5), 0), n_segments) for v in (start, end))
    if end < start:
        raise ParseError(f"time range {start}-{end} ends before it starts (whole seconds, end exclusive, 0..{n_segments})")
    return start, end


class RepeatedIds:
    """Releases repeat some ids and their official code scores every row: the k-th repeat becomes `<id>#k`."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def __call__(self, raw_id: str) -> str:
        self._seen[raw_id] += 1
        count = self._seen[raw_id]
        return raw_id if count == 1 else f"{raw_id}#{count}"
