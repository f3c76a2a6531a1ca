"""The verification ledger of the built book: every lecture page has a test
that could refute it, every page's claims are listed on the ledger page."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagination import claims

REPO = Path(__file__).resolve().parents[2]

CLAIMS = REPO / "_build" / "claims"
FIELDS = {
    "id",
    "chapter",
    "statement",
    "kind",
    "predicted",
    "measured",
    "resolution",
    "slack",
    "passed",
}


def _lectures():
    return sorted(p.stem for p in (REPO / "book").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def ledger(site):
    if not CLAIMS.is_dir():
        pytest.fail(
            f"no ledger at {CLAIMS}: the build did not execute the chapters"
        )
    return claims.load_pages(CLAIMS)


def test_every_page_wrote_well_formed_passing_claims(ledger):
    for page, data in ledger.items():
        assert data["page"] == page and data["claims"], f"{page}: no claims"
        for c in data["claims"]:
            assert FIELDS <= set(c), f"{page}: {c.get('id')} lacks fields"
            assert c["kind"] in claims.KINDS and c["chapter"] == page
            assert c["passed"], f"{page}: claim {c['id']} failed"


@pytest.mark.parametrize("stem", _lectures())
def test_each_lecture_has_a_passing_test_that_resolves_ten_percent(
    ledger, stem
):
    """The decisive test lives on the lecture page, not in a section."""
    page = ledger.get(stem)
    assert page, f"{stem} wrote no claims to the ledger"
    tests = [
        c
        for c in page["claims"]
        if c["kind"] == "test" and c["resolution"] is not None
    ]
    assert tests, f"{stem} has no test claim on its lecture page"
    best = min(c["resolution"] for c in tests)
    assert best <= 0.10, f"{stem}: its sharpest test resolves {best:.1%}"


def test_ledger_page_lists_every_claim_under_its_chapter(ledger, load_page):
    page = load_page("book/ledger.html")
    text = page.main().text()
    missing = [
        c["id"]
        for data in ledger.values()
        for c in data["claims"]
        if c["id"] not in text
    ]
    assert not missing, f"the ledger page omits {missing[:5]}"
    assert "FAIL" not in text
    sections = {e.attrs.get("id", "") for e in page.main().find_all("section")}
    for name in ledger:
        assert f"ledger-{name.replace('/', '-')}" in sections, name
