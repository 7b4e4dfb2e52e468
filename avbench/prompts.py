"""Prompt snapshot: every task's rendered prompts on the embedded data, and a check against a committed copy.

Prompt drift silently moves scores (a reworded instruction changes what a model answers), so avbench
gates on it without a model: `build_snapshot` renders `task.build_prompt(sample)` for every sample of
each task's default split on SynthAV (default: size tiny, seed 0, generated in seconds), and
`check_snapshot` compares that with a snapshot written earlier, naming each task whose prompts changed
and showing a diff of its first changed prompt.

The file stays small: per task the sample count, one hash over all prompts, each sample's prompt hash
(`stable_hash`, the same hash the predictions files carry as `prompt_hash`) and the distinct prompt
texts in full, up to `max_texts` per task (most tasks render one template per split).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import DataError, read_json
from .registry import get_task
from .task import stable_hash

SNAPSHOT_VERSION = 1
DEFAULT_MAX_TEXTS = 20


def build_snapshot(
    tasks: Sequence[str], *, synthav_size: str = "tiny", synthav_seed: int = 0, max_texts: int = DEFAULT_MAX_TEXTS,
    data_root: Path | None = None,
) -> dict[str, Any]:
    """Render every prompt of `tasks` (default split, default options) on SynthAV (or on `data_root`)."""
    from .synthav import SYNTHAV_VERSION, ensure_synthav

    root = data_root if data_root is not None else ensure_synthav(seed=synthav_seed, size=synthav_size)
    snapshot: dict[str, Any] = {
        "snapshot_version": SNAPSHOT_VERSION,
        "data": {"synthav": {"version": SYNTHAV_VERSION, "size": synthav_size, "seed": synthav_seed}} if data_root is None
        else {"root": str(data_root)},
        "tasks": {},
    }
    for name in tasks:
        task = get_task(name)
        split = task.default_split
        prompts = [(s.id, task.build_prompt(s)) for s in task.load(root, split)]
        hashes = {sample_id: stable_hash(prompt) for sample_id, prompt in prompts}
        texts: dict[str, str] = {}
        for _, prompt in prompts:
            if len(texts) < max_texts:
                texts.setdefault(stable_hash(prompt), prompt)
        snapshot["tasks"][name] = {
            "split": split,
            "n_samples": len(prompts),
            "all_prompts_hash": stable_hash([[i, h] for i, h in hashes.items()]),
            "prompt_hashes": hashes,
            "texts": texts,
        }
    return snapshot


def write_snapshot(path: Path, snapshot: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def read_snapshot(path: Path) -> dict[str, Any]:
    """Read a snapshot file written by `write_snapshot`; a malformed one is a `DataError` naming the file."""
    if not path.is_file():
        raise DataError("prompt snapshot not found (write one with `avbench prompts --tasks all --out FILE`)", path)
    snapshot = read_json(path)
    if not isinstance(snapshot, dict) or snapshot.get("snapshot_version") != SNAPSHOT_VERSION:
        raise DataError(f"not a prompt snapshot of version {SNAPSHOT_VERSION}", path)
    for name, entry in (snapshot.get("tasks") or {}).items():
        if not isinstance(entry, dict) or not all(k in entry for k in ("split", "n_samples", "all_prompts_hash", "prompt_hashes", "texts")):
            raise DataError(f"task {name!r}: needs split, n_samples, all_prompts_hash, prompt_hashes and texts", path)
    return snapshot


@dataclass(frozen=True)
class PromptChange:
    """One task whose prompts differ from the snapshot: what changed and, where there is one, a diff."""

    task: str
    reason: str
    diff: str = ""

    def format(self) -> str:
        return f"{self.task}: {self.reason}" + (f"\n{self.diff}" if self.diff else "")


def check_snapshot(expected: dict[str, Any], actual: dict[str, Any]) -> list[PromptChange]:
    """Every task whose prompts in `actual` differ from `expected` (also tasks only one of them has); [] = no drift."""
    changes = []
    old_tasks, new_tasks = expected["tasks"], actual["tasks"]
    for name in old_tasks:
        if name not in new_tasks:
            changes.append(PromptChange(name, "in the snapshot but not checked now (task removed or not selected)"))
    for name, new in new_tasks.items():
        old = old_tasks.get(name)
        if old is None:
            changes.append(PromptChange(name, "not in the snapshot (a new task): write the snapshot again"))
        elif old["all_prompts_hash"] != new["all_prompts_hash"] or old["split"] != new["split"]:
            changes.append(_describe(name, old, new))
    return changes


def _describe(name: str, old: dict[str, Any], new: dict[str, Any]) -> PromptChange:
    if old["split"] != new["split"]:
        return PromptChange(name, f"default split changed from {old['split']!r} to {new['split']!r}")
    old_ids, new_ids = set(old["prompt_hashes"]), set(new["prompt_hashes"])
    changed = [i for i in new["prompt_hashes"] if i in old_ids and old["prompt_hashes"][i] != new["prompt_hashes"][i]]
    parts = []
    if changed:
        parts.append(f"{len(changed)} of {new['n_samples']} prompts changed")
    if new_ids - old_ids or old_ids - new_ids:
        parts.append(f"samples differ ({len(new_ids - old_ids)} new, {len(old_ids - new_ids)} gone): the data changed")
    if not parts:
        parts.append("sample order changed")
    diff = ""
    if changed:
        first = changed[0]
        old_text = old["texts"].get(old["prompt_hashes"][first])
        new_text = new["texts"].get(new["prompt_hashes"][first])
        if old_text is not None and new_text is not None:
            diff = "\n".join(difflib.unified_diff(
                old_text.splitlines(), new_text.splitlines(),
                fromfile=f"snapshot/{name}/{first}", tofile=f"now/{name}/{first}", lineterm="",
            ))
        else:
            diff = f"(first changed sample {first!r}: its prompt text is not stored in full, hash {old['prompt_hashes'][first]} -> {new['prompt_hashes'][first]})"
    return PromptChange(name, "; ".join(parts), diff)
