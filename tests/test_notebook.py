"""Notebook helpers: glue without myst-nb, tables, the house figure style."""

import importlib
import sys

import numpy as np
import pytest

from imagination import notebook, plotting


def test_glue_works_without_myst_nb(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import fails
    nb = importlib.reload(notebook)
    try:
        assert not nb.HAS_MYST_NB
        nb.glue("x", np.float32(1.5), display=False)
        nb.glue_all({"a": 1, "b": np.int64(2)}, prefix="ch-")
        nb.glue("y", 2.5)  # displayed: printed outside IPython
        assert "2.5" in capsys.readouterr().out
    finally:
        monkeypatch.undo()
        importlib.reload(notebook)


def test_glue_rejects_bad_names_and_mappings():
    with pytest.raises(ValueError, match="name"):
        notebook.glue("", 1.0)
    with pytest.raises(ValueError, match="values"):
        notebook.glue_all([("a", 1)])


def test_table_renders_markdown():
    md = notebook.table(
        [("a", 1.23456, 3), ("b|c", np.float32(2.0), 4)],
        ["name", "$x$", "n"],
        floatfmt=[".3g", ".2f", ".3g"],
    ).data
    lines = md.splitlines()
    assert lines[0] == "| name | $x$ | n |"
    assert lines[2] == "| a | 1.23 | 3 |"
    assert r"b\|c" in lines[3]
    with pytest.raises(ValueError, match="rows"):
        notebook.table([(1, 2)], ["a"])
    with pytest.raises(ValueError, match="floatfmt"):
        notebook.table([(1,)], ["a"], floatfmt=[".2f", ".2f"])


def test_house_figures_fit_the_column():
    fig, axes = plotting.figure(2)
    w, h = fig.get_size_inches()
    assert w == plotting.COLUMN_WIDTH and h == pytest.approx(5.6)
    assert len(axes) == 2
    with pytest.raises(ValueError, match="ncols"):
        plotting.figure(1, 3)
    with pytest.raises(ValueError, match="nrows"):
        plotting.figure(0)
    import matplotlib.pyplot as plt

    plt.close("all")
