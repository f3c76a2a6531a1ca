"""The book build's guard on the ledger: stale, missing, renamed or failing
claims stop the build (``book/_ext/claims_ledger.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagination import claims

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))

import bootstrap  # noqa: E402
import claims_ledger  # noqa: E402


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A tiny book: one chapter and one section page, executed once."""
    monkeypatch.delenv("IMAGINATION_CLAIMS_DIR", raising=False)
    (tmp_path / "_config.yml").write_text("")
    (tmp_path / "_toc.yml").write_text("")
    chapter = tmp_path / "book" / "01_a.ipynb"
    section = tmp_path / "book" / "01_a" / "deeper.ipynb"
    section.parent.mkdir(parents=True)
    for nb in (chapter, section):
        nb.write_text(
            json.dumps({"cells": [{"cell_type": "code", "source": "x = 1"}]})
        )
    monkeypatch.chdir(chapter.parent)
    claims.Ledger("01_a").sanity("a1", "guard", passed=True)
    monkeypatch.chdir(section.parent)
    claims.Ledger("01_a/deeper").sanity("d1", "guard", passed=True)
    (tmp_path / "book" / "claims.yml").write_text(
        "01_a: [a1]\n01_a/deeper: [d1]\n"
    )
    return tmp_path


def _problems(root: Path) -> list[str]:
    return claims_ledger.problems(
        root, claims.load_pages(root / "_build" / "claims")
    )


def test_a_fresh_ledger_has_no_problems(book):
    assert _problems(book) == []


def test_a_changed_package_makes_every_page_stale(book, monkeypatch):
    monkeypatch.setattr(claims, "package_hash", lambda: "0" * 16)
    (found,) = _problems(book)
    assert "stale" in found and "01_a, 01_a/deeper" in found
    assert "make book-fresh" in found


def test_changed_page_code_makes_that_page_stale(book):
    nb = book / "book" / "01_a" / "deeper.ipynb"
    nb.write_text(
        json.dumps({"cells": [{"cell_type": "code", "source": "x = 2"}]})
    )
    (found,) = _problems(book)
    assert "stale" in found and "01_a/deeper" in found
    assert "01_a," not in found


def test_a_dropped_claim_or_page_is_an_error(book):
    (book / "book" / "claims.yml").write_text(
        "01_a: [a1, a2]\n01_a/deeper: [d1]\n01_b: [b1]\n"
    )
    found = _problems(book)
    assert any("01_a: claim ids differ" in f and "a2" in f for f in found)
    assert any(f.startswith("01_b: wrote no claims") for f in found)


def test_an_unlisted_page_and_a_failed_claim_are_errors(book, monkeypatch):
    (book / "book" / "claims.yml").write_text("01_a: [a1, a9]\n")
    monkeypatch.chdir(book / "book")
    with pytest.raises(claims.ClaimFailed):
        claims.Ledger("01_a").sanity("a9", "broken", passed=False)
    found = _problems(book)
    assert any("01_a/deeper: its claims are not listed" in f for f in found)
    assert any("claim a9 failed" in f for f in found)


def test_the_extension_raises_instead_of_warning(book):
    from sphinx.errors import ExtensionError

    class App:
        srcdir = str(book)

    (book / "book" / "claims.yml").write_text("01_a: [a1]\n")

    class Doc:
        def findall(self, _):
            return [claims_ledger.ledger_placeholder()]

    with pytest.raises(ExtensionError, match="01_a/deeper"):
        claims_ledger._resolve(App(), Doc(), "book/ledger")


def test_committed_ids_cover_every_page_with_a_ledger():
    """Every notebook page that opens a Ledger is listed in book/claims.yml."""
    listed = claims_ledger.expected_ids(ROOT)
    for nb in bootstrap.notebooks():
        if "claims.Ledger(" in nb.read_text():
            page = nb.relative_to(ROOT / "book").with_suffix("").as_posix()
            assert page in listed, f"{page} is not in book/claims.yml"


def test_the_cli_prints_the_ids(book):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "ledger.py"),
            "--claims",
            str(book / "_build" / "claims"),
            "ids",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "01_a:\n- a1\n01_a/deeper:\n- d1" in proc.stdout
