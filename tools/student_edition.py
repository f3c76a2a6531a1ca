"""Sphinx extension of the student edition: hidden solutions are removed.

With ``hide_solutions: true`` sphinx-exercise drops a ``{solution}``
directive, but for a *gated* solution (``{solution-start}`` ...
``{solution-end}``, the form every chapter uses when a solution runs code) it
drops only the opening marker: the cells in between would be printed as plain
text and code, not even folded away. This extension removes everything from
``{solution-start}`` to its ``{solution-end}`` when solutions are hidden, and
does nothing otherwise. ``_config_student.yml`` turns it on; ``make
book-student`` builds with it (see ``tools/assignments.py student-config``).
"""

from __future__ import annotations

from docutils import nodes
from sphinx.util import logging
from sphinx_exercise.directive import SolutionStartDirective
from sphinx_exercise.nodes import solution_end_node

logger = logging.getLogger(__name__)


class hidden_solution(nodes.Element):
    """Marks where a hidden gated solution starts (removed before writing)."""


class HiddenSolutionStart(SolutionStartDirective):
    def run(self):
        out = super().run()  # keeps sphinx-exercise's start/end bookkeeping
        if self.env.app.config.hide_solutions:
            return [hidden_solution(label=self.arguments[0])]
        return out


def remove_hidden_solutions(app, doctree: nodes.document) -> None:
    """Delete each hidden solution: its marker, its content, its end node."""
    if not app.config.hide_solutions:
        return
    for marker in list(doctree.findall(hidden_solution)):
        parent = marker.parent
        start = parent.index(marker)
        end = next(
            (
                k
                for k in range(start + 1, len(parent.children))
                if isinstance(parent.children[k], solution_end_node)
            ),
            None,
        )
        if end is None:
            logger.warning(
                "solution-start %s has no solution-end beside it; only the "
                "marker was removed",
                marker.get("label"),
                location=marker,
            )
            parent.remove(marker)
            continue
        for child in parent.children[start : end + 1]:
            parent.remove(child)
    for node in list(doctree.findall(solution_end_node)):
        node.parent.remove(node)


def setup(app):
    app.setup_extension("sphinx_exercise")
    app.add_node(hidden_solution)
    app.add_directive("solution-start", HiddenSolutionStart, override=True)
    app.connect("doctree-read", remove_hidden_solutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
