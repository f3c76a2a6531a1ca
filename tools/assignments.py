#!/usr/bin/env python3
"""Autograded assignments generated from the chapters (otter-grader).

The chapter is the only source: each coding exercise's solution block (on
the lecture page ``book/NN_name.ipynb`` or one of its section pages
``book/NN_name/*.ipynb``) holds one code cell tagged ``answer`` (imports,
constants and function definitions with docstrings), cells tagged
``test-public`` (asserts a student may see) and cells tagged ``test-hidden`` +
``remove-cell`` (asserts on inputs the student has not seen). From them this
tool writes, per chapter, under ``_build/assignments/<chapter>/``:

``student/<chapter>.ipynb``
    The student notebook: the Colab install cell (pinned to the commit being
    built), the chapter's imports, every exercise statement, a stub of each
    answer (signatures and docstrings, bodies replaced by ``...``) and a
    check cell running the public check. It needs nothing beside it, so it
    runs on Colab as a single file.
``autograder/autograder.zip``
    The otter autograder bundle (public and hidden tests, requirements pinned
    to the same commit): grade locally with ``python tools/assignments.py
    grade`` (below) or ``otter run``, or upload it to Gradescope. Each test
    file carries the harness of ``tools/grading_harness.py``: its own
    namespace, library functions checked for tampering, a public case worth
    0 points and one graded case (public and hidden tests, all or nothing).
``solutions/<chapter>.ipynb``
    The student notebook with the chapter's answers filled in: the
    lecturer's key, and what CI grades to prove full marks are reachable.

Usage::

    python tools/assignments.py build                 # every chapter
    python tools/assignments.py build 01 03           # chapters by number
    python tools/assignments.py grade 01 hw/          # grade a folder

``grade`` runs otter-grader without Docker, each submission in its own
process, ``--jobs`` at a time, with a progress bar: a cell that runs longer than ``--cell-timeout`` seconds is
interrupted (the rest of the notebook still runs), a test longer than
:data:`TEST_TIME_LIMIT_S` fails with a message, and a submission that takes
longer than ``--timeout`` seconds in all, or kills its kernel, scores 0 with a
readable reason; the grader never hangs. It writes ``grades.csv`` (a column
per exercise), ``report.md`` for students and ``report-lecturer.md`` with the
hidden tests' failing lines and notes on where answers were found.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bootstrap  # noqa: E402  (tools/bootstrap.py: the Colab install cell)

OUT = ROOT / "_build" / "assignments"
#: Seconds one test cell may run before it fails (in the notebook and in grading).
TEST_TIME_LIMIT_S = 60
OTTER_REQUIREMENT = "otter-grader>=7,<8"

_FENCE = re.compile(
    r"^\s*(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$"
)


class ConventionError(ValueError):
    """A chapter breaks the exercise convention (the message says where)."""


# -- reading a chapter ------------------------------------------------------
@dataclass
class Exercise:
    """One exercise of a chapter, with its solution's tagged cells."""

    label: str
    title: str
    statement: str
    answer: str | None = None
    public: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    has_code: bool = False

    @property
    def autograded(self) -> bool:
        return self.answer is not None

    @property
    def unconverted(self) -> bool:
        """A coding exercise that does not follow the convention yet."""
        return self.has_code and not self.autograded


@dataclass
class Chapter:
    path: Path
    title: str
    imports: str
    exercises: list[Exercise]

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def autograded(self) -> list[Exercise]:
        return [e for e in self.exercises if e.autograded]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _directives(text: str):
    """Yield ``(name, arg, body_lines)`` for each directive in a markdown cell."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group("fence")
        j = i + 1
        while j < len(lines):
            s = lines[j].strip()
            if len(s) >= len(fence) and set(s) == {fence[0]}:
                break
            j += 1
        yield m.group("name"), m.group("arg").strip(), lines[i + 1 : j]
        i = j + 1


def _split_options(body: list[str]) -> tuple[dict[str, str], str]:
    options, k = {}, 0
    while k < len(body) and body[k].startswith(":"):
        key, _, value = body[k][1:].partition(":")
        options[key.strip()] = value.strip()
        k += 1
    return options, "\n".join(body[k:]).strip("\n")


def section_pages(path: Path) -> list[Path]:
    """The section pages ``book/NN_name/*.ipynb`` of a lecture page."""
    folder = Path(path).parent / Path(path).stem
    return sorted(folder.glob("*.ipynb")) if folder.is_dir() else []


def read_chapter(path: Path) -> Chapter:
    """Parse a chapter into its exercises and their tagged cells: the lecture
    page ``book/NN_name.ipynb`` first, then its section pages
    ``book/NN_name/*.ipynb`` (an exercise block may live on either).

    Raises
    ------
    ConventionError
        On a tagged cell outside a solution, two ``answer`` cells in one
        solution, a hidden test not tagged ``remove-cell``, tests without
        an answer, or two exercises with one label.
    """
    path = Path(path)
    exercises: dict[str, Exercise] = {}
    title, imports = _read_page(path, exercises)
    extra = []
    for page in section_pages(path):
        _, page_imports = _read_page(page, exercises)
        extra += [
            line
            for line in _import_lines(page_imports)
            if line not in imports and line not in extra
        ]
    if extra:
        imports = imports.rstrip("\n") + "\n" + "\n".join(extra) + "\n"
    return Chapter(path, title, imports, list(exercises.values()))


def _import_lines(source: str) -> list[str]:
    """The import statements of a cell, one normalised line each."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [
        ast.unparse(node)
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]


def _read_page(path: Path, exercises: dict[str, Exercise]) -> tuple:
    """Add one page's exercises to ``exercises``; (title, imports cell)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = nb["cells"]
    title, imports = path.stem, None
    for cell in cells:
        if cell["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", _source(cell), re.M)
            if m:
                title = m.group(1).strip()
                break
    code_cells = [c for c in cells if c["cell_type"] == "code"]
    if len(code_cells) >= 2:
        imports = _source(code_cells[1])
    current: Exercise | None = None
    for index, cell in enumerate(cells):
        where = f"{path.name}, cell {index}"
        if cell["cell_type"] == "markdown":
            for name, arg, body in _directives(_source(cell)):
                if name == "exercise":
                    options, text = _split_options(body)
                    label = (
                        options.get("label")
                        or f"exercise-{len(exercises) + 1}"
                    )
                    if label in exercises:
                        raise ConventionError(
                            f"{where}: a second exercise labelled {label!r}"
                        )
                    exercises[label] = Exercise(label, arg, text)
                elif name == "solution-start":
                    label = arg.split()[0] if arg else ""
                    if label not in exercises:
                        raise ConventionError(
                            f"{where}: solution of unknown exercise {label!r}"
                        )
                    current = exercises[label]
                elif name == "solution-end":
                    if current is not None:
                        _finish(current, path)
                    current = None
            continue
        if cell["cell_type"] != "code":
            continue
        tags = _tags(cell)
        role = tags & {"answer", "test-public", "test-hidden"}
        if current is None:
            if role:
                raise ConventionError(
                    f"{where}: cell tagged {sorted(role)} outside a solution block"
                )
            continue
        current.has_code = True
        src = _source(cell)
        if "answer" in tags:
            if current.answer is not None:
                raise ConventionError(
                    f"{where}: a second 'answer' cell in {current.label}"
                )
            current.answer = src
        elif "test-hidden" in tags:
            if "remove-cell" not in tags:
                raise ConventionError(
                    f"{where}: hidden test of {current.label} is not tagged 'remove-cell' "
                    "(it would be printed in the book)"
                )
            current.hidden.append(src)
        elif "test-public" in tags:
            current.public.append(src)
    if current is not None:
        raise ConventionError(
            f"{path.name}: solution of {current.label} is never closed"
        )
    return title, imports or ""


def _finish(ex: Exercise, path: Path) -> None:
    """Check a closed solution block against the convention."""
    if ex.answer is None:
        if ex.public or ex.hidden:
            raise ConventionError(
                f"{path.name}: {ex.label} has test cells but no 'answer' cell"
            )
        return
    if not ex.public or not ex.hidden:
        raise ConventionError(
            f"{path.name}: {ex.label} needs at least one 'test-public' and one "
            f"'test-hidden' cell (has {len(ex.public)} and {len(ex.hidden)})"
        )
    stub(
        ex.answer, ex.label
    )  # raises on an answer cell that breaks the convention


# -- stubs and tests --------------------------------------------------------
_ALLOWED = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.Assign,
    ast.AnnAssign,
)


def stub(answer: str, label: str = "answer") -> str:
    """The answer cell with every function body replaced by ``...``.

    Imports, constants, signatures and docstrings stay.

    Raises
    ------
    ConventionError
        If the cell holds anything but imports, constants and function
        definitions, defines no function, or a function lacks a docstring.
    """
    try:
        tree = ast.parse(answer)
    except SyntaxError as err:
        raise ConventionError(
            f"{label}: answer cell does not parse: {err}"
        ) from None
    lines = answer.splitlines()
    cuts = []
    for node in tree.body:
        is_doc = isinstance(node, ast.Expr) and isinstance(
            node.value, ast.Constant
        )
        if not isinstance(node, _ALLOWED) and not is_doc:
            raise ConventionError(
                f"{label}: answer cell may hold only imports, constants and function "
                f"definitions; line {node.lineno} is `{lines[node.lineno - 1].strip()}`"
            )
        if isinstance(node, ast.FunctionDef):
            if ast.get_docstring(node) is None:
                raise ConventionError(
                    f"{label}: function {node.name} has no docstring"
                )
            doc = node.body[0]
            indent = " " * doc.col_offset
            cuts.append((doc.end_lineno, node.end_lineno, indent))
    if not cuts:
        raise ConventionError(f"{label}: answer cell defines no function")
    for start, end, indent in reversed(cuts):
        lines[start:end] = [f"{indent}..."]
    out = "\n".join(lines)
    ast.parse(out)
    return out


def functions(answer: str) -> list[str]:
    """Signatures (``name(args)``) of the functions an answer cell defines."""
    out = []
    for node in ast.parse(answer).body:
        if isinstance(node, ast.FunctionDef):
            out.append(f"{node.name}({ast.unparse(node.args)})")
    return out


HARNESS = ROOT / "tools" / "grading_harness.py"
#: Points of an exercise: all or nothing, from its graded case.
POINTS = 1


def prelude(chapter: Chapter) -> str:
    """The tests' own imports: the import statements of the chapter's
    imports cells (nothing else of the notebook reaches a test)."""
    return "\n".join(_import_lines(chapter.imports)) + "\n"


def _import_map(source: str) -> dict[str, str]:
    """Local name -> dotted path, for the imports anywhere in ``source``."""
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _assigned(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def references(prelude_source: str, cells: list[str]) -> dict[str, list]:
    """What the test cells rely on: every library attribute chain
    (``np.allclose``) and builtin (``abs``) they use, with its description
    in this (clean) environment; the harness checks them again when it
    grades. Chains that cannot be resolved here are left out."""
    harness = _harness_namespace()
    imports = _import_map(prelude_source)
    found: set[str] = {
        f"builtins:{b}"
        for b in ("exec", "compile", "callable", "isinstance", "getattr")
    }
    for source in cells:
        tree = ast.parse(source)
        local = {**imports, **_import_map(source)}
        shadow = _assigned(tree) - set(_import_map(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                parts, cur = [], node
                while isinstance(cur, ast.Attribute):
                    parts.append(cur.attr)
                    cur = cur.value
                if (
                    isinstance(cur, ast.Name)
                    and cur.id in local
                    and cur.id not in shadow
                ):
                    found.add(".".join([local[cur.id], *reversed(parts)]))
            elif (
                isinstance(node, ast.Name)
                and isinstance(node.ctx, ast.Load)
                and node.id not in shadow
            ):
                if node.id in local:
                    found.add(local[node.id])
                elif hasattr(builtins, node.id):
                    found.add(f"builtins:{node.id}")
    out = {}
    for chain in sorted(found):
        try:
            obj = harness["_resolve"](chain)
        except (KeyError, AttributeError):
            continue
        if isinstance(obj, types.ModuleType):
            continue
        desc = harness["_describe"](obj)
        if desc[0] == "function" and not harness["_code_is_packaged"](
            obj, desc[1]
        ):
            continue
        out[chain] = desc
    return out


def _harness_namespace() -> dict:
    scope: dict = {"__name__": "grading_harness"}
    exec(compile(HARNESS.read_text(), str(HARNESS), "exec"), scope)
    return scope


def _exec_imports(source: str) -> None:
    """Import what the test cells import, so that references() sees it."""
    for line in _import_lines(source):
        try:
            exec(line, {})
        except Exception:  # a module the build environment lacks
            pass


def test_file(
    chapter: Chapter,
    ex: Exercise,
    hidden: bool,
    limit: int = TEST_TIME_LIMIT_S,
) -> str:
    """An otter exception-based test file for one exercise: the harness of
    ``tools/grading_harness.py``, the exercise's test cells and two cases.

    The public case (worth 0 points) runs the ``test-public`` cells and is
    the student's feedback; the graded case (hidden, :data:`POINTS` points)
    runs the public and the ``test-hidden`` cells, all or nothing. Without
    ``hidden`` (the student's copy) only the public case is written.
    """
    if not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    pre = prelude(chapter)
    cells = ex.public + (ex.hidden if hidden else [])
    _exec_imports(pre + "\n".join(cells))
    refs = references(pre, cells)
    harness = HARNESS.read_text()
    head = (
        f'"""Otter tests for exercise {ex.label} ({chapter.stem}); '
        "generated by\ntools/assignments.py from the chapter's test cells "
        'and tools/grading_harness.py.\nDo not edit."""\n'
    )
    body = harness.split('"""', 2)[2].lstrip("\n")
    body = body.replace("from __future__ import annotations\n", "")
    constants = (
        "\n\n# -- this exercise " + "-" * 50 + "\n"
        "from otter.test_files import test_case  # noqa: E402\n\n"
        "OK_FORMAT = False\n"
        f"name = {ex.label!r}\n"
        f"_FUNCTIONS = {[f.split('(')[0] for f in functions(ex.answer)]!r}\n"
        f"_PRELUDE = {pre!r}\n"
        f"_IMPORTS = {_import_lines(pre + chr(10).join(cells))!r}\n"
        f"_REFERENCES = {json.dumps(refs, indent=1)}\n"
        f"_PUBLIC = {ex.public!r}\n"
        f"_HIDDEN = {(ex.hidden if hidden else [])!r}\n"
        f"LIMIT_S = {limit}\n\n\n"
        "@test_case(name='public check', points=0, hidden=False)\n"
        "def public(env):\n"
        '    _run(env, "public")  # the public check of this exercise\n'
    )
    if hidden:
        constants += (
            f"\n\n@test_case(name='graded', points={POINTS}, hidden=True)\n"
            "def graded(env):\n"
            '    _run(env, "hidden")  # the public and hidden tests\n'
        )
    return head + "\n" + body + constants


# -- the student notebook ---------------------------------------------------
_ROLES = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<text>[^`]*)`")


def plain_markdown(text: str) -> str:
    """MyST roles turned into text Jupyter and Colab render."""

    def role(m: re.Match) -> str:
        name, body = m.group("role"), m.group("text")
        target = re.match(r"(.*?)\s*<([^>]+)>$", body)
        shown = target.group(1) if target else body
        if name in ("func", "mod", "class", "meth", "attr", "obj", "data"):
            return f"`{shown.lstrip('~')}`"
        if name == "eq":
            return f"equation `{shown}` of the chapter"
        if name == "cite":
            return f"({shown})"
        if name.startswith("glue"):
            return "(see the chapter)"
        return f"*{shown}*"

    return _ROLES.sub(role, text)


def _cell(
    kind: str, source: str, cid: str, tags: list[str] | None = None, **meta
) -> dict:
    cell = {
        "cell_type": kind,
        "id": cid,
        "metadata": dict(meta),
        "source": source,
    }
    if tags:
        cell["metadata"]["tags"] = tags
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def built_ref() -> str:
    """The commit the assignments are built from (``git rev-parse HEAD``);
    ``IMAGINATION_REF`` overrides it (a tag, for a release)."""
    ref = os.environ.get("IMAGINATION_REF")
    if ref:
        return ref
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return bootstrap.repository()[1]
    return out.stdout.strip()


def install_cell(ref: str | None = None) -> str:
    """The book's Colab bootstrap cell, pinned to ``ref`` (default: the
    commit being built), plus otter-grader; it does nothing off Colab."""
    url, _ = bootstrap.repository()
    source = bootstrap.TEMPLATE.format(repo=url, ref=ref or built_ref())
    return source + f'\n    %pip install -q "{OTTER_REQUIREMENT}"'


def _imports(chapter: Chapter) -> str:
    # the chapter's claims ledger stays in the chapter: a student run must not
    # overwrite the book's ledger file
    keep = [
        ln for ln in chapter.imports.splitlines() if "claims.Ledger(" not in ln
    ]
    return "\n".join(keep).strip("\n")


def _setup_cell(chapter: Chapter, limit: int) -> str:
    tests = {
        ex.label: test_file(chapter, ex, hidden=False, limit=limit)
        for ex in chapter.autograded
    }
    return (
        "# The public checks of this assignment (run this cell; do not edit"
        " it).\n"
        "from otter.test_files import ExceptionTestFile\n\n"
        f"CHECKS = {json.dumps(tests, indent=1)}\n\n\n"
        "def check(label):\n"
        '    """Run the public check of one exercise and say what it found."""\n'
        "    test = ExceptionTestFile.from_string(CHECKS[label], label)\n"
        "    test.run(globals())\n"
        "    (result,) = test.test_case_results\n"
        "    if result.passed:\n"
        '        print(f"{label}: the public check passes. The grader also "\n'
        '              "runs hidden tests on other inputs.")\n'
        "    else:\n"
        '        why = result.message.split("AssertionError: ", 1)[-1]\n'
        '        print(f"{label}: the public check fails.\\n{why}")'
    )


def notebook(
    chapter: Chapter,
    solved: bool = False,
    limit: int = TEST_TIME_LIMIT_S,
    ref: str | None = None,
) -> dict:
    """The student notebook of a chapter (``solved``: with the answers).

    The setup and check cells carry otter's ``otter_ignore`` tag: the
    grader drops them and runs every test once, at the end, on the
    notebook's final state (so a function written below its check is
    graded as written; ``grade`` reports where it was found).
    """
    cells = [
        _cell(
            "markdown",
            f"# Assignment: {chapter.title}\n\n"
            f"The exercises of the chapter *{chapter.title}* "
            f"(`book/{chapter.path.name}`). "
            "For each coding exercise, write the body of every function "
            "marked `...` **in the answer cell under the exercise** (keep its "
            "name and arguments: the grader calls it on inputs you have not "
            "seen), run that cell, then run the check cell below it. The "
            "check runs the public tests on the chapter's inputs and says "
            "what it expected and what came back; it is worth no points. "
            "The grade comes from hidden tests on other inputs (other seeds, "
            "horizons, discounts, systems): an exercise scores its points "
            "only when the public check and every hidden test pass. Written "
            "exercises are graded by hand.\n\n"
            "Run the cells from the top: the first installs the book's "
            "package on Colab (and does nothing elsewhere), the next two "
            "import the chapter's tools and set up the checks. Do not "
            "redefine library functions (`np.allclose`, ...): a notebook "
            "that does scores 0 on the exercises whose tests use them.",
            "assignment-intro",
        ),
        _cell("code", install_cell(ref), "colab-bootstrap", ["remove-cell"]),
        _cell("code", _imports(chapter), "imports"),
        _cell(
            "code",
            _setup_cell(chapter, limit),
            "otter-setup",
            ["otter-setup", "otter_ignore"],
            jupyter={"source_hidden": True},
        ),
    ]
    n = 0
    for ex in chapter.exercises:
        n += 1
        graded = "autograded" if ex.autograded else "graded by hand"
        cells.append(
            _cell(
                "markdown",
                f"## Exercise {n}: {ex.title} ({graded})\n\n"
                f"{plain_markdown(ex.statement)}",
                f"statement-{ex.label}",
            )
        )
        if ex.autograded:
            code = ex.answer if solved else stub(ex.answer, ex.label)
            names = ", ".join(
                f"`{f.split('(')[0]}`" for f in functions(ex.answer)
            )
            cells.append(
                _cell(
                    "markdown",
                    f"**Your answer** ({names}): write it in the next cell, "
                    "then run the check below it.",
                    f"where-{ex.label}",
                )
            )
            cells.append(_cell("code", code, f"answer-{ex.label}", ["answer"]))
            cells.append(
                _cell(
                    "code",
                    f'check("{ex.label}")',
                    f"check-{ex.label}",
                    ["check", "otter_ignore"],
                )
            )
        else:
            cells.append(
                _cell(
                    "markdown",
                    "*Your answer here (derivation, code and what it shows).*",
                    f"written-{ex.label}",
                )
            )
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
            "imagination": {"chapter": chapter.stem, "ref": ref},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def requirements(ref: str | None = None) -> str:
    """What the grading environment installs (Gradescope runs setup.sh with
    it): this package at ``ref``, by default the commit being built."""
    url, _ = bootstrap.repository()
    return f"imagination @ git+https://{url}@{ref or built_ref()}\n"


def build_chapter(
    chapter: Chapter,
    out: Path = OUT,
    limit: int = TEST_TIME_LIMIT_S,
    ref: str | None = None,
) -> dict:
    """Write one chapter's student notebook, solutions and autograder zip,
    pinned to ``ref`` (default: the commit being built)."""
    from otter.generate import main as otter_generate

    ref = ref or built_ref()
    folder = out / chapter.stem
    if folder.exists():
        shutil.rmtree(folder)
    student = folder / "student" / f"{chapter.stem}.ipynb"
    _write_json(student, notebook(chapter, limit=limit, ref=ref))
    _write_json(
        folder / "solutions" / f"{chapter.stem}.ipynb",
        notebook(chapter, solved=True, limit=limit, ref=ref),
    )
    ag = folder / "autograder"
    for ex in chapter.autograded:
        (ag / "tests").mkdir(parents=True, exist_ok=True)
        (ag / "tests" / f"{ex.label}.py").write_text(
            test_file(chapter, ex, hidden=True, limit=limit)
        )
    (ag / "requirements.txt").write_text(requirements(ref))
    config = {"lang": "python", "name": chapter.stem, "seed": None}
    config = {k: v for k, v in config.items() if v is not None}
    (ag / "otter_config.json").write_text(json.dumps(config, indent=1))
    otter_generate(
        tests_dir=str(ag / "tests"),
        output_path=str(ag / "autograder.zip"),
        config=str(ag / "otter_config.json"),
        requirements=str(ag / "requirements.txt"),
        no_environment=True,
    )
    return {
        "chapter": chapter.stem,
        "ref": ref,
        "exercises": len(chapter.exercises),
        "autograded": [e.label for e in chapter.autograded],
        "functions": {
            e.label: functions(e.answer) for e in chapter.autograded
        },
        "public_tests": sum(len(e.public) for e in chapter.autograded),
        "hidden_tests": sum(len(e.hidden) for e in chapter.autograded),
        "unconverted": [e.label for e in chapter.exercises if e.unconverted],
    }


def chapters(selection: list[str] | None = None) -> list[Path]:
    """Chapter notebooks ``book/NN_*.ipynb``, optionally by number or stem."""
    paths = sorted(p for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return paths
    chosen = [
        p
        for p in paths
        if any(
            p.stem == s
            or p.stem.startswith(f"{s}_")
            or p.stem.split("_")[0] == s.zfill(2)
            for s in selection
        )
    ]
    if not chosen:
        raise ValueError(f"chapters: no chapter matches {selection!r}")
    return chosen


def build(
    selection: list[str] | None = None,
    out: Path = OUT,
    limit: int = TEST_TIME_LIMIT_S,
) -> list[dict]:
    """Build every selected chapter; one summary dict per chapter.

    A chapter without a converted exercise is reported (``autograded`` empty)
    but does not stop the others; one that breaks the convention gets an
    ``error`` entry.
    """
    out.mkdir(parents=True, exist_ok=True)
    summary = []
    for path in chapters(selection):
        try:
            chapter = read_chapter(path)
            if not chapter.autograded:
                row = {
                    "chapter": path.stem,
                    "autograded": [],
                    "exercises": len(chapter.exercises),
                    "unconverted": [
                        e.label for e in chapter.exercises if e.unconverted
                    ],
                }
                stale = out / path.stem
                if stale.exists():
                    shutil.rmtree(stale)
            else:
                row = build_chapter(chapter, out, limit)
        except ConventionError as err:
            row = {"chapter": path.stem, "autograded": [], "error": str(err)}
        summary.append(row)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


# -- grading ----------------------------------------------------------------
def _run_one(args: argparse.Namespace) -> int:
    """Inside the grading subprocess: otter run with a per-cell time limit."""
    import nbconvert.preprocessors as pre
    from traitlets import Bool, Integer

    class LimitedExecutePreprocessor(pre.ExecutePreprocessor):
        timeout = Integer(args.cell_timeout, allow_none=True).tag(config=True)
        interrupt_on_timeout = Bool(True).tag(config=True)

        def _get_timeout(self, cell):
            # cells that run checks are bounded by each test's own limit
            # (LIMIT_S in the test files), not by the cell limit
            source = cell.source if cell is not None else ""
            if ".check(" in source or "Checker" in source:
                return None
            return super()._get_timeout(cell)

    pre.ExecutePreprocessor = LimitedExecutePreprocessor
    import resource

    import otter.run

    try:
        otter.run.main(
            args.submission,
            autograder=args.autograder,
            output_dir=args.output,
            no_logo=True,
        )
    finally:
        cpu = sum(
            getattr(resource.getrusage(who), field)
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
            for field in ("ru_utime", "ru_stime")
        )
        print(f"\nGRADING_CPU_SECONDS={cpu:.2f}", flush=True)
    return 0


@dataclass
class Grade:
    submission: str
    score: float
    possible: float
    seconds: float
    tests: list[dict]
    message: str = ""
    notes: list[str] = field(default_factory=list)
    hidden_log: list[dict] = field(default_factory=list)
    cpu_seconds: float | None = None

    @property
    def questions(self) -> dict[str, float]:
        """Score per question (exercise label)."""
        return {
            t["name"]: float(t.get("score") or 0)
            for t in self.tests
            if t.get("max_score")
        }


_SUSPECT = (
    ("otter", "imports or uses otter (the grader)"),
    ("builtins", "touches builtins"),
    ("sys.modules", "touches sys.modules"),
    ("_getframe", "inspects the caller's frame"),
    ("__code__", "rewrites code objects"),
    ("setattr(", "sets attributes with setattr"),
    ("IMAGINATION_GRADING_LOG", "reads the grader's log"),
)


def inspect_submission(
    submission: Path, answers: dict[str, list[str]]
) -> list[str]:
    """Notes for the lecturer on where a submission put its answers and on
    code that may tamper with grading (a static scan, not a verdict).

    ``answers`` maps each exercise label to the functions it asks for."""
    try:
        nb = json.loads(Path(submission).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return [f"the submission is not a readable notebook ({err})"]
    notes, where = [], {}
    checks = {}
    imported: set[str] = set()
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        cid = str(cell.get("id", ""))
        source = _source(cell)
        if cid.startswith("check-"):
            checks[cid[len("check-") :]] = index
            if source.strip() != f'check("{cid[len("check-") :]}")':
                notes.append(
                    f"the check cell of {cid[len('check-') :]} was edited: "
                    "the grader does not run check cells"
                )
        clean = "\n".join(
            ln
            for ln in source.splitlines()
            if not ln.lstrip().startswith(("%", "!"))
        )
        try:
            tree = ast.parse(clean)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                where[node.name] = (index, cid)
        imported |= set(_import_map(clean))
        if cid in ("otter-setup", "colab-bootstrap"):
            continue
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = getattr(node, "targets", None) or [node.target]
            for t in targets:
                root = t
                while isinstance(root, (ast.Attribute, ast.Subscript)):
                    root = root.value
                if (
                    isinstance(t, ast.Attribute)
                    and isinstance(root, ast.Name)
                    and root.id in imported
                ):
                    notes.append(
                        f"cell {index} assigns `{ast.unparse(t)}` "
                        "(a library attribute): review by hand"
                    )
        for needle, what in _SUSPECT:
            if needle in clean:
                notes.append(f"cell {index} {what}: review by hand")
    for label, names in answers.items():
        for fname in names:
            if fname not in where:
                continue
            index, cid = where[fname]
            if cid != f"answer-{label}":
                below = label in checks and index > checks[label]
                notes.append(
                    f"{label}: `{fname}` is defined in cell {index}, not in "
                    "its answer cell"
                    + (" (below its check)" if below else "")
                    + "; graded as defined at the end of the notebook"
                )
    return list(dict.fromkeys(notes))


def grade_one(
    autograder: Path,
    submission: Path,
    *,
    cell_timeout: int = 120,
    timeout: int = 900,
    answers: dict[str, list[str]] | None = None,
) -> Grade:
    """Grade one submission with otter, in its own process, never hanging."""
    for name, value in (("cell_timeout", cell_timeout), ("timeout", timeout)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(
                f"{name} must be a positive integer, got {value!r}"
            )
    if not Path(autograder).is_file():
        raise ValueError(f"autograder: no such file {autograder}")
    if not Path(submission).is_file():
        raise ValueError(f"submission: no such file {submission}")
    autograder, submission = (
        Path(autograder).resolve(),
        Path(submission).resolve(),
    )
    possible = _possible(autograder)
    if answers is None:
        answers = _answers_in(autograder)
    notes = inspect_submission(submission, answers)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "hidden-log.jsonl"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "_run-one",
            str(autograder),
            str(submission),
            tmp,
            str(cell_timeout),
        ]
        start = time.perf_counter()
        env = dict(os.environ, IMAGINATION_GRADING_LOG=str(log_path))
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            cwd=tmp,
            env=env,
        )
        try:
            log, _ = proc.communicate(timeout=timeout)
            message = ""
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            log, _ = proc.communicate()
            message = f"grading stopped after {timeout} s (does a cell never finish?)"
        seconds = time.perf_counter() - start
        cpu = re.findall(r"GRADING_CPU_SECONDS=([\d.]+)", log or "")
        cpu_seconds = float(cpu[-1]) if cpu else None
        hidden_log = []
        if log_path.is_file():
            for line in log_path.read_text().splitlines():
                try:
                    hidden_log.append(json.loads(line))
                except ValueError:
                    pass
        results = Path(tmp) / "results.json"
        if results.is_file() and not message:
            data = json.loads(results.read_text())
            tests = data.get("tests", [])
            score = float(sum(t.get("score", 0) or 0 for t in tests))
            return Grade(
                str(submission),
                score,
                possible,
                seconds,
                tests,
                notes=notes,
                hidden_log=hidden_log,
                cpu_seconds=cpu_seconds,
            )
    tail = "\n".join((log or "").strip().splitlines()[-6:])
    if not message and "DeadKernelError" in (log or ""):
        message = (
            "the kernel died while running the submission "
            "(a cell exits Python or runs out of memory)"
        )
    elif not message:
        message = "the grader could not finish this submission"
    return Grade(
        str(submission),
        0.0,
        possible,
        seconds,
        [],
        f"{message}\n{tail}".strip(),
        notes=notes,
    )


def _answers_in(autograder: Path) -> dict[str, list[str]]:
    """{exercise label: the functions it asks for}, from the test files."""
    import zipfile

    out = {}
    with zipfile.ZipFile(autograder) as z:
        for name in z.namelist():
            if name.startswith("tests/") and name.endswith(".py"):
                text = z.read(name).decode()
                label = re.findall(r"^name = '([^']+)'$", text, re.M)
                funcs = re.findall(r"^_FUNCTIONS = (\[.*\])$", text, re.M)
                if label and funcs:
                    out[label[-1]] = ast.literal_eval(funcs[-1])
    return out


def _possible(autograder: Path) -> float:
    import zipfile

    from otter.test_files import ExceptionTestFile

    total = 0.0
    with zipfile.ZipFile(autograder) as z:
        for name in z.namelist():
            if name.startswith("tests/") and name.endswith(".py"):
                tf = ExceptionTestFile.from_string(
                    z.read(name).decode(), path=name
                )
                total += sum(tc.points or 0 for tc in tf.test_cases)
    return total


def _failures(output: str) -> list[str]:
    """The student's messages in otter's output for a failed question
    (otter's own header and the harness's line are left out)."""
    out = []
    for block in re.split(r"❌ Test case failed", output)[1:]:
        text = block.split("AssertionError: ", 1)
        if len(text) < 2:
            continue
        message = text[1].split("\n\n")[0]
        lines = [ln.strip() for ln in message.strip().splitlines()]
        out.append(" ".join(ln for ln in lines if ln))
    return list(dict.fromkeys(out)) or ["failed"]


def _lost(g: Grade) -> str:
    graded = [t for t in g.tests if t.get("max_score")]
    lost = [t for t in graded if (t.get("score") or 0) < t["max_score"]]
    return f"points lost in {len(lost)} of {len(graded)} exercises"


def report(grades: list[Grade], lecturer: bool = False) -> str:
    """A Markdown report: one row per submission, then each failed question
    with the student's messages. With ``lecturer``, also the hidden tests'
    lines and errors (keep that version to yourself)."""
    lines = [
        "| submission | score | of | seconds | note |",
        "|---|---|---|---|---|",
    ]
    for g in grades:
        note = (
            g.message.splitlines()[0]
            if g.message
            else ("full marks" if g.score == g.possible else _lost(g))
        )
        lines.append(
            f"| {Path(g.submission).name} | {g.score:g} | {g.possible:g} | "
            f"{g.seconds:.0f} | {note} |"
        )
    for g in grades:
        failed = [
            t
            for t in g.tests
            if (t.get("score") or 0) < (t.get("max_score") or 0)
        ]
        if failed or g.message or g.notes:
            lines += ["", f"### {Path(g.submission).name}", ""]
            if g.message:
                lines += ["```", g.message, "```"]
            for note in g.notes:
                lines.append(f"- note: {note}")
            for t in failed:
                lines.append(
                    f"- **{t.get('name')}** ({t.get('score') or 0:g} of {t.get('max_score'):g}):"
                )
                lines += [
                    "  - " + m.replace("\n", " ")
                    for m in _failures(t.get("output") or "")
                ]
                if lecturer:
                    for e in g.hidden_log:
                        if e.get("question") == t.get("name"):
                            lines.append(
                                f"  - hidden cell {e.get('hidden_cell')}: "
                                f"`{e.get('line')}`: {e.get('error')}"
                            )
    return "\n".join(lines) + "\n"


def _progress(done: int, total: int, start: float, stream=None) -> None:
    stream = stream or sys.stderr
    width = 30
    filled = int(width * done / max(total, 1))
    elapsed = time.perf_counter() - start
    stream.write(
        f"\rgrading [{'#' * filled}{'.' * (width - filled)}] "
        f"{done}/{total}  {elapsed:.0f} s"
    )
    if done == total:
        stream.write("\n")
    stream.flush()


def grade_pairs(
    pairs: list[tuple[Path, Path]],
    *,
    jobs: int | None = None,
    cell_timeout: int = 120,
    timeout: int = 900,
    answers: dict[str, list[str]] | None = None,
    progress: bool = True,
) -> list[Grade]:
    """Grade ``(autograder, submission)`` pairs in parallel (``jobs``
    processes, default: the CPU count), results in the order given; a
    progress bar goes to stderr."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    if jobs is None:
        jobs = os.cpu_count() or 1
    if not isinstance(jobs, int) or jobs <= 0:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    for _, s in pairs:
        if not Path(s).is_file():
            raise ValueError(f"submission: no such file {s}")
    start = time.perf_counter()
    grades: list[Grade | None] = [None] * len(pairs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(
                grade_one,
                Path(ag),
                Path(s),
                cell_timeout=cell_timeout,
                timeout=timeout,
                answers=answers,
            ): i
            for i, (ag, s) in enumerate(pairs)
        }
        if progress:
            _progress(0, len(pairs), start)
        for done, fut in enumerate(as_completed(futures), 1):
            grades[futures[fut]] = fut.result()
            if progress:
                _progress(done, len(pairs), start)
    return grades  # type: ignore[return-value]


def grade_many(
    autograder: Path,
    submissions: list[Path],
    **options,
) -> list[Grade]:
    """Grade submissions of one assignment in parallel (see
    :func:`grade_pairs` for the options)."""
    return grade_pairs(
        [(Path(autograder), Path(s)) for s in submissions], **options
    )


def write_csv(grades: list[Grade], path: Path, labels: list[str]) -> None:
    """One row per submission: total, possible, a column per question,
    seconds, message and notes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "submission",
                "score",
                "possible",
                *labels,
                "seconds",
                "cpu_seconds",
                "message",
                "notes",
            ]
        )
        for g in grades:
            per = g.questions
            w.writerow(
                [
                    Path(g.submission).name,
                    g.score,
                    g.possible,
                    *[per.get(label, 0.0) for label in labels],
                    round(g.seconds, 1),
                    g.cpu_seconds,
                    g.message,
                    " | ".join(g.notes),
                ]
            )


def _submissions(paths: list[Path]) -> list[Path]:
    """Notebooks given directly or found in the given folders."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(p.glob("*.ipynb"))
        else:
            out.append(p)
    if not out:
        raise ValueError(
            f"submissions: no notebook in {[str(p) for p in paths]}"
        )
    return out


def grade(
    selection: str,
    submissions: list[Path],
    out: Path,
    *,
    cell_timeout: int = 120,
    timeout: int = 900,
    jobs: int | None = None,
    build_dir: Path = OUT,
    progress: bool = True,
) -> list[Grade]:
    """Grade submissions (notebooks, or folders of them) of one chapter's
    assignment in parallel; writes grades.csv (a column per question),
    report.md (for students) and report-lecturer.md (with the hidden tests'
    lines)."""
    (path,) = chapters([selection])
    autograder = Path(build_dir) / path.stem / "autograder" / "autograder.zip"
    if not autograder.is_file():
        raise ValueError(
            f"selection: no autograder for {path.stem}; run `build {selection}` first"
        )
    chapter = read_chapter(path)
    answers = {
        e.label: [f.split("(")[0] for f in functions(e.answer)]
        for e in chapter.autograded
    }
    grades = grade_many(
        autograder,
        _submissions(submissions),
        jobs=jobs,
        cell_timeout=cell_timeout,
        timeout=timeout,
        answers=answers,
        progress=progress,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_csv(grades, out / "grades.csv", list(answers))
    (out / "report.md").write_text(report(grades))
    (out / "report-lecturer.md").write_text(report(grades, lecturer=True))
    return grades


# -- the student edition of the book ----------------------------------------
def _merge(base: dict, overlay: dict) -> dict:
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def student_config(out: Path = ROOT / "_build" / "student") -> Path:
    """Write ``_config.yml`` merged with ``_config_student.yml`` for ``make
    book-student``; relative paths are made absolute (the merged file lives
    under ``_build``, and Jupyter Book reads extension paths relative to it).
    """
    import yaml

    base = yaml.safe_load((ROOT / "_config.yml").read_text())
    overlay = yaml.safe_load((ROOT / "_config_student.yml").read_text())
    config = _merge(base, overlay)
    extensions = config.get("sphinx", {}).get("local_extensions") or {}
    for name, folder in extensions.items():
        extensions[name] = str((ROOT / folder).resolve())
    cache = config.get("execute", {}).get("cache")
    if cache:
        config["execute"]["cache"] = str((ROOT / cache).resolve())
    config["bibtex_bibfiles"] = [
        str((ROOT / f).resolve()) for f in config.get("bibtex_bibfiles", [])
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "_config.yml"
    path.write_text(
        "# Generated by tools/assignments.py student-config from _config.yml and\n"
        "# _config_student.yml; do not edit.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return path


# -- command line -----------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_run-one"]:
        ns = argparse.Namespace(
            autograder=argv[1],
            submission=argv[2],
            output=argv[3],
            cell_timeout=int(argv[4]),
        )
        return _run_one(ns)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "build", help="write the assignments under _build/assignments"
    )
    b.add_argument(
        "chapters", nargs="*", help="chapter numbers or stems (default: all)"
    )
    b.add_argument("--out", type=Path, default=OUT)
    b.add_argument(
        "--test-time-limit",
        type=int,
        default=TEST_TIME_LIMIT_S,
        help="seconds one test may run before it fails",
    )
    b.add_argument(
        "--require-all",
        action="store_true",
        help="fail when a chapter has no autograded exercise",
    )
    g = sub.add_parser(
        "grade", help="grade submissions of one chapter's assignment"
    )
    g.add_argument("chapter")
    g.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        help="notebooks, or folders of notebooks",
    )
    g.add_argument("--out", type=Path, default=ROOT / "_build" / "graded")
    g.add_argument("--cell-timeout", type=int, default=120)
    g.add_argument("--timeout", type=int, default=900)
    g.add_argument(
        "--jobs", type=int, default=None, help="parallel graders (CPUs)"
    )
    g.add_argument(
        "--build-dir",
        type=Path,
        default=OUT,
        help="where `build` wrote the assignments",
    )
    sc = sub.add_parser(
        "student-config",
        help="write _build/student/_config.yml (student edition)",
    )
    sc.add_argument("--out", type=Path, default=ROOT / "_build" / "student")
    args = parser.parse_args(argv)
    if args.command == "student-config":
        print(student_config(args.out))
        return 0
    if args.command == "build":
        summary = build(args.chapters or None, args.out, args.test_time_limit)
        bad = False
        for row in summary:
            if row.get("error"):
                bad = True
                print(f"{row['chapter']}: ERROR {row['error']}")
            elif not row["autograded"]:
                bad = bad or args.require_all
                print(
                    f"{row['chapter']}: no autograded exercise yet"
                    + (
                        f" (coding exercises to convert: {', '.join(row['unconverted'])})"
                        if row.get("unconverted")
                        else ""
                    )
                )
            else:
                print(
                    f"{row['chapter']}: {len(row['autograded'])} autograded exercises, "
                    f"{row['public_tests']} public and {row['hidden_tests']} hidden tests"
                    + (
                        f"; not converted: {', '.join(row['unconverted'])}"
                        if row["unconverted"]
                        else ""
                    )
                )
        built = sum(1 for r in summary if r["autograded"])
        print(f"{built} assignments in {args.out}")
        return 1 if bad else 0
    grades = grade(
        args.chapter,
        args.submissions,
        args.out,
        cell_timeout=args.cell_timeout,
        timeout=args.timeout,
        jobs=args.jobs,
        build_dir=args.build_dir,
    )
    print(report(grades))
    print(
        f"wrote {args.out / 'grades.csv'}, {args.out / 'report.md'} and "
        f"{args.out / 'report-lecturer.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
