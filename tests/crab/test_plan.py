"""`avbench train --plan`: each stage's mixture, records per step and share of the LM loss, computed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from avbench.adapters.crab.config import preset
from avbench.adapters.crab.prompts import IGNORE_INDEX
from avbench.adapters.crab.tokenizer import build_tiny_tokenizer
from avbench.adapters.crab.training.data import ExampleBuilder, InstructionRecord, answer_tokens, read_instructions
from avbench.adapters.crab.training.plan import recipe_mixture, recipe_tokenizer, stage_mixture
from avbench.adapters.crab.training.recipe import StageConfig, TrainConfig
from avbench.errors import AVBenchError
from avbench.synthav.instruct import export_instructions


def _record(task: str, answer: str, n: int) -> InstructionRecord:
    return InstructionRecord(id=f"{task}/{n}", task=task, media={}, instruction="q", answer=answer)


RECORDS = [_record("a", "x x x", 0), _record("a", "x x x x x", 1), _record("b", "y " * 10, 0), _record("c", "z", 0)]
WORDS = lambda record: len(record.answer.split())  # noqa: E731: a stand-in token count, easy to check by hand


def test_records_per_step_follow_repeats_and_the_loss_share_follows_answer_tokens() -> None:
    stage = StageConfig("s", steps=10, tasks=["b", "a"], train=["llm"], repeat={"a": 2}, batch_size=5)
    mixture = stage_mixture(RECORDS, stage, WORDS)
    # drawn list: a twice each (4 entries) and b once: per step 5 * 4/5 and 5 * 1/5; tokens a 2 * (3 + 5), b 10
    assert [(m.task, m.records, m.repeat) for m in mixture] == [("b", 1, 1), ("a", 2, 2)]
    assert [m.per_step for m in mixture] == pytest.approx([1.0, 4.0])
    assert [m.loss_share for m in mixture] == pytest.approx([10 / 26, 16 / 26])


def test_accumulation_scales_the_step_and_an_encoder_stage_has_no_lm_loss() -> None:
    stage = StageConfig("e", steps=1, tasks=["a", "c", "missing"], train=["vision"], objective="encoders",
                        batch_size=3, grad_accum=2)
    mixture = stage_mixture(RECORDS, stage, WORDS)
    assert [(m.task, m.per_step, m.loss_share) for m in mixture] == [("a", 4.0, None), ("c", 2.0, None)]
    with pytest.raises(AVBenchError, match="no records of tasks"):
        stage_mixture(RECORDS, StageConfig("x", steps=1, tasks=["missing"], train=["llm"]), WORDS)


def test_the_plan_refuses_a_preset_the_trainer_refuses() -> None:
    config = TrainConfig(name="x", output_dir="unused", stages=[], preset="full")
    with pytest.raises(AVBenchError, match="training from a random 'full' model is not supported"):
        recipe_tokenizer(config)


def test_the_supervised_answer_tokens_are_the_labels_the_lm_loss_averages(synthav_tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    export_instructions(synthav_tiny, out, drills=2, ave_drills=2, evidence="seconds")
    records = read_instructions(out, synthav_tiny)
    tokenizer = build_tiny_tokenizer()
    builder = ExampleBuilder(tokenizer, preset("tiny"), cache=None)
    drills = [r for r in records if r.given]
    assert drills, "the drills teacher-force their given evidence"
    for record in records:
        _, labels = builder.tokens(record)
        given, supervised = answer_tokens(tokenizer, record)
        assert len(supervised) == sum(label != IGNORE_INDEX for label in labels)
        assert labels[-len(supervised):] == supervised and supervised[-1] == tokenizer.eos_token_id
        assert bool(given) == bool(record.given)


def test_the_plan_command_prints_every_stage_and_trains_nothing(synthav_tiny: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avbench.adapters.crab.training.recipe import load_config
    from avbench.cli import app

    recipe = {"name": "plan", "output_dir": str(tmp_path / "run"), "data": {"synthav_size": "tiny", "drills": 2},
              "stages": [{"name": "encoders", "objective": "encoders", "steps": 5, "tasks": ["caption_second"],
                          "train": ["vision"], "batch_size": 4},
                         {"name": "mixed", "steps": 7, "tasks": ["ave", "arig", "music_avqa_drill"], "train": ["llm"],
                          "repeat": {"arig": 3}, "batch_size": 6}]}
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--plan"])
    assert result.exit_code == 0, result.output
    assert "stage 1/2 encoders: 5 steps of 4 samples" in result.output
    assert "stage 2/2 mixed: 7 steps of 6 samples" in result.output
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "final").exists()
    records = read_instructions(tmp_path / "run" / "instructions.jsonl", synthav_tiny)
    (_, encoders), (_, mixed) = recipe_mixture(load_config(config), records, build_tiny_tokenizer())
    assert sum(m.per_step for m in mixed) == pytest.approx(6) and sum(m.loss_share for m in mixed) == pytest.approx(1)
    for mix in mixed:
        row = next(line for line in result.output.splitlines() if f" {mix.task} " in line)
        assert f"{mix.per_step:.2f}" in row and f"{100 * mix.loss_share:.1f} %" in row and f" {mix.repeat} " in row
