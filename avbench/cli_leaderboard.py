"""The publishing and gating commands: `avbench leaderboard add|show|render`, `avbench compare`, `avbench prompts`.

Kept out of avbench/cli.py (which evaluates) so each file has one concern; `register(app)` adds them.
Exit codes: 0 success, 1 the gate failed (a regression, prompt drift), 2 a usage or data error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from .console import console, err_console, fail
from .errors import AVBenchError


leaderboard_app = typer.Typer(
    help="Leaderboard JSON (leaderboard/SCHEMA.md): add a results file, show it, render markdown or a static web page.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_LEADERBOARD_OPTION = typer.Option(
    Path("leaderboard/leaderboard.json"), "--leaderboard", "-l", help="The leaderboard file (default: leaderboard/leaderboard.json)."
)




@leaderboard_app.command(
    "add",
    epilog="Example: `avbench leaderboard add avbench-results/prior/results.json` (again: nothing changes).",
)
def add_command(
    results: Path = typer.Argument(..., help="A results.json written by `avbench run` or `avbench score --output`."),
    leaderboard: Path = _LEADERBOARD_OPTION,
    model_name: Optional[str] = typer.Option(None, help="Model name, when the results file has none (e.g. from `avbench score`)."),
    parameters: Optional[str] = typer.Option(None, help="Parameter count as shown, e.g. 7B (default: what the adapter reported)."),
    checkpoint_hash: Optional[str] = typer.Option(None, help="Checkpoint hash (default: what the adapter reported)."),
    replace: bool = typer.Option(False, help="Replace tasks the entry already holds with other numbers."),
) -> None:
    """Merge RESULTS into the leaderboard (idempotent). Refuses a file whose task versions or variants differ from the leaderboard's."""
    from .leaderboard import add_results, load, new_leaderboard, read_results, save

    try:
        document = load(leaderboard) if leaderboard.exists() else new_leaderboard()
        updated, outcome = add_results(
            document, read_results(results), replace=replace, model_name=model_name, parameters=parameters,
            checkpoint_hash=checkpoint_hash,
        )
        if outcome.status != "unchanged" or not leaderboard.exists():
            save(leaderboard, updated)
    except AVBenchError as exc:
        fail(str(exc))
    console.print(f"{escape(outcome.message())} ({escape(str(leaderboard))})", highlight=False)


@leaderboard_app.command("show")
def show_command(
    leaderboard: Path = _LEADERBOARD_OPTION,
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Show every metric of this task (with intervals and counts) instead of the overview."),
) -> None:
    """Print the leaderboard as a table: the primary metric of each task, or one task in full."""
    from .leaderboard import load
    from .leaderboard.terminal import overview_table, task_table

    try:
        document = load(leaderboard)
        if task is not None and task not in document["tasks"]:
            raise AVBenchError(f"the leaderboard has no task {task!r}; its tasks: {', '.join(document['tasks'])}")
    except AVBenchError as exc:
        fail(str(exc))
    console.print(overview_table(document) if task is None else task_table(document, task))


@leaderboard_app.command(
    "render",
    epilog="Examples: `avbench leaderboard render --format md LEADERBOARD.md` · "
    "`avbench leaderboard render --format html leaderboard/index.html`",
)
def render_command(
    out: Path = typer.Argument(..., help="File to write."),
    format: str = typer.Option(..., "--format", "-f", help="md (markdown tables for a paper or README) or html (one self-contained page)."),
    leaderboard: Path = _LEADERBOARD_OPTION,
) -> None:
    """Render the leaderboard to OUT: markdown, or a static HTML page (no network; sortable tables, bar charts)."""
    from .leaderboard import load, render_html, render_markdown

    renderers = {"md": render_markdown, "html": render_html}
    try:
        if format not in renderers:
            raise AVBenchError(f"--format takes md or html, got {format!r}")
        text = renderers[format](load(leaderboard))
    except AVBenchError as exc:
        fail(str(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {escape(str(out))}", highlight=False)


def compare_command(
    baseline: Path = typer.Argument(..., help="Baseline run: its results.json or the output folder of `avbench run`."),
    new: Path = typer.Argument(..., help="New run, likewise."),
    tolerance: float = typer.Option(1.0, help="Allowed drop in points of percent metrics (divided by 100 for fraction metrics)."),
    metrics: str = typer.Option("table", help="Which metrics to gate on: primary, table (those of the summary table) or all."),
    data_root: Optional[Path] = typer.Option(None, help="Data to re-score per-sample predictions on (default: the baseline's, SynthAV regenerated if needed)."),
    n_resamples: int = typer.Option(1000, min=1, help="Bootstrap resamples."),
    level: float = typer.Option(0.95, min=0.5, max=0.999, help="Level of the intervals."),
    seed: int = typer.Option(0, help="Seed of the bootstrap."),
    markdown: Optional[Path] = typer.Option(None, help="Also write the comparison as markdown here (for a CI comment)."),
    format: str = typer.Option("table", "--format", help="What to print: table (terminal) or md (markdown)."),
) -> None:
    """Per task and metric, NEW - BASELINE with an interval; exits 1 when a metric regresses beyond --tolerance with significance."""
    from .compare import HEADER, compare_runs, load_run, rows, settings_line, summary_line, to_markdown

    try:
        if format not in ("table", "md"):
            raise AVBenchError(f"--format takes table or md, got {format!r}")
        comparison = compare_runs(
            load_run(baseline), load_run(new), tolerance=tolerance, metrics=metrics, data_root=data_root,
            n_resamples=n_resamples, seed=seed, level=level,
        )
    except AVBenchError as exc:
        fail(str(exc))
    text = to_markdown(comparison)
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text, encoding="utf-8")
    if format == "md":
        typer.echo(text, nl=False)
    else:
        table = Table(title=escape(f"avbench compare: {summary_line(comparison)}"), caption=escape(settings_line(comparison)),
                      title_justify="left", caption_justify="left")
        for column in HEADER:
            table.add_column(column, justify="right" if column in ("baseline", "new", "delta", "p") else "left")
        for row in rows(comparison):
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
        for note in comparison.notes:
            console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    if not comparison.passed:
        raise typer.Exit(1)


def prompts_command(
    tasks: str = typer.Option("all", "--tasks", "-t", help="Tasks or groups, as for `avbench run`."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the snapshot here."),
    check: Optional[Path] = typer.Option(None, "--check", help="Compare with this committed snapshot; exit 1 and show a diff when prompts changed."),
    synthav_size: str = typer.Option("tiny", help="SynthAV size the prompts are rendered on."),
    synthav_seed: int = typer.Option(0, help="SynthAV seed the prompts are rendered on."),
) -> None:
    """Render every task's prompts on SynthAV and write them (--out) or check them against a snapshot (--check). No model needed."""
    from .prompts import build_snapshot, check_snapshot, read_snapshot, write_snapshot
    from .registry import expand_tasks

    try:
        if (out is None) == (check is None):
            raise AVBenchError("pass exactly one of --out FILE (write a snapshot) and --check FILE (compare with one)")
        names = expand_tasks(tasks)
        if check is not None:
            expected = read_snapshot(check)
            if tasks != "all":  # check only what was asked for; with `all`, a task gone from the registry is drift too
                expected = {**expected, "tasks": {k: v for k, v in expected["tasks"].items() if k in names}}
            synthav = (expected.get("data") or {}).get("synthav") or {}
            size, seed = synthav.get("size", synthav_size), int(synthav.get("seed", synthav_seed))
            # the check renders every prompt in full, so the diff can show the new text of any changed sample
            actual = build_snapshot(names, synthav_size=size, synthav_seed=seed, max_texts=10**9)
            changes = check_snapshot(expected, actual)
        else:
            write_snapshot(out, build_snapshot(names, synthav_size=synthav_size, synthav_seed=synthav_seed))  # type: ignore[arg-type]
    except AVBenchError as exc:
        fail(str(exc))
    if out is not None:
        console.print(f"wrote the prompts of {len(names)} tasks to {escape(str(out))}", highlight=False)
        return
    if not changes:
        console.print(f"prompts unchanged: {len(names)} tasks match {escape(str(check))}", highlight=False)
        return
    err_console.print(f"[bold red]prompts changed[/] against {escape(str(check))} in {len(changes)} task(s):", highlight=False)
    for change in changes:
        err_console.print(escape(change.format()), highlight=False, soft_wrap=True)
    err_console.print("If the change is intended, bump the task's TASK_VERSION and write the snapshot again "
                      f"(avbench prompts --tasks {escape(tasks)} --out {escape(str(check))}).", highlight=False)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `leaderboard`, `compare` and `prompts` to the main `avbench` command."""
    app.add_typer(leaderboard_app, name="leaderboard")
    app.command(
        "compare",
        epilog="Example: `avbench compare runs/main runs/pr --tolerance 1 --markdown comment.md` (exit 1 on a regression).",
    )(compare_command)
    app.command(
        "prompts",
        epilog="Examples: `avbench prompts --tasks all --out tests/snapshots/prompts.json` · "
        "`avbench prompts --check tests/snapshots/prompts.json`",
    )(prompts_command)
