"""Typed errors. Each carries the file, line or sample that caused it, so a message says what to fix."""

from __future__ import annotations

import json
from pathlib import Path


class AVBenchError(Exception):
    """Base class for every error avbench raises on purpose; the CLI prints it in one line and exits 2."""


class UnknownNameError(AVBenchError):
    """A task, group or model name that is not registered."""

    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(self.valid)}")


class ModelUnavailableError(AVBenchError):
    """A model that is known by name but cannot be run in this installation."""


class DataError(AVBenchError):
    """Missing or malformed data: names the file and, where it applies, the 1-based line."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path, self.line = (str(path) if path is not None else None), line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class PredictionFormatError(DataError):
    """A predictions file line that cannot be read (not JSON, no id, wrong field types)."""


class ParseError(AVBenchError):
    """A model output from which no structured prediction can be recovered.

    Raised by `Task.parse`; the runner catches it, records the reason and scores the sample as a failure.
    """


def read_json(path: str | Path, encoding: str = "utf-8") -> object:
    """A JSON file's content; malformed JSON or text is a `DataError` naming the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        return json.loads(path.read_text(encoding=encoding))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        line = getattr(exc, "lineno", None)
        reason = f"{exc.msg} (column {exc.colno})" if line is not None else f"not {encoding} text ({getattr(exc, 'reason', exc)})"
        raise DataError(f"not valid JSON: {reason}", path, line) from None
