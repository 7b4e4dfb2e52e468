"""The inline stylesheet and script of the leaderboard page (kept apart from the markup that uses them).

Both are inlined into the page, which therefore needs no network: the Content-Security-Policy of the
page allows no fetch at all, and allows exactly this script by its SHA-256 (an injected `<script>`
would not run even if escaping ever failed).
"""

from __future__ import annotations

STYLE = """
:root { --fg: #1d2433; --muted: #5b6475; --line: #d8dde6; --bar: #2f6fde; --bar-reported: #9aa6b8; --bg-head: #f3f5f9; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; }
p.legend { color: var(--muted); max-width: 60rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .6rem; white-space: nowrap; }
th { background: var(--bg-head); text-align: left; vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th button { all: unset; cursor: pointer; }
th button:focus-visible { outline: 2px solid var(--bar); }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
tr.reported td { color: var(--muted); }
th .sub { font-weight: normal; color: var(--muted); font-size: .85em; }
td .ci { color: var(--muted); font-size: .85em; }
svg.bars text { font-size: 12px; fill: var(--fg); }
svg.bars .bar { fill: var(--bar); }
svg.bars .bar.reported { fill: var(--bar-reported); }
svg.bars .ci { stroke: var(--fg); stroke-width: 1.2; }
svg.bars .axis { stroke: var(--line); }
ul.sources li { margin: .2rem 0; }
"""

#: Sorts any `table.sortable` by the clicked column: numbers by `data-value` (best first on the first
#: click, honouring `data-lower-better`), text case-insensitively; rows without a value stay last.
SCRIPT = """
(function () {
  "use strict";
  function keyOf(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.getAttribute("data-value");
    if (numeric) { return raw === null || raw === "" ? null : parseFloat(raw); }
    return (raw === null ? cell.textContent : raw).toLowerCase();
  }
  function sortTable(table, th) {
    var index = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "number";
    var current = th.getAttribute("aria-sort");
    var bestFirst = th.getAttribute("data-lower-better") === "1" ? "ascending" : "descending";
    var direction = current === "ascending" ? "descending" : current === "descending" ? "ascending" : (numeric ? bestFirst : "ascending");
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ka = keyOf(a, index, numeric), kb = keyOf(b, index, numeric);
      if (ka === null || kb === null) {
        if (ka === kb) { return a.getAttribute("data-order") - b.getAttribute("data-order"); }
        return ka === null ? 1 : -1;
      }
      if (ka < kb) { return -sign; }
      if (ka > kb) { return sign; }
      return a.getAttribute("data-order") - b.getAttribute("data-order");
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      var button = th.querySelector("button");
      if (button) { button.addEventListener("click", function () { sortTable(table, th); }); }
    });
  });
})();
"""
