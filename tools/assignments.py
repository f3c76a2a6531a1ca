#!/usr/bin/env python3
"""Autograded assignments generated from the chapters (otter-grader).

The chapter is the only source: each coding exercise's solution block holds
one code cell tagged ``answer`` (imports, constants and function definitions
with docstrings), cells tagged ``test-public`` (asserts a student may see) and
cells tagged ``test-hidden`` + ``remove-cell`` (asserts on inputs the student
has not seen). From them this tool writes, per chapter, under
``_build/assignments/<chapter>/``:

``student/<chapter>.ipynb``
    The student notebook: the Colab install cell, the chapter's imports, every
    exercise statement, a stub of each answer (signatures and docstrings,
    bodies replaced by ``...``) and an otter check cell running the public
    tests. It needs nothing beside it: the public tests are written out by
    its setup cell, so it runs on Colab as a single file.
``autograder/autograder.zip``
    The otter autograder bundle (public and hidden tests, requirements):
    grade locally with ``python tools/assignments.py grade`` (below) or
    ``otter run``, or upload it to Gradescope as the assignment's autograder.
``solutions/<chapter>.ipynb``
    The student notebook with the chapter's answers filled in: the
    lecturer's key, and what CI grades to prove full marks are reachable.

Usage::

    python tools/assignments.py build                 # every chapter
    python tools/assignments.py build 01 03           # chapters by number
    python tools/assignments.py grade 01 hw/*.ipynb   # grade submissions

``grade`` runs otter-grader without Docker, one submission at a time in its
own process: a cell that runs longer than ``--cell-timeout`` seconds is
interrupted (the rest of the notebook still runs), a test longer than
:data:`TEST_TIME_LIMIT_S` fails with a message, and a submission that takes
longer than ``--timeout`` seconds in all, or kills its kernel, scores 0 with a
readable reason; the grader never hangs. It writes ``grades.csv`` and a
Markdown report.
"""

from __future__ import annotations

import argparse
import ast
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import bootstrap  # noqa: E402  (tools/bootstrap.py: the Colab install cell)

OUT = ROOT / "_build" / "assignments"
#: Seconds one test cell may run before it fails (in the notebook and in grading).
TEST_TIME_LIMIT_S = 60
#: Where the student notebook writes its public checks (not ``tests``: otter
#: copies the autograder's tests there when it grades).
CHECKS_DIR = "public_checks"
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


def read_chapter(path: Path) -> Chapter:
    """Parse a chapter notebook into its exercises and their tagged cells.

    Raises
    ------
    ConventionError
        On a tagged cell outside a solution, two ``answer`` cells in one
        solution, a hidden test not tagged ``remove-cell``, or tests without
        an answer.
    """
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
    exercises: dict[str, Exercise] = {}
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
    return Chapter(Path(path), title, imports or "", list(exercises.values()))


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


_TEST_TEMPLATE = '''\
"""Otter tests for exercise {label} ({chapter}); generated by
tools/assignments.py from the chapter's test cells. Do not edit."""

import signal
import threading
import traceback

from otter.test_files import test_case

OK_FORMAT = False
name = {label!r}
LIMIT_S = {limit}


def _run(env, source, label):
    """Run one test cell in a copy of the notebook's globals, within LIMIT_S."""
    scope = dict(env)
    code = compile(source, label, "exec")
    alarm = hasattr(signal, "SIGALRM") and (
        threading.current_thread() is threading.main_thread()
    )
    if alarm:
        def stop(signum, frame):
            raise TimeoutError(
                f"{{label}} ran longer than {{LIMIT_S}} s (an endless loop?)"
            )

        previous = signal.signal(signal.SIGALRM, stop)
        signal.alarm(LIMIT_S)
    try:
        exec(code, scope)
    except Exception as err:
        lines = source.splitlines()
        where = [f for f in traceback.extract_tb(err.__traceback__)
                 if f.filename == label]
        at = ""
        if where:
            n = where[-1].lineno
            at = f" at line {{n}}: {{lines[n - 1].strip()}}"
        message = str(err) or type(err).__name__
        raise AssertionError(
            f"{{label}} failed{{at}}\\n    {{type(err).__name__}}: {{message}}"
        ) from None
    finally:
        if alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
'''


def test_file(
    chapter: Chapter,
    ex: Exercise,
    hidden: bool,
    limit: int = TEST_TIME_LIMIT_S,
) -> str:
    """An otter exception-based test file: one test case per test cell, each
    failing with a message after ``limit`` seconds."""
    if not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    parts = [
        _TEST_TEMPLATE.format(
            label=ex.label, chapter=chapter.stem, limit=limit
        )
    ]
    cases = [("public", i, s) for i, s in enumerate(ex.public, 1)]
    if hidden:
        cases += [("hidden", i, s) for i, s in enumerate(ex.hidden, 1)]
    for kind, i, src in cases:
        var = f"_{kind.upper()}_{i}"
        parts.append(f"\n{var} = {src!r}\n")
        parts.append(
            f"\n\n@test_case(name={f'{kind} check {i}'!r}, points=1, hidden={kind == 'hidden'})\n"
            f"def {kind}_{i}(env):\n"
            f"    _run(env, {var}, {f'{ex.label} {kind} check {i}'!r})\n"
        )
    return "".join(parts)


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


def install_cell() -> str:
    """The book's Colab bootstrap cell plus otter-grader, on Colab only."""
    return (
        bootstrap.cell_source()
        + f'\n    %pip install -q "{OTTER_REQUIREMENT}"'
    )


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
        "# Checks for this assignment (run this cell; do not edit it).\n"
        "import pathlib\n\nimport otter\n\n"
        f"CHECKS = {json.dumps(tests, indent=1)}\n"
        f'folder = pathlib.Path("{CHECKS_DIR}")\n'
        "folder.mkdir(exist_ok=True)\n"
        "for label, text in CHECKS.items():\n"
        '    (folder / f"{label}.py").write_text(text)\n'
        f'grader = otter.Notebook(tests_dir="{CHECKS_DIR}")'
    )


def notebook(
    chapter: Chapter, solved: bool = False, limit: int = TEST_TIME_LIMIT_S
) -> dict:
    """The student notebook of a chapter (``solved``: with the answers)."""
    cells = [
        _cell(
            "markdown",
            f"# Assignment: {chapter.title}\n\n"
            f"The exercises of the chapter *{chapter.title}* (`book/{chapter.path.name}`). "
            "For each coding exercise, write the body of every function marked `...` "
            "(keep its name and arguments: the grader calls it on inputs you have not "
            "seen) and run the check cell below it. The checks catch common mistakes; "
            "the grader also runs hidden tests on other seeds, parameters and systems, "
            "so a passing check is not yet full marks. Written exercises are graded by "
            "hand.\n\n"
            "Run the cells from the top: the first installs the book's package on "
            "Colab (and does nothing elsewhere), the next two import the chapter's "
            "tools and set up the checks.",
            "assignment-intro",
        ),
        _cell("code", install_cell(), "colab-bootstrap", ["remove-cell"]),
        _cell("code", _imports(chapter), "imports"),
        _cell(
            "code",
            _setup_cell(chapter, limit),
            "otter-setup",
            ["otter-setup"],
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
                f"## Exercise {n}: {ex.title} ({graded})\n\n{plain_markdown(ex.statement)}",
                f"statement-{ex.label}",
            )
        )
        if ex.autograded:
            code = ex.answer if solved else stub(ex.answer, ex.label)
            cells.append(_cell("code", code, f"answer-{ex.label}", ["answer"]))
            cells.append(
                _cell(
                    "code",
                    f'grader.check("{ex.label}")',
                    f"check-{ex.label}",
                    ["check"],
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
            "imagination": {"chapter": chapter.stem},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def requirements() -> str:
    """What the grading environment installs (Gradescope runs setup.sh with it)."""
    return f"imagination @ {bootstrap.source()}\n"


def build_chapter(
    chapter: Chapter, out: Path = OUT, limit: int = TEST_TIME_LIMIT_S
) -> dict:
    """Write one chapter's student notebook, solutions and autograder zip."""
    from otter.generate import main as otter_generate

    folder = out / chapter.stem
    if folder.exists():
        shutil.rmtree(folder)
    student = folder / "student" / f"{chapter.stem}.ipynb"
    _write_json(student, notebook(chapter, limit=limit))
    _write_json(
        folder / "solutions" / f"{chapter.stem}.ipynb",
        notebook(chapter, solved=True, limit=limit),
    )
    ag = folder / "autograder"
    for ex in chapter.autograded:
        (ag / "tests").mkdir(parents=True, exist_ok=True)
        (ag / "tests" / f"{ex.label}.py").write_text(
            test_file(chapter, ex, hidden=True, limit=limit)
        )
        (folder / "student" / "tests").mkdir(exist_ok=True)
        (folder / "student" / "tests" / f"{ex.label}.py").write_text(
            test_file(chapter, ex, hidden=False, limit=limit)
        )
    (ag / "requirements.txt").write_text(requirements())
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
    import otter.run

    otter.run.main(
        args.submission,
        autograder=args.autograder,
        output_dir=args.output,
        no_logo=True,
    )
    return 0


@dataclass
class Grade:
    submission: str
    score: float
    possible: float
    seconds: float
    tests: list[dict]
    message: str = ""


def grade_one(
    autograder: Path,
    submission: Path,
    *,
    cell_timeout: int = 120,
    timeout: int = 900,
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
    with tempfile.TemporaryDirectory() as tmp:
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
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            cwd=tmp,
        )
        try:
            log, _ = proc.communicate(timeout=timeout)
            message = ""
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            log, _ = proc.communicate()
            message = f"grading stopped after {timeout} s (does a cell never finish?)"
        seconds = time.perf_counter() - start
        results = Path(tmp) / "results.json"
        if results.is_file() and not message:
            data = json.loads(results.read_text())
            tests = data.get("tests", [])
            score = float(sum(t.get("score", 0) or 0 for t in tests))
            return Grade(str(submission), score, possible, seconds, tests)
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
    )


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
    """The readable lines of otter's output for a failed question."""
    out, lines = [], output.splitlines()
    for i, line in enumerate(lines):
        m = re.search(
            r"AssertionError: (\S+ (?:public|hidden) check \d+ failed.*)$",
            line,
        )
        if m:
            cause = lines[i + 1].strip() if i + 1 < len(lines) else ""
            out.append(f"{m.group(1)}: `{cause}`" if cause else m.group(1))
    return out or ["failed (see otter's output)"]


def _lost(g: Grade) -> str:
    graded = [t for t in g.tests if t.get("max_score")]
    lost = [t for t in graded if (t.get("score") or 0) < t["max_score"]]
    return f"points lost in {len(lost)} of {len(graded)} exercises"


def report(grades: list[Grade]) -> str:
    """A Markdown report: one row per submission, then each failed test."""
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
        if failed or g.message:
            lines += ["", f"### {Path(g.submission).name}", ""]
            if g.message:
                lines += ["```", g.message, "```"]
            for t in failed:
                lines.append(
                    f"- **{t.get('name')}** ({t.get('score') or 0:g} of {t.get('max_score'):g}):"
                )
                lines += [f"  - {m}" for m in _failures(t.get("output") or "")]
    return "\n".join(lines) + "\n"


def grade(
    selection: str,
    submissions: list[Path],
    out: Path,
    *,
    cell_timeout: int = 120,
    timeout: int = 900,
) -> list[Grade]:
    """Grade submissions of one chapter's assignment; writes grades.csv and report.md."""
    (path,) = chapters([selection])
    autograder = OUT / path.stem / "autograder" / "autograder.zip"
    if not autograder.is_file():
        raise ValueError(
            f"selection: no autograder for {path.stem}; run `build {selection}` first"
        )
    grades = [
        grade_one(
            autograder, Path(s), cell_timeout=cell_timeout, timeout=timeout
        )
        for s in submissions
    ]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "score", "possible", "seconds", "message"])
        for g in grades:
            w.writerow(
                [
                    g.submission,
                    g.score,
                    g.possible,
                    round(g.seconds, 1),
                    g.message,
                ]
            )
    (out / "report.md").write_text(report(grades))
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
    g.add_argument("submissions", nargs="+", type=Path)
    g.add_argument("--out", type=Path, default=ROOT / "_build" / "graded")
    g.add_argument("--cell-timeout", type=int, default=120)
    g.add_argument("--timeout", type=int, default=900)
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
    )
    print(report(grades))
    print(f"wrote {args.out / 'grades.csv'} and {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
