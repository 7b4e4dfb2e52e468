"""The AVSBench-semantic release layout, shared by the S4, MS3, AVSS and ARIG tasks.

`avsbench/metadata.csv` has one row per video: `vid,uid,s_min,s_sec,a_obj,split,label`, where
`label` names the subset (`v1s` = AVSBench-object single source, `v1m` = multi-source, `v2` =
AVSBench-semantic's own 10 s videos). Media of a video live in `avsbench/<label>/<uid>/`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from avbench.datasets.layout import dataset_folder
from avbench.datasets.text import checked_lines
from avbench.errors import DataError

METADATA_COLUMNS = ("vid", "uid", "s_min", "s_sec", "a_obj", "split", "label")
SUBSETS = ("v1s", "v1m", "v2")
#: Frames per video as released: v1 videos are 5 s (one frame a second), v2 videos 10 s.
FRAMES_PER_SUBSET = {"v1s": 5, "v1m": 5, "v2": 10}


@dataclass(frozen=True)
class AVSBenchVideo:
    uid: str
    vid: str
    split: str
    subset: str
    a_obj: str
    folder: Path

    @property
    def n_frames(self) -> int:
        return FRAMES_PER_SUBSET[self.subset]

    def frame(self, index: int) -> Path:
        return self.folder / "frames" / f"{index}.jpg"

    def mask(self, index: int) -> Path:
        return self.folder / "labels_rgb" / f"{index}.png"

    @property
    def audio(self) -> Path:
        return self.folder / "audio.wav"


def metadata_path(data_root: Path) -> Path:
    """`metadata.csv` of the AVSBench folder (the annotation file of S4, MS3, AVSS and ARIG)."""
    return dataset_folder(data_root, "avsbench") / "metadata.csv"


def read_avsbench(data_root: Path, split: str, subsets: tuple[str, ...]) -> list[AVSBenchVideo]:
    """Videos of `split` whose subset is in `subsets`, in metadata order."""
    path = metadata_path(data_root)
    root = path.parent
    if not path.is_file():
        raise DataError("AVSBench metadata not found (expected the AVSBench-semantic layout, see docs/data-layout.md)", path)
    videos: list[AVSBenchVideo] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(checked_lines(handle, path, "utf-8"))
        missing = [c for c in METADATA_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"header lacks columns {missing}; expected {','.join(METADATA_COLUMNS)}", path, 1)
        for line, row in enumerate(reader, start=2):
            subset = row["label"]
            if subset not in SUBSETS:
                raise DataError(f"unknown subset label {subset!r}; expected one of {SUBSETS}", path, line)
            if row["split"] != split or subset not in subsets:
                continue
            if not row["uid"]:
                raise DataError("empty uid", path, line)
            videos.append(
                AVSBenchVideo(
                    uid=row["uid"], vid=row["vid"], split=row["split"], subset=subset,
                    a_obj=row["a_obj"], folder=root / subset / row["uid"],
                )
            )
    return videos
