"""Per-rank predictions files of a data-parallel run: which samples a rank predicts, where it writes
them, and folding them into the task's one predictions file.

Files: rank r of w writes `{task}_{split}.rank{r}-of-{w}.jsonl` next to `{task}_{split}.jsonl`, in the
same line format (`avbench.predictions`). After every rank has finished a task, rank 0 folds the rank
files into `{task}_{split}.jsonl` and deletes them, so a finished run leaves exactly the files a
single-process run leaves, byte for byte. Rank files still present at the start of a task are what a
killed run left; they are folded first, whatever world size wrote them, so a re-run with any number of
processes (one included) keeps every finished line and predicts only the rest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence, TypeVar

from .predictions import PredictionWriter, read_predictions

T = TypeVar("T")

def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Rank `rank`'s share: items rank, rank + w, rank + 2w, ... (interleaved, so every rank gets a
    similar mix of the task's samples and shares differ in size by at most one)."""
    return list(items[rank::world_size])


def rank_file(path: Path, rank: int, world_size: int) -> Path:
    """Where rank `rank` of `world_size` writes the lines that end up in `path`."""
    return path.with_name(f"{path.stem}.rank{rank}-of-{world_size}{path.suffix}")


def rank_files(path: Path) -> list[Path]:
    """The rank files of `path` present on disk, ordered by world size, then rank."""
    name = re.compile(rf"{re.escape(path.stem)}\.rank(\d+)-of-(\d+){re.escape(path.suffix)}")
    found = []
    for candidate in path.parent.glob(f"{path.stem}.rank*-of-*{path.suffix}"):
        if match := name.fullmatch(candidate.name):
            found.append((int(match.group(2)), int(match.group(1)), candidate))
    return [p for _, _, p in sorted(found)]


def _is_media_failure(data: dict[str, Any]) -> bool:
    return data.get("error_kind") == "media"


def fold_rank_files(path: Path, order: Sequence[str]) -> int:
    """Merge the rank files of `path` into `path` and delete them; returns how many were folded (0:
    none found, `path` untouched).

    One line per sample id: a media-failure line gives way to any other line of its sample (the
    sample was retried), otherwise the first line read wins (`path` first, then the rank files).
    Lines come out in `order` (the task's sample order, so a fresh data-parallel run gives the
    single-process file), then lines of samples not in `order` (an earlier run's larger --limit) in
    the order they were read. A torn last line of a killed rank is dropped, and its sample is predicted
    again. The new file is written beside and renamed over `path`: a kill leaves either file whole,
    and the rank files are deleted only after the rename.
    """
    sources = rank_files(path)
    if not sources:
        return 0
    chosen: dict[str, dict[str, Any]] = {}
    for source in ([path] if path.exists() else []) + sources:
        for record in read_predictions(source, tolerate_torn_tail=True):
            held = chosen.get(record.id)
            if held is None or (_is_media_failure(held) and not _is_media_failure(record.data)):
                chosen[record.id] = record.data
    ordered = [chosen.pop(sample_id) for sample_id in order if sample_id in chosen]
    ordered.extend(chosen.values())
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with PredictionWriter(tmp) as writer:  # the line format and fsync of the runner's own writes
        writer.write(ordered)
    tmp.replace(path)
    for source in sources:
        source.unlink()
    return len(sources)
