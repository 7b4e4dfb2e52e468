"""The training recipe: a YAML file of stages (docs/training.md), validated with the file and key named.

Crab trains in stages (GeWu-Lab/Crab `scripts/`): connector pre-training on captions with the encoders
and the LLM frozen, joint instruction tuning of the I-LoRA on all tasks, and segmentation fine-tuning of
the mask decoder. A stage here names the records it draws from (`tasks`), the parameter groups it
trains (`train`), its optimisation (steps, batch, accumulation, peak learning rate, warm-up, cosine
decay to `min_lr_ratio` of the peak) and the weight of the mask loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avbench.errors import DataError

from ..config import SegSettings

#: Parameter groups a stage can train, by the CrabModel attribute paths they cover.
PARAMETER_GROUPS: dict[str, str] = {
    "vision": "the CLIP vision tower",
    "audio": "the BEATs audio encoder",
    "connectors": "both Q-Formers, both MLP projectors and the time embeddings (if any)",
    "llm": "the LLM's own weights (embeddings, layers, head; not the I-LoRA)",
    "lora": "the I-LoRA adapters and routers",
    "seg": "the mask decoder (text projection, neck, two-way transformer, heads)",
}
PRECISIONS = ("fp32", "bf16", "fp16")


OBJECTIVES = ("answer", "encoders")


@dataclass
class StageConfig:
    name: str
    steps: int
    tasks: list[str]
    train: list[str]
    #: Per-task repeat count of its records in each epoch of this stage (default 1): records are drawn in
    #: proportion to their count, so a task with few records is otherwise rarely seen.
    repeat: dict[str, int] = field(default_factory=dict)
    #: "answer": the LM loss on the answer (+ the mask loss); "encoders": multi-label classification of the
    #: records' `labels` from the media tokens the LLM reads, through training-only linear heads (trainer.EncoderProbe).
    objective: str = "answer"
    lr: float = 1e-3
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    batch_size: int = 8
    grad_accum: int = 1
    weight_decay: float = 0.0
    mask_loss_weight: float = 1.0
    #: Supervise at most this many annotated frames of a sample per step (None: all).
    max_masks: int | None = None
    max_grad_norm: float = 1.0
    #: Keep this fraction of what the stage changes: its final weights are start + interpolate * (end - start),
    #: a weight-space average of the model before and after the stage (WiSE-FT, Wortsman et al., CVPR 2022).
    #: A short stage on a new mixture then adds what it teaches to what the model knew instead of overwriting
    #: it (docs/training.md, "Polish"). 1: keep the stage's end weights.
    interpolate: float = 1.0

    @property
    def samples_per_step(self) -> int:
        return self.batch_size * self.grad_accum


@dataclass
class DataConfig:
    #: Generate (or reuse) SynthAV of this size and seed and export its train split as instructions.
    synthav_size: str | None = "medium"
    synthav_seed: int = 0
    #: With synthav_size: also export this many text-only MUSIC-AVQA drill scenes (task `music_avqa_drill`).
    drills: int = 0
    #: With synthav_size: also export this many text-only AVE drill scenes (task `ave_drill`).
    ave_drills: int = 0
    #: With synthav_size: how AVE answers and whole-clip captions write the evidence, "spans" (per class) or
    #: "seconds" (a line per second).
    evidence: str = "spans"
    #: Or an instruction JSONL (docs/training.md) and the data root its paths are relative to.
    instructions: str | None = None
    data_root: str | None = None
    split: str = "train"


@dataclass
class TrainConfig:
    name: str
    output_dir: str
    stages: list[StageConfig]
    seed: int = 0
    #: Start from a preset's random initialisation ("tiny") or from a checkpoint directory.
    preset: str | None = "tiny"
    init_checkpoint: str | None = None
    #: Changes to the preset's mask-decoder settings (`SegSettings` fields), e.g. {prompt_conditioning: true};
    #: only with `preset` (a checkpoint's architecture is fixed).
    seg: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    precision: str = "fp32"
    #: Side of the mask logits and targets in the mask loss (None: the image size, as Crab; the decoder's
    #: low-resolution side, 112, skips the last upsampling and costs a quarter).
    mask_loss_size: int | None = None
    #: CPU threads (None: torch's default).
    threads: int | None = None
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 10
    media_workers: int = 2

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)


def _build(cls: type, data: Any, where: str, path: Path) -> Any:
    if not isinstance(data, dict):
        raise DataError(f"{where} must be a mapping, got {type(data).__name__}", path)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DataError(f"{where}: unknown keys {unknown}; known: {sorted(known)}", path)
    try:
        return cls(**data)
    except TypeError as exc:
        raise DataError(f"{where}: {exc}", path) from None


def parse_config(data: Any, path: Path) -> TrainConfig:
    if not isinstance(data, dict):
        raise DataError("a training config is a YAML mapping (name, output_dir, stages, ...)", path)
    data = dict(data)
    stages_data = data.pop("stages", None)
    if not isinstance(stages_data, list) or not stages_data:
        raise DataError("'stages' must be a non-empty list", path)
    stages = [_build(StageConfig, s, f"stages[{i}]", path) for i, s in enumerate(stages_data)]
    data_config = _build(DataConfig, data.pop("data", {}) or {}, "data", path)
    config = _build(TrainConfig, {**data, "stages": stages, "data": data_config}, "config", path)
    validate(config, path)
    return config


def validate(config: TrainConfig, path: Path) -> None:
    names = [s.name for s in config.stages]
    if len(set(names)) != len(names):
        raise DataError(f"stage names must be unique, got {names}", path)
    for i, stage in enumerate(config.stages):
        where = f"stages[{i}] ({stage.name})"
        bad = sorted(set(stage.train) - set(PARAMETER_GROUPS))
        if bad or not stage.train:
            raise DataError(f"{where}: train must list some of {sorted(PARAMETER_GROUPS)}, got {stage.train}", path)
        if not stage.tasks:
            raise DataError(f"{where}: tasks must not be empty", path)
        if not isinstance(stage.repeat, dict):
            raise DataError(f"{where}: repeat must map task names to whole numbers >= 1, got {stage.repeat!r}", path)
        for task, count in stage.repeat.items():
            if task not in stage.tasks or not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise DataError(f"{where}: repeat[{task!r}] must be a whole number >= 1 for one of the stage's "
                                f"tasks {stage.tasks}, got {count!r}", path)
        if stage.objective not in OBJECTIVES:
            raise DataError(f"{where}: objective must be one of {OBJECTIVES}, got {stage.objective!r}", path)
        for key in ("steps", "batch_size", "grad_accum"):
            if int(getattr(stage, key)) < 1:
                raise DataError(f"{where}: {key} must be >= 1", path)
        if stage.lr <= 0 or not 0 <= stage.min_lr_ratio <= 1 or stage.warmup_steps < 0:
            raise DataError(f"{where}: lr > 0, 0 <= min_lr_ratio <= 1 and warmup_steps >= 0 are required", path)
        if isinstance(stage.interpolate, bool) or not isinstance(stage.interpolate, (int, float)) or not 0 < stage.interpolate <= 1:
            raise DataError(f"{where}: interpolate must be a number in (0, 1], got {stage.interpolate!r}", path)
    if config.precision not in PRECISIONS:
        raise DataError(f"precision must be one of {PRECISIONS}, got {config.precision!r}", path)
    if (config.preset is None) == (config.init_checkpoint is None):
        raise DataError("give exactly one of preset (e.g. tiny) and init_checkpoint", path)
    _validate_seg(config, path)
    d = config.data
    if (d.instructions is None) == (d.synthav_size is None):
        raise DataError("data: give either synthav_size (generated SynthAV) or instructions + data_root", path)
    for key in ("drills", "ave_drills"):
        n = getattr(d, key)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0 or (n and d.synthav_size is None):
            raise DataError(f"data: {key} must be a whole number >= 0, with synthav_size; got {n!r}", path)
    if d.evidence not in ("spans", "seconds"):
        raise DataError(f"data: evidence must be spans or seconds, got {d.evidence!r}", path)
    if d.instructions is not None and d.data_root is None:
        raise DataError("data: instructions needs data_root (the folder its media paths are relative to)", path)
    if config.checkpoint_every < 1 or config.log_every < 1:
        raise DataError("checkpoint_every and log_every must be >= 1", path)


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise DataError("training config not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path, mark.line + 1 if mark else None) from None
    return parse_config(data, path)


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _validate_seg(config: TrainConfig, path: Path) -> None:
    _build(SegSettings, config.seg, "seg", path)  # a mapping of known keys
    if config.seg and config.preset is None:
        raise DataError("seg changes a preset's mask decoder; a checkpoint (init_checkpoint) keeps its own", path)
    defaults = SegSettings()
    for key, value in config.seg.items():
        expected = type(getattr(defaults, key))
        if type(value) is not expected:  # exact: YAML's `yes` is a bool, and a bool is not an int here
            raise DataError(f"seg.{key} must be of type {expected.__name__}, got {value!r}", path)
