#!/usr/bin/env python3
"""Turn a chapter notebook into an assignment: remove the exercise solutions, keep everything else.

A solution in this book is either one markdown cell holding a ``{solution}`` directive, or the
cells from a ``{solution-start}`` markdown cell to the matching ``{solution-end}`` cell (the form
used when a solution runs code). Both are removed; the exercise statements stay. Outputs are
cleared too, so students start from a fresh notebook.

Usage::

    python tools/strip_solutions.py book/02_compounding_error.ipynb -o hw2.ipynb

Standard library only, so it runs without the book's environment.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# The opening line of a directive: ```{solution} or :::{solution} (any fence length).
_OPEN = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _skip_block(lines: list[str], i: int, fence: str) -> int:
    """Index just past the closing fence of the directive opened at ``lines[i]``."""
    char, n = fence[0], len(fence)
    for j in range(i + 1, len(lines)):
        stripped = lines[j].strip()
        if len(stripped) >= n and set(stripped) == {char}:
            return j + 1
    return len(lines)


def strip_solutions(notebook: dict) -> tuple[dict, int]:
    """Return ``(notebook without solutions, number of solutions removed)``.

    Markdown cells are scanned line by line, so a cell may hold the end of one solution and the
    next exercise, as the chapters often do.

    Raises
    ------
    ValueError
        If a ``solution-start`` has no matching ``solution-end`` (or the other way round).
    """
    kept, removed, inside = [], 0, False
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            if not inside:
                if cell.get("cell_type") == "code":
                    cell = {**cell, "outputs": [], "execution_count": None}
                kept.append(cell)
            continue
        lines = _source(cell).splitlines(keepends=True)
        out, i = [], 0
        while i < len(lines):
            m = _OPEN.match(lines[i])
            name = m.group("name") if m else None
            if name == "solution-start":
                if inside:
                    raise ValueError(
                        f"notebook: cell {index} opens a solution inside another one"
                    )
                inside, removed = True, removed + 1
                i = _skip_block(lines, i, m.group("fence"))
            elif name == "solution-end":
                if not inside:
                    raise ValueError(
                        f"notebook: cell {index} closes a solution that was never opened"
                    )
                inside = False
                i = _skip_block(lines, i, m.group("fence"))
            elif inside:
                i += 1
            elif name == "solution":
                removed += 1
                i = _skip_block(lines, i, m.group("fence"))
            else:
                out.append(lines[i])
                i += 1
        text = "".join(out).strip("\n")
        if text.strip():
            kept.append({**cell, "source": text})
    if inside:
        raise ValueError(
            "notebook: a solution-start has no matching solution-end"
        )
    return {**notebook, "cells": kept}, removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebook", type=Path, help="chapter notebook (.ipynb)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="where to write the assignment",
    )
    args = parser.parse_args(argv)
    if args.output.resolve() == args.notebook.resolve():
        parser.error("--output must differ from the input notebook")
    notebook = json.loads(args.notebook.read_text(encoding="utf-8"))
    try:
        stripped, removed = strip_solutions(notebook)
    except ValueError as err:
        print(f"{args.notebook}: {err}", file=sys.stderr)
        return 1
    args.output.write_text(
        json.dumps(stripped, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    print(
        f"{args.output}: {removed} solutions removed, {len(stripped['cells'])} cells kept"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
