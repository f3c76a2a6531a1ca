"""The verification ledger of the built book: every chapter has a test that could refute it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CLAIMS = REPO / "_build" / "claims"
KINDS = {"test", "bound", "consistency", "sanity"}
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


def _chapters():
    return sorted(p.stem for p in (REPO / "book").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def ledger(site):
    if not CLAIMS.is_dir():
        pytest.fail(
            f"no ledger at {CLAIMS}: the build did not execute the chapters"
        )
    return {p.stem: json.loads(p.read_text()) for p in CLAIMS.glob("*.json")}


@pytest.mark.parametrize("stem", _chapters())
def test_chapter_has_a_passing_test_that_resolves_ten_percent(ledger, stem):
    chapter = stem
    claims = ledger.get(chapter)
    assert claims, f"{chapter} wrote no claims to the ledger"
    for c in claims:
        assert FIELDS <= set(c), (
            f"{chapter}: claim {c.get('id')} lacks {FIELDS - set(c)}"
        )
        assert c["kind"] in KINDS and c["chapter"] == chapter
        assert c["passed"], f"{chapter}: claim {c['id']} failed"
    tests = [
        c
        for c in claims
        if c["kind"] == "test" and c["resolution"] is not None
    ]
    assert tests, f"{chapter} has no test claim"
    best = min(c["resolution"] for c in tests)
    assert best <= 0.10, (
        f"{chapter}: its sharpest test resolves only {best:.1%}"
    )


def test_ledger_page_lists_every_claim(ledger, load_page):
    page = load_page("book/ledger.html")
    text = page.main().text()
    missing = [
        c["id"]
        for claims in ledger.values()
        for c in claims
        if c["id"] not in text
    ]
    assert not missing, f"the ledger page omits {missing[:5]}"
    assert "FAIL" not in text
