"""SynthAV: the embedded default data set, generated on first use in the official release layouts.

Synthetic clips whose labels are true of their media: every class has its own look (shape x
colour) and its own sound (timbre x pitch), and what an annotation claims is what the frames and
the audio show. Same seed and size -> byte-identical files. The layout is docs/data-layout.md;
`<root>/synthav.json` records the exact scene ground truth for tests.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from . import ave, avsbench, avvp, music_avqa, ref_avs
from .sizes import SIZE_SPECS

SYNTHAV_VERSION = "2"  # 2: null clips in the Ref-AVS train split
SIZES: tuple[str, ...] = tuple(SIZE_SPECS)
#: Written last: a data root without it is unfinished.
MANIFEST = "synthav.json"
_WRITERS = (("ave", ave.write), ("avvp", avvp.write), ("music_avqa", music_avqa.write),
            ("avsbench", avsbench.write), ("ref_avs", ref_avs.write))


def cache_dir() -> Path:
    """$AVBENCH_CACHE if set, else $XDG_CACHE_HOME/avbench, else ~/.cache/avbench."""
    if os.environ.get("AVBENCH_CACHE"):
        return Path(os.environ["AVBENCH_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "avbench"
    return Path.home() / ".cache" / "avbench"


def _check_size(size: str) -> None:
    if size not in SIZE_SPECS:
        raise ValueError(f"unknown SynthAV size {size!r}; valid sizes: {', '.join(SIZES)}")


def synthav_root(seed: int = 0, size: str = "small", cache: Path | None = None) -> Path:
    """Where the data root of (seed, size) lives; generates nothing."""
    _check_size(size)
    return Path(cache if cache is not None else cache_dir()) / f"synthav-v{SYNTHAV_VERSION}-{size}-seed{seed}"


def generate(root: Path, seed: int, size: str, progress: Callable[[str], None] | None = None) -> None:
    """Write every data set under `root` (which must not exist or be empty), then synthav.json."""
    _check_size(size)
    spec = SIZE_SPECS[size]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    truth: dict[str, object] = {"version": SYNTHAV_VERSION, "seed": seed, "size": size}
    for number, (name, write) in enumerate(_WRITERS, start=1):
        if progress is not None:
            progress(f"generating SynthAV {size} (seed {seed}): {name} ({number}/{len(_WRITERS)})")
        truth[name] = write(root, seed, spec)
    (root / MANIFEST).write_text(json.dumps(truth, sort_keys=True, separators=(",", ":")), encoding="utf-8")


def _is_complete(root: Path) -> bool:
    return (root / MANIFEST).is_file()


def ensure_synthav(seed: int = 0, size: str = "small", cache: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> Path:
    """The data root of (seed, size), generated on first use; later calls return at once.

    Generation writes into a fresh temporary sibling and renames it into place, so a killed run
    leaves only a `.tmp-*` folder (removed by the next call once it is an hour old) and never a
    half-written root; of two concurrent callers one rename wins and the other's copy is discarded.
    """
    root = synthav_root(seed, size, cache)
    if _is_complete(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root)
    if root.exists():
        # a root without its manifest is not ours to trust (e.g. copied half-way): rebuild it
        shutil.rmtree(root, ignore_errors=True)
    if progress is not None:
        progress(f"generating SynthAV {size} (seed {seed}) in {root}")
    temp = Path(tempfile.mkdtemp(prefix=f".tmp-{root.name}-", dir=root.parent))
    try:
        generate(temp, seed, size, progress)
        try:
            os.rename(temp, root)
        except OSError:
            if not _is_complete(root):
                raise
            # another process finished first: its copy is identical, keep it
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    if progress is not None:
        progress(f"SynthAV ready in {root}")
    return root


def _remove_stale_temps(root: Path, max_age_s: float = 3600.0) -> None:
    """Leftovers of killed runs; young ones may belong to a run still in progress, so they stay."""
    now = time.time()
    for leftover in root.parent.glob(f".tmp-{root.name}-*"):
        try:
            if now - leftover.stat().st_mtime > max_age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            pass
