"""The training loop: stages, cosine schedule with warm-up, gradient accumulation, mixed precision,
periodic safetensors checkpoints and exact resume, a per-step loss log and a loss-curve PNG.

Multi-device runs go through accelerate (`accelerate launch -m avbench.cli train --config ...`; a
DeepSpeed ZeRO-2 config is in configs/accelerate/, docs/training.md); a plain `avbench train` is one
process on the CPU or one GPU.

Exact resume: the data order is a pure function of (seed, stage, position), so a checkpoint needs
only the weights, the optimiser state, the step counters and the RNG states (dropout); training
resumed from step k takes the same batches and reaches the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedTokenizerBase

from avbench.errors import AVBenchError, read_json
from avbench.results import source_state

from ..adapter import CrabAdapter
from ..checkpoint import build_model, load_checkpoint, save_checkpoint
from ..config import preset
from ..model import CrabForwardOutput, CrabModel, PreparedSample
from ..prompts import IGNORE_INDEX
from ..tokenizer import build_tiny_tokenizer
from .data import ExampleBuilder, InstructionRecord, MediaCache, TrainingExample, count_by_task
from .recipe import StageConfig, TrainConfig, to_dict

CHECKPOINTS = "checkpoints"
FINAL = "final"
LOG_FILE = "train_log.jsonl"
SOURCE_FILE = "source.json"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"
PROBE_FILE = "probe.pt"
CURVE_FILE = "loss_curve.png"
STAGE_START_FILE = "stage-{number}-start.safetensors"  # the weights an interpolating stage started from


# ---- parameters ---------------------------------------------------------------------------------------
def group_of(name: str) -> str:
    """The recipe parameter group (recipe.PARAMETER_GROUPS) of a CrabModel parameter name."""
    if name.startswith("llm."):
        return "lora" if ".lora_" in name else "llm"
    if name.startswith("vision."):
        return "vision"
    if name.startswith("audio_encoder."):
        return "audio"
    if name.startswith(("visual_resampler.", "visual_projector.", "audio_resampler.", "audio_projector.", "visual_time.", "audio_time.")):
        return "connectors"
    if name.startswith("seg."):
        return "seg"
    raise AVBenchError(f"parameter {name!r} belongs to no training group")


def set_trainable(model: CrabModel, groups: Sequence[str]) -> list[nn.Parameter]:
    """requires_grad on exactly the parameters of `groups` (peft froze the LLM's own weights: undone
    here when `llm` is listed); returns them in a stable order."""
    wanted = set(groups)
    trainable = []
    for name, param in model.named_parameters():
        on = group_of(name) in wanted
        param.requires_grad_(on)
        if on:
            trainable.append(param)
    return trainable


# ---- data order ---------------------------------------------------------------------------------------
def stage_records(records: Sequence[InstructionRecord], stage: StageConfig) -> list[InstructionRecord]:
    """The records a stage draws from, each listed `stage.repeat[task]` times (default once) in data order."""
    chosen = [r for r in records if r.task in stage.tasks for _ in range(stage.repeat.get(r.task, 1))]
    if not chosen:
        raise AVBenchError(f"stage {stage.name!r}: no records of tasks {stage.tasks} "
                           f"(the data has {sorted(count_by_task(records))})")
    return chosen


def micro_batch(n_records: int, batch_size: int, seed: int, stage_index: int, index: int) -> list[int]:
    """Record indices of micro-batch `index` of a stage: positions [index * b, (index + 1) * b) of an endless
    stream of epochs, each a permutation seeded by (seed, stage, epoch)."""
    orders: dict[int, np.ndarray] = {}  # a batch spans at most a few epochs: draw each permutation once
    out = []
    for position in range(index * batch_size, (index + 1) * batch_size):
        epoch, offset = divmod(position, n_records)
        if epoch not in orders:
            orders[epoch] = np.random.default_rng([seed, stage_index, epoch]).permutation(n_records)
        out.append(int(orders[epoch][offset]))
    return out


def lr_factor(step: int, stage: StageConfig) -> float:
    """Linear warm-up to the peak, then cosine decay to `min_lr_ratio` of it at the stage's last step."""
    if step < stage.warmup_steps:
        return (step + 1) / stage.warmup_steps
    span = max(1, stage.steps - stage.warmup_steps)
    progress = min(1.0, (step - stage.warmup_steps) / span)
    return stage.min_lr_ratio + (1 - stage.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


# ---- the module a (distributed) wrapper sees ------------------------------------------------------------
#: Text-only records whose lengths fall in the same bin of this many tokens share a padded group.
TEXT_GROUP_TOKENS = 64


class TrainingModule(nn.Module):
    """Media encoding and the LLM in one forward, so DDP / DeepSpeed see every parameter used."""

    def __init__(self, model: CrabModel, mask_size: int | None = None):
        super().__init__()
        self.model, self.mask_size = model, mask_size

    def forward(self, examples: Sequence[TrainingExample]) -> CrabForwardOutput:
        prepared = self.model.prepare_batch([e.inputs for e in examples])
        # A text-only record (a drill) is several times shorter than a media record: padded into one batch with
        # them it would cost as much. Media records run as one padded group, text-only ones in groups of
        # similar length (an AVE drill is about twice a MUSIC-AVQA drill), and the LM loss is recombined as
        # the mean over all answer tokens, which is what one batch would give.
        text_groups: dict[int, list[int]] = {}
        for i, p in enumerate(prepared):
            if not p.media_counts:
                text_groups.setdefault(len(p.embeds) // TEXT_GROUP_TOKENS, []).append(i)
        groups = [rows for rows in [[i for i, p in enumerate(prepared) if p.media_counts]]
                  + [text_groups[k] for k in sorted(text_groups)] if rows]
        outs = [self.model([prepared[i] for i in rows], mask_frames=[examples[i].mask_frames for i in rows],
                           mask_targets=[examples[i].mask_targets for i in rows], semantic=[examples[i].semantic for i in rows],
                           mask_groups=[examples[i].mask_frames for i in rows], mask_size=self.mask_size)
                for rows in groups]
        if len(outs) == 1:
            return outs[0]
        counts = [sum(supervised_tokens(prepared[i]) for i in rows) for rows in groups]
        lm_loss = sum(out.lm_loss * n for out, n in zip(outs, counts)) / max(1, sum(counts))
        masks = [out.mask_loss for out in outs if out.mask_loss is not None]
        mask_loss = sum(masks) if masks else None
        mask_logits: list[torch.Tensor | None] = [None] * len(examples)
        for rows, out in zip(groups, outs):
            for i, logits in zip(rows, out.mask_logits):
                mask_logits[i] = logits
        return CrabForwardOutput(lm_loss if mask_loss is None else lm_loss + mask_loss, lm_loss, mask_loss, None, mask_logits)


def supervised_tokens(sample: PreparedSample) -> int:
    """Labelled positions the LM loss averages over (a sequence's first token is never predicted)."""
    return int((sample.labels[1:] != IGNORE_INDEX).sum())


class EncoderProbe(nn.Module):
    """Training-only linear heads over the media tokens the LLM reads (after Q-Former and projector): which
    labelled things are seen in a frame, which are heard in its second of audio (multi-label).

    Crab's encoders arrive pre-trained (CLIP, BEATs fine-tuned as an AudioSet classifier); crab-tiny's start
    random, and through the LLM alone their gradient is too weak to learn from (the LM loss barely moves
    them in thousands of steps). This stage gives them the direct signal pre-training would have; the heads
    are dropped afterwards (they are not part of the model or its checkpoint layout)."""

    def __init__(self, model: CrabModel, seen: Sequence[str], heard: Sequence[str]):
        super().__init__()
        q, width = model.config.qformer, model.config.llm_hidden
        self.seen_index = {name: i for i, name in enumerate(seen)}
        self.heard_index = {name: i for i, name in enumerate(heard)}
        self.seen = nn.Linear(width * q.visual_queries, max(1, len(seen)))
        self.heard = nn.Linear(width * q.audio_queries, max(1, len(heard)))
        # A label is present in a few records in a hundred: unweighted, predicting "absent" everywhere is a
        # minimum the heads do not leave for thousands of steps. Positives weigh as much as negatives.
        self.register_buffer("seen_weight", torch.ones(max(1, len(seen))), persistent=True)
        self.register_buffer("heard_weight", torch.ones(max(1, len(heard))), persistent=True)

    def balance(self, records: Sequence[InstructionRecord]) -> None:
        """pos_weight = negatives / positives per label over `records` (at most 100)."""
        for key, weight in (("seen", self.seen_weight), ("heard", self.heard_weight)):
            positives = self.targets(records, key).sum(0)
            weight.copy_(((len(records) - positives) / positives.clamp(min=1)).clamp(1.0, 100.0))

    def targets(self, records: Sequence[InstructionRecord], key: str) -> torch.Tensor:
        index = self.seen_index if key == "seen" else self.heard_index
        out = torch.zeros(len(records), max(1, len(index)))
        for row, record in enumerate(records):
            for name in (record.labels or {}).get(key, ()):
                out[row, index[name]] = 1.0
        return out


class EncoderTrainingModule(nn.Module):
    def __init__(self, model: CrabModel, probe: EncoderProbe):
        super().__init__()
        self.model, self.probe = model, probe

    def forward(self, examples: Sequence[TrainingExample], seen: torch.Tensor, heard: torch.Tensor) -> torch.Tensor:
        model, n = self.model, len(examples)
        tokens, _ = model.encode_frames(torch.cat([e.inputs.pixels for e in examples]))
        audio = model.encode_audio(torch.cat([e.inputs.segments for e in examples]))
        bce = nn.functional.binary_cross_entropy_with_logits
        probe = self.probe
        return (bce(probe.seen(tokens.reshape(n, -1).float()), seen.to(tokens.device), pos_weight=probe.seen_weight)
                + bce(probe.heard(audio.reshape(n, -1).float()), heard.to(audio.device), pos_weight=probe.heard_weight))


def probe_for(model: CrabModel, records: Sequence[InstructionRecord], seed: int, stage_index: int) -> EncoderProbe:
    names: dict[str, set[str]] = {"seen": set(), "heard": set()}
    for record in records:
        if record.labels is None:
            raise AVBenchError(f"record {record.id!r} has no labels; an `objective: encoders` stage needs records with "
                               "labels (caption_second records of `avbench data instructions`)")
        for key in names:
            names[key].update(record.labels.get(key, ()))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 1000 + stage_index)
        probe = EncoderProbe(model, sorted(names["seen"]), sorted(names["heard"]))
    probe.balance(records)
    return probe.to(model.device)


# ---- state ------------------------------------------------------------------------------------------------
@dataclass
class Position:
    stage: int = 0  # index of the stage in progress
    stage_step: int = 0  # optimiser steps done in it
    global_step: int = 0


def config_digest(config: TrainConfig) -> str:
    """What must not change for a resume: everything but where checkpoints go and how often."""
    data = to_dict(config)
    for key in ("output_dir", "checkpoint_every", "keep_checkpoints", "log_every", "media_workers", "threads"):
        data.pop(key, None)
    if not data.get("seg"):
        data.pop("seg", None)  # so that runs written before the key existed still resume
    for key in ("drills", "ave_drills"):
        if not data["data"].get(key):
            data["data"].pop(key, None)
    if data["data"].get("evidence") == "spans":
        data["data"].pop("evidence")
    for stage in data["stages"]:
        if stage.get("interpolate") == 1:
            stage.pop("interpolate")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def interpolate_weights(model: nn.Module, start: dict[str, torch.Tensor], weight: float) -> None:
    """In place: every floating-point tensor of the model's state becomes start + weight * (now - start)."""
    done: set[int] = set()  # a tied tensor (BEATs shares its relative position bias) is listed under each name
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and tensor.data_ptr() not in done:
            done.add(tensor.data_ptr())
            tensor.copy_(torch.lerp(start[name].to(tensor), tensor, weight))


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """The complete checkpoints (their state file is written last), oldest first."""
    folder = output_dir / CHECKPOINTS
    return sorted(p for p in folder.glob("step-*") if (p / STATE_FILE).is_file()) if folder.is_dir() else []


def latest_checkpoint(output_dir: Path) -> Path | None:
    done = complete_checkpoints(output_dir)
    return done[-1] if done else None


# ---- the trainer -----------------------------------------------------------------------------------------
Log = Callable[[str], None]


def preset_tokenizer(config: TrainConfig) -> PreTrainedTokenizerBase:
    """The tokenizer of a recipe that starts from a preset's random weights (only `tiny` has one)."""
    if config.preset != "tiny":
        raise AVBenchError(f"training from a random {config.preset!r} model is not supported: start the full-size "
                           "model from a release checkpoint (init_checkpoint)")
    return build_tiny_tokenizer()


def init_checkpoint_folder(config: TrainConfig) -> Path:
    """The checkpoint a recipe starts from, or an error that says to make it first."""
    folder = Path(config.init_checkpoint)
    if not folder.is_dir():
        raise AVBenchError(f"init_checkpoint {folder} does not exist: this recipe starts from the model another run "
                           "writes there; train that one first (configs/crab-tiny.yaml's header lists its commands in order)")
    return folder


class Trainer:
    def __init__(self, config: TrainConfig, records: Sequence[InstructionRecord], log: Log = print,
                 progress: Callable[[str, int, int], None] | None = None):
        from accelerate import Accelerator

        self.config, self.records, self.log, self.progress = config, list(records), log, progress
        self.output_dir = Path(config.output_dir)
        mixed = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[config.precision]
        self.accelerator = Accelerator(mixed_precision=mixed, cpu=not torch.cuda.is_available())
        if config.threads:
            torch.set_num_threads(config.threads)
        self.model, self.tokenizer = self._initial_model()
        self.cache = MediaCache(CrabAdapter.media_spec)
        self.builder = ExampleBuilder(self.tokenizer, self.model.config, self.cache, config.mask_loss_size)
        self.position = Position()
        self.digest = config_digest(config)
        self.probe: EncoderProbe | None = None  # the heads of an `objective: encoders` stage in progress
        self._probe_state: dict | None = None

    def _initial_model(self):
        config = self.config
        if config.init_checkpoint is not None:
            loaded = load_checkpoint(init_checkpoint_folder(config))
            return loaded.model, loaded.tokenizer
        tokenizer = preset_tokenizer(config)
        model_config = preset("tiny")
        model_config.seg = dataclasses.replace(model_config.seg, **config.seg)
        model_config.llm["vocab_size"] = len(tokenizer)
        torch.manual_seed(config.seed)
        return build_model(model_config, tokenizer), tokenizer

    # ---- checkpoints ---------------------------------------------------------------------------------
    def save(self, optimizer: torch.optim.Optimizer) -> Path:
        """Weights in avbench's checkpoint layout (loadable by `--checkpoint`), optimiser, RNG, counters."""
        accel = self.accelerator
        folder = self.output_dir / CHECKPOINTS / f"step-{self.position.global_step:07d}"
        if accel.is_main_process:
            temp = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(temp, ignore_errors=True)
            save_checkpoint(self.model, self.tokenizer, temp)
            torch.save(optimizer.state_dict(), temp / OPTIMIZER_FILE)
            torch.save(_rng_state(), temp / RNG_FILE)
            if self.probe is not None:
                torch.save(self.probe.state_dict(), temp / PROBE_FILE)
            state = {"stage": self.position.stage, "stage_step": self.position.stage_step,
                     "global_step": self.position.global_step, "config_digest": self.digest}
            (temp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(temp, folder)
            self._prune()
        accel.wait_for_everyone()
        return folder

    def _prune(self) -> None:
        done = complete_checkpoints(self.output_dir)
        for old in done[: max(0, len(done) - self.config.keep_checkpoints)]:
            shutil.rmtree(old, ignore_errors=True)

    def _record_source(self) -> None:
        """Append the code this (re)start runs (commit, uncommitted changes) to `source.json`: the provenance
        of the weights, which the bundling script reports (docs/training.md)."""
        path = self.output_dir / SOURCE_FILE
        starts = read_json(path)["starts"] if path.is_file() else []
        starts.append({"global_step": self.position.global_step, **source_state()})
        path.write_text(json.dumps({"starts": starts}, indent=2) + "\n")

    def restore(self, folder: Path) -> dict[str, Any]:
        """Weights, counters and RNG of a checkpoint; returns the optimiser state to load into the stage."""
        state = read_json(folder / STATE_FILE)
        if state.get("config_digest") != self.digest:
            raise AVBenchError(f"{folder} was written with another training config; resume needs the same config "
                               "(pass --fresh to start over, or another output_dir)")
        loaded = load_checkpoint(folder)
        self.model.load_state_dict(loaded.model.state_dict(), strict=True)
        _set_rng_state(torch.load(folder / RNG_FILE, weights_only=False))
        self.position = Position(state["stage"], state["stage_step"], state["global_step"])
        if (folder / PROBE_FILE).is_file():
            self._probe_state = torch.load(folder / PROBE_FILE, weights_only=False)
        return torch.load(folder / OPTIMIZER_FILE, weights_only=False)

    # ---- the loop ----------------------------------------------------------------------------------------
    def fill_cache(self) -> None:
        needed = [r for r in self.records if any(r.task in s.tasks for s in self.config.stages)]

        def report(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress("decoding media", done, total)

        self.cache.fill(needed, workers=self.config.media_workers, progress=report)

    def train(self, resume: bool = True, stop_after: int | None = None) -> Path:
        """Run (or resume) every stage; returns the final checkpoint folder. `stop_after`: stop (with a
        checkpoint) once that many global steps are done, as a kill would, for tests and time budgets."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        optimizer_state = None
        if resume and (folder := latest_checkpoint(self.output_dir)) is not None:
            optimizer_state = self.restore(folder)
            self.log(f"resuming from {folder} (stage {self.position.stage + 1}, global step {self.position.global_step})")
        else:
            torch.manual_seed(self.config.seed)
            for stale in (LOG_FILE, SOURCE_FILE):
                (self.output_dir / stale).unlink(missing_ok=True)
        self._trim_log()
        (self.output_dir / "train_config.json").write_text(json.dumps(to_dict(self.config), indent=2) + "\n")
        self._record_source()
        self.fill_cache()
        self.model.train()
        for index in range(self.position.stage, len(self.config.stages)):
            if self.position.stage != index:
                self.position = Position(index, 0, self.position.global_step)
            if not self._run_stage(index, optimizer_state, stop_after):
                return latest_checkpoint(self.output_dir)  # stopped early
            optimizer_state = None
        self.model.eval()
        final = self.output_dir / FINAL
        if self.accelerator.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            save_checkpoint(self.model, self.tokenizer, final)
            self.write_curve()
        return final

    def _run_stage(self, index: int, optimizer_state: dict | None, stop_after: int | None) -> bool:
        stage = self.config.stages[index]
        records = stage_records(self.records, stage)
        params = set_trainable(self.model, stage.train)
        self.probe = None
        if stage.objective == "encoders":
            self.probe = probe_for(self.model, records, self.config.seed, index)
            if self._probe_state is not None:
                self.probe.load_state_dict(self._probe_state)
            params = params + list(self.probe.parameters())
        self._probe_state = None
        optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
        wrapped = (EncoderTrainingModule(self.model, self.probe) if self.probe is not None
                   else TrainingModule(self.model, self.config.mask_loss_size))
        module, optimizer = self.accelerator.prepare(wrapped, optimizer)
        n_trainable = sum(p.numel() for p in params)
        if self.position.stage_step == 0:
            self.log(f"stage {index + 1}/{len(self.config.stages)} {stage.name}: {stage.steps} steps of "
                     f"{stage.samples_per_step} samples over {len({id(r) for r in records})} records"
                     + (f" ({len(records)} with repeats)" if stage.repeat else "") + f" ({', '.join(stage.tasks)}); "
                     f"training {n_trainable:,} parameters ({', '.join(stage.train)})")
        start = self._stage_start(index, stage)
        started, stopping = time.perf_counter(), False
        while self.position.stage_step < stage.steps:
            step = self.position.stage_step
            for group in optimizer.param_groups:
                group["lr"] = stage.lr * lr_factor(step, stage)
            sums = {"loss": 0.0, "lm_loss": 0.0, "mask_loss": 0.0}
            for micro in range(stage.grad_accum):
                micro_index = step * stage.grad_accum + micro
                chosen = [records[i] for i in micro_batch(len(records), stage.batch_size, self.config.seed, index, micro_index)]
                # only the last micro-batch of a step all-reduces gradients across processes; one context around
                # forward and backward (accelerate's no_sync cannot be entered twice)
                last = micro == stage.grad_accum - 1
                with contextlib.nullcontext() if last else self.accelerator.no_sync(module):
                    with self.accelerator.autocast():
                        parts = self._micro_losses(module, stage, index, micro_index, chosen)
                    self.accelerator.backward(parts["loss"] / stage.grad_accum)
                for key, value in parts.items():
                    sums[key] += value.item() / stage.grad_accum
            self.accelerator.clip_grad_norm_(params, stage.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            self.position.stage_step += 1
            self.position.global_step += 1
            if start is not None and self.position.stage_step == stage.steps:
                interpolate_weights(self.model, start, stage.interpolate)
                self.log(f"stage {index + 1} {stage.name}: kept {stage.interpolate:g} of its change to the weights")
            self._append_log({"step": self.position.global_step, "stage": stage.name, "objective": stage.objective,
                              "stage_step": self.position.stage_step,
                              "lr": optimizer.param_groups[0]["lr"], **{k: round(v, 6) for k, v in sums.items()},
                              "seconds": round(time.perf_counter() - started, 3)})
            if self.progress is not None:
                self.progress(stage.name, self.position.stage_step, stage.steps)
            if self.position.global_step % self.config.log_every == 0:
                self.log(f"step {self.position.global_step}/{self.config.total_steps} [{stage.name}] loss {sums['loss']:.4f} "
                         f"(lm {sums['lm_loss']:.4f}, mask {sums['mask_loss']:.4f}) lr {optimizer.param_groups[0]['lr']:.2e}")
            stopping = stop_after is not None and self.position.global_step >= stop_after
            if self.position.global_step % self.config.checkpoint_every == 0 or self.position.stage_step == stage.steps or stopping:
                self.save(optimizer)
            if stopping:
                break
        if start is not None and self.position.stage_step == stage.steps and self.accelerator.is_main_process:
            (self.output_dir / STAGE_START_FILE.format(number=index + 1)).unlink(missing_ok=True)
        return not stopping

    def _stage_start(self, index: int, stage: StageConfig) -> dict[str, torch.Tensor] | None:
        """The weights an interpolating stage started from: taken before its first step (and kept on disk
        until it ends), read back when a run resumes inside it."""
        if stage.interpolate == 1 or self.position.stage_step >= stage.steps:
            return None
        path = self.output_dir / STAGE_START_FILE.format(number=index + 1)
        if self.position.stage_step > 0:
            if not path.is_file():
                raise AVBenchError(f"{path} is missing: stage {stage.name} keeps part of its change to the weights "
                                   "it started from, so it cannot resume without them (pass --fresh to start over)")
            return load_file(path)
        start = {name: tensor.detach().clone().contiguous() for name, tensor in self.model.state_dict().items()}
        if self.accelerator.is_main_process:
            temp = path.with_name(path.name + ".tmp")
            save_file(start, temp)
            os.replace(temp, path)
        self.accelerator.wait_for_everyone()
        return start

    def _micro_losses(self, module: nn.Module, stage: StageConfig, index: int, micro_index: int,
                      chosen: Sequence[InstructionRecord]) -> dict[str, torch.Tensor]:
        """The loss of one micro-batch and its parts: the encoder objective, or the answer's LM loss plus
        the weighted mask loss."""
        examples = [self.builder.example(record) for record in chosen]
        if self.probe is not None:
            return {"loss": module(examples, self.probe.targets(chosen, "seen"), self.probe.targets(chosen, "heard"))}
        if stage.max_masks is not None:
            pick = np.random.default_rng([self.config.seed, index, micro_index, 1])
            examples = [e.subsample_masks(stage.max_masks, pick) for e in examples]
        out = module(examples)
        lm = out.lm_loss if out.lm_loss is not None else torch.zeros((), device=self.accelerator.device)
        mask = out.mask_loss if out.mask_loss is not None else torch.zeros((), device=self.accelerator.device)
        return {"loss": lm + stage.mask_loss_weight * mask, "lm_loss": lm, "mask_loss": mask}

    # ---- log and curve -------------------------------------------------------------------------------------
    def _append_log(self, entry: dict[str, Any]) -> None:
        if self.accelerator.is_main_process:
            with (self.output_dir / LOG_FILE).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")

    def _trim_log(self) -> None:
        """Drop log lines past the checkpoint resumed from (steps a killed run did after its last save)."""
        path = self.output_dir / LOG_FILE
        if not path.exists():
            return
        kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and _complete(line) and json.loads(line)["step"] <= self.position.global_step]
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write_curve(self) -> Path:
        return write_loss_curve(self.output_dir / LOG_FILE, self.output_dir / CURVE_FILE, self.config.name,
                                {s.name: s.objective for s in self.config.stages})


def _complete(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and _complete(line)]


def smoothed(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over `window` steps (the per-step loss of a small batch is noisy)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def write_loss_curve(log_path: Path, out: Path, title: str, objectives: dict[str, str] | None = None) -> Path:
    """The loss per step (trailing mean over 20 steps), one line per loss term, each drawn only over the
    steps that have it: the encoder objective; the answer stages' total, language and mask losses.
    `objectives` (stage name -> objective) serves logs written before entries named their objective."""
    from avbench.plots import line_chart

    entries = read_log(log_path)
    for entry in entries:
        entry.setdefault("objective", (objectives or {}).get(entry["stage"], "answer"))
    series = {}
    for label, key, keep in (
        ("encoders (BCE)", "loss", lambda e: e["objective"] == "encoders"),
        ("total", "loss", lambda e: e["objective"] == "answer"),
        ("language", "lm_loss", lambda e: e["objective"] == "answer" and e["lm_loss"] > 0),
        ("mask", "mask_loss", lambda e: e["mask_loss"] > 0),
    ):
        chosen = [e for e in entries if keep(e)]
        if chosen:
            series[label] = list(zip([float(e["step"]) for e in chosen], smoothed([float(e[key]) for e in chosen], 20)))
    line_chart(out, series, f"{title}: training loss (mean of 20 steps)", "step", "loss")
    return out
