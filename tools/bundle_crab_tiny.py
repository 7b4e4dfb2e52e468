"""Copy a finished `avbench train --config configs/crab-tiny.yaml` run into the package as the bundled
default checkpoint (adapters/crab/crab_tiny/), with a PROVENANCE.md that records how it was made.

    python tools/bundle_crab_tiny.py runs/crab-tiny [--commit REV]

The code the weights came from is read from the run's source.json (the trainer records the commit at every
start); `--commit` names it for a run made before the trainer did. A run that started from another run's
model (`init_checkpoint`) is recorded with the runs before it: each one's recipe, found among configs/*.yaml
by its digest (the tool refuses a run whose recipe no shipped config matches), stages and commits.

The weights stay float32 (about 18 MB for 4.7 M parameters, under the 20 MB the package allows), so the
numbers measured on the run's final checkpoint are the numbers of the bundled one (same file hash).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "adapters" / "crab" / "crab_tiny"
FIGURES = REPO / "docs" / "figures"
MAX_BYTES = 20 * 1024 * 1024


def source_text(run: Path, commit: str | None) -> str:
    """Where the weights' code came from: the run's source.json (written by the trainer at every (re)start),
    or `--commit` for a run made before the trainer recorded it."""
    path = run / "source.json"
    if path.is_file():
        starts = json.loads(path.read_text())["starts"]
        parts = [f"`{(s['git_revision'] or 'unknown')[:7]}`" + (" plus uncommitted changes" if s["tracked_changes"] else "")
                 + (f" (resumed at step {s['global_step']})" if s["global_step"] else "") for s in starts]
        return "at avbench commit " + ", then ".join(parts)
    if commit is None:
        sys.exit(f"{run}: no source.json (a run older than the trainer's record); name the training commit with --commit")
    return f"at avbench commit `{commit}` (given by hand: the run predates source.json)"


def shipped_config(run: Path) -> Path:
    """The configs/*.yaml whose recipe the run trained (same digest: output_dir and logging aside)."""
    from avbench.adapters.crab.training.recipe import load_config, parse_config
    from avbench.adapters.crab.training.trainer import config_digest

    digest = config_digest(parse_config(json.loads((run / "train_config.json").read_text()), run / "train_config.json"))
    for path in sorted((REPO / "configs").glob("*.yaml")):
        if config_digest(load_config(path)) == digest:
            return path.relative_to(REPO)
    sys.exit(f"{run}: its recipe matches none of configs/*.yaml; bundle only a run of a shipped recipe")


def lineage(run: Path) -> list[Path]:
    """The run, after the runs whose models it started from (oldest first)."""
    config = json.loads((run / "train_config.json").read_text())
    init = config.get("init_checkpoint")
    return (lineage(Path(init).parent) if init else []) + [run]


def stage_rows(run: Path) -> tuple[list[str], float]:
    """One table row per stage of the run (its loss at the start and the end) and its optimiser seconds."""
    from avbench.adapters.crab.training.trainer import LOG_FILE, read_log

    log = read_log(run / LOG_FILE)
    config = json.loads((run / "train_config.json").read_text())
    rows, seconds = [], 0.0
    for stage in config["stages"]:
        entries = [e for e in log if e["stage"] == stage["name"]]
        first, last = entries[:20], entries[-20:]
        seconds += float(entries[-1]["seconds"])  # a stage's entries count seconds from its start
        kept = f", keeps {stage['interpolate']:g}" if stage.get("interpolate", 1) != 1 else ""
        rows.append(f"| {run.name} | {stage['name']} | {stage.get('objective', 'answer')}{kept} | {stage['steps']} x "
                    f"{stage['batch_size']} | {entries[-1]['seconds']:.0f} | {sum(e['loss'] for e in first) / len(first):.3f} | "
                    f"{sum(e['loss'] for e in last) / len(last):.3f} |")
    return rows, seconds


def main(run: Path, commit: str | None = None) -> None:
    final = run / "final"
    if not (final / "model.safetensors").is_file():
        sys.exit(f"{final}: no trained model (run `avbench train --config configs/crab-tiny.yaml` to the end first)")
    size = sum(p.stat().st_size for p in final.iterdir())
    if size > MAX_BYTES:
        sys.exit(f"{final}: {size / 2**20:.1f} MB is over the 20 MB the package allows")
    runs = lineage(run)
    configs = [shipped_config(r) for r in runs]
    rows, seconds = [], 0.0
    for r in runs:
        more, spent = stage_rows(r)
        rows, seconds = rows + more, seconds + spent
    sources = "; then ".join(f"`{c}` ({r}) {source_text(r, commit if r == run else None)}" for c, r in zip(configs, runs))
    shutil.rmtree(TARGET, ignore_errors=True)
    shutil.copytree(final, TARGET)
    from avbench.adapters.crab.checkpoint import file_digest

    commands = "".join(f"avbench train --config {c}\n" for c in configs)
    (TARGET / "PROVENANCE.md").write_text(
        "# crab-tiny: provenance\n\n"
        f"Made with\n\n```bash\n{commands}"
        f"python tools/bundle_crab_tiny.py {run}" + (f" --commit {commit}" if commit else "") + "\n```\n\n"
        f"Trained by {sources}, on a 2-core CPU, float32, seed 0, from random weights, on the train split of SynthAV "
        "medium (seed 0) exported by `avbench data instructions`. It has never seen a SynthAV val or test clip.\n\n"
        f"Training time: {seconds / 60:.1f} minutes of optimiser steps (media decoding and checkpoints not counted).\n"
        f"Weights: `model.safetensors`, sha256 prefix `{file_digest([TARGET / 'model.safetensors'])}` "
        "(the `checkpoint_hash` in results.json).\n\n"
        "| run | stage | objective | steps x batch | seconds | mean loss, first 20 steps | mean loss, last 20 steps |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "Loss curves: " + ", ".join(f"docs/figures/{c.stem}-loss.png" for c in configs)
        + "; the recipes and the evaluation are in docs/training.md.\n",
        encoding="utf-8",
    )
    FIGURES.mkdir(parents=True, exist_ok=True)
    for config, r in zip(configs, runs):
        shutil.copy(r / "loss_curve.png", FIGURES / f"{config.stem}-loss.png")
    print(f"bundled {final} ({size / 2**20:.1f} MB) into {TARGET}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--commit"):
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[3] if len(sys.argv) == 4 else None)
