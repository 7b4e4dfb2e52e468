"""`avbench train` (the bundled Crab recipe) and `avbench data instructions` (SynthAV as AV-UIE-style
instruction data). Registered in avbench.cli; docs/training.md."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .console import ProgressBars, console, err_console, fail
from .errors import AVBenchError

INSTRUCTIONS_FILE = "instructions.jsonl"




def _synthav_instructions(size: str, seed: int, split: str, out: Path, drills: int = 0,
                          ave_drills: int = 0, evidence: str = "spans") -> tuple[Path, dict[str, int]]:
    from .synthav import SIZES, ensure_synthav
    from .synthav.instruct import export_instructions

    if size not in SIZES:
        raise AVBenchError(f"unknown SynthAV size {size!r}; sizes: {', '.join(SIZES)}")
    with err_console.status("checking the SynthAV cache") as status:
        root = ensure_synthav(seed=seed, size=size, progress=status.update)
    return root, export_instructions(root, out, split=split, drills=drills, drill_seed=seed, ave_drills=ave_drills,
                                     evidence=evidence)


def instructions_command(
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file to write (docs/training.md, 'Instruction data')."),
    synthav_size: str = typer.Option("medium", help="SynthAV size: tiny, small or medium."),
    synthav_seed: int = typer.Option(0, help="SynthAV seed."),
    split: str = typer.Option("train", help="Split to export."),
    drills: int = typer.Option(0, min=0, help="Also export text-only MUSIC-AVQA drills of this many freshly sampled "
                               "scenes (question, true evidence given, answer; docs/training.md)."),
    ave_drills: int = typer.Option(0, min=0, help="Also export text-only AVE drills of this many freshly sampled scenes."),
    evidence: str = typer.Option("spans", help="How AVE answers and whole-clip captions write what is seen and heard "
                                 "when: spans (per class, e.g. 'Bark 0-4') or seconds (a line per second)."),
) -> None:
    """Export a SynthAV split as AV-UIE-style instruction data: media paths, the task's prompt, and an answer
    that states what is seen and heard before the tagged result (plus one description record per clip)."""
    try:
        root, counts = _synthav_instructions(synthav_size, synthav_seed, split, out, drills, ave_drills, evidence)
    except AVBenchError as exc:
        fail(str(exc))
    console.print(f"{sum(counts.values())} records ({', '.join(f'{k} {v}' for k, v in counts.items())}) in {out}; "
                  f"media paths are relative to {root}", highlight=False, soft_wrap=True)


def train_command(
    config: Path = typer.Option(..., "--config", "-c", help="Training recipe (YAML), e.g. configs/crab-tiny.yaml (docs/training.md)."),
    output_dir: Optional[Path] = typer.Option(None, help="Where checkpoints, the loss log and the final model go; default: the config's output_dir."),
    fresh: bool = typer.Option(False, help="Start over instead of resuming from the newest checkpoint in the output folder."),
    stop_after: Optional[int] = typer.Option(None, min=1, help="Stop (with a checkpoint) after this many optimiser steps in all; run again to continue."),
    plan: bool = typer.Option(False, "--plan", help="Train nothing: prepare the data, then print each stage's mixture (records per "
                              "step and share of the language-model loss per task), to check a recipe before an hour's run."),
) -> None:
    """Train the Crab-style model with the bundled staged recipe: cosine schedule with warm-up, gradient
    accumulation, safetensors checkpoints and exact resume (re-run the same command after an interruption)."""
    from .adapters.crab.training.data import read_instructions
    from .adapters.crab.training.recipe import load_config
    from .adapters.crab.training.trainer import CURVE_FILE, LOG_FILE, Trainer

    try:
        recipe = load_config(config)
        if output_dir is not None:
            recipe.output_dir = str(output_dir)
        out = Path(recipe.output_dir)
        data = recipe.data
        if data.synthav_size is not None:
            out.mkdir(parents=True, exist_ok=True)
            root, _ = _synthav_instructions(data.synthav_size, data.synthav_seed, data.split, out / INSTRUCTIONS_FILE,
                                            data.drills, data.ave_drills, data.evidence)
            records = read_instructions(out / INSTRUCTIONS_FILE, root)
        else:
            records = read_instructions(data.instructions, data.data_root)
        if plan:
            _print_plan(recipe, records)
            return
        with ProgressBars(16) as bars:
            trainer = Trainer(recipe, records, progress=bars.update,
                              log=lambda m: bars.progress.console.print(m, highlight=False, markup=False, soft_wrap=True))
            result = trainer.train(resume=not fresh, stop_after=stop_after)
    except KeyboardInterrupt:
        fail(f"interrupted; checkpoints are in {recipe.output_dir}/checkpoints: run the same command to resume", code=130)
    except AVBenchError as exc:
        fail(str(exc))
    if stop_after is not None and result is not None and result.name != "final":
        console.print(f"stopped after step {stop_after}; checkpoint {result}; run the same command to continue", highlight=False)
        return
    console.print(f"model in {result} (use it with `avbench run --model crab --checkpoint {result}`); "
                  f"loss log {out / LOG_FILE}, loss curve {out / CURVE_FILE}", highlight=False, soft_wrap=True)


def _print_plan(recipe, records) -> None:
    from rich.table import Table

    from .adapters.crab.training.plan import recipe_mixture, recipe_tokenizer

    stages = recipe_mixture(recipe, records, recipe_tokenizer(recipe))
    for number, (stage, mixture) in enumerate(stages, 1):
        table = Table(title=f"stage {number}/{len(stages)} {stage.name}: {stage.steps} steps of {stage.samples_per_step} "
                            f"samples ({stage.objective})"
                            + (f", keeping {stage.interpolate:g} of its change" if stage.interpolate != 1 else ""),
                      title_justify="left")
        for column in ("task", "records", "repeat", "per step", "share of LM loss"):
            table.add_column(column, justify="left" if column == "task" else "right")
        for mix in mixture:
            share = "-" if mix.loss_share is None else f"{100 * mix.loss_share:.1f} %"
            table.add_row(mix.task, str(mix.records), str(mix.repeat), f"{mix.per_step:.2f}", share)
        console.print(table)


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    app.command("train", epilog="Example: `avbench train --config configs/crab-tiny.yaml` (re-run to resume)")(train_command)
    data_app.command("instructions", epilog="Example: `avbench data instructions --synthav-size medium --out train.jsonl`")(instructions_command)
