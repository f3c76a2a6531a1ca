"""The book's house style for figures: sized for the page column, legible.

Every chapter draws with :func:`figure`, which applies one style: a width that
fills the text column of the web page (about 540 px) without being shrunk,
fonts that stay legible at that width, the colour-blind-safe Okabe-Ito
palette, and an opaque white background so that figures stay readable in the
theme's dark mode. Multi-panel figures are stacked in rows (``nrows``) rather
than squeezed side by side.
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
from cycler import cycler

__all__ = ["COLUMN_WIDTH", "COLORS", "STYLE", "figure", "apply"]

#: Figure width in inches: at the ``figure.dpi`` below this is the column width.
COLUMN_WIDTH = 6.0

#: Okabe-Ito: distinguishable under the common colour-vision deficiencies.
COLORS = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

#: The rc parameters of the house style.
STYLE: dict[str, Any] = {
    "figure.figsize": (COLUMN_WIDTH, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
    "axes.prop_cycle": cycler(color=COLORS),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def apply() -> None:
    """Make the house style the default for every later figure."""
    mpl.rcParams.update(STYLE)


def figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    height: float | None = None,
    **kwargs: Any,
):
    """A figure in the house style, ``COLUMN_WIDTH`` wide.

    Parameters
    ----------
    nrows, ncols:
        Panel grid. Panels are stacked in rows; ``ncols`` above 2 would make
        them too narrow to read, so it is refused.
    height:
        Total height in inches; default 3.6 per row (2.8 per row when
        stacked).
    **kwargs:
        Passed to ``matplotlib.pyplot.subplots``.

    Returns
    -------
    (Figure, Axes or array of Axes)
    """
    if int(nrows) != nrows or nrows < 1:
        raise ValueError(f"nrows must be a positive integer, got {nrows!r}")
    if int(ncols) != ncols or not 1 <= ncols <= 2:
        raise ValueError(f"ncols must be 1 or 2, got {ncols!r}")
    if height is None:
        height = 3.6 if nrows == 1 else 2.8 * nrows
    elif not height > 0:
        raise ValueError(f"height must be positive, got {height!r}")
    apply()
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(
        int(nrows), int(ncols), figsize=(COLUMN_WIDTH, height), **kwargs
    )
