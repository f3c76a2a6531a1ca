"""Shared fixtures for the tests of the *built* book (``_build/html``).

These tests run after ``jupyter-book build .``; ``make test-site`` runs them. They look for the
site in ``$IMAGINATION_SITE`` when that is set, else in ``<repository>/_build/html``, and skip
with a clear message when no site is there. The book's sources (for ``_toc.yml``) are taken from
``$IMAGINATION_BOOK`` when set, else from the repository root.

The HTML is parsed with the standard library only (``html.parser``) into a small element tree;
:class:`Page` offers the few queries the tests need.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE = Path(
    os.environ.get("IMAGINATION_SITE") or REPO / "_build" / "html"
).resolve()
BOOK = Path(os.environ.get("IMAGINATION_BOOK") or REPO).resolve()
#: Pages whose file name looks like ``book/NN_name.html`` are chapters (lecture pages).
CHAPTER_GLOB = "book/[0-9][0-9]_*.html"
#: A chapter's section pages: ``book/NN_name/<section>.html``.
SECTION_GLOB = "book/[0-9][0-9]_*/*.html"
SKIP_MESSAGE = (
    f"book not built: no {SITE / 'index.html'}; run `make book` first"
)


def site_built() -> bool:
    return (SITE / "index.html").is_file()


def chapter_paths() -> list[Path]:
    return sorted(SITE.glob(CHAPTER_GLOB)) if site_built() else []


def notebook_paths() -> list[Path]:
    """Lecture pages and their section pages."""
    if not site_built():
        return []
    return sorted([*SITE.glob(CHAPTER_GLOB), *SITE.glob(SECTION_GLOB)])


def html_paths() -> list[Path]:
    """Every HTML page of the site except the ``_static`` / ``_sources`` trees."""
    if not site_built():
        return []
    return sorted(
        p
        for p in SITE.rglob("*.html")
        if not p.relative_to(SITE).parts[0].startswith("_")
    )


def _asked_for(config) -> bool:
    """True when the command line names this folder (or a file in it), as ``make test-site`` does.

    ``pytest tests`` (the unit tests, run *before* the book is built) would otherwise check a stale
    site left by an earlier build.
    """
    here = Path(__file__).parent.resolve()
    for arg in config.args:
        path = Path(str(arg).split("::", 1)[0])
        path = (
            path
            if path.is_absolute()
            else Path(config.invocation_params.dir) / path
        ).resolve()
        if path == here or here in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent.resolve()
    mine = [
        item
        for item in items
        if here in Path(str(item.fspath)).resolve().parents
    ]
    if not mine:
        return
    if not _asked_for(config):
        reason = "site tests run only when asked for: `pytest tests/site` (make test-site), after `make book`"
    elif not site_built():
        reason = SKIP_MESSAGE
    else:
        return
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=reason))


def pytest_generate_tests(metafunc):
    """Parametrize ``chapter`` over the chapter pages and ``html_page`` over every page."""
    for name, paths in (
        ("chapter", chapter_paths),
        ("notebook", notebook_paths),
        ("html_page", html_paths),
    ):
        if name in metafunc.fixturenames:
            found = paths()
            # An empty list would silently skip; a built site without pages must fail instead.
            params = (
                [p.relative_to(SITE).as_posix() for p in found]
                if found
                else ["<none found>"]
            )
            metafunc.parametrize(name, params, ids=params)


# --------------------------------------------------------------------------------------------
# A tiny DOM built with html.parser
# --------------------------------------------------------------------------------------------

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "param",
    "source",
    "track",
    "wbr",
}


class Element:
    """An HTML element: tag, attributes, parent, children (elements and text strings)."""

    __slots__ = ("tag", "attrs", "parent", "children")

    def __init__(
        self, tag: str, attrs: dict[str, str], parent: "Element | None"
    ):
        self.tag = tag
        self.attrs = attrs
        self.parent = parent
        self.children: list["Element | str"] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self):
        """This element and all its descendants, depth first."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(
        self, tag: str | None = None, cls: str | None = None
    ) -> list["Element"]:
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag)
            and (cls is None or cls in e.classes)
        ]

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def text(self, skip: frozenset[str] = frozenset()) -> str:
        """Concatenated text of the subtree, leaving out subtrees whose tag is in ``skip``."""
        parts: list[str] = []

        def walk(node: Element) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                elif child.tag not in skip:
                    walk(child)

        walk(self)
        return "".join(parts)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        attrs = " ".join(f'{k}="{v}"' for k, v in self.attrs.items())
        return f"<{self.tag} {attrs}>"


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: (v or "") for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(
            Element(tag, {k: (v or "") for k, v in attrs}, self.current)
        )

    def handle_endtag(self, tag):
        # Close up to the matching open element; ignore stray end tags.
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse_html(source: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(source)
    builder.close()
    return builder.root


class Page:
    """A built page: its path, raw HTML and parsed tree."""

    def __init__(self, path: Path, html: str | None = None):
        self.path = path
        self.html = path.read_text(encoding="utf-8") if html is None else html
        self.root = parse_html(self.html)

    @property
    def name(self) -> str:
        return (
            self.path.relative_to(SITE).as_posix()
            if SITE in self.path.parents
            else str(self.path)
        )

    def main(self) -> Element:
        """The article body (``<main>``), or the whole document if the theme has none."""
        mains = self.root.find_all("main")
        return mains[0] if mains else self.root

    def links(self) -> list[Element]:
        return self.root.find_all("a")


# Text that is code, not prose: never searched for raw TeX.
CODE_TAGS = frozenset(
    {"pre", "code", "script", "style", "textarea", "kbd", "samp", "svg"}
)

_RAW_TEX = re.compile(
    r"\\\(|\\\[|\$\$|\\begin\{|"  # MathJax delimiters or environments left as text
    r"(?<![\w$])\$[^$\s][^$\n]*\\[A-Za-z]+[^$\n]*\$"  # $...\command...$ that MyST did not parse
)


def raw_tex(element: Element) -> list[str]:
    """Snippets of TeX that sit in ordinary text (outside math and code elements).

    Math that MyST parsed sits in ``span``/``div`` elements with class ``math``; MathJax typesets
    those. TeX anywhere else is shown to readers as source.
    """
    found: list[str] = []

    def is_math(node) -> bool:
        return isinstance(node, Element) and (
            "math" in node.classes or node.tag.startswith("mjx-")
        )

    def walk(node: Element) -> None:
        kids = node.children
        for i, child in enumerate(kids):
            if isinstance(child, str):
                for m in _RAW_TEX.finditer(child):
                    found.append(
                        child[max(0, m.start() - 30) : m.end() + 30].strip()
                    )
                # "$$ x $$ (label)" that MyST read as inline math leaves a "$" on each side of it.
                before = (
                    i > 0 and is_math(kids[i - 1]) and child.startswith("$")
                )
                after = (
                    i + 1 < len(kids)
                    and is_math(kids[i + 1])
                    and child.endswith("$")
                )
                if before or after:
                    found.append(
                        f"stray '$' next to a formula: {child.strip()[:60]!r}"
                    )
            elif child.tag in CODE_TAGS or is_math(child):
                continue
            else:
                walk(child)

    walk(element)
    return found


@pytest.fixture(name="parse_html", scope="session")
def parse_html_fixture():
    """The :func:`parse_html` function: ``parse_html(source) -> Element``."""
    return parse_html


@pytest.fixture(name="raw_tex", scope="session")
def raw_tex_fixture():
    """The :func:`raw_tex` function (tests cannot import this conftest module by name)."""
    return raw_tex


@pytest.fixture(scope="session")
def site() -> Path:
    if not site_built():
        pytest.skip(SKIP_MESSAGE)
    return SITE


@pytest.fixture(scope="session")
def build_dir(site) -> Path:
    """``_build``: the folder holding ``html`` (and the execution cache)."""
    return site.parent


_PAGES: dict[Path, Page] = {}


@pytest.fixture(scope="session")
def load_page(site):
    """``load_page("book/intro.html") -> Page`` (parsed once per session)."""

    def load(relpath: str) -> Page:
        path = (site / relpath).resolve()
        if not path.is_file():
            pytest.fail(f"{relpath} is missing from the built site {site}")
        if path not in _PAGES:
            _PAGES[path] = Page(path)
        return _PAGES[path]

    return load


@pytest.fixture
def chapter_page(chapter, load_page) -> Page:
    if chapter == "<none found>":
        pytest.fail(
            f"no chapter pages ({CHAPTER_GLOB}) in the built site {SITE}"
        )
    return load_page(chapter)


@pytest.fixture
def notebook_page(notebook, load_page) -> Page:
    """A lecture page or one of its section pages."""
    if notebook == "<none found>":
        pytest.fail(
            f"no chapter pages ({CHAPTER_GLOB}) in the built site {SITE}"
        )
    return load_page(notebook)


@pytest.fixture
def any_page(html_page, load_page) -> Page:
    if html_page == "<none found>":
        pytest.fail(f"no HTML pages in the built site {SITE}")
    return load_page(html_page)


@pytest.fixture(scope="session")
def toc_files() -> list[str]:
    """Document paths (no suffix) listed in the book's ``_toc.yml``, root first."""
    yaml = pytest.importorskip(
        "yaml", reason="pyyaml (test extra) is needed to read _toc.yml"
    )
    toc_path = BOOK / "_toc.yml"
    if not toc_path.is_file():
        pytest.skip(
            f"no _toc.yml in {BOOK} (set IMAGINATION_BOOK to the book's root)"
        )
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(md|ipynb|rst)$", "", f) for f in files]
