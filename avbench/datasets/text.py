"""Text annotation files that are not valid text: loaders read them as text streams, and a decoding
failure there names neither the file nor the line (the codec only knows an offset into its buffer)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from avbench.errors import DataError


def checked_lines(lines: Iterable[str], path: str | Path, encoding: str) -> Iterator[str]:
    """The lines of an open text file, passed through; a decoding failure becomes `undecodable(path)`.

    Wraps the file handle given to a loop or to `csv.reader`, so loaders keep reading line by line.
    """
    try:
        yield from lines
    except UnicodeDecodeError:
        raise undecodable(path, encoding) from None


def undecodable(path: str | Path, encoding: str) -> DataError:
    """The error for a file that is not `encoding` text, naming the file and the line of the first bad byte.

    The bytes are decoded once more here because the stream's error gives an offset into its internal
    chunk, not into the file.
    """
    data = Path(path).read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return DataError(f"not {encoding} text ({exc.reason} at byte {exc.start}); save it as UTF-8", path, line)
    return DataError(f"not {encoding} text; save it as UTF-8", path)
