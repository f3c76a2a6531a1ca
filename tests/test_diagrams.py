"""Block diagrams: boxes, arrows, loops, and refused input."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from imagination import plotting  # noqa: E402
from imagination.diagrams import block_diagram  # noqa: E402

PARTS = ["camera", "encoder", "latent\ndynamics", "decoder"]


def _parts(fig):
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    texts = [t.get_text() for t in ax.texts]
    return boxes, arrows, texts


def test_default_is_a_chain_of_unlabelled_arrows():
    fig = block_diagram(["a", "b", "c"])
    assert isinstance(fig, Figure)
    boxes, arrows, texts = _parts(fig)
    assert len(boxes) == 3 and len(arrows) == 2
    assert texts == ["a", "b", "c"]


def test_labels_loops_and_feedback_are_drawn_inside_the_figure():
    arrows = [
        (0, 1, "image"),
        ("encoder", 2, "$z_0$"),
        (2, 2, "$z_{t+1}$"),
        (2, 3, "$z_t$"),
        (3, 0, "loss"),
    ]
    fig = block_diagram(PARTS, arrows, colors=["C1", "C0", "C0", "C0"])
    boxes, drawn, texts = _parts(fig)
    assert len(boxes) == 4 and len(drawn) == 5
    for label in ("image", "$z_0$", "$z_{t+1}$", "$z_t$", "loss"):
        assert label in texts
    # The self-loop and the feedback are curved; neighbours are straight.
    styles = [a.get_connectionstyle() for a in drawn]
    rads = [s.rad for s in styles]
    assert rads[0] == 0 and rads[1] == 0 and rads[3] == 0
    assert rads[2] != 0 and rads[4] != 0
    # Everything drawn lies within the axes limits.
    fig.canvas.draw()
    ax = fig.axes[0]
    box = ax.get_window_extent()
    for patch in (*boxes, *drawn):
        ext = patch.get_window_extent()
        assert ext.x0 >= box.x0 - 2 and ext.x1 <= box.x1 + 2
        assert ext.y0 >= box.y0 - 2 and ext.y1 <= box.y1 + 2
    assert fig.get_size_inches()[0] <= plotting.COLUMN_WIDTH + 1e-9


@pytest.mark.parametrize("direction", ["row", "column"])
@pytest.mark.parametrize("lines", [1, 2])
def test_layouts(direction, lines):
    fig = block_diagram(
        ["buy", "fit", "train", "certify", "check"],
        [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0, "again"), (2, 2, "x")],
        direction=direction,
        lines=lines,
    )
    boxes, arrows, _ = _parts(fig)
    centres = [
        (b.get_x() + b.get_width() / 2, b.get_y() + b.get_height() / 2)
        for b in boxes
    ]
    assert len(set(centres)) == 5  # no two boxes on top of each other
    if direction == "row":
        assert len({y for _, y in centres}) == lines
    else:
        assert len({x for x, _ in centres}) == lines
    assert fig.get_size_inches()[0] <= plotting.COLUMN_WIDTH + 1e-9


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(boxes=[]), "boxes"),
        (dict(boxes="abc"), "boxes"),
        (dict(boxes=["a", 1]), "boxes"),
        (dict(boxes=PARTS, arrows=[(0, 9)]), "arrows"),
        (dict(boxes=PARTS, arrows=[(0, "nowhere")]), "arrows"),
        (dict(boxes=PARTS, arrows=[(0,)]), "arrows"),
        (dict(boxes=PARTS, arrows=[(0, 1, 2)]), "arrows"),
        (dict(boxes=PARTS, arrows=[(True, 1)]), "arrows"),
        (dict(boxes=PARTS, arrows=[(0.5, 1)]), "arrows"),
        (dict(boxes=PARTS, arrows="01"), "arrows"),
        (dict(boxes=["a", "a"], arrows=[("a", 1)]), "arrows"),
        (dict(boxes=PARTS, direction="diagonal"), "direction"),
        (dict(boxes=PARTS, lines=3), "lines"),
        (dict(boxes=["a"], lines=2), "lines"),
        (dict(boxes=PARTS, colors=["C0"]), "colors"),
        (dict(boxes=PARTS, fontsize=0), "fontsize"),
        (dict(boxes=PARTS, fontsize=True), "fontsize"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        block_diagram(**kwargs)
