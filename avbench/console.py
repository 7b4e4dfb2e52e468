"""The terminal consoles every command prints through (one place for their width rules)."""

from __future__ import annotations

import os
import sys

from typing import Any, NoReturn

from rich.console import Console

# Rich assumes 80 columns when stdout is not a terminal (CI logs, `| tee`); the result tables need
# about 100 to 130, so piped output gets 140 unless COLUMNS says otherwise.
PIPED_WIDTH = 140

console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH)
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr (as plain text: a message may hold brackets) and exit with `code`."""
    import typer
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class ProgressBars:
    """One rich progress bar per name on stderr; `update(name, done, total)` adds the bar on first use."""

    def __init__(self, label_width: int, disable: bool = False, remaining: bool = True):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        columns = [TextColumn(f"{{task.description:<{label_width}}}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        if remaining:
            columns.append(TimeRemainingColumn())
        self.progress = Progress(*columns, console=err_console, transient=False, disable=disable)
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> "ProgressBars":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, name: str, done: int, total: int) -> None:
        if name not in self._bars:
            self._bars[name] = self.progress.add_task(name, total=total)
        self.progress.update(self._bars[name], completed=done, total=total)
