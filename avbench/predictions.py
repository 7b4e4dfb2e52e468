"""The per-sample predictions file: JSONL, one sample per line, append-only so a killed run loses nothing.

A line (all keys written by `avbench run`; `avbench score` needs only `id` and one of `parsed` /
`raw_output`):

    {"id": "...", "task": "ave", "split": "test",
     "target_hash": "...", "prompt_hash": "...",      # match two runs sample by sample
     "raw_output": "model text",                      # what the model generated
     "raw_masks": [<map>, ...],                       # only when masks were output but could not be parsed
     "parsed": {...} | null,                          # structured prediction (masks as COCO RLE, see masks.py)
     "parse_status": "ok" | "failed", "parse_error": null | "reason",
     "score": {"accuracy": 100.0, ...}}               # the sample's own numbers
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PredictionFormatError


@dataclass
class PredictionRecord:
    """One line of a predictions file, with the 1-based line number it came from."""

    data: dict[str, Any]
    line: int

    @property
    def id(self) -> str:
        return self.data["id"]


def _check_line(data: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PredictionFormatError("each line must be a JSON object", path, line)
    if not isinstance(data.get("id"), str) or not data["id"]:
        raise PredictionFormatError("missing or non-string 'id'", path, line)
    if "raw_output" in data and not isinstance(data["raw_output"], str):
        raise PredictionFormatError("'raw_output' must be a string", path, line)
    if "raw_masks" in data and not isinstance(data["raw_masks"], list):
        raise PredictionFormatError("'raw_masks' must be a list of maps", path, line)
    return data


def read_predictions(path: str | Path, *, tolerate_torn_tail: bool = False) -> list[PredictionRecord]:
    """Read and validate every line; duplicate ids are an error naming both lines.

    With `tolerate_torn_tail`, a last line without its newline (a run killed while writing) is
    dropped instead of reported: it was never completely written.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictionFormatError("predictions file not found", path)
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    if tolerate_torn_tail and lines and lines[-1]:
        lines = lines[:-1]
    records: list[PredictionRecord] = []
    seen: dict[str, int] = {}
    for number, blob in enumerate(lines, start=1):
        if not blob.strip():
            continue
        try:
            data = json.loads(blob)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PredictionFormatError(f"not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})", path, number) from None
        data = _check_line(data, path, number)
        if data["id"] in seen:
            raise PredictionFormatError(f"duplicate id {data['id']!r} (first on line {seen[data['id']]})", path, number)
        seen[data["id"]] = number
        records.append(PredictionRecord(data, number))
    return records


class PredictionWriter:
    """Appends lines and makes them durable batch by batch (flush + fsync)."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()
        self._handle = path.open("a", encoding="utf-8")

    def _repair_torn_tail(self) -> None:
        """Cut a partial last line left by a killed run, so the next append starts on a fresh line."""
        if not self.path.exists():
            return
        with self.path.open("rb+") as handle:
            content = handle.read()
            if content and not content.endswith(b"\n"):
                handle.truncate(content.rfind(b"\n") + 1)

    def write(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self._handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "PredictionWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

