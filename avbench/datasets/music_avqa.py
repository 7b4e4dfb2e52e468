"""Which MUSIC-AVQA question file to read (Li et al., CVPR 2022).

The release has two sets of question files with the same names: the original `json/avqa-*.json` (test:
9,185 questions) and the corrected `json_update/avqa-*.json` (test: 9,129), the one Crab and later
papers report on. A data set folder may hold either sub-folder (or both), or the files directly;
`version` picks the sub-folder, and files placed directly in the folder are read whatever their
version (avbench.data_versions then says which one they are).
"""

from __future__ import annotations

from pathlib import Path

from avbench.errors import UnknownNameError

#: Sub-folder of each question-file version, the default first.
VERSION_FOLDERS = {"updated": "json_update", "original": "json"}


def check_version(version: str) -> str:
    if version not in VERSION_FOLDERS:
        raise UnknownNameError("MUSIC-AVQA question version", version, list(VERSION_FOLDERS))
    return version


def question_file(folder: Path, split: str, version: str) -> Path:
    """`<folder>/<version sub-folder>/avqa-<split>.json`, else `<folder>/avqa-<split>.json`.

    When neither exists, the sub-folder path is returned, so that the "not found" error names it.
    """
    name = f"avqa-{split}.json"
    in_version = folder / VERSION_FOLDERS[check_version(version)] / name
    if in_version.is_file():
        return in_version
    flat = folder / name
    if flat.is_file():
        return flat
    return in_version
