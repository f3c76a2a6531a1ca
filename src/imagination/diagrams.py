"""Block diagrams of models with parts, in the book's house style.

A model with parts (a camera, an encoder, latent dynamics, a decoder) or a
pipeline (buy data, fit, train in imagination, certify, check in the world)
reads best as labelled boxes joined by labelled arrows. :func:`block_diagram`
draws one with :func:`imagination.plotting.figure`, so it has the column
width, fonts and Okabe-Ito colours of every other figure in the book.

Arrows between neighbouring boxes are straight; an arrow that skips boxes or
runs backwards (a feedback) is drawn as an arc around the row, and an arrow
from a box to itself (latent dynamics :math:`z_t \\to z_{t+1}`) is a loop on
top of the box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from . import plotting

__all__ = ["block_diagram"]

# Layout in data units: a box is 1 wide; the figure is scaled to fit.
_BOX_W = 1.0
_GAP = 0.6  # between neighbouring boxes along a line
_LINE_GAP = 0.75  # between the two lines of a two-line layout
_MARGIN = 0.08
_MAX_SCALE = 1.4  # inches per unit: boxes no wider than this
_SELF_RAD = 1.8  # curvature of a loop from a box to itself


def _endpoint(name: str, value, boxes: Sequence[str]) -> int:
    """The index of an arrow's end, given as an index or a box label."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a box index or label, got {value!r}")
    if isinstance(value, str):
        if value not in boxes:
            raise ValueError(f"{name} names no box: {value!r}")
        if list(boxes).count(value) > 1:
            raise ValueError(
                f"{name} {value!r} labels several boxes; use an index"
            )
        return list(boxes).index(value)
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a box index or label, got {value!r}"
        ) from None
    if index != value or not 0 <= index < len(boxes):
        raise ValueError(
            f"{name} must be an index in [0, {len(boxes)}), got {value!r}"
        )
    return index


def _parse_arrows(arrows, boxes: Sequence[str]):
    """Validated arrows as (source, target, label) index triples."""
    if arrows is None:
        return [(i, i + 1, "") for i in range(len(boxes) - 1)]
    if isinstance(arrows, str):
        raise ValueError("arrows must be a sequence of tuples, got a string")
    parsed = []
    for k, arrow in enumerate(arrows):
        if isinstance(arrow, str) or not isinstance(arrow, Sequence):
            raise ValueError(
                f"arrows[{k}] must be (source, target) or "
                f"(source, target, label), got {arrow!r}"
            )
        if len(arrow) not in (2, 3):
            raise ValueError(
                f"arrows[{k}] must have 2 or 3 entries, got {len(arrow)}"
            )
        label = arrow[2] if len(arrow) == 3 else ""
        if not isinstance(label, str):
            raise ValueError(
                f"arrows[{k}] label must be a string, got {label!r}"
            )
        source = _endpoint(f"arrows[{k}] source", arrow[0], boxes)
        target = _endpoint(f"arrows[{k}] target", arrow[1], boxes)
        parsed.append((source, target, label))
    return parsed


def _positions(n: int, direction: str, lines: int):
    """Box centres (x, y) in data units and the index of each box's line.

    The second line runs back the other way (a snake), so the arrow that
    joins the two lines is short.
    """
    per_line = math.ceil(n / lines)
    box_h = _box_height(direction)
    centres, line_of = [], []
    for i in range(n):
        line, pos = divmod(i, per_line)
        if line % 2:
            pos = per_line - 1 - pos
        if direction == "row":
            centres.append(
                (pos * (_BOX_W + _GAP), -line * (box_h + _LINE_GAP))
            )
        else:
            centres.append((line * (_BOX_W + _LINE_GAP), -pos * (box_h + 0.4)))
        line_of.append(line)
    return centres, line_of


def _box_height(direction: str) -> float:
    return 0.55 if direction == "row" else 0.42


def block_diagram(
    boxes: Sequence[str],
    arrows: Sequence[tuple] | None = None,
    *,
    direction: str = "row",
    lines: int = 1,
    colors: Sequence[str] | None = None,
    fontsize: float = 9.0,
) -> Figure:
    """Draw a block diagram: labelled boxes joined by labelled arrows.

    Parameters
    ----------
    boxes:
        The boxes' labels, in reading order (at least one; ``"\\n"`` breaks
        a label into lines, ``$...$`` is mathtext).
    arrows:
        Each arrow as ``(source, target)`` or ``(source, target, label)``;
        ``source`` and ``target`` are box indices or box labels. An arrow
        between neighbours in a line is straight; one that skips boxes or
        runs backwards (a feedback) is an arc around the line; one from a
        box to itself (for example latent dynamics) is a loop on the box.
        Default: a chain ``0 -> 1 -> ... -> n-1`` without labels.
    direction:
        ``"row"`` (left to right) or ``"column"`` (top to bottom).
    lines:
        1 or 2: the number of rows (``direction="row"``) or columns
        (``direction="column"``) the boxes are split across. The second
        line runs back the other way, so the arrow joining the lines is
        short.
    colors:
        One edge colour per box (the fill is a light tint of it); default
        the first colour of the house palette for every box. Use a second
        colour to set apart, say, the true world from the learned model.
    fontsize:
        Font size of the box labels in points (arrow labels are one point
        smaller); positive.

    Returns
    -------
    matplotlib.figure.Figure
        The diagram, ``imagination.plotting.COLUMN_WIDTH`` wide at most,
        with no axes drawn.

    Raises
    ------
    ValueError
        If ``boxes`` is empty or holds a non-string, an arrow is malformed
        or names no box, ``direction`` or ``lines`` is not one of the
        allowed values, ``colors`` has the wrong length, or ``fontsize``
        is not positive.

    Examples
    --------
    >>> fig = block_diagram(
    ...     ["camera", "encoder", "latent\\ndynamics", "decoder"],
    ...     [(0, 1, "image"), (1, 2, "$z_0$"), (2, 2, "$z_{t+1}$"),
    ...      (2, 3, "$z_t$")],
    ... )
    """
    if isinstance(boxes, str) or not isinstance(boxes, Sequence):
        raise ValueError(f"boxes must be a sequence of labels, got {boxes!r}")
    boxes = list(boxes)
    if not boxes:
        raise ValueError("boxes must hold at least one label")
    for k, label in enumerate(boxes):
        if not isinstance(label, str):
            raise ValueError(f"boxes[{k}] must be a string, got {label!r}")
    if direction not in ("row", "column"):
        raise ValueError(
            f"direction must be 'row' or 'column', got {direction!r}"
        )
    if isinstance(lines, bool) or lines not in (1, 2):
        raise ValueError(f"lines must be 1 or 2, got {lines!r}")
    if lines == 2 and len(boxes) < 2:
        raise ValueError("lines=2 needs at least two boxes")
    if colors is None:
        colors = [plotting.COLORS[0]] * len(boxes)
    elif isinstance(colors, str) or len(colors) != len(boxes):
        raise ValueError(
            f"colors must hold one colour per box ({len(boxes)}), "
            f"got {colors!r}"
        )
    if isinstance(fontsize, bool) or not (
        isinstance(fontsize, (int, float)) and fontsize > 0
    ):
        raise ValueError(f"fontsize must be positive, got {fontsize!r}")
    parsed = _parse_arrows(arrows, boxes)

    box_h = _box_height(direction)
    box_w = _BOX_W
    centres, line_of = _positions(len(boxes), direction, lines)
    xs = [c[0] for c in centres]
    mid_x = (min(xs) + max(xs)) / 2

    # Plan every arrow first: its curvature, and where its label goes.
    plans = []
    extent = []  # points that must lie inside the figure
    for x, y in centres:
        extent += [
            (x - box_w / 2, y - box_h / 2),
            (x + box_w / 2, y + box_h / 2),
        ]
    arc_side = 1  # skip arcs alternate sides, so two do not overlap
    for s, t, label in parsed:
        (xa, ya), (xb, yb) = centres[s], centres[t]
        if s == t:
            # A loop on top of the box (row), or on the outer side of a
            # column (the right of a single column).
            if direction == "row":
                ends = ((xa + 0.2, ya + box_h / 2), (xa - 0.2, ya + box_h / 2))
                top = (xa, ya + box_h / 2 + 0.5 * _SELF_RAD * 0.4)
                where = (top[0], top[1] + 0.03, "center", "bottom")
                extent.append((top[0], top[1] + 0.25))
            else:
                side = -1.0 if lines == 2 and line_of[s] == 0 else 1.0
                edge = xa + side * box_w / 2
                ends = ((edge, ya - side * 0.12), (edge, ya + side * 0.12))
                top = (edge + side * 0.5 * _SELF_RAD * 0.24, ya)
                where = (
                    top[0] + side * 0.03,
                    top[1],
                    "left" if side > 0 else "right",
                    "center",
                )
                width = 0.1 + 0.09 * len(label)
                extent.append((top[0] + side * width, top[1]))
            plans.append((s, t, label, ends, _SELF_RAD, where))
            continue
        dx, dy = xb - xa, yb - ya
        if abs(s - t) == 1:
            rad = 0.0
        else:
            # Bulge clear of the boxes: a forward skip above the row, a
            # feedback below it (or left/right of a column, or outward of
            # a two-row snake); positive rad bends right of travel.
            if direction == "row" and lines == 1:
                want = (0.0, 1.0 if dx > 0 else -1.0)
                clear = box_h / 2 + 0.2
            elif direction == "row":
                want = (1.0 if (xa + xb) / 2 >= mid_x else -1.0, 0.0)
                clear = box_w / 2 + 0.2
            else:
                want = (float(arc_side), 0.0)
                arc_side = -arc_side
                clear = box_w / 2 + 0.2
            span = math.hypot(dx, dy)
            rad = min(1.5, 2 * clear / span)
            rad = math.copysign(rad, dy * want[0] - dx * want[1])
        # The midpoint of the quadratic Bezier curve that arc3 draws.
        mx = (xa + xb) / 2 + 0.5 * rad * dy
        my = (ya + yb) / 2 - 0.5 * rad * dx
        if rad == 0 and direction == "row" and line_of[s] == line_of[t]:
            where = (mx, my + 0.06, "center", "bottom")
        else:
            where = (mx, my, "center", "center")
        extent.append((mx, my + math.copysign(0.15, -rad * dx or 1)))
        extent.append((mx + math.copysign(0.1, rad * dy or 1), my))
        plans.append((s, t, label, ((xa, ya), (xb, yb)), rad, where))

    ex = [p[0] for p in extent]
    ey = [p[1] for p in extent]
    x0, x1 = min(ex) - _MARGIN, max(ex) + _MARGIN
    y0, y1 = min(ey) - _MARGIN, max(ey) + _MARGIN
    scale = min(plotting.COLUMN_WIDTH / (x1 - x0), _MAX_SCALE)
    fig, ax = plotting.figure(height=(y1 - y0) * scale, layout=None)
    fig.set_size_inches((x1 - x0) * scale, (y1 - y0) * scale)
    ax.set_position((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")

    patches = []
    for (x, y), label, color in zip(centres, boxes, colors):
        patch = FancyBboxPatch(
            (x - box_w / 2, y - box_h / 2),
            box_w,
            box_h,
            boxstyle="round,pad=0,rounding_size=0.08",
            linewidth=1.4,
            edgecolor=color,
            facecolor=(*to_rgb(color), 0.12),
        )
        ax.add_patch(patch)
        ax.text(x, y, label, ha="center", va="center", fontsize=fontsize)
        patches.append(patch)

    label_size = max(fontsize - 1, 1)
    label_box = dict(boxstyle="round,pad=0.1", fc="white", ec="none")
    for s, t, label, (a, b), rad, (lx, ly, ha, va) in plans:
        clip = {} if s == t else dict(patchA=patches[s], patchB=patches[t])
        ax.add_patch(
            FancyArrowPatch(
                a,
                b,
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=11,
                color="0.25",
                linewidth=1.2,
                shrinkA=1,
                shrinkB=1,
                **clip,
            )
        )
        if label:
            ax.text(
                lx,
                ly,
                label,
                ha=ha,
                va=va,
                fontsize=label_size,
                bbox=label_box,
            )
    return fig
