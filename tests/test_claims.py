"""The claims ledger: tests that cannot fail are refused, failures raise."""

import json

import numpy as np
import pytest

from imagination import claims


@pytest.fixture
def ledger(tmp_path):
    return claims.Ledger("99_example", directory=tmp_path)


def test_a_test_claim_records_its_resolution_and_is_written(ledger, tmp_path):
    c = ledger.test(
        "mc", "mean matches", predicted=2.0, measured=2.01, se=0.01
    )
    # tol = 4 * 0.01 = 0.04; resolution = (0.04 + 0.01) / 2
    assert c.passed and c.resolution == pytest.approx(0.025)
    data = json.loads((tmp_path / "99_example.json").read_text())
    assert [d["id"] for d in data] == ["mc"]
    assert set(data[0]) >= {
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


def test_a_test_that_cannot_resolve_ten_percent_is_refused(ledger):
    # se so large that a 10% error in the prediction would pass unnoticed
    with pytest.raises(ValueError, match="cannot be a test"):
        ledger.test("weak", "too noisy", predicted=1.0, measured=1.0, se=0.05)
    # a loose comparison dressed as a test: rtol of 50 %
    with pytest.raises(ValueError, match="cannot be a test"):
        ledger.test("slack", "loose", predicted=1.0, measured=0.6, rtol=0.5)
    assert ledger.claims == []


def test_the_check_fails_when_the_prediction_is_off_by_its_resolution(ledger):
    p = np.array([1.0, 2.0, 4.0])
    m = p * (1 + np.array([0.001, -0.002, 0.0005]))
    c = ledger.test("arr", "array", predicted=p, measured=m, rtol=0.01)
    r = c.resolution
    for sign in (1, -1):
        bad = p * (1 + sign * r * 1.0001)
        tol = 0.01 * np.abs(bad)
        assert np.any(np.abs(m - bad) > tol)
    # and a little inside the resolution it can still pass for this element
    assert r < 0.02


def test_a_failing_test_is_written_then_raises(ledger, tmp_path):
    with pytest.raises(claims.ClaimFailed, match="wrong"):
        ledger.test(
            "wrong", "a wrong formula", predicted=1.0, measured=1.3, se=0.01
        )
    data = json.loads((tmp_path / "99_example.json").read_text())
    assert data[0]["passed"] is False


def test_nan_measurement_fails(ledger):
    with pytest.raises(claims.ClaimFailed):
        ledger.test(
            "nan",
            "nan",
            predicted=[1.0, 2.0],
            measured=[1.0, np.nan],
            rtol=1e-3,
        )


def test_zero_predictions_cannot_resolve_relative_errors(ledger):
    with pytest.raises(ValueError, match="cannot be a test"):
        ledger.test("zero", "zero", predicted=0.0, measured=0.0, atol=1e-6)


def test_bound_records_smallest_slack(ledger):
    c = ledger.bound("b", "holds", bound=[10.0, 4.0], measured=[1.0, 2.0])
    assert c.passed and c.slack == pytest.approx(2.0)
    with pytest.raises(claims.ClaimFailed):
        ledger.bound("b2", "violated", bound=1.0, measured=1.5)


def test_consistency_and_sanity(ledger):
    assert ledger.consistency(
        "c", "same", a=[1.0, 2.0], b=[1.0, 2.0 + 1e-12]
    ).passed
    with pytest.raises(claims.ClaimFailed):
        ledger.consistency("c2", "differ", a=1.0, b=1.1)
    assert ledger.sanity("s", "guard", passed=True).passed
    with pytest.raises(claims.ClaimFailed):
        ledger.sanity("s2", "broken", passed=[True, False])
    assert ledger.counts() == {
        "test": 0,
        "bound": 0,
        "consistency": 2,
        "sanity": 2,
    }


def test_rerunning_a_cell_replaces_its_claim(ledger):
    ledger.sanity("s", "guard", passed=True)
    ledger.sanity("s", "guard", passed=True)
    assert len(ledger.claims) == 1


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"predicted": "x", "measured": 1.0}, "predicted"),
        ({"predicted": 1.0, "measured": 1.0, "z": -1}, "z"),
        ({"predicted": 1.0, "measured": 1.0, "se": -1.0}, "se"),
        ({"predicted": [1.0, 2.0], "measured": [1.0, 2.0, 3.0]}, "broadcast"),
        ({"predicted": np.inf, "measured": 1.0, "rtol": 0.01}, "predicted"),
    ],
)
def test_bad_input_names_the_parameter(ledger, kwargs, name):
    with pytest.raises(ValueError, match=name):
        ledger.test("x", "bad", **kwargs)


def test_bad_ids_and_chapters(tmp_path):
    with pytest.raises(ValueError, match="chapter"):
        claims.Ledger("", directory=tmp_path)
    with pytest.raises(ValueError, match="id"):
        claims.Ledger("c", directory=tmp_path).sanity("", "s", passed=True)


def test_claims_dir_finds_the_book_root(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGINATION_CLAIMS_DIR", raising=False)
    (tmp_path / "_config.yml").write_text("")
    (tmp_path / "_toc.yml").write_text("")
    (tmp_path / "book").mkdir()
    assert (
        claims.claims_dir(tmp_path / "book") == tmp_path / "_build" / "claims"
    )
    assert claims.claims_dir("/") is None
    monkeypatch.setenv("IMAGINATION_CLAIMS_DIR", str(tmp_path / "x"))
    assert claims.claims_dir() == tmp_path / "x"


def test_load_reads_every_chapter(tmp_path):
    claims.Ledger("01_a", directory=tmp_path).sanity("s", "g", passed=True)
    claims.Ledger("02_b", directory=tmp_path).bound(
        "b", "g", bound=2, measured=1
    )
    assert [c["chapter"] for c in claims.load(tmp_path)] == ["01_a", "02_b"]


def test_summary_is_a_markdown_table(ledger):
    ledger.test("mc", "mean matches", predicted=2.0, measured=2.0, se=0.01)
    md = ledger.summary().data
    assert md.startswith("| claim |") and "resolves" in md


def test_a_copy_run_elsewhere_never_overwrites_the_ledger(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("IMAGINATION_CLAIMS_DIR", raising=False)
    (tmp_path / "_config.yml").write_text("")
    (tmp_path / "_toc.yml").write_text("")
    book = tmp_path / "book"
    book.mkdir()
    (book / "03_x.ipynb").write_text("{}")
    monkeypatch.chdir(book)
    assert (
        claims.Ledger("03_x").path
        == tmp_path / "_build" / "claims" / "03_x.json"
    )
    elsewhere = tmp_path / "_build" / "assignments"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert claims.Ledger("03_x").path is None


@pytest.mark.parametrize("rtol", [1e-9, 1e-6, 1e-4, 0.02])
def test_deterministic_tests_with_rtol_are_accepted_and_can_fail(ledger, rtol):
    """The tolerance scales with the prediction; the resolution accounts for it."""
    p = np.array([0.5, -2.0, 3.0])
    c = ledger.test(
        f"r{rtol}", "rtol", predicted=p, measured=p * (1 + rtol / 2), rtol=rtol
    )
    for sign in (1, -1):
        bad = p * (1 + sign * c.resolution * 1.000001)
        assert np.any(np.abs(p * (1 + rtol / 2) - bad) > rtol * np.abs(bad))
    assert c.resolution < 3 * rtol + 1e-12


def test_a_claim_shows_as_one_short_line(ledger):
    c = ledger.test(
        "ch9-noise-term", "x", predicted=2.0, measured=2.0, se=0.01
    )
    assert repr(c) == "<test ch9-noise-term: pass, resolves 0.02>"
    b = ledger.bound("b", "y", bound=3.0, measured=1.0)
    assert repr(b) == "<bound b: pass, slack 3x>"
