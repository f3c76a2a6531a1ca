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
    assert data["page"] == "99_example"
    assert data["package"] == claims.package_hash()
    data = data["claims"]
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
    data = json.loads((tmp_path / "99_example.json").read_text())["claims"]
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
        "search": 0,
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
    assert repr(c) == "<test ch9-noise-term: pass, resolves 2.0%>"
    b = ledger.bound("b", "y", bound=3.0, measured=1.0)
    assert repr(b) == "<bound b: pass, slack 3x>"


def test_a_vector_test_is_judged_by_its_worst_element(ledger):
    """One sharp element no longer lends its resolution to the others."""
    p = np.array([1.0, 1.0])
    m = np.array([1.0, 1.0])
    se = np.array([0.001, 0.02])  # resolves 0.4% and 8%
    c = ledger.test("vec", "two elements", predicted=p, measured=m, se=se)
    assert c.resolution == pytest.approx(0.08)
    # the ledger shows the decisive element: the weak one
    assert c.se == pytest.approx(0.02) and c.extra["element"] == 1
    # an error of that size in the weak element alone is detected ...
    bad = p.copy()
    bad[1] *= 1 + c.resolution * 1.001
    assert np.any(np.abs(m - bad) > 4 * se)
    # ... and a weak element above 10% refuses the whole test
    with pytest.raises(ValueError, match="worst element"):
        ledger.test("vec2", "weak", predicted=p, measured=m, se=[0.001, 0.05])
    assert claims.resolution(p, m, se=se) == pytest.approx(0.08)


def test_a_search_records_its_power_and_refuses_one_without(ledger):
    c = ledger.search(
        "worst",
        "the bound holds over the class",
        ratio=0.97,
        where="L = 0.9, H = 12",
        family="1-d maps with Lipschitz constant at most L",
        budget={"restarts": 64, "steps": 200},
        wrong_bounds={"drop (1 + L_pi)": 1.8, "L^t": 0.7},
    )
    assert c.passed and c.extra["refuted"] == ["drop (1 + L_pi)"]
    assert repr(c) == (
        "<search worst: pass, worst ratio 0.97, refutes 1/2 wrong bounds>"
    )
    with pytest.raises(ValueError, match="refutes none"):
        ledger.search(
            "weak",
            "x",
            ratio=0.5,
            where="w",
            family="f",
            budget="1 restart",
            wrong_bounds={"a": 0.9, "b": 1.0},
        )
    with pytest.raises(claims.ClaimFailed):
        ledger.search(
            "broken",
            "x",
            ratio=1.01,
            where="w",
            family="f",
            budget="b",
            wrong_bounds={"a": 2.0},
        )
    with pytest.raises(ValueError, match="wrong_bounds"):
        ledger.search(
            "x",
            "x",
            ratio=0.5,
            where="w",
            family="f",
            budget="b",
            wrong_bounds={},
        )


def test_section_pages_write_to_a_subfolder(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGINATION_CLAIMS_DIR", raising=False)
    (tmp_path / "_config.yml").write_text("")
    (tmp_path / "_toc.yml").write_text("")
    section = tmp_path / "book" / "03_x"
    section.mkdir(parents=True)
    nb = section / "deeper.ipynb"
    nb.write_text(
        json.dumps({"cells": [{"cell_type": "code", "source": "1"}]})
    )
    monkeypatch.chdir(section)
    led = claims.Ledger("03_x/deeper")
    assert led.path == tmp_path / "_build" / "claims" / "03_x" / "deeper.json"
    led.sanity("s", "g", passed=True)
    pages = claims.load_pages(tmp_path / "_build" / "claims")
    assert list(pages) == ["03_x/deeper"]
    assert pages["03_x/deeper"]["notebook"] == claims.notebook_hash(nb)
    with pytest.raises(ValueError, match="chapter"):
        claims.Ledger("03_x/../y", directory=tmp_path)


def test_notebook_hash_ignores_markdown(tmp_path):
    a, b = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    code = {"cell_type": "code", "source": ["x = 1\n", "y = 2"]}
    a.write_text(json.dumps({"cells": [code]}))
    b.write_text(
        json.dumps({"cells": [{"cell_type": "markdown", "source": "t"}, code]})
    )
    assert claims.notebook_hash(a) == claims.notebook_hash(b)
    code["source"] = "x = 2"
    b.write_text(json.dumps({"cells": [code]}))
    assert claims.notebook_hash(a) != claims.notebook_hash(b)


@pytest.mark.parametrize(
    "r, text", [(0.025, "2.5%"), (3e-6, "0.0003%"), (1.5e-9, "1.5e-07%")]
)
def test_share_reads_below_a_tenth_of_a_percent(r, text):
    assert claims.share(r) == text
