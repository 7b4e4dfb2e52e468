"""The rendered page in a real headless Chromium: table rows, sorting, a `<script>` model name shown as text.

Needs the `playwright` Python package and a Chromium binary (Debian's `chromium`, which .ci/run installs;
playwright's own browser download is not used). Skips with the reason when either is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from avbench.leaderboard import render_html

from leaderboard_fixtures import EVIL, PIPE, example_leaderboard

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")


def _chromium() -> str:
    for candidate in (os.environ.get("AVBENCH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    pytest.skip("no Chromium binary found (apt-get install chromium, or set AVBENCH_CHROMIUM)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    with playwright_api.sync_playwright() as p:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start
        instance = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture()
def page(browser: Any, tmp_path: Path, empty_leaderboard: dict, write_results: Callable[..., Path]) -> Iterator[Any]:
    document = example_leaderboard(empty_leaderboard, write_results)
    site = tmp_path / "index.html"
    site.write_text(render_html(document), encoding="utf-8")
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    tab = context.new_page()
    tab.dialogs = []  # an alert() would land here
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.goto(site.as_uri())
    yield tab
    assert requests == [site.as_uri()], "the page fetched something besides itself"
    context.close()


def _names(tab: Any, table: str) -> list[str]:
    return tab.eval_on_selector_all(f"#{table} tbody tr", "rows => rows.map(r => r.cells[0].textContent)")


def test_rows_sorting_and_escaping_in_a_real_browser(page: Any, tmp_path: Path) -> None:
    assert _names(page, "overview") == [EVIL, PIPE, "prior", "Crab"]
    # a hostile name is text: no alert ran, no element was injected, the only script is the page's own
    assert page.dialogs == []
    assert page.eval_on_selector_all("script", "s => s.length") == 1
    assert page.eval_on_selector_all("img", "s => s.length") == 0
    assert page.get_by_text(EVIL, exact=True).first.is_visible()

    ave = page.locator("#overview thead th").nth(4)  # model, params, provenance, data, then ave
    assert ave.inner_text().startswith("ave")
    ave.locator("button").click()  # numbers: best first
    assert _names(page, "overview") == ["Crab", EVIL, "prior", PIPE]  # 80.15, 62.5, 55, 12
    assert ave.get_attribute("aria-sort") == "descending"
    ave.locator("button").click()
    assert _names(page, "overview") == [PIPE, "prior", EVIL, "Crab"]
    assert ave.get_attribute("aria-sort") == "ascending"

    s4 = page.locator("#overview thead th").nth(6)
    s4.locator("button").click()  # only one entry has s4: it leads, the rest keep their order below
    assert _names(page, "overview") == [EVIL, PIPE, "prior", "Crab"]
    assert ave.get_attribute("aria-sort") is None

    page.locator("#overview thead th").nth(0).locator("button").click()  # text: A to Z, case-insensitive
    assert _names(page, "overview") == [EVIL, PIPE, "Crab", "prior"]

    # the per-task table sorts on its own; one bar per entry holding the task's primary metric
    assert _names(page, "table-arig") == ["prior", "Crab"]
    assert page.locator("#task-ave svg rect.bar").count() == 4
    shot = page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
