"""The `avbench` command line: list tasks and models, run an evaluation, score a predictions file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from . import __version__, distributed
from .ablation import ablated_label, check_ablation, default_output_name
from .bootstrap import DEFAULT_RESAMPLES, BootstrapConfig
from .cli_data import data_app
from .console import ProgressBars, console, err_console, fail
from .errors import AVBenchError, UnknownNameError
from .predictions import read_predictions
from .registry import (
    TASK_GROUPS, UNAVAILABLE_MODELS, expand_tasks, get_model, get_task, model_class, model_names, task_class, task_names,
)
from .results import (
    FAMILY_HEADER, METRIC_HEADER, RESULTS_FILE_NAME, TABLE_NOTE, build_results, family_rows, interval_note, markdown_table, metric_rows,
    write_results,
)
from .runner import RunConfig, run
from .scoring import evaluate, prediction_from_record
from .task import load_samples

app = typer.Typer(
    help="Evaluate audio-visual language models on AVE, AVVP, MUSIC-AVQA, ARIG, AVSBench S4/MS3, AVSS and "
    "Ref-AVS with the official metrics. Without --data-root, runs on SynthAV, the embedded synthetic suite.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(data_app, name="data")




def _version_callback(value: bool) -> None:
    if value:
        console.print(f"avbench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Print the version.")) -> None:
    pass


@app.command("tasks")
def list_tasks() -> None:
    """List the registered tasks (one line each) and the groups `--tasks` accepts."""
    for name in task_names():
        cls = task_class(name)
        typer.echo(f"{name:<12} {cls.family:<15} {cls.description}")
    groups = "; ".join(f"{g} = {','.join(m)}" for g, m in TASK_GROUPS.items())
    typer.echo(f"\ngroups: all; {groups}")


@app.command("models")
def list_models() -> None:
    """List the models `--model` accepts (one line each)."""
    for name in model_names():
        typer.echo(f"{name:<12} {model_class(name).description}")
    for name, reason in UNAVAILABLE_MODELS.items():
        typer.echo(f"{name:<12} (not available: {reason})")


def _parse_task_options(items: list[str]) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        task, dot, option = key.partition(".")
        if not sep or not dot or not option:
            raise AVBenchError(f"--task-option takes TASK.OPTION=VALUE, got {item!r}")
        options.setdefault(task, {})[option] = value
    return options


def _resolve_data_root(data_root: Optional[Path], synthav_seed: int, synthav_size: str) -> tuple[Path, dict[str, Any]]:
    if data_root is not None:
        if not data_root.is_dir():
            raise AVBenchError(f"data root {data_root} does not exist; pass the folder that holds ave/, avvp/, ... "
                               "(see docs/data-layout.md), or omit --data-root to use the embedded SynthAV")
        return data_root, {"root": str(data_root.resolve()), "synthav": None}
    from .synthav import SIZES, SYNTHAV_VERSION, ensure_synthav

    if synthav_size not in SIZES:
        raise UnknownNameError("SynthAV size", synthav_size, list(SIZES))
    with err_console.status("checking the SynthAV cache") as status:
        root = ensure_synthav(seed=synthav_seed, size=synthav_size, progress=status.update)
    err_console.print(f"data: SynthAV {synthav_size} (seed {synthav_seed}) in {root}", highlight=False, soft_wrap=True)
    return root, {"root": str(root), "synthav": {"version": SYNTHAV_VERSION, "seed": synthav_seed, "size": synthav_size}}


BOOTSTRAP_HELP = ("Bootstrap resamples for the 95 % interval of every metric (resampling the benchmark's units: "
                  "videos, questions, frames, calls); 0 = no intervals.")


def _bootstrap_config(resamples: int, seed: int) -> BootstrapConfig | None:
    return BootstrapConfig(n_resamples=resamples, seed=seed) if resamples > 0 else None


def _warn_loudly(message: str) -> None:
    err_console.print(f"[bold yellow on red] WARNING [/] [bold yellow]{escape(message)}[/]", highlight=False, soft_wrap=True)


def _print_table(results: dict[str, Any], title: str) -> None:
    numeric = {"value", "interval", "samples", "failed", "score"}
    console.print(title, highlight=False, markup=False, style="bold")
    for header, rows, notes in (
        (METRIC_HEADER, metric_rows(results), (TABLE_NOTE, interval_note(results))),
        (FAMILY_HEADER, family_rows(results), ("family score = mean of the family's primary metrics (%)",)),
    ):
        if not rows:
            continue
        table = Table()
        for column in header:
            # an interval stays on one line; a narrow terminal folds names, never cuts them
            table.add_column(column, justify="right" if column in numeric else "left", no_wrap=column == "interval",
                             overflow="fold")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        for note in notes:
            if note:
                console.print(note, highlight=False, markup=False, style="dim")


@app.command(
    "run",
    epilog="Examples: `avbench run --model oracle --tasks all` · `avbench run --model prior --tasks pixel --limit 10` · "
    "`avbench run --model random --data-root ~/data/av --tasks ave,avvp --output-dir runs/random`",
)
def run_command(
    model: str = typer.Option(..., "--model", "-m", help="Model to evaluate (see `avbench models`)."),
    tasks: str = typer.Option("all", "--tasks", "-t", help="Comma-separated tasks or groups: all, temporal, spatial, spatiotemporal, pixel, or task names (see `avbench tasks`)."),
    split: Optional[str] = typer.Option(None, help="Split to evaluate; default: each task's test split."),
    limit: Optional[int] = typer.Option(None, min=1, help="Evaluate only the first N samples of each task."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding the official data sets (docs/data-layout.md). Default: SynthAV, generated on first use into $AVBENCH_CACHE."),
    output_dir: Optional[Path] = typer.Option(None, help="Where predictions and results go; re-running into the same folder resumes. Default: avbench-results/<model>."),
    batch_size: int = typer.Option(8, min=1, help="Samples per model call."),
    seed: int = typer.Option(0, help="Seed of the model (sampling baselines)."),
    task_option: list[str] = typer.Option([], "--task-option", help="Metric variant of a task, e.g. s4.f_grouping=per_frame, ref_avs.variant=crab, avss.classes=no_bg. Repeatable."),
    overwrite: bool = typer.Option(False, help="Discard what --output-dir holds instead of resuming."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Weights directory of a model that needs one (crab: avbench's layout or the official release layout, docs/crab.md)."),
    device: Optional[str] = typer.Option(None, "--device", help="Where a neural model runs: cpu, cuda, cuda:N or auto (default: auto = cuda if available)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Weights/compute dtype of a neural model: auto (bfloat16 on a capable GPU, else float32), float32, bfloat16, float16."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", min=1, help="Cap on generated tokens per sample (default: each task's, 500 text / 100 segmentation)."),
    on_error: str = typer.Option("raise", "--on-error", help="A sample whose media is missing or corrupt: raise (stop, naming the file) or skip (score it as a failure, counted in the results; a re-run retries it)."),
    bootstrap: int = typer.Option(DEFAULT_RESAMPLES, "--bootstrap", min=0, help=BOOTSTRAP_HELP),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the bootstrap resampling (same seed, same intervals)."),
    synthav_seed: int = typer.Option(0, help="Seed of the embedded SynthAV data (without --data-root)."),
    synthav_size: str = typer.Option("small", help="Size of the embedded SynthAV data: tiny, small (default) or medium."),
    ablate: Optional[str] = typer.Option(None, "--ablate", help="Modality ablation: `audio` silences every sample's audio "
                                         "(zeros of the same length), `video` blanks its frames (black, same shape), so a "
                                         "drop in score shows the model uses that modality. Models that read media only; "
                                         "default output folder avbench-results/<model>-no-<modality>."),
) -> None:
    """Evaluate MODEL on TASKS: per-sample predictions (JSONL), results.json, results.md and a summary table."""
    out = output_dir or Path("avbench-results") / default_output_name(model, ablate)
    try:
        names = expand_tasks(tasks)
        task_options = _parse_task_options(task_option)
        if stray := sorted(set(task_options) - set(names)):
            raise AVBenchError(f"--task-option names tasks that are not run: {', '.join(stray)}")
        model_options = {k: v for k, v in (("checkpoint", str(checkpoint) if checkpoint else None), ("device", device),
                                           ("dtype", dtype), ("max_new_tokens", max_new_tokens)) if v is not None}
        adapter = get_model(model, seed=seed, **model_options)
        check_ablation(ablate, adapter)  # before SynthAV is generated: a baseline with --ablate fails at once
        with distributed.main_first():  # data-parallel (torchrun): rank 0 alone generates SynthAV and clears the folder
            root, data_info = _resolve_data_root(data_root, synthav_seed, synthav_size)
            if overwrite and out.exists() and distributed.is_main():
                shutil.rmtree(out)
        config = RunConfig(
            model=model, tasks=names, output_dir=out, data_root=root, split=split, limit=limit,
            batch_size=batch_size, seed=seed, model_options=model_options, task_options=task_options, on_error=on_error,
            bootstrap=_bootstrap_config(bootstrap, bootstrap_seed), ablate=ablate,
        )
        with ProgressBars(12, disable=not distributed.is_main()) as bars:
            task_results = run(adapter, config, bars.update, warn=_warn_loudly)
    except KeyboardInterrupt:
        fail(f"interrupted; what was predicted is saved in {out}/: run the same command again to resume", code=130)
    except AVBenchError as exc:
        fail(str(exc))
    if not distributed.is_main():
        return  # rank 0 of a data-parallel run writes and prints the results
    config_info = {
        "model": model, "tasks": names, "split": split, "limit": limit, "batch_size": batch_size,
        "seed": seed, "model_options": model_options, "task_options": config.task_options, "output_dir": str(out), "on_error": on_error,
        "bootstrap": bootstrap, "bootstrap_seed": bootstrap_seed, "ablate": ablate,
    }
    model_info = adapter.describe()
    if ablate is not None:  # a leaderboard or comparison then shows the ablated model under its own name
        model_info = {**model_info, "name": ablated_label(model_info.get("name") or model, ablate), "ablate": ablate}
    results = build_results(task_results, config_info, model_info, data_info)
    write_results(out / RESULTS_FILE_NAME, results)
    (out / "results.md").write_text(markdown_table(results))
    _print_table(results, f"avbench {__version__} · model {ablated_label(model, ablate)}")
    console.print(f"predictions and results in {out}/", highlight=False)


@app.command(
    "score",
    epilog="Example: `avbench score --task music_avqa --predictions preds.jsonl --data-root ~/data/av --output results.json`",
)
def score_command(
    task: str = typer.Option(..., "--task", help="Task the predictions are for (see `avbench tasks`)."),
    predictions: Path = typer.Option(..., "--predictions", "-p", help="JSONL file, one sample per line (format in README)."),
    data_root: Optional[Path] = typer.Option(None, help="Folder holding the data set; default: the embedded SynthAV."),
    split: Optional[str] = typer.Option(None, help="Split the predictions are for; default: the task's test split."),
    task_option: list[str] = typer.Option([], "--task-option", help="Metric variant, e.g. s4.f_grouping=per_frame. Repeatable."),
    output: Optional[Path] = typer.Option(None, help="Write the results JSON here as well."),
    bootstrap: int = typer.Option(DEFAULT_RESAMPLES, "--bootstrap", min=0, help=BOOTSTRAP_HELP),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="Seed of the bootstrap resampling (same seed, same intervals)."),
    synthav_seed: int = typer.Option(0, help="Seed of the embedded SynthAV data (without --data-root)."),
    synthav_size: str = typer.Option("small", help="Size of the embedded SynthAV data."),
) -> None:
    """Score predictions made elsewhere. Samples without a line count as parse failures."""
    try:
        task_obj = get_task(task, **_parse_task_options(task_option).get(task, {}))
        split_name = split or task_obj.default_split
        if split_name not in task_obj.splits:
            raise AVBenchError(f"task {task!r} has no split {split_name!r}; its splits: {', '.join(task_obj.splits)}")
        root, data_info = _resolve_data_root(data_root, synthav_seed, synthav_size)
        records = {r.id: r for r in read_predictions(predictions)}
        samples = load_samples(task_obj, root, split_name)
        known = {s.id for s in samples}
        unknown = [i for i in records if i not in known]
        preds = [prediction_from_record(task_obj, s, records[s.id]) if s.id in records else None for s in samples]
        boot = _bootstrap_config(bootstrap, bootstrap_seed)
        evaluation = evaluate(task_obj, samples, preds, bootstrap=boot)
    except AVBenchError as exc:
        fail(str(exc))
    from .types import TaskResult

    result = TaskResult(task, split_name, evaluation.metrics, len(samples), evaluation.n_parse_failures, task_obj.variants(),
                        intervals=evaluation.intervals, bootstrap=boot.to_json() if boot else None)
    missing = sum(p is None for p in preds)
    config_info = {"task": task, "split": split_name, "predictions": str(predictions), "bootstrap": bootstrap,
                   "bootstrap_seed": bootstrap_seed, "task_options": _parse_task_options(task_option)}
    results = build_results([result], config_info, {"name": None}, data_info)
    results["tasks"][task]["n_missing"] = missing
    results["tasks"][task]["n_unknown_ids"] = len(unknown)
    if output:
        write_results(output, results)
    if unknown:
        err_console.print(f"warning: {len(unknown)} lines have ids that are not in {task}/{split_name} (e.g. {unknown[0]!r}); ignored", highlight=False)
    if missing:
        err_console.print(f"warning: {missing} of {len(samples)} samples have no line; scored as failures", highlight=False)
    _print_table(results, f"avbench {__version__} · {predictions}")


# `leaderboard`, `compare` and `prompts` live in their own module (publishing and gating, not evaluating).
from .cli_leaderboard import register as _register_publishing  # noqa: E402

_register_publishing(app)

# `train` and `data instructions`: the bundled Crab training recipe (imports torch lazily).
from .cli_train import register as _register_training  # noqa: E402

_register_training(app, data_app)

# `analyze` (studies of a model beyond its scores: I-LoRA heads) lives in its own module too.
from .cli_analyze import register as _register_analysis  # noqa: E402

_register_analysis(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
