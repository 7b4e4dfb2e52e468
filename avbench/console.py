"""The terminal consoles every command prints through (one place for their width rules)."""

from __future__ import annotations

import os
import sys

from typing import NoReturn

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
