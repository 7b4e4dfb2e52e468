"""Pinned data versions: the official annotation files of every task and split, by content hash and count.

Users score on copies of the benchmarks that differ from the papers' (MUSIC-AVQA's original 9,185-question
test json against the updated 9,129, a half-downloaded LLP, an edited metadata.csv) and get numbers that
cannot be compared. Each task fingerprints the annotations of a split (`Task.annotation_fingerprint`):
a hash of the CONTENT, not the bytes, so a copy with other line endings, JSON formatting or split-file
form (AVE's `*_order.h5` or `testSet.txt`) is the same version, and any changed label is another.
`identify` names the version from the table below; `avbench run` records it per task in the results
JSON and `avbench run` / `avbench data check` warn loudly on an unknown one.

The hashes were computed from the release files (shared/avdata: AVE and LLP releases, MUSIC-AVQA
`json/` and `json_update/`, Ref-AVS `metadata.csv`). AVSBench's metadata.csv was not at hand, so the S4,
MS3, AVSS and ARIG versions are unknown; their expected test sizes are still checked (EXPECTED_COUNTS).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import h5py
import numpy as np

from .errors import DataError, read_json

#: Number of hex digits kept of a SHA-256.
HASH_CHARS = 16


@dataclass(frozen=True)
class KnownVersion:
    """One released annotation version of a task split."""

    name: str
    hash: str
    n_samples: int


@dataclass(frozen=True)
class DataVersion:
    """What `identify` found: recorded per task in the results JSON as `data_version`."""

    name: str
    known: bool
    hash: str | None
    n_samples: int
    #: Official sample count of this split when known (None otherwise), for the unknown-version warning.
    expected_samples: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# fmt: off
#: (task, split) -> the released versions. Hashes: `Task.annotation_fingerprint` of the release files.
KNOWN_VERSIONS: dict[tuple[str, str], tuple[KnownVersion, ...]] = {
    ("ave", "train"): (KnownVersion("ave-eccv18", "65ffbbd43fa6884d", 3339),),
    ("ave", "val"): (KnownVersion("ave-eccv18", "4c90f906011d5e13", 402),),
    ("ave", "test"): (KnownVersion("ave-eccv18", "2efcab44df06120f", 402),),
    ("avvp", "train"): (KnownVersion("llp-eccv20", "89e9697ff396644d", 10000),),
    ("avvp", "val"): (KnownVersion("llp-eccv20", "e4d362913021508d", 649),),
    ("avvp", "test"): (KnownVersion("llp-eccv20", "94c1dbf3888e5906", 1200),),
    ("music_avqa", "val"): (KnownVersion("musicavqa-updated", "09028fc6ba2b6c30", 4568),
                            KnownVersion("musicavqa-original", "a31a4eb6259e4720", 4595)),
    ("music_avqa", "test"): (KnownVersion("musicavqa-updated", "382890b681640b48", 9129),
                             KnownVersion("musicavqa-original", "51982947d88b7a68", 9185)),
    ("ref_avs", "train"): (KnownVersion("refavs-eccv24", "6473ba90b97e6e28", 14113),),
    ("ref_avs", "val"): (KnownVersion("refavs-eccv24", "6473ba90b97e6e28", 1349),),
    ("ref_avs", "test_s"): (KnownVersion("refavs-eccv24", "6473ba90b97e6e28", 2288),),
    ("ref_avs", "test_u"): (KnownVersion("refavs-eccv24", "6473ba90b97e6e28", 1656),),
    ("ref_avs", "test_n"): (KnownVersion("refavs-eccv24", "6473ba90b97e6e28", 1028),),
    ("ref_avs", "test"): (KnownVersion("refavs-eccv24", "6473ba90b97e6e28", 4972),),
}
# fmt: on

#: Official split sizes stated by the papers, for splits whose annotation hash is not pinned.
EXPECTED_COUNTS: dict[tuple[str, str], int] = {
    ("s4", "test"): 740,   # AVSBench (ECCV 2022): S4 test videos
    ("ms3", "test"): 64,   # AVSBench: MS3 test videos
}


def normalized_lines(path: Path) -> list[str]:
    """A text file's non-empty lines without line endings, trailing spaces or a byte-order mark."""
    text = path.read_text(encoding="utf-8-sig")
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _file_content(path: Path) -> bytes:
    """What a file says, independent of its formatting (the unit `content_hash` hashes)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = read_json(path, encoding="utf-8-sig")
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if suffix in (".h5", ".hdf5"):
        parts: list[bytes] = []
        with h5py.File(path, "r") as handle:
            def visit(name: str, item: Any) -> None:
                if isinstance(item, h5py.Dataset):
                    values = np.asarray(item[()])
                    parts.append(f"{name}:{values.shape}:".encode() + values.astype(np.int64 if values.dtype.kind in "iub" else values.dtype).tobytes())
            handle.visititems(visit)
        return b"\n".join(parts)
    return "\n".join(normalized_lines(path)).encode("utf-8")


def content_hash(paths: Sequence[Path]) -> str:
    """Hash of the content of annotation files, in order (names are not hashed: only what they say)."""
    digest = hashlib.sha256()
    for path in paths:
        if not Path(path).is_file():
            raise DataError("annotation file not found", path)
        content = _file_content(Path(path))
        digest.update(len(content).to_bytes(8, "little"))
        digest.update(content)
    return digest.hexdigest()[:HASH_CHARS]


def records_hash(records: Iterable[str]) -> str:
    """Hash of a multiset of annotation records (sorted first: the order of a split file does not matter)."""
    digest = hashlib.sha256()
    for record in sorted(records):
        digest.update(record.encode("utf-8") + b"\n")
    return digest.hexdigest()[:HASH_CHARS]


def synthav_version(data_root: Path) -> str | None:
    """`synthav-v<version>-<size>-seed<seed>` when `data_root` is a SynthAV root, else None."""
    from .synthav import MANIFEST

    manifest = Path(data_root) / MANIFEST
    if not manifest.is_file():
        return None
    return _synthav_name(str(manifest.resolve()), manifest.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _synthav_name(manifest: str, mtime_ns: int) -> str:
    # The manifest holds every scene (megabytes): read once per run, not once per task.
    with open(manifest, encoding="utf-8") as handle:
        info = json.load(handle)
    return f"synthav-v{info['version']}-{info['size']}-seed{info['seed']}"


def identify(task_name: str, split: str, fingerprint: str | None, n_samples: int,
             synthav: str | None = None) -> DataVersion:
    """The data version of a loaded split: a known release, a SynthAV copy, or unknown."""
    expected = EXPECTED_COUNTS.get((task_name, split))
    for version in KNOWN_VERSIONS.get((task_name, split), ()):
        expected = version.n_samples if expected is None else expected
        if fingerprint == version.hash and n_samples == version.n_samples:
            return DataVersion(version.name, True, fingerprint, n_samples, version.n_samples)
    if synthav is not None:
        return DataVersion(synthav, True, fingerprint, n_samples, None)
    return DataVersion("unknown", False, fingerprint, n_samples, expected)


def known_counts(task_name: str, split: str) -> dict[str, int]:
    """Official sample counts of a split: version name -> count (for `data check`)."""
    counts = {v.name: v.n_samples for v in KNOWN_VERSIONS.get((task_name, split), ())}
    if not counts and (task_name, split) in EXPECTED_COUNTS:
        counts["official"] = EXPECTED_COUNTS[(task_name, split)]
    return counts


def unknown_warning(task_name: str, split: str, version: DataVersion) -> str:
    """The loud one-paragraph warning for an unknown version."""
    known = known_counts(task_name, split)
    official = ", ".join(f"{name}: {count}" for name, count in known.items()) or "no pinned release"
    return (f"{task_name}/{split}: UNKNOWN DATA VERSION (annotation hash {version.hash}, {version.n_samples} samples; "
            f"official {official}). Scores on these annotations are not comparable with published numbers; "
            "run `avbench data check` to see what differs.")


def version_of(task: Any, data_root: Path, split: str, n_samples: int) -> DataVersion:
    """The data version of `task`'s `split` under `data_root`, of which `n_samples` were loaded."""
    return identify(task.name, split, task.annotation_fingerprint(data_root, split), n_samples,
                    synthav=synthav_version(data_root))
