#!/usr/bin/env python3
"""How long each page is, as a reader sees it, against the book's budgets.

A lecture page (``book/NN_name.ipynb``) is one sitting: at most
:data:`LECTURE_WORDS` words of prose and :data:`LECTURE_LINES` visible code
lines. Any other page (a chapter's section pages ``book/NN_name/*.ipynb``, the
appendices) holds at most :data:`PAGE_WORDS` words and :data:`PAGE_LINES`
lines. A visible code cell is rarely over :data:`CELL_LINES` lines: at most
:data:`LONG_CELLS` such cells a page, and none over :data:`MAX_CELL_LINES`.

This script measures the notebook sources (fast, no build needed); the site
test ``tests/site/test_layout.py`` measures the built HTML with the same
budgets. Prose: words of Markdown cells outside math blocks and directive
fences; code: non-blank lines of code cells whose input the page shows (no
``remove-input``, ``remove-cell``, ``hide-input`` or ``hide-cell`` tag).

Usage::

    python tools/page_budget.py             # every page, a table
    python tools/page_budget.py book/02_*   # some pages
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from bootstrap import notebooks  # noqa: E402  (every notebook page, one definition)

LECTURE_WORDS = 3000
LECTURE_LINES = 250
PAGE_WORDS = 3000
PAGE_LINES = 300
CELL_LINES = 15
LONG_CELLS = 3
MAX_CELL_LINES = 25

HIDDEN = {"remove-input", "remove-cell", "hide-input", "hide-cell"}
WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")


@dataclass
class Measure:
    page: str
    lecture: bool
    words: int
    lines: int
    cells: list[int]

    def problems(self) -> list[str]:
        words = LECTURE_WORDS if self.lecture else PAGE_WORDS
        lines = LECTURE_LINES if self.lecture else PAGE_LINES
        out = []
        if self.words > words:
            out.append(f"{self.words} words > {words}")
        if self.lines > lines:
            out.append(f"{self.lines} visible code lines > {lines}")
        long = [n for n in self.cells if n > CELL_LINES]
        if len(long) > LONG_CELLS:
            out.append(
                f"{len(long)} code cells over {CELL_LINES} lines "
                f"(at most {LONG_CELLS}): {sorted(long, reverse=True)}"
            )
        if self.cells and max(self.cells) > MAX_CELL_LINES:
            out.append(
                f"a code cell of {max(self.cells)} lines > {MAX_CELL_LINES}"
            )
        return out


def is_lecture(path: Path) -> bool:
    return (
        path.parent.name == "book"
        and re.match(r"\d\d_", path.name) is not None
    )


def prose_words(markdown: str) -> int:
    text = re.sub(r"\$\$.*?\$\$", " ", markdown, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " x ", text)
    text = re.sub(r"^\s*(`{3,}|:{3,}).*$", " ", text, flags=re.M)
    text = re.sub(r"^\s*:[\w-]+:.*$", " ", text, flags=re.M)
    text = re.sub(r"\{[\w:-]+\}`[^`]*`", " x ", text)
    return len(WORD.findall(text))


def measure(path: Path) -> Measure:
    nb = json.loads(path.read_text())
    words = 0
    cells: list[int] = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] == "markdown" and "remove-cell" not in tags:
            words += prose_words(src)
        elif cell["cell_type"] == "code" and not tags & HIDDEN:
            cells.append(sum(1 for line in src.splitlines() if line.strip()))
    page = path.relative_to(ROOT).with_suffix("").as_posix()
    return Measure(page, is_lecture(path), words, sum(cells), cells)


def main(argv: list[str]) -> int:
    paths = []
    for arg in map(Path, argv):
        # a chapter's folder stands for its section pages
        found = sorted(arg.glob("*.ipynb")) if arg.is_dir() else [arg]
        paths.extend(p.resolve() for p in found)
    paths = paths or notebooks()
    bad = 0
    print(f"{'page':48} {'words':>6} {'lines':>6} {'longest':>8}  budget")
    for path in paths:
        m = measure(path)
        problems = m.problems()
        bad += bool(problems)
        longest = max(m.cells, default=0)
        verdict = "; ".join(problems) or "ok"
        print(f"{m.page:48} {m.words:6d} {m.lines:6d} {longest:8d}  {verdict}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
