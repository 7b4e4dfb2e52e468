"""`avbench analyze`: studies of a model beyond its scores. `analyze heads` measures the I-LoRA heads of
the Crab-style model (adapters/crab/head_analysis.py says what and how; docs/heads.md how to read it).

Kept out of avbench/cli.py (which evaluates); `register(app)` adds the group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .bootstrap import DEFAULT_RESAMPLES
from .console import console, err_console, fail
from .errors import AVBenchError

analyze_app = typer.Typer(
    help="Analyses of a model beyond its scores: `heads` (I-LoRA router weights and head ablation of crab).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

OUTPUT_FILES = ("router_weights.json", "head_ablation.json", "heads.md", "router_heatmap.png")




def _print(table_data: tuple[list[str], list[list[str]]], title: str) -> None:
    header, rows = table_data
    table = Table(title=title, title_justify="left")
    for column in header:
        table.add_column(column, justify="left" if column in ("task", "family", "metric", "layer") else "right",
                         overflow="fold")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


@analyze_app.command(
    "heads",
    epilog="Example: `avbench analyze heads --model crab --tasks all` (then docs/heads.md explains the output).",
)
def heads_command(
    model: str = typer.Option("crab", "--model", "-m", help="The model to analyse: crab (the only model with I-LoRA heads)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Crab weights directory (as for `avbench run`)."),
    tasks: str = typer.Option("all", "--tasks", "-t", help="Comma-separated tasks or groups (see `avbench tasks`)."),
    split: Optional[str] = typer.Option(None, help="Split to evaluate; default: each task's test split."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N samples of each task."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding the official data sets. Default: SynthAV."),
    output_dir: Path = typer.Option(Path("avbench-analysis/heads"), help="Where the four files and the runs (runs/) go."),
    batch_size: int = typer.Option(8, min=1, help="Samples per model call."),
    seed: int = typer.Option(0, help="Seed of the model."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:N or auto (default)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="auto (default), float32, bfloat16, float16."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="Cap on generated tokens per sample (default: each task's)."),
    skip_ablation: bool = typer.Option(False, "--skip-ablation", help="Router weights only: skip the runs with one head switched off (one run instead of 1 + heads)."),
    bootstrap: int = typer.Option(DEFAULT_RESAMPLES, "--bootstrap", min=0, help="Resamples of the paired bootstrap interval of each ablation delta; 0 = none."),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the bootstrap resampling."),
    synthav_seed: int = typer.Option(0, help="Seed of the embedded SynthAV data (without --data-root)."),
    synthav_size: str = typer.Option("small", help="Size of the embedded SynthAV data: tiny, small (default) or medium."),
) -> None:
    """Measure crab's I-LoRA heads: mean router weight per head (per layer, task and family; heatmap and
    tables) and the score change per task when each head is switched off. Writes router_weights.json,
    head_ablation.json, heads.md and router_heatmap.png into --output-dir."""
    from .adapters.crab.head_analysis import AnalysisConfig, run_head_analysis
    from .adapters.crab.head_report import ablation_table, markdown_report, router_task_table, write_router_heatmap
    from .cli import _resolve_data_root
    from .registry import expand_tasks, get_model
    from .results import write_results

    if model != "crab":
        fail(f"analyze heads measures I-LoRA heads, which only model 'crab' has; got --model {model!r}")
    try:
        names = expand_tasks(tasks)
        model_options = {k: v for k, v in (("checkpoint", str(checkpoint) if checkpoint else None), ("device", device),
                                           ("dtype", dtype), ("max_new_tokens", max_new_tokens)) if v is not None}
        adapter = get_model(model, seed=seed, **model_options)
        root, data_info = _resolve_data_root(data_root, synthav_seed, synthav_size)
        config = AnalysisConfig(tasks=names, data_root=root, output_dir=output_dir, data_info=data_info, split=split,
                                limit=limit, batch_size=batch_size, seed=seed, model_options=model_options,
                                bootstrap=bootstrap, bootstrap_seed=bootstrap_seed, skip_ablation=skip_ablation)
        output_dir.mkdir(parents=True, exist_ok=True)
        with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=False) as progress:
            bars: dict[str, Any] = {}
            seen: dict[str, dict[str, tuple[int, int]]] = {}

            def on_progress(label: str, task: str, done: int, total: int) -> None:
                # one bar per run; its total grows as each task starts and reports its sample count
                seen.setdefault(label, {})[task] = (done, total)
                if label not in bars:
                    bars[label] = progress.add_task(label)
                counts = seen[label].values()
                progress.update(bars[label], description=f"{label} · {task}", completed=sum(d for d, _ in counts),
                                total=sum(t for _, t in counts))

            analysis = run_head_analysis(adapter, config, on_progress)
    except KeyboardInterrupt:
        fail("interrupted; the analysis starts its runs afresh, run the same command again", code=130)
    except AVBenchError as exc:
        fail(str(exc))

    describe = adapter.describe()
    write_results(output_dir / "router_weights.json", analysis.router)
    ablation_file = output_dir / "head_ablation.json"
    if analysis.ablation is not None:
        write_results(ablation_file, analysis.ablation)
    elif ablation_file.exists():
        ablation_file.unlink()  # from an earlier analysis: it would not match these router weights
    settings = (f"tasks {', '.join(names)}, {f'split {split}' if split else 'test splits'}, "
                f"{'all samples' if limit is None else f'first {limit} samples'}, "
                f"{'SynthAV ' + data_info['synthav']['size'] if data_info.get('synthav') else data_info.get('root')}")
    (output_dir / "heads.md").write_text(markdown_report(analysis.router, analysis.ablation, describe, settings))
    write_router_heatmap(output_dir / "router_heatmap.png", analysis.router, str(describe.get("config", "crab")))

    _print(router_task_table(analysis.router, "answer"), "Mean router weight per head (answer tokens)")
    if analysis.ablation is not None:
        _print(ablation_table(analysis.ablation), "Score change with one head switched off (Δ, 95 % paired interval)")
    written = [f for f in OUTPUT_FILES if (output_dir / f).exists()]
    console.print(f"{', '.join(written)} and the runs (runs/) in {output_dir}/", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(analyze_app, name="analyze")
