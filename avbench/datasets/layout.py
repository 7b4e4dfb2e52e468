"""Where a data set and its media files lie under a data root, whichever of the accepted layouts it uses.

Releases name their folders differently (AVE ships `AVE/*.mp4`, LLP `video/`, Ref-AVS is often unpacked
as `refavs/`), so a data set folder and its media folders are looked up among known aliases
(docs/data-layout.md). Media lookups list each candidate folder once (`os.scandir`), so resolving the
media of thousands of samples costs one directory listing per folder, not one `stat` per sample.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

#: Accepted names of each data set's folder under a data root, the conventional one first.
DATASET_FOLDERS: dict[str, tuple[str, ...]] = {
    "ave": ("ave", "AVE_Dataset", "AVE"),
    "avvp": ("avvp", "LLP_dataset", "llp"),
    "music_avqa": ("music_avqa", "MUSIC-AVQA", "music-avqa"),
    "avsbench": ("avsbench", "AVSBench-semantic", "avsbench_semantic"),
    "ref_avs": ("ref_avs", "refavs", "REFAVS", "Ref-AVS"),
}

#: Paths (relative to a data set folder) any of which shows that a folder holds that data set: lets
#: --data-root point at one data set's own folder instead of a parent of conventional sub-folders.
DATASET_MARKERS: dict[str, tuple[str, ...]] = {
    "ave": ("Annotations.txt",),
    "avvp": ("AVVP_test_pd.csv", "AVVP_train.csv"),
    "music_avqa": ("avqa-test.json", "json_update", "json"),
    "avsbench": ("v1s", "v1m", "v2"),
    "ref_avs": ("gt_mask",),
}

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg")


def dataset_folder(data_root: str | Path, name: str) -> Path:
    """The folder holding data set `name` (a key of DATASET_FOLDERS): the first alias that exists under
    `data_root`, or the conventional name (so that a "not found" error names the expected folder).

    `data_root` may also be the data set's own folder (one root per data set): it is used when it holds
    one of the data set's DATASET_MARKERS and no alias sub-folder exists.
    """
    root = Path(data_root)
    aliases = [root / alias for alias in DATASET_FOLDERS[name] if (root / alias).is_dir()]
    for folder in [*aliases, root]:  # a folder holding the data set's files wins (AVE_Dataset/AVE/ holds videos only)
        if any((folder / marker).exists() for marker in DATASET_MARKERS[name]):
            return folder
    return aliases[0] if aliases else root / DATASET_FOLDERS[name][0]


def first_existing(candidates: Sequence[Path]) -> Path:
    """The first candidate that exists, else the first one (named in the error that follows)."""
    for path in candidates:
        if path.exists():
            return path
    return candidates[0]


class MediaIndex:
    """Finds `<stem><suffix>` in a list of candidate folders (first folder, then first suffix, wins).

    A stem found nowhere resolves to `folders[0] / (stem + suffixes[0])`: the conventional path, which
    the media decoder then reports as missing.
    """

    def __init__(self, folders: Sequence[Path], suffixes: Sequence[str]):
        self.folders, self.suffixes = list(folders), tuple(suffixes)
        self._names: list[set[str]] = [_listing(folder) for folder in self.folders]

    def find(self, stem: str) -> Path | None:
        for folder, names in zip(self.folders, self._names):
            for suffix in self.suffixes:
                if stem + suffix in names:
                    return folder / (stem + suffix)
        return None

    def path(self, stem: str) -> str:
        found = self.find(stem)
        return str(found if found is not None else self.folders[0] / (stem + self.suffixes[0]))


def _listing(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries}
    except (FileNotFoundError, NotADirectoryError):
        return set()
