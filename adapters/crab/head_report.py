"""The head analysis as tables (terminal and markdown) and a heatmap: presentation only; the numbers
come from `head_analysis` (router_weights.json, head_ablation.json)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from avbench.plots import heatmap
from avbench.registry import task_class
from avbench.results import format_interval, format_value

Table = tuple[list[str], list[list[str]]]  # header, rows


def _weight(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def head_names(n_heads: int) -> list[str]:
    """h0, h1, ...: numbered from 0 as the official checkpoints' `lora_B0`, `lora_B1`, ..."""
    return [f"h{i}" for i in range(n_heads)]


def router_task_table(router: dict[str, Any], kind: str = "answer") -> Table:
    """Per task (then per family, then over all tasks): mean router weight per head over `kind` positions."""
    heads = head_names(router["n_heads"])
    rows = []
    for name, entry in router["tasks"].items():
        rows.append([name, entry["family"], str(entry["n_positions"][kind]), *map(_weight, entry[kind]["mean"])])
    for family, entry in router["families"].items():
        if kind in entry:
            rows.append([f"{family} (family)", family, "", *map(_weight, entry[kind]["mean"])])
    if kind in router["all"]:
        rows.append(["all tasks", "", "", *map(_weight, router["all"][kind]["mean"])])
    return ["task", "family", f"{kind} positions", *heads], rows


def router_matrix(router: dict[str, Any], kind: str = "answer") -> tuple[list[list[float]], list[str], list[str]]:
    """The heatmap's numbers: rows = transformer layers and their mean, columns = family x head."""
    heads = head_names(router["n_heads"])
    families = [f for f, entry in router["families"].items() if kind in entry]
    rows = [*router["layers"], "all layers"]
    matrix = []
    for r in range(len(rows)):
        row: list[float] = []
        for family in families:
            summary = router["families"][family][kind]
            row.extend(summary["per_layer"][r] if r < len(router["layers"]) else summary["mean"])
        matrix.append(row)
    return matrix, rows, [f"{family} {h}" for family in families for h in heads]


def router_layer_table(router: dict[str, Any], kind: str = "answer") -> Table:
    matrix, rows, columns = router_matrix(router, kind)
    return ["layer", *columns], [[label, *map(_weight, values)] for label, values in zip(rows, matrix)]


def write_router_heatmap(path: Path, router: dict[str, Any], checkpoint_label: str) -> None:
    matrix, rows, columns = router_matrix(router, "answer")
    heatmap(path, matrix, rows, columns, f"I-LoRA mean router weight per head, answer tokens · {checkpoint_label}",
            "{:.2f}")


def _delta_cell(entry: dict[str, Any], fraction: bool) -> str:
    """`-3.20 [-5.10, -1.00]`: the delta with its sign (as `avbench compare`), and its interval if any."""
    if entry.get("delta") is None:
        return "n/a"
    text = format_value(entry["delta"], fraction)
    text = text if text.startswith("-") else "+" + text
    interval = format_interval([entry["low"], entry["high"]], fraction) if entry.get("low") is not None else ""
    return f"{text} {interval}".strip()


def ablation_table(ablation: dict[str, Any]) -> Table:
    """Per task: primary metric with all heads on, and its change with each head off; then family means."""
    runs = ablation["ablations"]
    header = ["task", "metric", "all heads", *(f"h{run['head']} off Δ" for run in runs)]
    rows = []
    for name, base in ablation["all_heads"].items():
        fraction = base["metric"] in task_class(name).fraction_metrics
        metric = base["metric"] + (" ↓" if base["lower_is_better"] else "")
        rows.append([name, metric, format_value(base["value"], fraction),
                     *(_delta_cell(run["tasks"][name], fraction) if name in run["tasks"] else "n/a" for run in runs)])
    families = list(dict.fromkeys(f for run in runs for f in run["families"]))
    for family in families:
        cells = [_delta_cell(run["families"].get(family, {}), fraction=False) for run in runs]
        rows.append([f"{family} (family)", "mean Δ", "", *cells])
    return header, rows


def _markdown(table: Table) -> list[str]:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def markdown_report(router: dict[str, Any], ablation: dict[str, Any] | None, describe: dict[str, Any],
                    settings: str) -> str:
    """heads.md: every table of the analysis, ready to paste, with what each one measures."""
    lines = [f"# I-LoRA head analysis: {describe.get('config', 'crab')}", "",
             f"Checkpoint `{describe.get('checkpoint')}` (hash {describe.get('checkpoint_hash')}); {settings}.", "",
             "## Router weights", "",
             f"Mean softmax weight of each head, over the answer positions ({router['tokens']['answer']}); "
             "per task, per family (mean of its tasks) and over all tasks. With all heads equal it would be "
             f"{1 / router['n_heads']:.3f} everywhere.", ""]
    lines += _markdown(router_task_table(router, "answer"))
    lines += ["", "Per transformer layer (mean of its I-LoRA modules) and family, answer positions "
              "(router_heatmap.png shows the same numbers):", ""]
    lines += _markdown(router_layer_table(router, "answer"))
    lines += ["", f"Over the prompt positions ({router['tokens']['prompt']}):", ""]
    lines += _markdown(router_task_table(router, "prompt"))
    if ablation is not None:
        boot = ablation.get("bootstrap")
        how = (f"in brackets the {100 * boot['level']:g} % paired-bootstrap interval ({boot['n_resamples']} resamples "
               "of the samples)" if boot else "without intervals (--bootstrap 0)")
        lines += ["", "## Head ablation", "",
                  "Each task's primary metric with all heads on, and its change (Δ = head off − all heads) when head i "
                  f"is switched off in every layer (its term removed, the others not renormalised); {how}. "
                  "Family rows: mean of the tasks' Δ. ↓: lower is better.", ""]
        lines += _markdown(ablation_table(ablation))
    return "\n".join(lines) + "\n"
