"""The leaderboard as a rich table for the terminal (`avbench leaderboard show`)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from .table import LEGEND, cell, count_text, data_label, metric_label, provenance_label, task_heading, task_names


def overview_table(document: dict[str, Any]) -> Table:
    """One row per entry, the primary metric of each task; strings from the file are escaped for rich markup."""
    table = Table(title="avbench leaderboard", caption=escape(LEGEND), title_justify="left", caption_justify="left")
    for column in ("model", "params", "provenance", "data"):
        table.add_column(column)
    tasks = task_names(document)
    for t in tasks:
        table.add_column(escape(f"{t}\n{metric_label(document, t, document['tasks'][t]['primary_metric'])}"), justify="right")
    for entry in document["entries"]:
        row = [entry["model"]["name"], entry["model"]["parameters"] or "n/a", provenance_label(entry), data_label(entry)]
        row += [cell(document, entry, t, document["tasks"][t]["primary_metric"]).marked for t in tasks]
        table.add_row(*(escape(text) for text in row), style="dim" if provenance_label(entry) == "reported" else None)
    return table


def task_table(document: dict[str, Any], task: str) -> Table:
    """Every shown metric of one task with its interval, sample count and parse failures."""
    spec = document["tasks"][task]
    table = Table(title=escape(task_heading(document, task)), title_justify="left")
    table.add_column("model")
    table.add_column("provenance")
    for m in spec["metrics"]:
        table.add_column(escape(metric_label(document, task, m)), justify="right")
    table.add_column("samples", justify="right")
    table.add_column("parse failures", justify="right")
    for entry in document["entries"]:
        held = entry["tasks"].get(task)
        if held is None:
            continue
        row = [entry["model"]["name"], provenance_label(entry)]
        for m in spec["metrics"]:
            c = cell(document, entry, task, m)
            row.append(c.marked + (f" {c.interval_text}" if c.interval_text else ""))
        row += [count_text(held["n_samples"]), count_text(held["n_parse_failures"])]
        table.add_row(*(escape(text) for text in row))
    return table
