"""Open every slide deck (``make slides``) in headless Chromium.

Each deck ``_build/html/slides/NN_name.html`` is served from ``127.0.0.1``
with the reveal.js and MathJax it carries (``slides/_vendor``: nothing is
fetched from the network) and rendered once. The deck records, after MathJax
and reveal.js have run, each slide's size and typeset formulas in a hidden
``#deck-report`` element; the tests read it from the dumped DOM and check:
one deck per chapter, a title slide plus every cell tagged ``slide`` of the
lecture, formulas typeset (no raw TeX delimiters left), and no slide taller
or wider than 1280 x 720.

Skipped when the decks are not built (``IMAGINATION_SLIDES`` points to
another folder) or no Chromium is found (see ``test_browser.py``).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_browser import _missing, _QuietHandler, _render, find_browser

REPO = Path(__file__).resolve().parents[2]
SLIDES = Path(
    os.environ.get("IMAGINATION_SLIDES") or REPO / "_build" / "html" / "slides"
)
WIDTH, HEIGHT = 1280, 720
LECTURES = sorted((REPO / "book").glob("[0-9][0-9]_*.ipynb"))

if not (SLIDES / "_vendor").is_dir():
    pytest.skip(
        f"slides not built: no {SLIDES}; run `make slides` first",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    browser = find_browser()
    if browser is None:
        _missing("no headless browser for the slides (see test_browser.py)")
    handler = functools.partial(_QuietHandler, directory=str(SLIDES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    shots = tmp_path_factory.mktemp("slides")
    decks = sorted(p.name for p in SLIDES.glob("[0-9][0-9]_*.html"))
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {
                d: pool.submit(
                    _render, browser, f"{base}/{d}", shots / f"{d}.png"
                )
                for d in decks
            }
            doms = {d: f.result()[0] for d, f in futures.items()}
    finally:
        server.shutdown()
        server.server_close()
    out = {}
    for deck, dom in doms.items():
        m = re.search(r'<pre id="deck-report"[^>]*>(.*?)</pre>', dom, re.S)
        out[deck] = json.loads(_unescape(m.group(1))) if m else {}
    return out


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def _tagged(lecture: Path) -> int:
    nb = json.loads(lecture.read_text(encoding="utf-8"))
    return sum(
        "slide" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]
    )


def test_one_deck_per_lecture():
    decks = sorted(p.stem for p in SLIDES.glob("[0-9][0-9]_*.html"))
    assert decks == [p.stem for p in LECTURES]


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem[:2])
def test_deck_renders(reports, lecture):
    report = reports.get(f"{lecture.stem}.html")
    assert report, f"{lecture.stem}: the deck never finished (no report)"
    slides = report["slides"]
    want = _tagged(lecture) + 1  # a title slide, then one per tagged cell
    assert want >= 5, f"{lecture.name} tags {want - 1} cells `slide`"
    assert len(slides) == want, (len(slides), want)
    assert sum(s["math"] for s in slides) > 0, "no formula was typeset"
    raw = [s["index"] for s in slides if s["raw"]]
    assert not raw, f"slides with untypeset TeX: {raw}"
    over = [
        (s["index"], s["width"], s["height"])
        for s in slides
        if s["height"] > HEIGHT or s["width"] > WIDTH
    ]
    assert not over, f"slides larger than {WIDTH} x {HEIGHT}: {over}"
