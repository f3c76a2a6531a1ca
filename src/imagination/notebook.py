"""Notebook helpers: glue numbers into the book's prose, show tables as tables.

The chapters glue computed numbers into their text with myst-nb's ``glue``.
myst-nb belongs to the book build, not to the package: on Colab, or anywhere
the package is installed without its ``book`` extra, it is absent. :func:`glue`
here uses myst-nb when it is installed and otherwise shows the value (or
nothing, for ``display=False``), so every chapter runs where myst-nb is absent
and still glues when the book is built.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["glue", "glue_all", "table", "HAS_MYST_NB"]

try:  # the book build has myst-nb; Colab and plain installs do not
    from myst_nb import glue as _myst_glue
except ImportError:  # pragma: no cover - exercised by the Colab-path test
    _myst_glue = None

HAS_MYST_NB = _myst_glue is not None


def _plain(value: Any) -> Any:
    """JAX and NumPy scalars as Python numbers, so text roles can format them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    shape = getattr(value, "shape", None)
    if shape == () and hasattr(value, "item"):
        return value.item()
    return value


def glue(name: str, value: Any, display: bool = True) -> None:
    """Glue ``value`` under ``name`` for ``{glue:text}`` and ``{glue:figure}``.

    Parameters
    ----------
    name:
        The key the book's text refers to, e.g. ``"ch2-eps"``.
    value:
        A number, string or figure. JAX/NumPy scalars become Python numbers.
    display:
        Also show the value in the notebook (as myst-nb's ``glue`` does).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    value = _plain(value)
    if _myst_glue is not None:
        _myst_glue(name, value, display=display)
    elif display:
        from IPython.display import display as _show

        _show(value)


def glue_all(values: Mapping[str, Any], prefix: str = "") -> None:
    """Glue every ``key: value`` of ``values`` as ``prefix + key``, unseen.

    One readable call replaces a column of ``glue(..., display=False)``.
    """
    if not isinstance(values, Mapping):
        raise ValueError(f"values must be a mapping, got {type(values)!r}")
    for key, value in values.items():
        glue(f"{prefix}{key}", value, display=False)


def _cell(value: Any, fmt: str) -> str:
    value = _plain(value)
    if isinstance(value, float):
        return format(value, fmt)
    return str(value).replace("|", r"\|")


def table(
    rows: Iterable[Sequence[Any]],
    header: Sequence[str],
    floatfmt: str | Sequence[str] = ".3g",
):
    """A Markdown table that the book renders as a table (not printed text).

    Parameters
    ----------
    rows:
        The rows, each a sequence as long as ``header``.
    header:
        Column titles (Markdown and ``$math$`` allowed).
    floatfmt:
        A format spec for floats, or one per column.

    Returns
    -------
    IPython.display.Markdown
        Displayed as a rendered table in the book and in Jupyter.
    """
    from IPython.display import Markdown

    header = [str(h) for h in header]
    if not header:
        raise ValueError("header must name at least one column")
    fmts = (
        [floatfmt] * len(header)
        if isinstance(floatfmt, str)
        else list(floatfmt)
    )
    if len(fmts) != len(header):
        raise ValueError(
            f"floatfmt must be one spec or one per column ({len(header)}), "
            f"got {len(fmts)}"
        )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(
                f"rows[{i}] has {len(row)} cells, header has {len(header)}"
            )
        cells = (_cell(v, f) for v, f in zip(row, fmts))
        lines.append("| " + " | ".join(cells) + " |")
    return Markdown("\n".join(lines))
