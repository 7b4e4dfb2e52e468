"""`avbench data ...`: commands about data set copies (docs/data-layout.md). Registered in avbench.cli."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from .console import console, err_console
from .datacheck import CheckReport, check_task
from .errors import AVBenchError
from .media import MediaSpec
from .registry import expand_tasks, get_task

data_app = typer.Typer(help="Check data set copies (layout, sample counts, data version, media files); export SynthAV as instruction data.",
                       no_args_is_help=True)

#: Most problems listed per task; the rest are counted.
MAX_LISTED = 50


@data_app.command(
    "check",
    epilog="Examples: `avbench data check ave --data-root ~/data/av` · "
    "`avbench data check music_avqa --data-root ~/data/av --task-option music_avqa.version=original` · "
    "`avbench data check all --data-root ~/data/av --decode`",
)
def check_command(
    tasks: str = typer.Argument(..., help="Task(s) to check: a name, a comma-separated list or a group (see `avbench tasks`)."),
    data_root: Path = typer.Option(..., help="Folder holding the data sets (docs/data-layout.md)."),
    split: Optional[list[str]] = typer.Option(None, "--split", help="Split(s) to load and count; default: all of the task's. Repeatable."),
    media_split: Optional[str] = typer.Option(None, help="Split whose media files are checked; default: the task's test split."),
    decode: bool = typer.Option(False, help="Decode every media file fully (slow) instead of opening its header."),
    no_media: bool = typer.Option(False, "--no-media", help="Check annotations only."),
    workers: int = typer.Option(4, min=1, help="Threads probing or decoding media files."),
    task_option: list[str] = typer.Option([], "--task-option", help="Task option, e.g. music_avqa.version=original. Repeatable."),
    strict: bool = typer.Option(False, help="Also exit non-zero on an unknown data version or a count that differs from the official one."),
) -> None:
    """Validate a data set copy: load every split (malformed lines name file and line), count samples against
    the official counts, identify the annotation version, and list missing or undecodable media files.
    Exits 1 when something is broken (with --strict also on warnings), 2 on a usage error."""
    from .cli import _parse_task_options

    if not data_root.is_dir():
        err_console.print(f"[bold red]error:[/] data root {escape(str(data_root))} does not exist", highlight=False)
        raise typer.Exit(2)
    try:
        options = _parse_task_options(task_option)
        names = expand_tasks(tasks)
        reports = []
        for name in names:
            task = get_task(name, **options.get(name, {}))
            with err_console.status(f"checking {name}"):
                reports.append(check_task(task, data_root, splits=split or None, media_split=media_split, decode=decode,
                                          spec=MediaSpec(), workers=workers, check_media=not no_media))
    except AVBenchError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    broken = False
    warned = False
    for report in reports:
        _print_report(report)
        broken |= report.broken
        warned |= bool(report.warnings())
    if broken or (strict and warned):
        raise typer.Exit(1)


def _print_report(report: CheckReport) -> None:
    table = Table(title=f"{report.task} in {report.data_root}", title_justify="left")
    for column in ("split", "samples", "official", "version", "annotation hash", "status"):
        # the version name and hash are what a user copies into a report: never cut
        table.add_column(column, justify="right" if column in ("samples", "official") else "left",
                         no_wrap=column in ("version", "annotation hash"), min_width=len(column) if column == "split" else None)
    for s in report.splits:
        official = " / ".join(str(n) for n in s.official.values()) or "-"
        if s.error:
            table.add_row(s.split, "-", official, "-", "-", "[red]cannot load[/]")
            continue
        if s.absent:
            table.add_row(s.split, "-", official, "-", "-", "[yellow]absent[/]")
            continue
        version = s.version
        status = "[green]ok[/]"
        if version is not None and not version.known:
            status = "[bold yellow]UNKNOWN VERSION[/]"
        if s.count_matches is False:
            status += " [yellow](count differs)[/]"
        table.add_row(s.split, str(s.n_samples), official, escape(version.name if version else "-"),
                      escape(str(version.hash) if version else "-"), status)
    console.print(table)
    for s in report.splits:
        if s.error:
            console.print(f"[red]{report.task}/{s.split}: {escape(s.error)}[/]", highlight=False, soft_wrap=True)
    for warning in report.warnings():
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if report.media_split is None:
        return
    head = (f"media of {report.task}/{report.media_split}: {report.n_media_files} files of "
            f"{report.n_media_samples} samples, ")
    if not report.problems:
        console.print(head + "[green]all readable[/]", highlight=False)
        return
    console.print(head + f"[red]{len(report.problems)} missing or undecodable[/]:", highlight=False)
    for problem in report.problems[:MAX_LISTED]:
        console.print(f"  {escape(problem.path)}: {escape(problem.reason)} (sample {escape(problem.sample_id)})",
                      highlight=False, soft_wrap=True)
    if len(report.problems) > MAX_LISTED:
        console.print(f"  ... and {len(report.problems) - MAX_LISTED} more", highlight=False)
