"""Leaderboard JSON (validated schema, leaderboard/SCHEMA.md), merging results files into it, and its views.

`store` reads, writes and merges; `schema` validates; `markdown`, `html` and `terminal` render the
same numbers (formatted once, in `table`) for a paper, a static web page and the terminal.
"""

from .html import render_html
from .markdown import render_markdown
from .schema import SCHEMA_VERSION, LeaderboardError, validate
from .store import DEFAULT_PATH, AddOutcome, ResultsFile, add_results, load, new_leaderboard, read_results, save

__all__ = [
    "DEFAULT_PATH", "SCHEMA_VERSION", "AddOutcome", "LeaderboardError", "ResultsFile", "add_results", "load",
    "new_leaderboard", "read_results", "render_html", "render_markdown", "save", "validate",
]
