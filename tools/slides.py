#!/usr/bin/env python3
"""One reveal.js slide deck per chapter, from the lecture's cells tagged ``slide``.

The lecture page ``book/NN_name.ipynb`` is the only source: its chapter
helper tags the cells that make the deck (``slide``): the motivating picture,
the theorem, the key derivation steps, the decisive claim, the main figure
and the summary. Each tagged cell becomes one slide, in page order. Markdown
is rendered with the chapter's math (MathJax), MyST directives become boxes
(a ``prf:theorem`` is a titled theorem box) and glued numbers are filled in
from the executed notebook; a code cell shows its source (unless tagged
``remove-input``/``hide-input``) and its outputs (figures, tables, text).

Outputs come from an executed copy of the lecture: by default the book
build's ``_build/jupyter_execute/book/NN_name.ipynb`` (``make book`` writes
it), used when its slide cells match the lecture's; otherwise the lecture is
executed here (``--no-execute`` leaves code outputs out instead).

The decks go into the built site, ``_build/html/slides/NN_name.html``
(published with it; the teaching page links them), with reveal.js and
MathJax copied beside them (``_build/html/slides/_vendor``), so they open
offline:

* reveal.js: ``$IMAGINATION_REVEAL`` (the reveal.js package folder), else
  ``~/.cache/imagination-reveal/node_modules/reveal.js``
  (``npm install --no-save --prefix ~/.cache/imagination-reveal reveal.js@5``);
* MathJax 3: ``$IMAGINATION_MATHJAX`` (``tex-mml-chtml.js`` or its folder),
  else ``~/.cache/imagination-mathjax/node_modules/mathjax/es5``.

Usage::

    python tools/slides.py            # every chapter
    python tools/slides.py 03 06      # chapters by number
"""

from __future__ import annotations

import argparse
import base64
import functools
import html
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "html" / "slides"
EXECUTED = ROOT / "_build" / "jupyter_execute" / "book"
#: The book build's execution cache (myst-nb's jupyter-cache): outputs by code.
JUPYTER_CACHE = ROOT / "_build" / ".jupyter_cache"
#: Where lectures executed by this tool are kept for the next run.
OWN_EXECUTED = ROOT / "_build" / "slides_execute"
CACHE = Path.home() / ".cache"
DEFAULT_REVEAL = CACHE / "imagination-reveal" / "node_modules" / "reveal.js"
DEFAULT_MATHJAX = (
    CACHE / "imagination-mathjax" / "node_modules" / "mathjax" / "es5"
)
#: The slide size the decks are laid out for (and tested at).
WIDTH, HEIGHT = 1280, 720
TAG = "slide"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def chapters(selection: list[str] | None = None) -> list[Path]:
    """Lecture pages ``book/NN_*.ipynb``, optionally by number or stem."""
    paths = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return paths
    chosen = [
        p
        for p in paths
        if any(
            p.stem == s or p.stem.split("_")[0] == s.zfill(2)
            for s in selection
        )
    ]
    if not chosen:
        raise ValueError(f"selection: no chapter matches {selection!r}")
    return chosen


# -- outputs ------------------------------------------------------------------
def _matches(lecture: dict, executed: dict) -> bool:
    """Whether the executed copy has the lecture's slide cells, unchanged."""
    done = {c.get("id"): _source(c) for c in executed.get("cells", [])}
    return all(
        done.get(c.get("id")) == _source(c)
        for c in lecture["cells"]
        if TAG in _tags(c)
    )


def _has_outputs(nb: dict) -> bool:
    return any(c.get("outputs") for c in nb.get("cells", []))


def cached_notebook(
    path: Path, cache_dir: Path = JUPYTER_CACHE
) -> dict | None:
    """The lecture merged with its outputs from the book build's execution
    cache, when the cache holds a run of this very code; else ``None``."""
    if not Path(cache_dir).is_dir():
        return None
    import nbformat
    from jupyter_cache import get_cache

    nb = nbformat.read(str(path), as_version=4)
    try:
        _, merged = get_cache(str(cache_dir)).merge_match_into_notebook(nb)
    except KeyError:
        return None
    return json.loads(nbformat.writes(merged))


def executed_notebook(
    path: Path, executed_dir: Path = EXECUTED, execute: bool = True
) -> tuple[dict, str]:
    """The lecture with outputs and where they came from: the book build's
    execution cache or its executed copy when they match, else a fresh
    execution (or, without ``execute``, the lecture as committed: no
    outputs)."""
    lecture = json.loads(path.read_text(encoding="utf-8"))
    if Path(executed_dir) == EXECUTED:
        cached = cached_notebook(path)
        if cached is not None and _has_outputs(cached):
            return cached, f"outputs from the execution cache {JUPYTER_CACHE}"
    for copy in (Path(executed_dir) / path.name, OWN_EXECUTED / path.name):
        if copy.is_file():
            done = json.loads(copy.read_text(encoding="utf-8"))
            if _matches(lecture, done) and _has_outputs(done):
                return done, f"outputs from {copy}"
    if not execute:
        return lecture, "no outputs (not executed)"
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.reads(json.dumps(lecture), as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    OWN_EXECUTED.mkdir(parents=True, exist_ok=True)
    (OWN_EXECUTED / path.name).write_text(
        nbformat.writes(nb), encoding="utf-8"
    )
    return json.loads(nbformat.writes(nb)), f"executed here in {seconds:.0f} s"


def glued(nb: dict) -> dict[str, dict]:
    """Glued values by name: the mime bundle of each ``glue`` output."""
    out = {}
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:  # myst-nb prefixes the mime types of undisplayed values
                out[name] = {
                    k.split("application/papermill.record/")[-1]: v
                    for k, v in o.get("data", {}).items()
                }
    return out


# -- markdown -----------------------------------------------------------------
def _markdown_renderer():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.amsmath import amsmath_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    def math(content: str, options: dict) -> str:
        body = html.escape(content)
        if options.get("display_mode"):
            return f'<div class="math">\\[{body}\\]</div>'
        return f'<span class="math">\\({body}\\)</span>'

    md = MarkdownIt("commonmark").enable("table")
    md.use(
        dollarmath_plugin,
        double_inline=True,
        renderer=math,
        label_renderer=lambda label: "",
    )
    md.use(amsmath_plugin, renderer=lambda c: math(c, {"display_mode": 1}))
    return md


_FENCE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>[^\n]*)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
_ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<text>[^`]*)`")
_BOX = {
    "prf:theorem": "Theorem",
    "prf:proposition": "Proposition",
    "prf:lemma": "Lemma",
    "prf:corollary": "Corollary",
    "prf:definition": "Definition",
    "prf:proof": "Proof",
    "note": "Note",
    "important": "Important",
    "tip": "Tip",
    "warning": "Warning",
    "admonition": "",
}


def _glue_text(name: str, values: dict) -> str:
    key, _, spec = name.partition(":")
    bundle = values.get(key.strip())
    if bundle is None:
        return "…"
    text = bundle.get("text/plain", "…")
    if spec:
        try:
            return format(float(text.strip("'\"")), spec)
        except ValueError:
            pass
    return text.strip("'\"")


_TARGET = re.compile(r"^\((?P<label>[\w:-]+)\)=\s*\n#+\s+(?P<title>.+)$", re.M)
_PRF_LABEL = re.compile(
    r"^[`:]{3,}\{prf:(?P<kind>\w+)\}[^\n]*\n(?::[^\n]*\n)*?:label:\s*(?P<label>\S+)",
    re.M,
)


@functools.lru_cache(maxsize=1)
def titles() -> dict[str, str]:
    """What a ``{ref}`` or ``{doc}`` shows on a slide: a label's section
    title ("Return error with a learned reward"), a theorem's kind, a page's
    first heading, found in the book's sources."""
    out: dict[str, str] = {}
    book = ROOT / "book"
    for path in sorted([*book.rglob("*.ipynb"), *book.rglob("*.md")]):
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            text = "\n\n".join(
                _source(c) for c in cells if c["cell_type"] == "markdown"
            )
        else:
            text = path.read_text(encoding="utf-8")
        heading = re.search(r"^#\s+(.+)$", text, re.M)
        if heading:
            doc = path.relative_to(book).with_suffix("").as_posix()
            out[doc] = heading.group(1).strip()
        for m in _TARGET.finditer(text):
            out[m.group("label")] = m.group("title").strip()
        for m in _PRF_LABEL.finditer(text):
            out[m.group("label")] = m.group("kind").capitalize()
    return out


def _roles(text: str, values: dict) -> str:
    def role(m: re.Match) -> str:
        name, body = m.group("role"), m.group("text")
        target = re.match(r"(.*?)\s*<([^>]+)>$", body)
        shown = target.group(1) if target else body
        if name in ("glue", "glue:text", "glue:md"):
            return _glue_text(body, values)
        if name in ("ref", "numref", "doc", "prf:ref") and not target:
            return titles().get(body.strip(), body)
        if name == "math":
            return f"${body}$"
        if name == "eq":
            return f"({shown})"
        if name == "cite":
            return f"[{shown}]"
        if name in ("func", "mod", "class", "meth", "attr", "obj"):
            return f"`{shown.lstrip('~').split('.')[-1]}`"
        return shown

    return _ROLE.sub(role, text)


def render_markdown(text: str, values: dict, md=None) -> str:
    """A markdown cell as HTML: directives as boxes, roles as text, math
    left for MathJax."""
    md = md or _markdown_renderer()
    parts, pos = [], 0
    for m in _FENCE.finditer(text):
        parts.append(md.render(_roles(text[pos : m.start()], values)))
        parts.append(_directive(m, values, md))
        pos = m.end()
    parts.append(md.render(_roles(text[pos:], values)))
    return "".join(parts)


def _directive(m: re.Match, values: dict, md) -> str:
    name, arg, body = m.group("name"), m.group("arg").strip(), m.group("body")
    lines = body.splitlines()
    while lines and re.match(r"^:[\w-]+:", lines[0]):
        lines.pop(0)
    body = "\n".join(lines)
    if name in ("glue:figure", "glue"):
        figure = _bundle(values.get(arg, {}), md, values)
        if name == "glue:figure" and body.strip():
            caption = render_markdown(body, values, md)
            figure += f'<div class="caption">{caption}</div>'
        return figure
    if name in ("math",):
        return md.render(f"$$\n{body}\n$$")
    if name in ("code-cell", "code", "code-block"):
        return f"<pre><code>{html.escape(body)}</code></pre>"
    kind = _BOX.get(name, "")
    title = (kind + (f" ({arg})" if arg and kind else arg)).strip()
    head = (
        f'<div class="box-title">{html.escape(title)}</div>' if title else ""
    )
    inner = render_markdown(body, values, md)
    css = name.replace(":", "-")
    return f'<div class="box {css}">{head}{inner}</div>'


# -- outputs ------------------------------------------------------------------
def _bundle(data: dict, md, values: dict) -> str:
    if "image/png" in data:
        png = data["image/png"]
        png = "".join(png) if isinstance(png, list) else png
        return f'<img class="figure" src="data:image/png;base64,{png}">'
    if "image/svg+xml" in data:
        svg = data["image/svg+xml"]
        svg = "".join(svg) if isinstance(svg, list) else svg
        b64 = base64.b64encode(svg.encode()).decode()
        return f'<img class="figure" src="data:image/svg+xml;base64,{b64}">'
    if "text/markdown" in data:
        text = data["text/markdown"]
        text = "".join(text) if isinstance(text, list) else text
        return render_markdown(text, values, md)
    if "text/html" in data:
        text = data["text/html"]
        return "".join(text) if isinstance(text, list) else text
    if "text/plain" in data:
        text = data["text/plain"]
        text = "".join(text) if isinstance(text, list) else text
        return f'<pre class="output">{html.escape(text)}</pre>'
    return ""


def render_code(cell: dict, values: dict, md) -> str:
    tags = _tags(cell)
    out = []
    if not tags & {"remove-input", "hide-input", "remove-cell"}:
        out.append(
            f'<pre class="code"><code class="language-python">'
            f"{html.escape(_source(cell))}</code></pre>"
        )
    if "remove-output" not in tags:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                if o.get("name") == "stdout":
                    text = o.get("text", "")
                    text = "".join(text) if isinstance(text, list) else text
                    out.append(
                        f'<pre class="output">{html.escape(text)}</pre>'
                    )
            elif o.get("output_type") in ("display_data", "execute_result"):
                if o.get("metadata", {}).get("scrapbook"):
                    continue  # glued values appear where the prose uses them
                out.append(_bundle(o.get("data", {}), md, values))
    return "".join(out)


# -- the deck -----------------------------------------------------------------
STYLE = f"""
.reveal {{ font-size: 26px; }}
.reveal .slides section {{ text-align: left; }}
.reveal h1 {{ font-size: 1.6em; }}
.reveal h2 {{ font-size: 1.3em; }}
.reveal h3, .reveal h4 {{ font-size: 1.1em; }}
.reveal p, .reveal li {{ line-height: 1.3; }}
.reveal pre {{ width: 100%; box-sizing: border-box; font-size: 0.55em;
  box-shadow: none; margin: 0.3em 0; }}
.reveal pre code {{ max-height: none; }}
.reveal pre.output {{ background: #f6f6f6; padding: 0.3em; }}
.reveal img.figure {{ display: block; margin: 0.2em auto; max-height: {
    HEIGHT - 160
}px; max-width: 100%; }}
.reveal table {{ font-size: 0.7em; }}
.reveal .box {{ border-left: 6px solid #2a6fb0; background: #f2f6fb;
  padding: 0.3em 0.8em; margin: 0.3em 0; }}
.reveal .caption {{ font-size: 0.6em; color: #444; }}
.reveal .box-title {{ font-weight: bold; margin-bottom: 0.2em; }}
.reveal .deck-title {{ font-size: 0.6em; color: #777; position: absolute;
  bottom: -1.2em; right: 0; }}
"""

#: Runs in the deck: shrink a slide's text until it fits the slide, then
#: record, for the browser test, each slide's size and the typeset math.
FIT_AND_REPORT = """
function fitSlides() {
  for (const s of Reveal.getSlides()) {
    let size = 100;
    const big = () => s.scrollHeight > %(h)d || s.scrollWidth > %(w)d;
    while (big() && size > 30) {
      size -= 5;
      s.style.fontSize = size + '%%';
      for (const img of s.querySelectorAll('img')) {
        img.style.maxHeight = Math.round(%(img)d * size / 100) + 'px';
      }
    }
  }
}
function report() {
  const slides = Reveal.getSlides().map((s, i) => ({
    index: i, height: s.scrollHeight, width: s.scrollWidth,
    math: s.querySelectorAll('mjx-container').length,
    raw: (s.innerText.match(/\\\\\\(|\\\\\\[|\\$\\$/g) || []).length,
  }));
  const out = document.createElement('pre');
  out.id = 'deck-report';
  out.style.display = 'none';
  out.textContent = JSON.stringify({slides: slides,
    width: %(w)d, height: %(h)d});
  document.body.appendChild(out);
}
Reveal.initialize({width: %(w)d, height: %(h)d, margin: 0.04, hash: true,
  center: false, viewDistance: 1000, transition: 'none'}).then(() =>
  MathJax.startup.promise.then(() => { fitSlides(); Reveal.layout();
    report(); }));
""" % {"w": WIDTH, "h": HEIGHT, "img": HEIGHT - 160}


def deck(path: Path, nb: dict, where: str) -> tuple[str, int]:
    """The deck's HTML and its number of slides."""
    lecture = json.loads(path.read_text(encoding="utf-8"))
    ids = [c.get("id") for c in lecture["cells"] if TAG in _tags(c)]
    by_id = {c.get("id"): c for c in nb["cells"]}
    md = _markdown_renderer()
    values = glued(nb)
    title = path.stem
    for c in lecture["cells"]:
        m = re.search(r"^#\s+(.+)$", _source(c), re.M)
        if c["cell_type"] == "markdown" and m:
            title = m.group(1).strip()
            break
    sections = [
        f"<section><h1>{html.escape(title)}</h1>"
        f"<p>Slides of the lecture <code>book/{path.name}</code>, from its "
        f"cells tagged <code>{TAG}</code>.</p></section>"
    ]
    for cid in ids:
        cell = by_id.get(cid) or next(
            c for c in lecture["cells"] if c.get("id") == cid
        )
        if cell["cell_type"] == "markdown":
            body = render_markdown(_source(cell), values, md)
        else:
            body = render_code(cell, values, md)
        sections.append(f"<section>{body}</section>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}: slides</title>
<!-- {html.escape(where)} -->
<link rel="stylesheet" href="_vendor/reveal/reset.css">
<link rel="stylesheet" href="_vendor/reveal/reveal.css">
<link rel="stylesheet" href="_vendor/reveal/theme/white.css">
<style>{STYLE}</style>
<script>window.MathJax = {{tex: {{inlineMath: [['\\\\(', '\\\\)']],
  displayMath: [['\\\\[', '\\\\]']], tags: 'ams'}},
  startup: {{typeset: true}}}};</script>
<script src="_vendor/mathjax/tex-mml-chtml.js"></script>
<script src="_vendor/reveal/reveal.js"></script>
</head><body><div class="reveal"><div class="slides">
{chr(10).join(sections)}
</div></div>
<script>{FIT_AND_REPORT}</script>
</body></html>
"""
    return page, len(sections)


def vendor(out: Path) -> None:
    """Copy reveal.js and MathJax beside the decks (offline viewing)."""
    reveal = Path(os.environ.get("IMAGINATION_REVEAL", DEFAULT_REVEAL))
    mathjax = Path(os.environ.get("IMAGINATION_MATHJAX", DEFAULT_MATHJAX))
    mathjax = mathjax.parent if mathjax.is_file() else mathjax
    if not (reveal / "dist" / "reveal.js").is_file():
        raise SystemExit(
            f"no reveal.js at {reveal}: run `npm install --no-save --prefix "
            "~/.cache/imagination-reveal reveal.js@5` or set IMAGINATION_REVEAL"
        )
    if not (mathjax / "tex-mml-chtml.js").is_file():
        raise SystemExit(
            f"no MathJax 3 at {mathjax}: run `npm install --no-save --prefix "
            "~/.cache/imagination-mathjax mathjax@3` or set IMAGINATION_MATHJAX"
        )
    target = out / "_vendor"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(reveal / "dist", target / "reveal")
    shutil.copytree(mathjax, target / "mathjax")


def build(
    selection: list[str] | None = None,
    out: Path = OUT,
    executed_dir: Path = EXECUTED,
    execute: bool = True,
) -> list[dict]:
    """Write one deck per selected chapter; one summary row per deck."""
    out.mkdir(parents=True, exist_ok=True)
    vendor(out)
    rows = []
    for path in chapters(selection):
        start = time.perf_counter()
        nb, where = executed_notebook(path, executed_dir, execute)
        page, n = deck(path, nb, where)
        (out / f"{path.stem}.html").write_text(page, encoding="utf-8")
        rows.append(
            {
                "chapter": path.stem,
                "slides": n,
                "source": where,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="numbers or stems")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--executed", type=Path, default=EXECUTED)
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="never execute a lecture (slides without fresh outputs)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = build(
        args.chapters or None, args.out, args.executed, not args.no_execute
    )
    for r in rows:
        print(
            f"{r['chapter']}: {r['slides']} slides, {r['source']} "
            f"({r['seconds']} s)"
        )
    print(
        f"{len(rows)} decks in {args.out} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
