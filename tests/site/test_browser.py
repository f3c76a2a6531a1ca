"""Open the built book in headless Chromium: MathJax must typeset every formula.

The site's pages load MathJax 3 from a CDN, which a machine without internet cannot reach. The
test therefore copies the site to a temporary folder, points the MathJax ``<script>`` at a local
copy of the ``mathjax@3`` npm package and serves the copy on ``127.0.0.1``. Each page is
rendered once (``--dump-dom`` after a virtual-time budget that lets MathJax finish, and
``--screenshot``); screenshots are kept in ``_build/screenshots/`` for a human to look at.

Needs:

* a Chromium binary: ``$IMAGINATION_CHROMIUM``, else ``chromium`` / ``chromium-browser`` /
  ``google-chrome`` on ``PATH`` (Debian: ``apt-get install -y chromium``);
* MathJax 3: ``$IMAGINATION_MATHJAX`` (the file ``tex-mml-chtml.js`` or the folder holding it),
  else ``~/.cache/imagination-mathjax/node_modules/mathjax/es5/tex-mml-chtml.js``
  (``npm install --no-save --prefix ~/.cache/imagination-mathjax mathjax@3``).

Missing either, the tests skip with a message, unless ``IMAGINATION_REQUIRE_BROWSER=1`` (set it in
CI), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BROWSERS = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
)
MATHJAX_FILE = "tex-mml-chtml.js"
DEFAULT_MATHJAX = (
    Path.home()
    / ".cache"
    / "imagination-mathjax"
    / "node_modules"
    / "mathjax"
    / "es5"
)
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,1600",
    "--virtual-time-budget=15000",
]
RENDER_TIMEOUT_S = 120
# A MathJax <script> that loads from anywhere (the CDN of _config.yml's mathjax_path).
MATHJAX_SRC = re.compile(
    r'src="[^"]*mathjax[^"]*/(es5/)?(?P<file>[\w.-]+\.js)"', re.IGNORECASE
)


def _missing(what: str):
    if os.environ.get("IMAGINATION_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{what} (IMAGINATION_REQUIRE_BROWSER=1)")
    pytest.skip(what)


def find_browser() -> str | None:
    explicit = os.environ.get("IMAGINATION_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_mathjax() -> Path | None:
    """The folder that holds MathJax 3's ``tex-mml-chtml.js`` (and its fonts)."""
    explicit = os.environ.get("IMAGINATION_MATHJAX")
    candidates = [Path(explicit)] if explicit else [DEFAULT_MATHJAX]
    for c in candidates:
        folder = c.parent if c.is_file() else c
        if (folder / MATHJAX_FILE).is_file():
            return folder
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def browser() -> str:
    found = find_browser()
    if found is None:
        _missing(
            "no headless browser: install Chromium (apt-get install -y chromium) or set IMAGINATION_CHROMIUM"
        )
    return found


@pytest.fixture(scope="module")
def served_site(site, tmp_path_factory):
    """A copy of the site with MathJax served locally; yields its base URL."""
    mathjax = find_mathjax()
    if mathjax is None:
        _missing(
            "no local MathJax 3: run `npm install --no-save --prefix ~/.cache/imagination-mathjax mathjax@3` "
            "or set IMAGINATION_MATHJAX to tex-mml-chtml.js"
        )
    root = tmp_path_factory.mktemp("site") / "html"
    shutil.copytree(site, root, ignore=shutil.ignore_patterns("_sources"))
    shutil.copytree(mathjax, root / "_mathjax")
    for page in root.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = MATHJAX_SRC.sub(
            lambda m: f'src="/_mathjax/{m.group("file")}"', text
        )
        if new != text:
            page.write_text(new, encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _render(browser: str, url: str, screenshot: Path) -> tuple[str, str]:
    """(DOM after scripts ran, browser stderr) for one page; writes the screenshot."""
    with tempfile.TemporaryDirectory(
        prefix="imagination-chromium-"
    ) as profile:
        cmd = [
            browser,
            *CHROME_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            url,
        ]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT_S,
            cwd=profile,
        )
    return proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def rendered(browser, served_site, build_dir, browser_pages):
    """Render every page once (two at a time); ``{page: (dom, stderr, screenshot)}``."""
    shots = build_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    jobs = {}
    for page in browser_pages:
        shot = shots / (
            re.sub(r"\.html$", "", page).replace("/", "_") + ".png"
        )
        shot.unlink(missing_ok=True)
        jobs[page] = shot
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            p: pool.submit(_render, browser, f"{served_site}/{p}", s)
            for p, s in jobs.items()
        }
        return {p: (*f.result(), jobs[p]) for p, f in futures.items()}


@pytest.fixture(scope="module")
def browser_pages(site) -> list[str]:
    chapters = sorted(
        p.relative_to(site).as_posix()
        for p in site.glob("book/[0-9][0-9]_*.html")
    )
    extra = [p for p in ("book/notation.html",) if (site / p).is_file()]
    return ["index.html", *extra, *chapters]


def _math_elements(root):
    return [
        e
        for e in root.iter()
        if e.tag in ("span", "div") and "math" in e.classes
    ]


def test_pages_render_with_typeset_math(
    rendered, parse_html, raw_tex, load_page
):
    problems = []
    for page, (dom, stderr, _shot) in rendered.items():
        if "</html>" not in dom:
            problems.append(
                f"{page}: the browser returned no page ({stderr.strip()[-300:]})"
            )
            continue
        root = parse_html(dom)
        mains = root.find_all("main")
        main = mains[0] if mains else root
        if not main.find_all("h1"):
            problems.append(f"{page}: no <h1> in the rendered page")
        maths = _math_elements(main)
        untypeset = [
            e.text().strip()[:60]
            for e in maths
            if not any(c.tag == "mjx-container" for c in e.iter())
        ]
        if untypeset:
            problems.append(
                f"{page}: {len(untypeset)} of {len(maths)} formulas not typeset by MathJax, e.g. {untypeset[:3]}"
            )
        errors = [
            e.attrs.get("data-mjx-error", e.text()[:60])
            for e in main.iter()
            if e.tag == "mjx-merror"
        ]
        if errors:
            problems.append(f"{page}: MathJax errors (bad TeX?): {errors[:5]}")
        # MathJax shows an undefined macro as its name in red (an <mtext mathcolor="red"> "\\name").
        undefined = [
            e.text().strip()
            for e in main.iter()
            if e.tag == "mtext"
            and e.attrs.get("mathcolor") == "red"
            and e.text().strip().startswith("\\")
        ]
        if undefined:
            problems.append(
                f"{page}: undefined TeX macros: {sorted(set(undefined))[:5]}"
            )
        leftovers = raw_tex(main)
        if leftovers:
            problems.append(f"{page}: TeX left as text: {leftovers[:3]}")
    assert not problems, "\n".join(problems)


def test_chapters_have_math_to_typeset(rendered, parse_html):
    """A chapter with no typeset formula means MathJax never ran (or the math was lost)."""
    empty = [
        page
        for page, (dom, _err, _shot) in rendered.items()
        if page.startswith("book/")
        and re.match(r"book/\d\d_", page)
        and not any(e.tag == "mjx-container" for e in parse_html(dom).iter())
    ]
    assert not empty, f"no formula typeset on {empty}"


def test_screenshots_are_written(rendered):
    blank = []
    for page, (_dom, _err, shot) in rendered.items():
        if not shot.is_file() or shot.stat().st_size < 5_000:
            blank.append(f"{page}: {shot} missing or empty")
            continue
        try:
            from PIL import Image
        except (
            ImportError
        ):  # pillow comes with matplotlib; without it the size check stands
            continue
        with Image.open(shot) as im:
            colours = im.convert("RGB").getcolors(maxcolors=1 << 16)
        if colours is not None and len(colours) < 16:
            blank.append(
                f"{page}: {shot} is (nearly) blank ({len(colours)} colours)"
            )
    assert not blank, "\n".join(blank)
