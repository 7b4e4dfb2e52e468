"""Copy a finished `avbench train --config configs/crab-tiny.yaml` run into the package as the bundled
default checkpoint (adapters/crab/crab_tiny/), with a PROVENANCE.md that records how it was made.

    python tools/bundle_crab_tiny.py runs/crab-tiny [--commit REV]

The code the weights came from is read from the run's source.json (the trainer records the commit at every
start); `--commit` names it for a run made before the trainer did.

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


def main(run: Path, commit: str | None = None) -> None:
    final = run / "final"
    if not (final / "model.safetensors").is_file():
        sys.exit(f"{final}: no trained model (run `avbench train --config configs/crab-tiny.yaml` to the end first)")
    size = sum(p.stat().st_size for p in final.iterdir())
    if size > MAX_BYTES:
        sys.exit(f"{final}: {size / 2**20:.1f} MB is over the 20 MB the package allows")
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line.strip()]
    config = json.loads((run / "train_config.json").read_text())
    stages, seconds = [], 0.0
    for stage in config["stages"]:
        entries = [e for e in log if e["stage"] == stage["name"]]
        first, last = entries[:20], entries[-20:]
        seconds += float(entries[-1]["seconds"])  # a stage's entries count seconds from its start
        stages.append(f"| {stage['name']} | {stage.get('objective', 'answer')} | {stage['steps']} x {stage['batch_size']} | "
                      f"{entries[-1]['seconds']:.0f} | {sum(e['loss'] for e in first) / len(first):.3f} | "
                      f"{sum(e['loss'] for e in last) / len(last):.3f} |")
    shutil.rmtree(TARGET, ignore_errors=True)
    shutil.copytree(final, TARGET)
    from avbench.adapters.crab.checkpoint import file_digest

    (TARGET / "PROVENANCE.md").write_text(
        "# crab-tiny: provenance\n\n"
        "Made with\n\n```bash\navbench train --config configs/crab-tiny.yaml\n"
        f"python tools/bundle_crab_tiny.py {run}" + (f" --commit {commit}" if commit else "") + "\n```\n\n"
        f"{source_text(run, commit)}, on a 2-core CPU, float32, seed 0, from random weights, on the train split of SynthAV medium (seed 0) "
        "exported by `avbench data instructions`. It has never seen a SynthAV val or test clip.\n\n"
        f"Training time: {seconds / 60:.1f} minutes of optimiser steps (media decoding and checkpoints not counted).\n"
        f"Weights: `model.safetensors`, sha256 prefix `{file_digest([TARGET / 'model.safetensors'])}` "
        "(the `checkpoint_hash` in results.json).\n\n"
        "| stage | objective | steps x batch | seconds | mean loss, first 20 steps | mean loss, last 20 steps |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(stages) + "\n\n"
        "The loss curve is docs/figures/crab-tiny-loss.png; the recipe and the evaluation are in docs/training.md.\n",
        encoding="utf-8",
    )
    figures = REPO / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "loss_curve.png", figures / "crab-tiny-loss.png")
    print(f"bundled {final} ({size / 2**20:.1f} MB) into {TARGET}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--commit"):
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[3] if len(sys.argv) == 4 else None)
