"""A recipe's data mixture, before a step is spent: per stage and task, how many records an optimiser step
draws and what share of the stage's language-model loss they carry.

The LM loss is the mean over every supervised answer token of a step (trainer.TrainingModule), so a task's
weight in the gradient is its share of answer tokens, not of records: 17 text-only drills a step beside
7 media records cut ARIG's share of the loss from 5.8 % to 2.4 % in one of our runs, at nearly the same
records per step (docs/training.md, "The mixture"). Records are drawn as seeded permutations of the stage's list with each
record `repeat` times (trainer.micro_batch), so the expected shares below are exact in expectation.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

from transformers import PreTrainedTokenizerBase

from ..checkpoint import detect_layout, load_checkpoint
from ..tokenizer import load_tokenizer
from .data import InstructionRecord, answer_tokens
from .recipe import StageConfig, TrainConfig
from .trainer import init_checkpoint_folder, preset_tokenizer, stage_records


@dataclass(frozen=True)
class TaskMix:
    task: str
    records: int  # distinct records of the task
    repeat: int
    per_step: float  # expected records per optimiser step
    #: Expected fraction of the step's supervised answer tokens; None for the `encoders` objective (no LM loss).
    loss_share: float | None


def stage_mixture(records: Sequence[InstructionRecord], stage: StageConfig,
                  supervised_tokens: Callable[[InstructionRecord], int]) -> list[TaskMix]:
    """Per task of `stage`, in the stage's task order."""
    drawn = Counter(r.task for r in stage_records(records, stage))  # raises, naming the tasks, when none match
    distinct = Counter(r.task for r in records if r.task in drawn)
    tokens: Counter[str] = Counter()
    if stage.objective == "answer":
        for record in records:
            if record.task in drawn:
                tokens[record.task] += stage.repeat.get(record.task, 1) * supervised_tokens(record)
    total_drawn, total_tokens = sum(drawn.values()), sum(tokens.values())
    return [TaskMix(task, distinct[task], stage.repeat.get(task, 1), stage.samples_per_step * drawn[task] / total_drawn,
                    tokens[task] / total_tokens if stage.objective == "answer" and total_tokens else None)
            for task in stage.tasks if task in drawn]


def recipe_tokenizer(config: TrainConfig) -> PreTrainedTokenizerBase:
    """The tokenizer the recipe trains with: the preset's, or its init checkpoint's."""
    if config.init_checkpoint is None:
        return preset_tokenizer(config)
    folder = init_checkpoint_folder(config)
    if detect_layout(folder) == "avbench":
        return load_tokenizer(folder)
    return load_checkpoint(folder).tokenizer  # the official layout keeps it beside the base LLM


def recipe_mixture(config: TrainConfig, records: Sequence[InstructionRecord],
                   tokenizer: PreTrainedTokenizerBase) -> list[tuple[StageConfig, list[TaskMix]]]:
    counts: dict[str, int] = {}

    def supervised(record: InstructionRecord) -> int:
        if record.id not in counts:
            counts[record.id] = len(answer_tokens(tokenizer, record)[1])
        return counts[record.id]

    return [(stage, stage_mixture(records, stage, supervised)) for stage in config.stages]
