"""Writers for tiny AVSBench-semantic trees (docs/data-layout.md) used by the S4/MS3, ARIG and AVSS tests."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from avbench.masks import avsbench_palette

PALETTE = avsbench_palette()
METADATA_HEADER = ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"]


def save_class_map(path: Path, labels: np.ndarray) -> None:
    """A class-id map as an RGB palette mask (`labels_rgb/<i>.png`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(PALETTE[np.asarray(labels)], mode="RGB").save(path)


def write_video(
    root: Path,
    subset: str,
    uid: str,
    masks: dict[int, np.ndarray],
    n_frames: int | None = None,
    frame_size: tuple[int, int] = (16, 16),
    save_mask: Callable[[Path, np.ndarray], None] = save_class_map,
) -> None:
    """Frames, masks (frame index -> class-id map, or what `save_mask` takes) and a silent audio.wav."""
    folder = root / "avsbench" / subset / uid
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    for i in range(n_frames if n_frames is not None else (10 if subset == "v2" else 5)):
        Image.new("RGB", frame_size, (i * 20, 90, 30)).save(folder / "frames" / f"{i}.jpg")
    for i, mask in masks.items():
        save_mask(folder / "labels_rgb" / f"{i}.png", mask)
    (folder / "audio.wav").write_bytes(b"")


def write_metadata(root: Path, rows: Sequence[Sequence[str]]) -> None:
    """`avsbench/metadata.csv`; a row is (uid, split, subset) or the full seven columns."""
    (root / "avsbench").mkdir(parents=True, exist_ok=True)
    with (root / "avsbench" / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(METADATA_HEADER)
        for row in rows:
            if len(row) == 3:
                uid, split, subset = row
                row = (uid.split("_")[0], uid, "0", "0", "thing", split, subset)
            writer.writerow(row)
