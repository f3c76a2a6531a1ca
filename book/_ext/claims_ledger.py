"""Sphinx extension: the verification ledger page, and the guard that keeps it
true.

The directive ``claims-ledger`` marks where the table of all claims goes. The
table is built when the page is written, after every page has executed and
written ``_build/claims/<page>.json`` (see :mod:`imagination.claims`). Before
it renders anything, the ledger is checked against the sources, and the build
stops with an error (with or without ``-W``) naming the pages when

- a page listed in ``book/claims.yml`` wrote no ledger file, or a ledger file
  belongs to no listed page;
- a page's claim ids differ from its committed list in ``book/claims.yml``
  (a claim was dropped or added without saying so);
- a ledger file was written by another version of the package or of the
  page's code (``execute_notebooks: cache`` re-executes a page only when its
  code cells change, so a change in ``src/imagination`` leaves old claims
  behind: ``make book-fresh`` re-executes every page);
- a claim failed.

``python tools/ledger.py ids --write`` rewrites ``book/claims.yml`` from the
ledger of a build, on purpose.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

from imagination import claims as claims_mod

KIND_ORDER = {k: i for i, k in enumerate(claims_mod.KINDS)}
IDS_FILE = "book/claims.yml"


class ledger_placeholder(nodes.General, nodes.Element):
    pass


class ClaimsLedger(SphinxDirective):
    has_content = False

    def run(self):
        return [ledger_placeholder()]


def _claims_dir(app) -> Path:
    return Path(app.srcdir) / "_build" / "claims"


def expected_ids(srcdir) -> dict[str, list[str]]:
    """The committed claim ids of every page (``book/claims.yml``)."""
    path = Path(srcdir) / IDS_FILE
    if not path.is_file():
        return {}
    return {
        str(k): list(v or [])
        for k, v in (yaml.safe_load(path.read_text()) or {}).items()
    }


def problems(srcdir, pages: dict[str, dict]) -> list[str]:
    """Everything that makes the ledger of a build untrustworthy."""
    srcdir = Path(srcdir)
    want = expected_ids(srcdir)
    package = claims_mod.package_hash()
    out: list[str] = []
    for page in sorted(set(want) - set(pages)):
        out.append(f"{page}: wrote no claims (did it execute?)")
    for page in sorted(set(pages) - set(want)):
        out.append(
            f"{page}: its claims are not listed in {IDS_FILE} (a new or "
            "renamed page: `python tools/ledger.py ids --write`; a removed "
            "page: delete its file under _build/claims)"
        )
    stale = []
    for page, data in pages.items():
        ids = [c["id"] for c in data["claims"]]
        if page in want and sorted(ids) != sorted(want[page]):
            lost = sorted(set(want[page]) - set(ids))
            new = sorted(set(ids) - set(want[page]))
            out.append(
                f"{page}: claim ids differ from {IDS_FILE}"
                + (f"; missing {lost}" if lost else "")
                + (f"; not listed {new}" if new else "")
            )
        notebook = srcdir / "book" / f"{page}.ipynb"
        if data.get("package") != package or (
            notebook.is_file()
            and data.get("notebook") != claims_mod.notebook_hash(notebook)
        ):
            stale.append(page)
        for c in data["claims"]:
            if not c["passed"]:
                out.append(f"{page}: claim {c['id']} failed: {c['statement']}")
    if stale:
        out.append(
            "stale claims, written by another version of the package or "
            f"the page's code: {', '.join(stale)}; run `make book-fresh` to "
            "re-execute every page"
        )
    return out


def _fmt(x, spec=".4g") -> str:
    return "" if x is None else format(x, spec)


def _se_z(c: dict) -> str:
    if c["kind"] != "test" or c.get("se") is None:
        return ""
    z = (c.get("extra") or {}).get("z_element")
    return f"{c['se']:.3g}" + ("" if z is None else f" (z = {z:+.2f})")


def _statement(c: dict) -> nodes.paragraph:
    para = nodes.paragraph()
    para += nodes.literal(text=c["id"])
    para += nodes.Text(f" ({c['kind']}): {c['statement']}")
    extra = c.get("extra") or {}
    if c["kind"] == "search":
        wrong = extra.get("wrong_bounds", {})
        refuted = set(extra.get("refuted", []))
        para += nodes.Text(
            f" Class: {extra.get('family', '')}. Budget: "
            f"{extra.get('budget', '')}. "
            f"Worst case at {extra.get('where', '')}."
            " Wrong bounds: "
            + "; ".join(
                f"{name} ({'refuted' if name in refuted else 'not refuted'}, "
                f"ratio {_fmt(v, '.3g')})"
                for name, v in wrong.items()
            )
            + "."
        )
    return para


def _table(claims: list[dict]) -> nodes.table:
    header = ["claim", "predicted", "measured", "se (z)", "result"]
    widths = [44, 10, 10, 12, 16]
    table = nodes.table(classes=["claims-ledger"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)
    thead = nodes.thead()
    group += thead
    row = nodes.row()
    for h in header:
        row += nodes.entry("", nodes.paragraph(text=h))
    thead += row
    tbody = nodes.tbody()
    group += tbody
    for c in sorted(claims, key=lambda c: KIND_ORDER.get(c["kind"], 9)):
        claim = claims_mod.Claim(
            **{
                k: v
                for k, v in c.items()
                if k in claims_mod.Claim.__dataclass_fields__
            }
        )
        result = nodes.paragraph()
        result += nodes.strong(text="pass" if c["passed"] else "FAIL")
        if claim.figure():
            result += nodes.Text(f", {claim.figure()}")
        row = nodes.row()
        row += nodes.entry("", _statement(c))
        for text in (
            _fmt(c.get("predicted")),
            _fmt(c.get("measured")),
            _se_z(c),
        ):
            row += nodes.entry("", nodes.paragraph(text=text))
        row += nodes.entry("", result)
        tbody += row
    return table


def _title(app, page: str) -> str:
    doc = f"book/{page}"
    if doc in app.env.titles:
        return app.env.titles[doc].astext()
    return page.replace("_", " ")


def _page_section(app, page: str, claims: list[dict]) -> nodes.section:
    section = nodes.section(ids=[f"ledger-{page.replace('/', '-')}"])
    section += nodes.title(text=_title(app, page))
    tests = [c for c in claims if c["kind"] == "test" and c["passed"]]
    worst = max((c["resolution"] for c in tests), default=None)
    line = (
        f"{len(claims)} claim{'s' * (len(claims) != 1)}, "
        f"{len(tests)} passing test{'s' * (len(tests) != 1)}"
    )
    searches = [c for c in claims if c["kind"] == "search"]
    if searches:
        line += f", {len(searches)} search{'es' * (len(searches) != 1)}"
    if worst is not None:
        best = min(c["resolution"] for c in tests)
        line += (
            f"; each test resolves a {claims_mod.share(worst)} error or better"
            f" (the sharpest {claims_mod.share(best)})"
        )
    section += nodes.paragraph(text=line + ".")
    if claims:
        section += _table(claims)
    return section


def _resolve(app, doctree, docname):
    for node in doctree.findall(ledger_placeholder):
        pages = claims_mod.load_pages(_claims_dir(app))
        found = problems(app.srcdir, pages)
        if found:
            raise ExtensionError(
                "the verification ledger cannot be trusted:\n  - "
                + "\n  - ".join(found)
            )
        content: list[nodes.Node] = []
        if not pages:
            content.append(
                nodes.paragraph(text="No claims were recorded in this build.")
            )
        every = [c for data in pages.values() for c in data["claims"]]
        counts = {k: sum(c["kind"] == k for c in every) for k in KIND_ORDER}
        chapters = sorted({page.split("/")[0] for page in pages})
        summary = ", ".join(f"{counts[k]} {k}" for k in KIND_ORDER)
        content.append(
            nodes.paragraph(
                text=f"This build recorded {len(every)} claims on "
                f"{len(pages)} pages of {len(chapters)} chapters ({summary}); "
                "all held, and every page's claims were written by this "
                "version of the package and of the page's code."
            )
        )
        for chapter in chapters:
            section = _page_section(
                app, chapter, pages.get(chapter, {}).get("claims", [])
            )
            for page in pages:
                if page.startswith(chapter + "/"):
                    section += _page_section(app, page, pages[page]["claims"])
            content.append(section)
        node.replace_self(content)


def _always_outdated(app, env, added, changed, removed):
    return [d for d in env.found_docs if _has_ledger(app, d)]


def _has_ledger(app, docname) -> bool:
    for suffix in (".md", ".rst"):
        path = Path(app.srcdir) / (docname + suffix)
        if path.is_file() and "claims-ledger" in path.read_text():
            return True
    return False


def setup(app):
    app.add_node(ledger_placeholder)
    app.add_directive("claims-ledger", ClaimsLedger)
    app.connect("env-get-outdated", _always_outdated)
    app.connect("doctree-resolved", _resolve)
    return {
        "version": "2.0",
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
