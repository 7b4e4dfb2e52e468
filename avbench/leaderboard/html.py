"""The leaderboard as one self-contained static HTML page: sortable tables and a bar chart per task.

No network: the stylesheet and the sorting script are inline (avbench.leaderboard.site), the charts
are inline SVG, and the page's Content-Security-Policy forbids every fetch. Every string that came
from a file is escaped with `html.escape` (text and attributes alike), and a citation URL becomes a
link only when it is http(s), so a model named `<script>…</script>` renders as text.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any

from .site import SCRIPT, STYLE
from .table import (
    LEGEND, Cell, cell, count_text, data_label, metric_label, provenance_label, source_label, task_heading, task_names,
    task_notes,
)

_CHART_WIDTH, _LABEL_WIDTH, _ROW_HEIGHT, _VALUE_WIDTH = 720, 220, 22, 70
_MAX_LABEL = 30


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _th(label: str, *, numeric: bool, lower_better: bool = False, sub: str = "") -> str:
    attributes = ' class="num" data-type="number"' if numeric else ' data-type="text"'
    if lower_better:
        attributes += ' data-lower-better="1"'
    second = f'<br><span class="sub">{_e(sub)}</span>' if sub else ""
    return f'<th scope="col"{attributes}><button type="button">{_e(label)}{second}</button></th>'


def _value_td(c: Cell, with_interval: bool = False) -> str:
    value = "" if c.value is None else repr(c.value)
    interval = f' <span class="ci">{_e(c.interval_text)}</span>' if with_interval and c.interval_text else ""
    return f'<td class="num" data-value="{_e(value)}">{_e(c.marked)}{interval}</td>'


def _text_td(text: str) -> str:
    return f'<td data-value="{_e(text)}">{_e(text)}</td>'


def _row(entry: dict[str, Any], order: int, cells: list[str]) -> str:
    kind = provenance_label(entry)
    return f'<tr class="{_e(kind)}" data-order="{order}">' + "".join(cells) + "</tr>"


def _overview(document: dict[str, Any]) -> str:
    tasks = task_names(document)
    head = [_th("model", numeric=False), _th("params", numeric=False), _th("provenance", numeric=False), _th("data", numeric=False)]
    for t in tasks:
        spec = document["tasks"][t]
        primary = spec["primary_metric"]
        head.append(_th(t, numeric=True, lower_better=primary in spec["lower_is_better"], sub=metric_label(document, t, primary)))
    rows = []
    for i, entry in enumerate(document["entries"]):
        cells = [_text_td(entry["model"]["name"]), _text_td(entry["model"]["parameters"] or "n/a"),
                 _text_td(provenance_label(entry)), _text_td(data_label(entry))]
        cells += [_value_td(cell(document, entry, t, document["tasks"][t]["primary_metric"])) for t in tasks]
        rows.append(_row(entry, i, cells))
    return (
        '<div class="scroll"><table class="sortable" id="overview"><thead><tr>' + "".join(head)
        + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )


def _bars(document: dict[str, Any], task: str, holders: list[dict[str, Any]]) -> str:
    """Horizontal bars of the task's primary metric, one per entry, with the interval as a whisker."""
    spec = document["tasks"][task]
    metric = spec["primary_metric"]
    top = 1.0 if metric in spec["fraction_metrics"] else 100.0
    shown = [(e, cell(document, e, task, metric)) for e in holders]
    shown = [(e, c) for e, c in shown if c.value is not None]
    if not shown:
        return ""
    plot = _CHART_WIDTH - _LABEL_WIDTH - _VALUE_WIDTH
    height = _ROW_HEIGHT * len(shown) + 8

    def x(value: float) -> float:
        return _LABEL_WIDTH + plot * min(max(value / top, 0.0), 1.0)

    parts = [
        f'<svg class="bars" role="img" width="{_CHART_WIDTH}" height="{height}" viewBox="0 0 {_CHART_WIDTH} {height}">',
        f'<title>{_e(f"{task}: {metric_label(document, task, metric)} per entry")}</title>',
        f'<line class="axis" x1="{_LABEL_WIDTH}" y1="0" x2="{_LABEL_WIDTH}" y2="{height}"/>',
    ]
    for row, (entry, c) in enumerate(shown):
        y = row * _ROW_HEIGHT + 4
        name = entry["model"]["name"]
        label = name if len(name) <= _MAX_LABEL else name[: _MAX_LABEL - 1] + "…"
        kind = provenance_label(entry)
        width = x(c.value) - _LABEL_WIDTH  # type: ignore[arg-type]
        parts.append(f'<g class="{_e(kind)}"><title>{_e(f"{name} ({kind}): {c.marked}")}</title>')
        parts.append(f'<text x="{_LABEL_WIDTH - 6}" y="{y + 14}" text-anchor="end">{_e(label)}</text>')
        parts.append(f'<rect class="bar {_e(kind)}" x="{_LABEL_WIDTH}" y="{y + 3}" width="{width:.1f}" height="{_ROW_HEIGHT - 8}"/>')
        held = entry["tasks"][task]["metrics"][metric]["interval"]
        if held is not None:
            lo, hi, mid = x(held[0]), x(held[1]), y + _ROW_HEIGHT / 2 - 1
            parts.append(f'<path class="ci" d="M{lo:.1f} {mid - 4:.1f}v8M{lo:.1f} {mid:.1f}H{hi:.1f}M{hi:.1f} {mid - 4:.1f}v8"/>')
        parts.append(f'<text x="{_CHART_WIDTH - _VALUE_WIDTH + 6}" y="{y + 14}">{_e(c.marked)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _task_section(document: dict[str, Any], task: str) -> str:
    spec = document["tasks"][task]
    holders = [e for e in document["entries"] if task in e["tasks"]]
    if not holders:
        return ""
    head = [_th("model", numeric=False), _th("provenance", numeric=False)]
    head += [_th(metric_label(document, task, m), numeric=True, lower_better=m in spec["lower_is_better"]) for m in spec["metrics"]]
    head += [_th("samples", numeric=True), _th("parse failures", numeric=True, lower_better=True)]
    rows = []
    for i, entry in enumerate(holders):
        held = entry["tasks"][task]
        cells = [_text_td(entry["model"]["name"]), _text_td(provenance_label(entry))]
        cells += [_value_td(cell(document, entry, task, m), with_interval=True) for m in spec["metrics"]]
        for count in (held["n_samples"], held["n_parse_failures"]):
            cells.append(f'<td class="num" data-value="{"" if count is None else count}">{_e(count_text(count))}</td>')
        rows.append(_row(entry, i, cells))
    notes = "".join(f"<li>{_e(name)}: {_e(note)}</li>" for name, note in task_notes(document, task))
    chart_caption = f"{metric_label(document, task, spec['primary_metric'])}, best {'low' if spec['primary_metric'] in spec['lower_is_better'] else 'high'}"
    return (
        f'<section class="task" id="task-{_e(task)}"><h2>{_e(task_heading(document, task))}</h2>'
        f'<p class="legend">{_e(chart_caption)}</p>' + _bars(document, task, holders)
        + f'<div class="scroll"><table class="sortable" id="table-{_e(task)}"><thead><tr>' + "".join(head)
        + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</section>"
    )


def _source_item(entry: dict[str, Any]) -> str:
    url = entry["provenance"].get("url") or ""
    link = f' <a href="{_e(url)}">{_e(url)}</a>' if url.startswith(("https://", "http://")) else ""
    text = source_label({**entry, "provenance": {**entry["provenance"], "url": None}})
    return (f"<li><strong>{_e(entry['model']['name'])}</strong> ({_e(provenance_label(entry))}, {_e(entry['date'])}): "
            f"{_e(text)}{link}</li>")


def render_html(document: dict[str, Any], title: str = "avbench leaderboard") -> str:
    """The whole leaderboard as one HTML page; deterministic for a given document."""
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:"
    if document["entries"]:
        body = _overview(document) + "".join(_task_section(document, t) for t in task_names(document))
        body += '<section id="sources"><h2>Sources</h2><ul class="sources">'
        body += "".join(_source_item(e) for e in document["entries"]) + "</ul></section>"
    else:
        body = "<p>No entries yet: add one with <code>avbench leaderboard add RESULTS.json</code>.</p>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n"
        f'<body><h1>{_e(title)}</h1><p class="legend">{_e(LEGEND)}</p>\n{body}\n'
        f"<script>{SCRIPT}</script></body></html>\n"
    )
