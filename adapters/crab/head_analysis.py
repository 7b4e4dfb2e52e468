"""I-LoRA head analysis (`avbench analyze heads`): what each head is used for, and what it is worth.

The Crab paper's claim is that each I-LoRA head learns a distinct aspect of audio-visual interaction.
Two measurements test it on any Crab-style checkpoint:

1. **Router weights.** The mean softmax weight the router gives each head, per I-LoRA module, per
   transformer layer (mean of its modules), per task and per task family (mean of its tasks, each
   task counting once, as avbench's family scores). Which tokens count is explicit, two sets:
   - `answer` (the one the tables and the heatmap show): the positions whose forward pass produced an
     answer token, i.e. the prompt's last position (it predicts the first answer token) and every
     generated token fed back (each predicts the next), EOS included, so one position per emitted
     token. These are the computations that wrote the answer; prompt positions and the pad tokens
     fed to rows that finished early are left out.
   - `prompt`: the prompt's own positions (text and media tokens; left padding left out). Their
     weights show how the heads split the reading of the audio-visual input.
   A head whose weight rises on one family's answers and falls on another's is specialised; equal
   weights everywhere mean the router does not discriminate.
2. **Head ablation.** The benchmark run again with head i switched off in every layer
   (`ilora.set_active_heads`: its term removed, the others not renormalised), for each i; each task's
   primary metric minus its value with all heads on, with a paired-bootstrap interval over the
   samples (`avbench.compare`). Family deltas are the means of their tasks' deltas.

Every run is a normal avbench run folder under `<output>/runs/` (`all-heads`, `head-0-off`, ...,
each with predictions and a results.json), so `avbench compare` reads them too; each analysis starts
them afresh. The router weights are recorded during the `all-heads` run, on the answers that are scored.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from avbench.adapter import ModelAdapter
from avbench.bootstrap import DEFAULT_LEVEL
from avbench.compare import compare_runs, load_run
from avbench.errors import AVBenchError
from avbench.media import DecodedMedia
from avbench.registry import TASK_GROUPS, get_task
from avbench.results import RESULTS_FILE_NAME, build_results, write_results
from avbench.runner import RunConfig, run
from avbench.task import Task
from avbench.types import ModelOutput, Sample, TaskResult

from .adapter import CrabAdapter
from .generation import Generation
from .ilora import ILoRALinear, RouterHistory, record_router_history, set_active_heads

TOKEN_KINDS: dict[str, str] = {
    "answer": "positions whose forward pass produced an answer token: the prompt's last position and every generated "
              "token fed back, EOS included (one per emitted token); pads of rows that finished early left out",
    "prompt": "the prompt's own positions, text and media tokens, left padding left out",
}
ALL_HEADS_RUN = "all-heads"
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")

#: Progress of the analysis: (run label, task, samples done, samples total).
AnalysisProgress = Callable[[str, str, int, int], None]


# ------------------------------------------------------------------------------------- positions


def position_masks(offsets: Sequence[int], prompt_length: int, emitted: Sequence[int], total: int) -> dict[str, torch.Tensor]:
    """(B, total) boolean masks over the positions of a left-padded generation, one per `TOKEN_KINDS`.

    offsets: each row's left padding; prompt_length: the padded prompt length L; emitted: tokens each row
    emitted, EOS included; total: recorded positions, L + decoding steps - 1. Position L - 1 + k is the
    one that produced emitted token k.
    """
    positions = torch.arange(total)
    offsets_t = torch.as_tensor(list(offsets)).unsqueeze(1)
    emitted_t = torch.as_tensor(list(emitted)).unsqueeze(1)
    start = prompt_length - 1
    return {
        "answer": (positions >= start) & (positions < start + emitted_t),
        "prompt": (positions >= offsets_t) & (positions < prompt_length),
    }


def emitted_counts(generation: Generation, steps: int) -> list[int]:
    """Tokens each row emitted, EOS included: a row whose answer is shorter than the `steps` decoded
    stopped on an EOS it emitted; one that is as long ran out of budget without one."""
    return [min(len(tokens) + 1, steps) for tokens in generation.tokens]


# ------------------------------------------------------------------------------- router statistics


@dataclass
class RouterSums:
    """Router weights summed over the counted positions of one task, per I-LoRA module: (modules, N)."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    n_samples: int = 0

    def add(self, kind: str, sums: torch.Tensor, count: int) -> None:
        self.sums[kind] = self.sums[kind] + sums if kind in self.sums else sums
        self.counts[kind] = self.counts.get(kind, 0) + count

    def means(self, kind: str) -> torch.Tensor:
        """(modules, N) mean weight per head over the counted positions (NaN without any)."""
        if not self.counts.get(kind):
            return torch.full_like(next(iter(self.sums.values())), float("nan"))
        return self.sums[kind] / self.counts[kind]


def batch_router_sums(history: RouterHistory, names: Sequence[str], masks: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, int]]:
    """Per kind: the router weights of every module in `names` summed over the masked positions of one
    batch, (modules, N) float64 on the CPU, and the number of positions. One einsum over all modules."""
    stacked = torch.stack([history[name] for name in names])  # (modules, B, T, N)
    out = {}
    for kind, mask in masks.items():
        mask = mask.to(stacked.device, stacked.dtype)
        out[kind] = (torch.einsum("mbtn,bt->mn", stacked, mask).double().cpu(), int(mask.sum().item()))
    return out


@contextlib.contextmanager
def _observe_generations(model: torch.nn.Module, observe: Callable[[Sequence[Any], Generation], None]) -> Iterator[None]:
    """Call `observe(prepared, generation)` after each `model.generate` (an instance attribute shadows the
    method for the block): the adapter builds its batches itself, and this is where the padded prompt
    lengths and the emitted tokens of each batch become visible, without re-implementing its `predict`."""
    generate = model.generate

    def observed(samples: Sequence[Any], max_new_tokens: int) -> Generation:
        generation = generate(samples, max_new_tokens)
        observe(samples, generation)
        return generation

    model.generate = observed
    try:
        yield
    finally:
        del model.generate


class RouterRecorder(ModelAdapter):
    """A `CrabAdapter` that predicts exactly as it does and adds each batch's router weights to `sums[task]`."""

    def __init__(self, inner: CrabAdapter):
        super().__init__(inner.seed, **inner.options)
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # the wrapped model's, on an instance
        self.media_spec = inner.media_spec  # type: ignore[misc]
        self.module_names = [name for name, _ in _named_ilora(inner)]
        self.sums: dict[str, RouterSums] = {}

    def prepare(self, task: Task, data_root: Path, split: str) -> None:
        self.inner.prepare(task, data_root, split)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def predict(self, task: Task, samples: Sequence[Sample], prompts: Sequence[str],
                media: Sequence[DecodedMedia] | None = None) -> list[ModelOutput]:
        model = self.inner.loaded.model
        totals = self.sums.setdefault(task.name, RouterSums())
        with record_router_history(model.llm) as history:

            def observe(prepared: Sequence[Any], generation: Generation) -> None:
                lengths = [int(p.embeds.shape[0]) for p in prepared]
                prompt_length = max(lengths)
                total = history[self.module_names[0]].shape[-2]
                emitted = emitted_counts(generation, steps=total - prompt_length + 1)
                masks = position_masks([prompt_length - n for n in lengths], prompt_length, emitted, total)
                for kind, (sums, count) in batch_router_sums(history, self.module_names, masks).items():
                    totals.add(kind, sums, count)
                totals.n_samples += len(prepared)
                history.clear()

            with _observe_generations(model, observe):
                return self.inner.predict(task, samples, prompts, media=media)


def _named_ilora(adapter: CrabAdapter) -> list[tuple[str, torch.nn.Module]]:
    layers = [(name, m) for name, m in adapter.loaded.model.llm.named_modules() if isinstance(m, ILoRALinear)]
    if not layers:
        raise AVBenchError(f"checkpoint {adapter.loaded.path} has no I-LoRA layers (ilora.enabled is false in its "
                           "config): there are no heads to analyse")
    return layers


def layer_of(module_name: str) -> str:
    """'…model.layers.3.self_attn.q_proj' -> 'layer 3' (modules outside numbered layers: 'other')."""
    match = _LAYER.search(module_name)
    return f"layer {match.group(1)}" if match else "other"


def _distribution(values: torch.Tensor) -> list[float]:
    return [round(float(v), 6) for v in values]


def _summary(per_module: torch.Tensor, module_names: Sequence[str], layer_names: Sequence[str]) -> dict[str, Any]:
    """per_module (modules, N) -> per layer (mean of its modules), overall mean (of the layers), per module."""
    groups = [[i for i, n in enumerate(module_names) if layer_of(n) == layer] for layer in layer_names]
    per_layer = torch.stack([per_module[g].mean(dim=0) for g in groups])
    return {
        "mean": _distribution(per_layer.mean(dim=0)),
        "per_layer": [_distribution(row) for row in per_layer],
        "per_module": [_distribution(row) for row in per_module],
    }


def router_report(sums: dict[str, RouterSums], module_names: Sequence[str], n_heads: int) -> dict[str, Any]:
    """The router_weights.json content: per task, per family and over all tasks, for each token kind."""
    layer_names = list(dict.fromkeys(layer_of(n) for n in module_names))
    tasks: dict[str, Any] = {}
    means: dict[str, dict[str, torch.Tensor]] = {}
    for name, totals in sums.items():
        family = get_task(name).family
        means[name] = {kind: totals.means(kind) for kind in TOKEN_KINDS}
        tasks[name] = {"family": family, "n_samples": totals.n_samples,
                       "n_positions": {kind: totals.counts.get(kind, 0) for kind in TOKEN_KINDS},
                       **{kind: _summary(means[name][kind], module_names, layer_names) for kind in TOKEN_KINDS}}

    def pooled(members: list[str]) -> dict[str, Any]:
        # each task counts once (as a family score); a task without counted positions is left out
        entry: dict[str, Any] = {"tasks": members}
        for kind in TOKEN_KINDS:
            rows = [means[t][kind] for t in members if sums[t].counts.get(kind)]
            if rows:
                entry[kind] = _summary(torch.stack(rows).mean(dim=0), module_names, layer_names)
        return entry

    families = {family: pooled([t for t in members if t in sums]) for family, members in TASK_GROUPS.items()
                if any(t in sums for t in members)}
    return {"n_heads": n_heads, "tokens": dict(TOKEN_KINDS), "layers": layer_names, "modules": list(module_names),
            "tasks": tasks, "families": families, "all": pooled(list(sums))}


# ------------------------------------------------------------------------------------- the analysis


@dataclass
class AnalysisConfig:
    """What `run_head_analysis` evaluates and where; mirrors `avbench run`'s options."""

    tasks: list[str]
    data_root: Path
    output_dir: Path
    data_info: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    limit: int | None = None
    batch_size: int = 8
    seed: int = 0
    model_options: dict[str, Any] = field(default_factory=dict)
    #: Resamples of the paired bootstrap of each delta (0: deltas without intervals).
    bootstrap: int = 1000
    bootstrap_seed: int = 0
    skip_ablation: bool = False


@dataclass
class HeadAnalysis:
    router: dict[str, Any]  # router_weights.json
    ablation: dict[str, Any] | None  # head_ablation.json; None with skip_ablation


def run_label(heads_off: int | None) -> str:
    return ALL_HEADS_RUN if heads_off is None else f"head-{heads_off}-off"


def _run_folder(adapter: ModelAdapter, config: AnalysisConfig, heads_off: int | None,
                progress: AnalysisProgress | None) -> tuple[Path, list[TaskResult]]:
    """One full avbench run into `<output>/runs/<label>` (emptied first), with its results.json."""
    label = run_label(heads_off)
    folder = config.output_dir / "runs" / label
    if folder.exists():
        shutil.rmtree(folder)
    options = dict(config.model_options) if heads_off is None else {**config.model_options, "heads_off": [heads_off]}
    run_config = RunConfig(model="crab", tasks=config.tasks, output_dir=folder, data_root=config.data_root,
                           split=config.split, limit=config.limit, batch_size=config.batch_size, seed=config.seed,
                           model_options=options, bootstrap=None)
    on_progress = None if progress is None else (lambda task, done, total: progress(label, task, done, total))
    results = run(adapter, run_config, on_progress)
    info = {"model": "crab", "tasks": config.tasks, "split": config.split, "limit": config.limit,
            "batch_size": config.batch_size, "seed": config.seed, "model_options": options, "task_options": {},
            "output_dir": str(folder), "analysis": "heads", "heads_off": [] if heads_off is None else [heads_off]}
    write_results(folder / RESULTS_FILE_NAME, build_results(results, info, adapter.describe(), config.data_info))
    return folder, results


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _deltas(baseline: Path, ablated: Path, config: AnalysisConfig, primary: dict[str, str]) -> dict[str, Any]:
    """Per task: the ablated run's primary metric, its delta to all heads on and the delta's paired interval."""
    base_run, new_run = load_run(baseline), load_run(ablated)
    out: dict[str, Any] = {}
    if config.bootstrap > 0:
        comparison = compare_runs(base_run, new_run, tolerance=0.0, metrics="primary", data_root=config.data_root,
                                  n_resamples=config.bootstrap, seed=config.bootstrap_seed)
        for d in comparison.deltas:
            out[d.task] = {"metric": d.metric, "value": d.new, "delta": d.delta, "low": d.low, "high": d.high,
                           "p_value": d.p_value, "interval": d.method}
        return out
    for name, metric in primary.items():
        base = _finite(base_run.results["tasks"][name]["metrics"].get(metric))
        new = _finite(new_run.results["tasks"][name]["metrics"].get(metric))
        out[name] = {"metric": metric, "value": new, "delta": None if base is None or new is None else new - base,
                     "low": None, "high": None, "p_value": None, "interval": "none"}
    return out


def _family_deltas(tasks: dict[str, Any]) -> dict[str, Any]:
    families = {}
    for family, members in TASK_GROUPS.items():
        deltas = [tasks[t]["delta"] for t in members if t in tasks and tasks[t]["delta"] is not None]
        if deltas:
            families[family] = {"delta": sum(deltas) / len(deltas), "tasks": [t for t in members if t in tasks]}
    return families


def run_head_analysis(adapter: CrabAdapter, config: AnalysisConfig, progress: AnalysisProgress | None = None) -> HeadAnalysis:
    """Router statistics from a run with all heads on, then (unless `skip_ablation`) one run per head
    switched off and the per-task deltas. The heads are switched back on however it ends."""
    recorder = RouterRecorder(adapter)
    llm = adapter.loaded.model.llm
    n_heads = int(adapter.loaded.config.ilora.n_heads)
    set_active_heads(llm, None)
    baseline, results = _run_folder(recorder, config, None, progress)
    router = router_report(recorder.sums, recorder.module_names, n_heads)
    if config.skip_ablation:
        return HeadAnalysis(router, None)
    primary = {r.task: get_task(r.task).primary_metric for r in results}
    all_heads = {r.task: {"metric": primary[r.task], "value": _finite(r.metrics.get(primary[r.task])),
                          "lower_is_better": primary[r.task] in get_task(r.task).lower_is_better} for r in results}
    ablations = []
    try:
        for head in range(n_heads):
            set_active_heads(llm, [i != head for i in range(n_heads)])
            folder, _ = _run_folder(adapter, config, head, progress)
            tasks = _deltas(baseline, folder, config, primary)
            ablations.append({"head": head, "run": str(folder.relative_to(config.output_dir)), "tasks": tasks,
                              "families": _family_deltas(tasks)})
    finally:
        set_active_heads(llm, None)
    ablation = {"n_heads": n_heads, "all_heads": all_heads, "all_heads_run": str(baseline.relative_to(config.output_dir)),
                "bootstrap": {"method": "paired", "n_resamples": config.bootstrap, "seed": config.bootstrap_seed,
                              "level": DEFAULT_LEVEL} if config.bootstrap > 0 else None,
                "ablations": ablations}
    return HeadAnalysis(router, ablation)
