"""The book's execution-time budget: each page at most 90 s, the whole book at most 20 page-minutes.

The build executes the pages two at a time (``tools/execute.py``), so each page's time is measured
while another page shares the two cores: stricter than the 90 s a reader gets alone. The book's
total is the sum of the pages' times, about twice the wall time of its execution.

The source is the table that the build writes into ``execution_times.html`` (myst-nb's
``{nb-exec-table}``): it lists exactly the notebooks of this build, with the run time of the
execution that produced their outputs (for a chapter taken from the cache, the run that filled the
cache). Where that page was not built, the jupyter-cache database of the build
(``_build/.jupyter_cache/global.db``) is read instead: for each notebook, its newest record.
Skipped when no build exists.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

CHAPTER_LIMIT_S = 90.0
BOOK_LIMIT_S = 1200.0
EXEC_PAGE = "book/execution_times.html"
CHAPTER_DOC = re.compile(r"(^|/)book/\d\d_[^/]+(/[^/]+)?$")


def _from_exec_table(load_page) -> dict[str, dict]:
    page = load_page(EXEC_PAGE)
    tables = [t for t in page.main().find_all("table") if t.find_all("th")]
    assert tables, (
        f"{EXEC_PAGE} has no execution table ({{nb-exec-table}} rendered nothing)"
    )
    table = tables[0]
    header = [th.text().strip().lower() for th in table.find_all("th")]

    def column(*names: str) -> int:
        for i, h in enumerate(header):
            if any(n in h for n in names):
                return i
        pytest.fail(
            f"{EXEC_PAGE}: no column among {names} in the table header {header}"
        )

    i_doc, i_time, i_status, i_method = (
        column("document"),
        column("run time"),
        column("status"),
        column("method"),
    )
    rows = {}
    for tr in table.find_all("tr"):
        cells = [td.text().strip() for td in tr.find_all("td")]
        if len(cells) != len(header):
            continue
        try:
            seconds = float(cells[i_time])
        except ValueError:
            seconds = float("nan")
        rows[cells[i_doc]] = {
            "seconds": seconds,
            "status": cells[i_status],
            "method": cells[i_method],
        }
    return rows


def _from_jupyter_cache(build_dir: Path) -> dict[str, dict]:
    db = build_dir / ".jupyter_cache" / "global.db"
    if not db.is_file():
        pytest.skip(
            f"neither {EXEC_PAGE} nor {db} exists: no execution record to check"
        )
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        records = con.execute(
            "SELECT uri, data, created FROM nbcache ORDER BY created"
        ).fetchall()
    rows = {}
    for uri, data, _created in records:  # later records overwrite earlier ones
        doc = re.sub(r"\.ipynb$", "", uri)
        doc = doc[doc.rfind("/book/") + 1 :] if "/book/" in doc else doc
        seconds = json.loads(data or "{}").get(
            "execution_seconds", float("nan")
        )
        rows[doc] = {
            "seconds": float(seconds),
            "status": "✅",
            "method": "cache",
        }
    return rows


@pytest.fixture(scope="module")
def exec_rows(site, build_dir, load_page) -> dict[str, dict]:
    if (site / EXEC_PAGE).is_file():
        rows = _from_exec_table(load_page)
    else:
        rows = _from_jupyter_cache(build_dir)
    assert rows, "the execution record lists no notebook"
    return rows


def _chapters(rows):
    return {doc: row for doc, row in rows.items() if CHAPTER_DOC.search(doc)}


def test_every_chapter_has_an_execution_record(exec_rows, site):
    built = {
        p.relative_to(site).with_suffix("").as_posix()
        for p in site.glob("book/[0-9][0-9]_*.html")
    }
    recorded = set(_chapters(exec_rows))
    assert built, "no chapter pages in the site"
    assert built <= recorded, (
        f"chapters with no execution record: {sorted(built - recorded)}"
    )


def test_every_notebook_succeeded(exec_rows):
    failed = {
        doc: row["status"]
        for doc, row in exec_rows.items()
        if row["status"] not in ("✅", "")
    }
    assert not failed, f"notebooks whose execution failed: {failed}"


def test_each_chapter_within_limit(exec_rows):
    times = {doc: row["seconds"] for doc, row in _chapters(exec_rows).items()}
    unknown = [
        doc for doc, s in times.items() if s != s
    ]  # NaN: no time recorded
    assert not unknown, f"no run time recorded for {unknown}"
    slow = {
        doc: round(s, 1) for doc, s in times.items() if s > CHAPTER_LIMIT_S
    }
    assert not slow, (
        f"chapters over the {CHAPTER_LIMIT_S:.0f} s limit (seconds): {slow}"
    )


def test_whole_book_within_limit(exec_rows):
    total = sum(
        row["seconds"]
        for row in exec_rows.values()
        if row["seconds"] == row["seconds"]
    )
    assert total <= BOOK_LIMIT_S, (
        f"the book takes {total:.0f} s to execute, over the {BOOK_LIMIT_S:.0f} s limit; "
        f"slowest: {sorted(((round(r['seconds']), d) for d, r in exec_rows.items()), reverse=True)[:3]}"
    )
