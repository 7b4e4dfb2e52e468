"""Rendering: the markdown snapshot, escaping in markdown, HTML and the terminal, and the committed site files.

To accept an intended change of the markdown layout: AVBENCH_UPDATE_SNAPSHOTS=1 pytest tests/leaderboard/test_leaderboard_render.py
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable

import pytest
from rich.console import Console

from avbench.leaderboard import load, render_html, render_markdown
from avbench.leaderboard.site import SCRIPT
from avbench.leaderboard.terminal import overview_table

from leaderboard_fixtures import EVIL, PIPE, REPO, SHIPPED, example_leaderboard

SNAPSHOT = REPO / "tests" / "snapshots" / "leaderboard.md"


@pytest.fixture()
def example(empty_leaderboard: dict, write_results: Callable[..., Path]) -> dict[str, Any]:
    return example_leaderboard(empty_leaderboard, write_results)


def test_markdown_matches_the_snapshot(example: dict) -> None:
    text = render_markdown(example)
    if os.environ.get("AVBENCH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()


def test_markdown_rows_hold_the_numbers_and_escape_every_string(example: dict) -> None:
    text = render_markdown(example)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| model | params |"))
    assert header == "| model | params | provenance | data | ave accuracy | arig ciou | s4 miou | ref\\_avs j\\_seen |"
    prior = next(line for line in lines if line.startswith("| prior | n/a | measured"))
    assert prior == "| prior | n/a | measured | SynthAV small (seed 0, v1) | 55.00 | 0.00 | – | – |"
    crab = next(line for line in lines if line.startswith("| Crab | 7B"))
    assert crab == "| Crab | 7B | reported | official test sets | 80.15\\* | 41.78\\* | – | 40.54\\*† |"
    # the task table: value with its interval, fraction metrics with 3 decimals, counts
    assert "| prior | measured | 0.00 \\[0.00, 0.00\\] | 0.036 \\[0.020, 0.050\\] | 20 | 0 |" in lines
    assert "<script>" not in text and "\\<script\\>alert(1)\\</script\\>" in text
    pipe_row = next(line for line in lines if "onerror" in line)
    assert pipe_row.startswith("| a\\|b \\*c\\* \\[x\\](y) \\& \\<img src=z onerror=alert(2)\\> | n/a | measured |")
    assert pipe_row.count(" | ") == header.count(" | ")  # the escaped '|' did not add a column


def test_html_escapes_every_string_and_allows_only_its_own_script(example: dict) -> None:
    page = render_html(example)
    assert EVIL not in page and "onerror=alert(2)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 1 and "<img" not in page
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page).group(1)  # type: ignore[union-attr]
    assert csp == f"default-src &#x27;none&#x27;; style-src &#x27;unsafe-inline&#x27;; script-src &#x27;sha256-{digest}&#x27;; img-src data:"
    tags = _tags(page)
    assert [t for t, _ in tags].count("script") == 1 and "img" not in {t for t, _ in tags}
    attributes = {name for _, attrs in tags for name, _ in attrs}
    assert not {a for a in attributes if a.startswith("on")} and not attributes & {"src", "srcset"}  # nothing runs or is fetched
    assert [value for _, attrs in tags for name, value in attrs if name == "href"] == ["https://arxiv.org/abs/2503.13068"]
    cell = next(attrs for tag, attrs in tags if tag == "td" and dict(attrs).get("data-value", "").startswith("a|b"))
    assert dict(cell)["data-value"] == PIPE  # the attribute holds the name itself, after unescaping


def _tags(page: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every start tag of the page with its attributes, as a browser's tokenizer sees them."""
    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    Collector().feed(page)
    return found


def test_html_bars_are_proportional_to_the_values(example: dict) -> None:
    page = render_html(example)
    section = page[page.index('id="task-ave"'):page.index('id="task-arig"')]
    widths = [float(w) for w in re.findall(r'<rect class="bar [a-z]+" x="220" y="[0-9.]+" width="([0-9.]+)"', section)]
    # rows in entry order; plot width 720 - 220 - 70 = 430 px for 0..100 %:
    # 62.5 -> 268.75, 12 -> 51.6, 55 -> 236.5, Crab 80.15 -> 344.645 (printed with one decimal)
    assert widths == [pytest.approx(w, abs=0.051) for w in (268.75, 51.6, 236.5, 344.645)]
    assert '<path class="ci" d="M349.0 ' in section  # the interval of prior: 30 % -> 220 + 129 = 349


def test_a_citation_url_is_a_link_only_when_it_is_http(example: dict) -> None:
    crab = next(e for e in example["entries"] if e["model"]["name"] == "Crab")
    assert '<a href="https://arxiv.org/abs/2503.13068">' in render_html(example)
    crab["provenance"]["url"] = "javascript:alert(3)"
    page = render_html(example)
    assert 'href="javascript' not in page and "javascript:alert(3)" not in page


def test_the_terminal_table_prints_markup_from_a_file_as_text(example: dict) -> None:
    example["entries"][0]["model"]["name"] = "[red]loud[/red]"
    console = Console(record=True, width=250)
    console.print(overview_table(example))
    assert "[red]loud[/red]" in console.export_text()


def test_the_committed_site_is_the_rendering_of_the_committed_leaderboard() -> None:
    """Regenerate with `avbench leaderboard render --format html leaderboard/index.html` (and md leaderboard/LEADERBOARD.md)."""
    document = load(SHIPPED)
    assert (REPO / "leaderboard" / "index.html").read_text() == render_html(document)
    assert (REPO / "leaderboard" / "LEADERBOARD.md").read_text() == render_markdown(document)
