"""Sphinx extension: the verification ledger page.

The directive ``claims-ledger`` marks where the table of all claims goes. The
table is built when the page is written, after every chapter has executed and
written ``_build/claims/<chapter>.json`` (see :mod:`imagination.claims`), so
it always shows the claims of this build. The ledger page is re-read on every
build, and a failing claim is reported as a warning, which fails a build run
with ``-W``.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

KIND_ORDER = {"test": 0, "bound": 1, "consistency": 2, "sanity": 3}


class ledger_placeholder(nodes.General, nodes.Element):
    pass


class ClaimsLedger(SphinxDirective):
    has_content = False

    def run(self):
        return [ledger_placeholder()]


def _claims_dir(app) -> Path:
    return Path(app.srcdir) / "_build" / "claims"


def _load(app) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    folder = _claims_dir(app)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        out[path.stem] = json.loads(path.read_text())
    return out


def _fmt(x, spec=".4g") -> str:
    return "" if x is None else format(x, spec)


def _share(r: float) -> str:
    """A relative error as a percentage, readable from 1e-9 to 1."""
    return f"{r:.1%}" if r >= 1e-3 else f"{100 * r:.1g}%"


def _figure(c: dict) -> str:
    if c["kind"] == "test" and c.get("resolution") is not None:
        return f"resolves {_share(c['resolution'])}"
    if c["kind"] == "bound":
        return (
            "slack inf"
            if c.get("slack") is None
            else f"slack {c['slack']:.3g}x"
        )
    return ""


def _table(claims: list[dict]) -> nodes.table:
    header = ["claim", "kind", "statement", "predicted", "measured", "result"]
    widths = [14, 8, 40, 10, 10, 14]
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
        verdict = "pass" if c["passed"] else "FAIL"
        figure = _figure(c)
        result = nodes.paragraph()
        result += nodes.strong(text=verdict)
        if figure:
            result += nodes.Text(f", {figure}")
        cells = [
            nodes.literal(text=c["id"]),
            nodes.Text(c["kind"]),
            nodes.Text(c["statement"]),
            nodes.Text(_fmt(c.get("predicted"))),
            nodes.Text(_fmt(c.get("measured"))),
        ]
        row = nodes.row()
        for cell in cells:
            para = nodes.paragraph()
            para += cell
            row += nodes.entry("", para)
        row += nodes.entry("", result)
        tbody += row
    return table


def _resolve(app, doctree, docname):
    for node in doctree.findall(ledger_placeholder):
        by_chapter = _load(app)
        content: list[nodes.Node] = []
        if not by_chapter:
            content.append(
                nodes.paragraph(text="No claims were recorded in this build.")
            )
        total = sum(len(v) for v in by_chapter.values())
        counts = {}
        for claims in by_chapter.values():
            for c in claims:
                counts[c["kind"]] = counts.get(c["kind"], 0) + 1
        failed = sum(not c["passed"] for v in by_chapter.values() for c in v)
        for chapter, claims in by_chapter.items():
            for c in claims:
                if not c["passed"]:
                    logger.warning(
                        "claim %s of %s failed: %s",
                        c["id"],
                        chapter,
                        c["statement"],
                        location=docname,
                        type="claims",
                        subtype="failed",
                    )
        summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in KIND_ORDER)
        content.append(
            nodes.paragraph(
                text=f"This build recorded {total} claims in "
                f"{len(by_chapter)} chapters ({summary}); {failed} failed."
            )
        )
        for chapter, claims in by_chapter.items():
            section = nodes.section(ids=[f"ledger-{chapter}"])
            doc = f"book/{chapter}"
            title = (
                app.env.titles[doc].astext()
                if doc in app.env.titles
                else chapter.replace("_", " ")
            )
            section += nodes.title(text=title)
            n_test = [c for c in claims if c["kind"] == "test" and c["passed"]]
            best = min((c["resolution"] for c in n_test), default=None)
            line = (
                f"{len(claims)} claim{'s' * (len(claims) != 1)}, "
                f"{len(n_test)} passing test{'s' * (len(n_test) != 1)}"
            )
            if best is not None:
                line += f"; the sharpest resolves a {_share(best)} error"
            section += nodes.paragraph(text=line + ".")
            section += _table(claims)
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
        "version": "1.0",
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
