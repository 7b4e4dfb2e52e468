"""The AVE release (Tian et al., ECCV 2018): `Annotations.txt` and its split files.

Every annotation file is `Category&VideoID&Quality&StartTime&EndTime`, one video per line (whole
seconds, end exclusive). The GitHub copy of `Annotations.txt` has no header; the dataset zip's copy
starts with the header line `Category&VideoID&Quality&StartTime&EndTime`, which is skipped. A split is
read from either of the two forms the release ships:
- `<split>_order.h5`: HDF5 dataset `order`, 0-based indices into the data rows of Annotations.txt
  (used when present: it is what the official code reads);
- `trainSet.txt` / `valSet.txt` / `testSet.txt`: the split's rows in the same `&` format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from avbench.datasets.text import checked_lines
from avbench.errors import DataError
from avbench.vocab import AVE_EVENTS

N_SEGMENTS = 10
HEADER = "Category&VideoID&Quality&StartTime&EndTime"
SPLIT_TEXT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}


@dataclass(frozen=True)
class AVERow:
    event: str
    video_id: str
    quality: str
    start: int
    end: int
    path: Path
    line: int

    def record(self) -> str:
        """The row as released (for content hashes that do not depend on which file it came from)."""
        return f"{self.event}&{self.video_id}&{self.quality}&{self.start}&{self.end}"


def read_rows(path: Path) -> list[AVERow]:
    """Data rows of an `&`-separated AVE annotation file; malformed lines name the file and line."""
    if not path.is_file():
        raise DataError("AVE annotation file not found", path)
    rows = []
    with path.open(encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(checked_lines(handle, path, "utf-8-sig"), start=1):
            text = line.rstrip("\r\n")
            if not text.strip():  # a trailing empty line is harmless; rows are indexed by position
                continue
            if line_no == 1 and text.replace(" ", "").lower() == HEADER.lower():
                continue
            fields = text.split("&")
            if len(fields) != 5:
                raise DataError(f"expected 5 '&'-separated fields ({HEADER}), got {len(fields)}", path, line_no)
            event, video_id, quality, start, end = fields
            if not (start.isdigit() and end.isdigit()):
                raise DataError(f"StartTime/EndTime must be whole seconds, got {start!r}, {end!r}", path, line_no)
            if event not in AVE_EVENTS:
                raise DataError(f"unknown AVE category {event!r}", path, line_no)
            if not 0 <= int(start) <= int(end) <= N_SEGMENTS:
                raise DataError(f"time range {start}..{end} is not within 0..{N_SEGMENTS} with start <= end", path, line_no)
            if not video_id:
                raise DataError("empty VideoID", path, line_no)
            rows.append(AVERow(event, video_id, quality, int(start), int(end), path, line_no))
    return rows


def split_files(folder: Path, split: str) -> list[Path]:
    """The annotation files a split is read from, in the order `read_split` prefers them."""
    order = folder / f"{split}_order.h5"
    if order.is_file():
        return [folder / "Annotations.txt", order]
    text = folder / SPLIT_TEXT_FILES.get(split, f"{split}Set.txt")
    if text.is_file():
        return [text]
    return [folder / "Annotations.txt", order]


def read_split(folder: Path, split: str) -> list[AVERow]:
    """Rows of `split`, in the split file's order."""
    files = split_files(folder, split)
    if len(files) == 1:
        return read_rows(files[0])
    annotations, order_path = files
    if not order_path.is_file():
        raise DataError(f"split file not found (nor {SPLIT_TEXT_FILES.get(split, split + 'Set.txt')})", order_path)
    rows = read_rows(annotations)
    try:
        with h5py.File(order_path, "r") as handle:
            if "order" not in handle:
                raise DataError("HDF5 file has no dataset 'order'", order_path)
            order = np.asarray(handle["order"][()]).reshape(-1)
    except OSError as exc:
        raise DataError(f"cannot read HDF5 file ({exc})", order_path) from None
    if not np.issubdtype(order.dtype, np.integer):
        raise DataError(f"dataset 'order' must hold integers, got {order.dtype}", order_path)
    picked = []
    for position, index in enumerate(order.tolist()):
        if not 0 <= index < len(rows):
            raise DataError(f"order[{position}] = {index} is outside Annotations.txt ({len(rows)} rows)", order_path)
        picked.append(rows[index])
    return picked
