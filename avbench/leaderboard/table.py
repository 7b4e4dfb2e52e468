"""What every view of a leaderboard shows (terminal table, markdown, HTML), as plain strings and numbers.

The views only lay these out and escape them for their medium; no view formats a number itself, so
the terminal, the markdown and the web page always print the same digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..results import format_interval, format_value

REPORTED_MARK = "*"
VARIANT_MARK = "†"
LEGEND = (
    f"Values marked {REPORTED_MARK} are reported: copied from the cited paper, not measured by avbench. "
    f"{VARIANT_MARK}: computed with another task version or metric variant than the leaderboard's (see the task tables). "
    "Percent unless the metric is a fraction; ↓ = lower is better. Intervals are 95 % bootstrap intervals where measured."
)


@dataclass(frozen=True)
class Cell:
    """One metric of one entry: the printed text and the numbers behind it (None where absent)."""

    text: str
    value: float | None
    interval: tuple[float, float] | None
    reported: bool
    other_variant: bool
    #: The interval as the tables print it ("" when there is none).
    interval_text: str = ""

    @property
    def marked(self) -> str:
        """The text with its marks (reported, other variant), as the tables print it."""
        if self.value is None:
            return self.text
        return self.text + (REPORTED_MARK if self.reported else "") + (VARIANT_MARK if self.other_variant else "")


def task_names(document: dict[str, Any]) -> list[str]:
    return list(document["tasks"])


def metric_label(document: dict[str, Any], task: str, metric: str) -> str:
    spec = document["tasks"][task]
    return metric + (" ↓" if metric in spec["lower_is_better"] else "") + (" (fraction)" if metric in spec["fraction_metrics"] else "")


def _other_variant(document: dict[str, Any], task: str, held: dict[str, Any]) -> bool:
    spec = document["tasks"][task]
    # a reported row that does not say how the paper computed the number (null) is not flagged: the legend covers it
    return any(held[k] is not None and held[k] != spec[k] for k in ("version", "variants"))


def cell(document: dict[str, Any], entry: dict[str, Any], task: str, metric: str) -> Cell:
    fraction = metric in document["tasks"][task]["fraction_metrics"]
    reported = entry["provenance"]["kind"] == "reported"
    held = entry["tasks"].get(task)
    if held is None or metric not in held["metrics"]:
        return Cell("–", None, None, reported, False)
    value = held["metrics"][metric]["value"]
    interval = held["metrics"][metric]["interval"]
    return Cell(format_value(value, fraction), value, None if interval is None else tuple(interval), reported,
                _other_variant(document, task, held), format_interval(interval, fraction))


def provenance_label(entry: dict[str, Any]) -> str:
    return entry["provenance"]["kind"]


def data_label(entry: dict[str, Any]) -> str:
    data = entry["data"]
    if data["source"] == "synthav":
        s = data["synthav"]
        return f"SynthAV {s['size']} (seed {s['seed']}, v{s['version']})"
    return {"official": "official test sets", "data_root": "official data (--data-root)"}[data["source"]]


def source_label(entry: dict[str, Any]) -> str:
    """Where the numbers come from, in one line: the citation, or the results files avbench measured them from."""
    provenance = entry["provenance"]
    if provenance["kind"] == "reported":
        text = provenance["citation"]
        if provenance.get("url"):
            text += f" <{provenance['url']}>"
    else:
        files = ", ".join(
            f"results {s['sha256'][:12]} (avbench {s['avbench_version']}, {s['created']}"
            + (f", git {s['git_revision'][:10]}" if s.get("git_revision") else "") + ")"
            for s in provenance["results"]
        )
        text = f"measured by avbench from {files}"
    if provenance.get("note"):
        text += f". {provenance['note']}"
    return text


def task_heading(document: dict[str, Any], task: str) -> str:
    spec = document["tasks"][task]
    variants = ", ".join(f"{k}={v}" for k, v in spec["variants"].items() if k != "definition")
    return f"{task} ({spec['split']} split, task version {spec['version']}" + (f", {variants}" if variants else "") + ")"


def task_notes(document: dict[str, Any], task: str) -> list[tuple[str, str]]:
    """(model name, note) for every entry whose numbers on `task` carry a note (e.g. how the paper computed them)."""
    return [(e["model"]["name"], e["tasks"][task]["note"]) for e in document["entries"]
            if task in e["tasks"] and e["tasks"][task].get("note")]


def count_text(value: int | None) -> str:
    return "n/a" if value is None else str(value)
