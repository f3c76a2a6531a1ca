"""Static checks of the built HTML: launch links, math, figures, errors, references, buttons.

Run after ``jupyter-book build .`` (``make test-site``); skipped when no build exists.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import pytest

# Roles whose unresolved references Sphinx leaves as a bare ``xref`` element (no link around it).
CHECKED_ROLES = {
    "std-ref",
    "std-numref",
    "std-doc",
    "std-term",
    "eq",
    "prf-ref",
    "std-label",
}
IMAGE_SUFFIX = re.compile(r"\.(png|svg|jpe?g|gif|pdf)$", re.IGNORECASE)
TRACEBACK_TEXT = re.compile(
    r"Traceback \(most recent call last\)|-{20,}\s*\n?\s*\w*(Error|Exception)\s+Traceback"
)


def _math_elements(root):
    return [
        e
        for e in root.iter()
        if e.tag in ("span", "div") and "math" in e.classes
    ]


def _has_mathjax(page) -> bool:
    return any(
        "mathjax" in s.attrs.get("src", "").lower()
        for s in page.root.find_all("script")
    )


def test_index_page_leads_to_the_intro(site, load_page, toc_files):
    index = load_page("index.html")
    root_html = toc_files[0] + ".html"
    refresh = [
        m
        for m in index.root.find_all("meta")
        if m.attrs.get("http-equiv", "").lower() == "refresh"
    ]
    if (
        refresh
    ):  # jupyter-book writes index.html as a redirect to the root document
        target = (
            refresh[0].attrs.get("content", "").split("url=", 1)[-1].strip()
        )
        assert target == root_html, (
            f"index.html redirects to {target!r}, not to {root_html!r}"
        )
    assert (site / root_html).is_file(), (
        f"the root page {root_html} was not built"
    )
    intro = load_page(root_html)
    assert intro.root.find_all("h1"), f"{root_html} has no <h1> title"


def test_every_toc_entry_is_built(site, toc_files):
    missing = [f for f in toc_files if not (site / f"{f}.html").is_file()]
    assert not missing, f"pages listed in _toc.yml but not built: {missing}"


def test_chapter_has_colab_launch_link(chapter_page):
    notebook = "/" + re.sub(r"\.html$", ".ipynb", chapter_page.name)
    hrefs = [a.attrs.get("href", "") for a in chapter_page.links()]
    colab = [h for h in hrefs if "colab.research.google.com" in h]
    assert colab, (
        f"{chapter_page.name}: no Colab launch link (check launch_buttons/repository in _config.yml)"
    )
    assert any(h.endswith(notebook) for h in colab), (
        f"{chapter_page.name}: Colab links {colab} do not open the chapter's notebook {notebook}"
    )


def test_chapter_has_math_and_loads_mathjax(chapter_page):
    maths = _math_elements(chapter_page.main())
    assert maths, (
        f"{chapter_page.name}: no math (span/div with class 'math') on the page"
    )
    assert _has_mathjax(chapter_page), (
        f"{chapter_page.name}: math on the page but no MathJax <script>"
    )


def test_pages_with_math_load_mathjax(any_page):
    if _math_elements(any_page.main()):
        assert _has_mathjax(any_page), (
            f"{any_page.name}: math on the page but no MathJax <script>"
        )


def test_no_raw_tex_outside_math(any_page, raw_tex):
    leftovers = raw_tex(any_page.main())
    assert not leftovers, (
        f"{any_page.name}: TeX shown as text (not parsed as math): {leftovers[:5]}"
    )


def test_chapter_has_captioned_figures_with_alt_text(chapter_page):
    main = chapter_page.main()
    figures = [f for f in main.find_all("figure") if f.find_all("img")]
    assert figures, (
        f"{chapter_page.name}: no figure (<figure> with an <img>) on the page"
    )
    for figure in figures:
        ident = figure.attrs.get("id", "?")
        for img in figure.find_all("img"):
            alt = img.attrs.get("alt", "").strip()
            assert alt and not IMAGE_SUFFIX.search(alt), (
                f"{chapter_page.name}: figure {ident} has no alt text (got {alt!r}); add :alt: to glue:figure"
            )
        captions = figure.find_all("figcaption")
        assert captions and captions[0].text().strip(), (
            f"{chapter_page.name}: figure {ident} has no caption"
        )


def test_chapter_images_have_alt_text(chapter_page):
    """Images outside figures (a figure displayed straight from a cell) need alt text too."""
    bad = [
        img.attrs.get("src", "?")
        for img in chapter_page.main().find_all("img")
        if not img.attrs.get("alt", "").strip()
        or IMAGE_SUFFIX.search(img.attrs.get("alt", ""))
    ]
    assert not bad, (
        f"{chapter_page.name}: images without alt text (glue them as figures): {bad}"
    )


def test_chapter_outputs_have_no_errors(notebook_page):
    chapter_page = notebook_page
    main = chapter_page.main()
    bad_outputs = [
        " ".join(sorted(e.classes))
        for e in main.iter()
        if "output" in e.classes
        and e.classes & {"traceback", "error", "stderr"}
    ]
    assert not bad_outputs, (
        f"{chapter_page.name}: error/stderr outputs on the page: {bad_outputs}"
    )
    text = main.text()
    match = TRACEBACK_TEXT.search(text)
    assert match is None, (
        f"{chapter_page.name}: a traceback is printed: ...{text[max(0, match.start() - 80) : match.end() + 80]}..."
    )


MIN_EXERCISES = 3


def _exercises(page):
    main = page.main()
    exercises = [
        e for e in main.iter() if {"exercise", "admonition"} <= e.classes
    ]
    solutions = [
        e for e in main.iter() if {"solution", "admonition"} <= e.classes
    ]
    solved = {
        a.attrs.get("href", "").lstrip("#")
        for sol in solutions
        for title in sol.find_all(cls="admonition-title")
        for a in title.find_all("a")
    }
    unsolved = [
        e.attrs.get("id", "?")
        for e in exercises
        if e.attrs.get("id") not in solved
    ]
    coded = [sol for sol in solutions if sol.find_all(cls="cell")]
    return exercises, unsolved, coded


def test_chapter_has_exercises_with_solutions(chapter_page, load_page):
    """The lecture ends with exercises; with its section pages, a chapter has at least three,
    each with a solution, and at least one solution runs code."""
    lecture, unsolved, coded = _exercises(chapter_page)
    assert lecture, f"{chapter_page.name}: the lecture page has no exercise"
    total = len(lecture)
    folder = chapter_page.path.with_suffix("")
    for section in sorted(folder.glob("*.html")) if folder.is_dir() else []:
        page = load_page(
            section.relative_to(chapter_page.path.parents[1]).as_posix()
        )
        found, missing, code = _exercises(page)
        total += len(found)
        unsolved += missing
        coded += code
    assert total >= MIN_EXERCISES, (
        f"{chapter_page.name}: {total} exercises with its section pages, "
        f"fewer than {MIN_EXERCISES}"
    )
    assert not unsolved, (
        f"{chapter_page.name}: exercises without a solution: {unsolved}"
    )
    assert coded, (
        f"{chapter_page.name}: no solution runs code (a coding exercise is required)"
    )


def test_references_resolve(any_page):
    unresolved = []
    for e in any_page.root.iter():
        if "xref" not in e.classes or any(a.tag == "a" for a in e.ancestors()):
            continue
        text = e.text().strip()
        role_classes = e.classes & CHECKED_ROLES
        own_code = any(
            c.startswith("py-") for c in e.classes
        ) and text.startswith("imagination")
        if role_classes or own_code:
            unresolved.append(f"{' '.join(sorted(e.classes))}: {text}")
    for cite in any_page.root.find_all(cls="bibtex-citation"):
        if not cite.find_all("a"):
            unresolved.append(f"citation: {cite.text().strip()}")
    assert not unresolved, (
        f"{any_page.name}: unresolved references: {unresolved}"
    )


def test_no_docutils_error_markup(any_page):
    """Markup docutils could not parse (e.g. in a docstring) is shown as 'problematic' text."""
    bad = [
        e.text().strip()[:80] or " ".join(sorted(e.classes))
        for e in any_page.root.iter()
        if e.classes & {"problematic", "system-message"}
    ]
    assert not bad, f"{any_page.name}: markup that failed to parse: {bad[:5]}"


def test_internal_links_and_anchors_exist(any_page, load_page, site):
    broken = []
    for a in any_page.links():
        href = a.attrs.get("href", "")
        parts = urlsplit(href)
        if (
            not href
            or parts.scheme
            or parts.netloc
            or href.startswith("javascript:")
        ):
            continue
        path = unquote(parts.path)
        target = (
            (any_page.path.parent / path).resolve() if path else any_page.path
        )
        if path.endswith("/"):
            target = target / "index.html"
        if not target.exists():
            broken.append(href)
            continue
        if (
            parts.fragment
            and target.suffix == ".html"
            and site in target.parents
        ):
            ids = _ids(load_page(target.relative_to(site).as_posix()))
            if unquote(parts.fragment) not in ids:
                broken.append(href)
    assert not broken, (
        f"{any_page.name}: links to missing files or anchors: {sorted(set(broken))}"
    )


def _ids(page) -> set[str]:
    cached = getattr(page, "_ids", None)
    if cached is None:
        cached = {e.attrs["id"] for e in page.root.iter() if "id" in e.attrs}
        cached |= {
            e.attrs["name"]
            for e in page.root.find_all("a")
            if "name" in e.attrs
        }
        page._ids = cached
    return cached


def test_chapter_has_repository_issue_and_download_buttons(chapter_page):
    links = chapter_page.links()

    def with_class(cls):
        return [a for a in links if cls in a.classes] + [
            b for b in chapter_page.root.find_all("button") if cls in b.classes
        ]

    repo = with_class("btn-source-repository-button")
    assert repo and repo[0].attrs.get("href", "").startswith("https://"), (
        f"{chapter_page.name}: no repository button (html.use_repository_button / repository.url)"
    )
    issues = with_class("btn-source-issues-button")
    assert issues and "/issues" in issues[0].attrs.get("href", ""), (
        f"{chapter_page.name}: no issues button"
    )
    source = with_class("btn-download-source-button")
    assert source, f"{chapter_page.name}: no button to download the notebook"
    href = source[0].attrs.get("href", "")
    assert href.endswith(".ipynb"), (
        f"{chapter_page.name}: the download button links {href!r}, not a notebook"
    )
    assert (chapter_page.path.parent / unquote(href)).resolve().is_file(), (
        f"{chapter_page.name}: the downloadable notebook {href} is missing from the site"
    )
    assert with_class("btn-download-pdf-button"), (
        f"{chapter_page.name}: no print-to-PDF button"
    )


@pytest.mark.parametrize(
    "page, anchor",
    [
        ("book/teaching.html", "teaching"),
        ("book/notation.html", "notation"),
        ("book/api.html", "api"),
        ("book/execution_times.html", "execution-times"),
        ("book/bibliography.html", "bibliography"),
    ],
)
def test_appendix_pages_exist(page, anchor, load_page):
    assert anchor in _ids(load_page(page)), (
        f"{page}: no anchor for the label ({anchor})="
    )


def test_api_page_documents_the_package(load_page):
    api = load_page("book/api.html")
    documented = {
        e.attrs["id"]
        for e in api.root.find_all("dt")
        if e.attrs.get("id", "").startswith("imagination.")
    }
    for name in (
        "imagination.rollout.rollout",
        "imagination.rollout.make_rollout",
        "imagination.device.mc_size",
    ):
        assert name in documented, f"book/api.html does not document {name}"


def test_bibliography_lists_every_cited_key(load_page, site):
    bib = load_page("book/bibliography.html")
    entries = {
        e.attrs["id"]
        for e in bib.root.iter()
        if "citation" in e.classes and "id" in e.attrs
    }
    assert entries, "book/bibliography.html lists no references"
    # Every citation anywhere in the book must link to an entry of the bibliography page.
    stray = set()
    for path in sorted(site.glob("book/*.html")):
        for cite in load_page(path.relative_to(site).as_posix()).root.find_all(
            cls="bibtex-citation"
        ):
            for a in cite.find_all("a"):
                href = a.attrs.get("href", "")
                page_part, _, anchor = href.partition("#")
                target = page_part or path.name
                if target != "bibliography.html" or anchor not in entries:
                    stray.add(f"{path.name}: {href}")
    assert not stray, (
        f"citations that do not link to a bibliography entry: {sorted(stray)[:5]}"
    )
