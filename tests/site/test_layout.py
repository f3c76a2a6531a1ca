"""Pages that read as lectures: code and text outputs fit the column, figures stay legible.

Measured in the built HTML. The sphinx-book-theme column shows about 80 characters of code in
its monospace font at a 1300-px window (the issue's measurement: 78 visible), and is about 540 px
wide for images.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from urllib.parse import unquote

from imagination import plotting

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import page_budget  # noqa: E402  (the budgets, one definition)

#: Longest code line or text-output line that fits the column without a sideways scroll.
MAX_COLUMNS = 80
#: Width of the text column in CSS pixels; wider images are scaled down to it.
COLUMN_PX = 540
#: Smallest legible font, in CSS pixels, after the figure is scaled into the column.
MIN_FONT_PX = 10.0


def _pre_lines(element):
    return [
        line
        for pre in element.find_all("pre")
        for line in pre.text().splitlines()
    ]


def _wide_lines(page, cls):
    """Lines of the ``<pre>`` blocks inside ``div.<cls>`` wider than the column."""
    return [
        line
        for e in page.main().iter()
        if e.tag == "div" and cls in e.classes
        for line in _pre_lines(e)
        if len(line.rstrip()) > MAX_COLUMNS
    ]


def test_code_lines_fit_the_column(notebook_page):
    wide = _wide_lines(notebook_page, "cell_input")
    assert not wide, (
        f"{notebook_page.name}: {len(wide)} code lines over {MAX_COLUMNS} characters, "
        f"e.g. {wide[0]!r}"
    )


def test_text_outputs_fit_the_column(notebook_page):
    wide = _wide_lines(notebook_page, "cell_output")
    assert not wide, (
        f"{notebook_page.name}: {len(wide)} printed lines over {MAX_COLUMNS} characters "
        f"(render tables with imagination.notebook.table), e.g. {wide[0]!r}"
    )


_PROSE = {"p", "li", "td", "th", "dd", "dt"}
_NOT_PROSE = {"pre", "script", "style", "button"}


def prose_words(page) -> int:
    """Words of running text: paragraphs, list items and table cells outside
    code cells (inputs and outputs) and outside math."""
    words = 0

    def walk(node, in_prose):
        nonlocal words
        for child in node.children:
            if isinstance(child, str):
                if in_prose:
                    words += len(page_budget.WORD.findall(child))
                continue
            cls = child.classes
            if (
                child.tag in _NOT_PROSE
                or "cell" in cls
                or "math" in cls
                or "headerlink" in cls
            ):
                continue
            walk(child, in_prose or child.tag in _PROSE)

    walk(page.main(), False)
    return words


def visible_code_cells(page) -> list[int]:
    """Non-blank lines of each code cell whose input the page shows."""
    out = []
    for cell in page.main().find_all("div", "cell"):
        if cell.classes & {"tag_hide-input", "tag_hide-cell"}:
            continue
        for inp in cell.find_all("div", "cell_input"):
            lines = [ln for ln in _pre_lines(inp) if ln.strip()]
            out.append(len(lines))
    return out


def test_pages_keep_to_their_budget(notebook_page):
    """A lecture is one sitting; a section page one study (tools/page_budget.py)."""
    lecture = notebook_page.path.parent.name == "book"
    cells = visible_code_cells(notebook_page)
    m = page_budget.Measure(
        notebook_page.name,
        lecture,
        prose_words(notebook_page),
        sum(cells),
        cells,
    )
    assert not m.problems(), f"{notebook_page.name}: {'; '.join(m.problems())}"


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def test_figures_are_legible_at_column_width(chapter_page):
    """A figure wider than the column is shrunk into it, and its fonts with it.

    The house style (``imagination.plotting``) draws at ``figure.dpi`` with ``font.size`` points;
    after the browser scales an image of width ``w`` into the column, a font of that size is
    ``font.size * dpi / 72 * min(1, COLUMN_PX / w)`` pixels tall.
    """
    font_px = plotting.STYLE["font.size"] * plotting.STYLE["figure.dpi"] / 72
    tick_px = (
        plotting.STYLE["xtick.labelsize"] * plotting.STYLE["figure.dpi"] / 72
    )
    small = []
    found = 0
    for img in chapter_page.main().find_all("img"):
        src = unquote(img.attrs.get("src", ""))
        path = (chapter_page.path.parent / src).resolve()
        if not src or not path.is_file():
            continue
        size = _png_size(path)
        if size is None:
            continue
        found += 1
        width = size[0]
        scale = min(1.0, COLUMN_PX / width)
        if min(font_px, tick_px) * scale < MIN_FONT_PX:
            small.append(
                f"{src} ({width} px wide: fonts {tick_px * scale:.1f} px)"
            )
    assert found, f"{chapter_page.name}: no PNG figures found"
    assert not small, (
        f"{chapter_page.name}: figures too wide to stay legible in the column: {small}"
    )


def test_first_screen_shows_the_motivation_not_code(chapter_page):
    """The chapter opens with prose: at least two paragraphs before the first code cell."""
    paragraphs = 0
    for e in chapter_page.main().iter():
        if e.tag == "div" and "cell_input" in e.classes:
            break
        if e.tag == "p" and len(e.text().split()) > 15:
            paragraphs += 1
    assert paragraphs >= 2, (
        f"{chapter_page.name}: only {paragraphs} paragraph(s) of prose before the first code cell"
    )
