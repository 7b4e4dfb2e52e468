"""The leaderboard as markdown (GitHub / pandoc pipe tables) that pastes into a paper draft or a README.

Layout: an overview table (the primary metric of each task, one row per entry), then one table per
task with every shown metric, its interval, the sample count and the parse failures, then the sources.
Every string that came from a file is escaped, so a model named `<script>` or `a|b` prints as itself
and cannot break the table or inject HTML (GitHub passes inline HTML through).
"""

from __future__ import annotations

import re
from typing import Any

from .table import (
    LEGEND, cell, count_text, data_label, metric_label, provenance_label, source_label, task_heading, task_names, task_notes,
)

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that mean something
# inside a table cell (emphasis, code, links, inline HTML, entities, strikethrough, the cell separator).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")


def escape(text: str) -> str:
    """`text` as literal markdown table-cell content (one line)."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _table(header: list[str], rows: list[list[str]], numeric_from: int) -> list[str]:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(document: dict[str, Any]) -> str:
    """The whole leaderboard as markdown; deterministic for a given document."""
    tasks = task_names(document)
    entries = document["entries"]
    lines = ["# avbench leaderboard", "", escape(LEGEND), ""]
    if not entries:
        return "\n".join(lines + ["No entries yet: add one with `avbench leaderboard add RESULTS.json`.", ""])
    header = ["model", "params", "provenance", "data"]
    header += [f"{escape(t)} {escape(metric_label(document, t, document['tasks'][t]['primary_metric']))}" for t in tasks]
    rows = []
    for entry in entries:
        row = [escape(entry["model"]["name"]), escape(entry["model"]["parameters"] or "n/a"),
               escape(provenance_label(entry)), escape(data_label(entry))]
        row += [escape(cell(document, entry, t, document["tasks"][t]["primary_metric"]).marked) for t in tasks]
        rows.append(row)
    lines += _table(header, rows, numeric_from=4)
    for t in tasks:
        spec = document["tasks"][t]
        holders = [e for e in entries if t in e["tasks"]]
        if not holders:
            continue
        lines += ["", f"## {escape(task_heading(document, t))}", ""]
        header = ["model", "provenance"] + [escape(metric_label(document, t, m)) for m in spec["metrics"]] + ["samples", "parse failures"]
        rows = []
        for entry in holders:
            row = [escape(entry["model"]["name"]), escape(provenance_label(entry))]
            for m in spec["metrics"]:
                c = cell(document, entry, t, m)
                row.append(escape(c.marked + (f" {c.interval_text}" if c.interval_text else "")))
            held = entry["tasks"][t]
            row += [count_text(held["n_samples"]), count_text(held["n_parse_failures"])]
            rows.append(row)
        lines += _table(header, rows, numeric_from=2)
        notes = task_notes(document, t)
        if notes:
            lines += [""] + [f"- {escape(name)}: {escape(note)}" for name, note in notes]
    lines += ["", "## Sources", ""]
    for entry in entries:
        lines.append(f"- **{escape(entry['model']['name'])}** ({escape(provenance_label(entry))}, {escape(entry['date'])}): "
                     f"{escape(source_label(entry))}")
    return "\n".join(lines) + "\n"
