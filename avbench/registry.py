"""Name -> plugin lookup for tasks and models.

Built-in plugins are listed here by import path (imported only when used, so `avbench tasks` stays
fast); third-party packages add their own through the `avbench.tasks` and `avbench.models` entry-point
groups.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from .adapter import ModelAdapter
from .errors import AVBenchError, ModelUnavailableError, UnknownNameError
from .task import Task
from .types import FAMILIES

BUILTIN_TASKS: dict[str, str] = {
    "ave": "avbench.tasks.ave:AVETask",
    "avvp": "avbench.tasks.avvp:AVVPTask",
    "music_avqa": "avbench.tasks.music_avqa:MusicAVQATask",
    "arig": "avbench.tasks.arig:ARIGTask",
    "s4": "avbench.tasks.avsbench:S4Task",
    "ms3": "avbench.tasks.avsbench:MS3Task",
    "avss": "avbench.tasks.avss:AVSSTask",
    "ref_avs": "avbench.tasks.ref_avs:RefAVSTask",
}

BUILTIN_MODELS: dict[str, str] = {
    "random": "avbench.adapters.baselines:RandomBaseline",
    "prior": "avbench.adapters.baselines:PriorBaseline",
    "oracle": "avbench.adapters.baselines:OracleBaseline",
    "crab": "avbench.adapters.crab.adapter:CrabAdapter",
}

#: Models that avbench knows by name but cannot run in this version, with the reason.
UNAVAILABLE_MODELS: dict[str, str] = {}

#: The four capability families of the Crab paper, in the order the summary table shows them.
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "temporal": ("ave", "avvp"),
    "spatial": ("arig",),
    "spatiotemporal": ("music_avqa",),
    "pixel": ("s4", "ms3", "avss", "ref_avs"),
}
assert tuple(TASK_GROUPS) == FAMILIES


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@lru_cache(maxsize=None)
def _entry_point_targets(group: str) -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=group)}


def task_names() -> list[str]:
    return list(dict.fromkeys([*BUILTIN_TASKS, *_entry_point_targets("avbench.tasks")]))


def model_names() -> list[str]:
    return list(dict.fromkeys([*BUILTIN_MODELS, *_entry_point_targets("avbench.models")]))


def task_class(name: str) -> type[Task]:
    targets = {**_entry_point_targets("avbench.tasks"), **BUILTIN_TASKS}
    if name not in targets:
        raise UnknownNameError("task", name, task_names() + ["all", *TASK_GROUPS])
    return _load(targets[name])


def get_task(name: str, **options: Any) -> Task:
    """An instance of task `name`; options select metric variants (see each task's docstring)."""
    cls = task_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise AVBenchError(f"task {name!r} does not take the options {sorted(options)} ({exc})") from None


def model_class(name: str) -> type[ModelAdapter]:
    if name in UNAVAILABLE_MODELS:
        raise ModelUnavailableError(f"model {name!r} is not available: {UNAVAILABLE_MODELS[name]}")
    targets = {**_entry_point_targets("avbench.models"), **BUILTIN_MODELS}
    if name not in targets:
        raise UnknownNameError("model", name, model_names())
    return _load(targets[name])


def get_model(name: str, **options: Any) -> ModelAdapter:
    return model_class(name)(**options)


def expand_tasks(spec: str | list[str]) -> list[str]:
    """'all', a family name, a task name, or a comma-separated mix of them -> task names, deduplicated."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if part == "all":
            names.extend(task_names())
        elif part in TASK_GROUPS:
            names.extend(TASK_GROUPS[part])
        elif part in task_names():
            names.append(part)
        else:
            raise UnknownNameError("task", part, task_names() + ["all", *TASK_GROUPS])
    if not names:
        raise UnknownNameError("task", spec if isinstance(spec, str) else ",".join(spec), task_names())
    return list(dict.fromkeys(names))
