"""The autograded assignments generated from the chapters (tools/assignments.py).

What CI proves here, for every chapter: the generator finds the chapter's
coding exercises (on the lecture page and its section pages); the student
notebook as distributed scores 0; the chapter's own answers score full marks;
and every plausible wrong answer in ``tests/wrong_answers`` scores 0 on its
question. The real grader (otter, one kernel per notebook, in parallel) runs
each chapter's solution and student notebook, the first wrong answer of every
exercise (one notebook per chapter carries one wrong answer per exercise), a
notebook that rebinds ``np.allclose`` and one that names a variable
``bounds`` and writes a function below its check. The other wrong answers are
graded in process with the same test files (otter's own runner, without a
kernel per notebook); ``-m grading_sweep`` sends every one of them through
the real grader as well. Chapter 1 also goes through the grader with
submissions that import a missing module, loop, and kill their kernel, and
its student notebook runs in a Colab-like setting.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))

import assignments  # noqa: E402
from otter.test_files import ExceptionTestFile  # noqa: E402
from wrong_answers import WRONG  # noqa: E402

CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
FIRST = "01_imagined_rollouts"


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Every chapter's assignment, generated once per session."""
    out = tmp_path_factory.mktemp("assignments")
    summary = assignments.build(None, out)
    return out, {row["chapter"]: row for row in summary}


def _needs(built, chapter):
    out, rows = built
    if not rows[chapter]["autograded"]:
        pytest.skip(
            f"{chapter} has no autograded exercise (see test_every_chapter_has_an_assignment)"
        )
    return out / chapter


# -- the generator ----------------------------------------------------------
def test_nine_chapters():
    assert len(CHAPTERS) == 9


def test_no_chapter_breaks_the_convention(built):
    _, rows = built
    errors = {c: r["error"] for c, r in rows.items() if r.get("error")}
    assert not errors, errors


def test_every_chapter_has_an_assignment(built):
    _, rows = built
    missing = {
        c: r.get("unconverted", [])
        for c, r in rows.items()
        if not r["autograded"]
    }
    assert not missing, (
        f"chapters without an autograded exercise (coding exercises to convert): {missing}"
    )


def test_stub_keeps_signatures_and_docstrings():
    answer = (
        "import numpy as np\n\nSCALE = 2.0\n\n\n"
        "def f(x: float, n: int = 3) -> float:\n"
        '    """Return SCALE * x ** n."""\n'
        "    y = x**n\n"
        "    return SCALE * y\n"
    )
    stub = assignments.stub(answer)
    assert "def f(x: float, n: int = 3) -> float:" in stub
    assert '"""Return SCALE * x ** n."""' in stub
    assert "SCALE = 2.0" in stub and "import numpy as np" in stub
    assert "return" not in stub and stub.rstrip().endswith("...")
    env: dict = {}
    exec(stub, env)
    assert env["f"](2.0) is None
    assert assignments.functions(answer) == ["f(x: float, n: int=3)"]


@pytest.mark.parametrize(
    "answer, message",
    [
        ("def f(x):\n    return x\n", "no docstring"),
        (
            "x = 1\nprint(x)\n",
            "only imports, constants and function definitions",
        ),
        ("X = 1\n", "defines no function"),
        ("def f(:\n", "does not parse"),
    ],
)
def test_stub_rejects_answers_off_the_convention(answer, message):
    with pytest.raises(assignments.ConventionError, match=message):
        assignments.stub(answer, "ex-x")


def test_hidden_test_must_be_removed_from_the_book(tmp_path):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# T\n"},
        {"cell_type": "code", "metadata": {}, "source": "import math"},
        {"cell_type": "code", "metadata": {}, "source": "import math"},
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": "```{exercise} E\n:label: ex-a\n\nDo.\n```",
        },
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": "```{solution-start} ex-a\n```",
        },
        {
            "cell_type": "code",
            "metadata": {"tags": ["answer"]},
            "source": 'def f():\n    """1."""\n    return 1',
        },
        {
            "cell_type": "code",
            "metadata": {"tags": ["test-public"]},
            "source": "assert f() == 1",
        },
        {
            "cell_type": "code",
            "metadata": {"tags": ["test-hidden"]},
            "source": "assert f() == 1",
        },
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": "```{solution-end}\n```",
        },
    ]
    path = tmp_path / "01_x.ipynb"
    path.write_text(
        json.dumps(
            {
                "cells": cells,
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    with pytest.raises(assignments.ConventionError, match="remove-cell"):
        assignments.read_chapter(path)


def test_plain_markdown_for_jupyter():
    text = "Use {func}`imagination.rollout.make_rollout` with {eq}`eq-x`, see {ref}`the ledger <ledger>`."
    out = assignments.plain_markdown(text)
    assert "`imagination.rollout.make_rollout`" in out
    assert "{" not in out and "*the ledger*" in out


def test_bad_arguments_are_named(built, tmp_path):
    out, _ = built
    with pytest.raises(ValueError, match="cell_timeout"):
        assignments.grade_one(
            out / FIRST / "autograder" / "autograder.zip",
            tmp_path / "x.ipynb",
            cell_timeout=0,
        )
    with pytest.raises(ValueError, match="submission"):
        assignments.grade_one(
            out / FIRST / "autograder" / "autograder.zip", tmp_path / "x.ipynb"
        )
    with pytest.raises(ValueError, match="chapters"):
        assignments.chapters(["99"])


# -- every chapter, graded in process ----------------------------------------
def _grade_in_process(
    folder: Path, solved: bool
) -> dict[str, list[tuple[str, bool, str]]]:
    """Run the imports and answer cells, then every test file of the bundle."""
    stem = folder.name
    nb = json.loads(
        (
            folder / ("solutions" if solved else "student") / f"{stem}.ipynb"
        ).read_text()
    )
    env: dict = {"__name__": "__main__"}
    for cell in nb["cells"]:
        tags = cell["metadata"].get("tags", [])
        if cell["id"] == "imports" or "answer" in tags:
            source = "".join(cell["source"])
            source = "\n".join(
                ln
                for ln in source.splitlines()
                if not ln.lstrip().startswith(("%", "!"))
            )
            exec(compile(source, f"{stem}:{cell['id']}", "exec"), env)
    results = {}
    for path in sorted((folder / "autograder" / "tests").glob("*.py")):
        test = ExceptionTestFile.from_file(str(path))
        test.run(env)
        results[test.name] = [
            (r.test_case.name, r.passed, r.message or "")
            for r in test.test_case_results
        ]
    return results


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_notebook_fails_every_test(built, chapter):
    folder = _needs(built, chapter)
    results = _grade_in_process(folder, solved=False)
    passing = [
        f"{q}: {name}"
        for q, cases in results.items()
        for name, ok, _ in cases
        if ok
    ]
    assert not passing, (
        f"tests that pass on the stubs (they cannot fail): {passing}"
    )
    assert all(len(cases) == 2 for cases in results.values())


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_answers_pass_every_test(built, chapter):
    folder = _needs(built, chapter)
    results = _grade_in_process(folder, solved=True)
    failing = {
        f"{q}: {name}": msg
        for q, cases in results.items()
        for name, ok, msg in cases
        if not ok
    }
    assert not failing, failing


# -- wrong answers, tampering, and the real grader ---------------------------
def wrong_answer(answer: str, edits: list[tuple[str, str]]) -> str:
    """The chapter's answer with a wrong answer's edits applied."""
    for old, new in edits:
        assert old in answer, f"stale wrong answer: {old!r} not in\n{answer}"
        answer = answer.replace(old, new)
    return answer


def _answers(chapter: str) -> dict[str, str]:
    (path,) = assignments.chapters([chapter])
    return {
        e.label: e.answer for e in assignments.read_chapter(path).autograded
    }


def _slot_notebook(folder: Path, slot: int, target: Path) -> dict[str, str]:
    """The solution notebook with the ``slot``-th wrong answer of every
    exercise that has one; returns {label: wrong answer name}."""
    answers = _answers(folder.name)
    nb = json.loads(
        (folder / "solutions" / f"{folder.name}.ipynb").read_text()
    )
    used = {}
    for cell in nb["cells"]:
        label = cell["id"].removeprefix("answer-")
        if cell["id"].startswith("answer-") and label in WRONG:
            names = list(WRONG[label])
            if slot < len(names):
                used[label] = names[slot]
                cell["source"] = wrong_answer(
                    answers[label], WRONG[label][names[slot]]
                )
    target.write_text(json.dumps(nb))
    return used


def test_every_exercise_has_three_wrong_answers(built):
    _, rows = built
    labels = [label for r in rows.values() for label in r["autograded"]]
    few = {
        x: len(WRONG.get(x, {})) for x in labels if len(WRONG.get(x, {})) < 3
    }
    assert not few, f"exercises with fewer than 3 wrong answers: {few}"
    assert not set(WRONG) - set(labels), "wrong answers of no exercise"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_wrong_answers_score_zero_in_process(built, chapter):
    """Every wrong answer after the first (the first goes through the real
    grader below), with the same test files otter runs."""
    folder = _needs(built, chapter)
    answers = _answers(chapter)
    nb = json.loads((folder / "student" / f"{chapter}.ipynb").read_text())
    imports = next(c for c in nb["cells"] if c["id"] == "imports")
    kept = {}
    for label, answer in answers.items():
        test = (folder / "autograder" / "tests" / f"{label}.py").read_text()
        for name, edits in list(WRONG.get(label, {}).items())[1:]:
            env: dict = {"__name__": "__main__"}
            exec("".join(imports["source"]), env)
            try:
                exec(wrong_answer(answer, edits), env)
            except Exception:  # an answer cell that raises is wrong too
                pass
            tf = ExceptionTestFile.from_string(test, f"{label}.py")
            tf.run(env)
            if tf.score:
                kept[f"{label}: {name}"] = tf.score
    assert not kept, f"wrong answers that keep points: {kept}"


@pytest.fixture(scope="module")
def real_grades(built, tmp_path_factory):
    """The real grader on every chapter's solution, student notebook and
    first wrong answers, plus two special notebooks, all in parallel."""
    out, rows = built
    work = tmp_path_factory.mktemp("graded")
    pairs, what = [], []
    for chapter in CHAPTERS:
        if not rows[chapter]["autograded"]:
            continue
        folder = out / chapter
        zip_ = folder / "autograder" / "autograder.zip"
        sol = folder / "solutions" / f"{chapter}.ipynb"
        if chapter.startswith("03"):
            sol = _bounds_and_moved(folder, work / f"{chapter}-moved.ipynb")
        pairs += [(zip_, sol), (zip_, folder / "student" / f"{chapter}.ipynb")]
        what += [(chapter, "solution", {}), (chapter, "student", {})]
        target = work / f"{chapter}-wrong-0.ipynb"
        used = _slot_notebook(folder, 0, target)
        pairs.append((zip_, target))
        what.append((chapter, "wrong", used))
        if chapter == FIRST:
            pairs.append((zip_, _tampering(folder, work / "tamper.ipynb")))
            what.append((chapter, "tamper", {}))
    start = time.perf_counter()
    grades = assignments.grade_pairs(pairs, jobs=2, progress=False)
    seconds = time.perf_counter() - start
    print(
        f"real grader: {len(pairs)} notebooks in {seconds:.0f} s on 2 "
        f"workers; per notebook "
        + ", ".join(f"{g.seconds:.0f}" for g in grades)
        + " s"
    )
    return list(zip(what, grades))


def _bounds_and_moved(folder: Path, target: Path) -> Path:
    """Chapter 3's answers, with a variable named like the tests' modules
    and one function written below its check cell."""
    nb = json.loads(
        (folder / "solutions" / f"{folder.name}.ipynb").read_text()
    )
    cells = nb["cells"]
    i = next(
        k for k, c in enumerate(cells) if c["id"] == "answer-ex-ch3-cancel"
    )
    moved = cells.pop(i)
    moved["id"] = "moved-below"
    j = next(
        k for k, c in enumerate(cells) if c["id"] == "check-ex-ch3-cancel"
    )
    cells.insert(j + 1, moved)
    cells.append(
        {
            "cell_type": "code",
            "id": "names",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "bounds = [0.1, 0.2]\nR = None\n",
        }
    )
    target.write_text(json.dumps(nb))
    return target


def _tampering(folder: Path, target: Path) -> Path:
    """Chapter 1's answers plus a cell that makes np.allclose always true."""
    nb = json.loads(
        (folder / "solutions" / f"{folder.name}.ipynb").read_text()
    )
    nb["cells"].insert(
        3,
        {
            "cell_type": "code",
            "id": "tamper",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "np.allclose = lambda *args, **kwargs: True\n",
        },
    )
    target.write_text(json.dumps(nb))
    return target


def test_real_grader_solutions_full_students_zero(real_grades):
    for (chapter, kind, _), g in real_grades:
        if kind == "solution":
            assert g.possible > 0 and g.score == g.possible, (
                chapter,
                assignments.report([g], lecturer=True),
            )
        elif kind == "student":
            assert g.score == 0, (chapter, assignments.report([g]))


def test_real_grader_wrong_answers_score_zero(real_grades):
    kept = {}
    for (chapter, kind, used), g in real_grades:
        if kind != "wrong":
            continue
        per = g.questions
        for label, name in used.items():
            if per.get(label, 0) != 0:
                kept[f"{label}: {name}"] = per[label]
        for label in set(per) - set(used):  # exercises left correct
            assert per[label] == 1, (chapter, label)
    assert not kept, f"wrong answers that keep points: {kept}"


def test_tampering_scores_zero_where_it_matters(real_grades):
    ((_, g),) = [(w, g) for w, g in real_grades if w[1] == "tamper"]
    per = g.questions
    # the tests of these two use np.allclose; stability's do not
    assert per["ex-ch1-ensemble"] == per["ex-ch1-finite"] == 0, per
    assert per["ex-ch1-stability"] == 1, per
    report = assignments.report([g])
    assert "np.allclose" in report.replace("numpy.allclose", "np.allclose")
    assert "review by hand" in report


def test_own_names_and_answers_below_their_check(real_grades):
    ((_, g),) = [
        (w, g)
        for w, g in real_grades
        if w[1] == "solution" and w[0].startswith("03")
    ]
    assert g.score == g.possible, assignments.report([g], lecturer=True)
    assert any("below its check" in n for n in g.notes), g.notes


def test_feedback_says_expected_and_got_without_wrapper(real_grades):
    ((_, g),) = [
        (w, g) for w, g in real_grades if w[1] == "student" and w[0] == FIRST
    ]
    report = assignments.report([g])
    assert "expected" in report and "got None" in report, report
    assert "_run(" not in report and "Error at line" not in report, report
    wrong = [g for w, g in real_grades if w[1] == "wrong"]
    hidden_only = [
        m
        for g in wrong
        for t in g.tests
        if t.get("max_score") and not t.get("score")
        for m in assignments._failures(t.get("output") or "")
        if "hidden tests" in m
    ]
    assert hidden_only and all(
        m.startswith("the hidden tests of") for m in hidden_only
    ), hidden_only
    lecturer = assignments.report(wrong, lecturer=True)
    assert "hidden cell" in lecturer and "hidden cell" not in (
        assignments.report(wrong)
    )


@pytest.mark.grading_sweep
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_wrong_answer_through_the_real_grader(built, chapter, tmp_path):
    if not os.environ.get("IMAGINATION_GRADING_SWEEP"):
        pytest.skip("set IMAGINATION_GRADING_SWEEP=1 for the full sweep")
    folder = _needs(built, chapter)
    zip_ = folder / "autograder" / "autograder.zip"
    slots = max(len(WRONG.get(x, {})) for x in built[1][chapter]["autograded"])
    pairs, used = [], []
    for slot in range(slots):
        target = tmp_path / f"wrong-{slot}.ipynb"
        used.append(_slot_notebook(folder, slot, target))
        pairs.append((zip_, target))
    grades = assignments.grade_pairs(pairs, jobs=2, progress=False)
    kept = {
        f"{label}: {name}": g.questions.get(label)
        for g, u in zip(grades, used)
        for label, name in u.items()
        if g.questions.get(label, 0) != 0
    }
    assert not kept, kept


def test_assignment_is_pinned_to_the_commit(built):
    out, rows = built
    folder = out / FIRST
    ref = rows[FIRST]["ref"]
    assert ref and ref != "main"
    nb = json.loads((folder / "student" / f"{FIRST}.ipynb").read_text())
    install = "".join(nb["cells"][1]["source"])
    assert f"@{ref}" in install and "@main" not in install
    req = (folder / "autograder" / "requirements.txt").read_text()
    assert req.strip().endswith(f"@{ref}")


def test_grade_a_folder_writes_csv(built, tmp_path):
    """`grade` on a folder: parallel, a progress bar, one column per question."""
    out, rows = built
    chapter = "04_sample_allocation"
    folder = _needs(built, chapter)
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(folder / "solutions" / f"{chapter}.ipynb", subs / "a.ipynb")
    shutil.copy(folder / "student" / f"{chapter}.ipynb", subs / "b.ipynb")
    grades = assignments.grade(
        "04", [subs], tmp_path / "graded", build_dir=out, jobs=2
    )
    assert [g.score for g in grades] == [3.0, 0.0]
    with open(tmp_path / "graded" / "grades.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["submission"] for r in table] == ["a.ipynb", "b.ipynb"]
    for label in rows[chapter]["autograded"]:
        assert table[0][label] == "1.0" and table[1][label] == "0.0"
    assert (tmp_path / "graded" / "report-lecturer.md").is_file()


def test_section_pages_carry_exercises(tmp_path):
    """An exercise block moved to a section page is still collected."""
    book = tmp_path / "book"
    (book / "01_x").mkdir(parents=True)

    def page(cells):
        return json.dumps(
            {
                "cells": cells,
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )

    def md(text):
        return {"cell_type": "markdown", "metadata": {}, "source": text}

    def code(text, tags=()):
        return {
            "cell_type": "code",
            "metadata": {"tags": list(tags)},
            "source": text,
        }

    (book / "01_x.ipynb").write_text(
        page([md("# Lecture"), code("# boot"), code("import math")])
    )
    (book / "01_x" / "study.ipynb").write_text(
        page(
            [
                code("# boot"),
                md("# Study"),
                code("import cmath"),
                md("```{exercise} E\n:label: ex-s\n\nDo.\n```"),
                md("```{solution-start} ex-s\n```"),
                code('def f():\n    """One."""\n    return 1', ["answer"]),
                code("assert f() == 1", ["test-public"]),
                code("assert f() + 1 == 2", ["test-hidden", "remove-cell"]),
                md("```{solution-end}\n```"),
            ]
        )
    )
    chapter = assignments.read_chapter(book / "01_x.ipynb")
    assert [e.label for e in chapter.autograded] == ["ex-s"]
    assert "import cmath" in chapter.imports


def _edited(notebook: Path, edits: dict[str, str], target: Path) -> Path:
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if cell["id"] in edits:
            cell["source"] = edits[cell["id"]].replace(
                "{source}", "".join(cell["source"])
            )
    target.write_text(json.dumps(nb))
    return target


def test_grader_survives_bad_submissions(tmp_path):
    """A missing import, an endless cell, an endless function and a dead kernel
    each cost points with a readable message; none stops the grader."""
    limit = 10
    assignments.build([FIRST[:2]], tmp_path, limit=limit)
    folder = tmp_path / FIRST
    zip_ = folder / "autograder" / "autograder.zip"
    solutions = folder / "solutions" / f"{FIRST}.ipynb"
    bad = _edited(
        solutions,
        {
            "answer-ex-ch1-stability": "import not_a_real_module\n{source}",
            "answer-ex-ch1-ensemble": "{source}\n\nwhile True:\n    pass\n",
            "answer-ex-ch1-finite": "def finite_horizon_P(F, M, gamma, H):\n    while True:\n        pass\n",
        },
        tmp_path / "bad.ipynb",
    )
    crash = _edited(
        solutions,
        {"answer-ex-ch1-finite": "import os\nos._exit(1)\n"},
        tmp_path / "crash.ipynb",
    )
    g = assignments.grade_one(zip_, bad, cell_timeout=10, timeout=240)
    by_question = {t["name"]: t for t in g.tests if "max_score" in t}
    assert by_question["ex-ch1-stability"]["score"] == 0
    assert (
        "not_a_real_module" in g.tests[0]["output"]
        or "is not defined" in by_question["ex-ch1-stability"]["output"]
    )
    # the endless cell was interrupted after its functions were defined
    assert (
        by_question["ex-ch1-ensemble"]["score"]
        == by_question["ex-ch1-ensemble"]["max_score"]
    )
    assert by_question["ex-ch1-finite"]["score"] == 0
    assert (
        f"ran longer than {limit} s" in by_question["ex-ch1-finite"]["output"]
    )
    assert g.score == by_question["ex-ch1-ensemble"]["max_score"]
    dead = assignments.grade_one(zip_, crash, cell_timeout=10, timeout=240)
    assert dead.score == 0 and "kernel died" in dead.message
    report = assignments.report([g, dead])
    assert "TimeoutError" in report and "kernel died" in report


@pytest.mark.colab
def test_student_notebook_runs_colab_like(built, tmp_path):
    """The student notebook alone in an empty folder, on an interpreter that
    does not have this package, with ``google.colab`` present: its install
    cell installs the package (from a copy of this checkout, offline), the
    checks run and report failures, and nothing is read from the repository."""
    nbclient = pytest.importorskip("nbclient")
    folder = _needs(built, FIRST)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [
                str(python),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # the dependencies (jax, otter, ipykernel) come from this environment,
    # but not the imagination package itself: the notebook must install it
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "fake_colab.pth").write_text(
        'import sys, types; m = types.ModuleType("google.colab"); '
        'm.output = types.ModuleType("google.colab.output"); '
        'sys.modules.setdefault("google.colab", m); '
        'sys.modules.setdefault("google.colab.output", m.output)\n'
    )
    package = tmp_path / "package"
    shutil.copytree(
        ROOT / "src",
        package / "src",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, package / name)
    kernels = tmp_path / "jupyter" / "kernels" / "colablike"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    str(python),
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "Colab-like",
                "language": "python",
            }
        )
    )
    work = tmp_path / "student"
    work.mkdir()
    nb_path = work / f"{FIRST}.ipynb"
    shutil.copy(folder / "student" / f"{FIRST}.ipynb", nb_path)
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import imagination\nprint('IMAGINATION AT', imagination.__file__)"
        )
    )
    env = {
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "IMAGINATION_SOURCE": package.as_uri(),
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "IMAGINATION_CLAIMS_DIR": str(tmp_path / "claims"),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(
            nb,
            kernel_name="colablike",
            timeout=600,
            resources={"metadata": {"path": str(work)}},
        )
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = {
        c.get("id"): "".join(
            o.get("text", "") + str(o.get("data", {}))
            for o in c.get("outputs", [])
        )
        for c in nb.cells
    }
    where = [t for t in text.values() if "IMAGINATION AT" in t][0]
    assert str(site) in where, (
        where
    )  # installed by the install cell, not the checkout
    for label in built[1][FIRST]["autograded"]:
        assert "the public check fails" in text[f"check-{label}"], text[
            f"check-{label}"
        ]


# -- the student edition -----------------------------------------------------
def test_student_edition_hides_gated_and_plain_solutions(tmp_path):
    """A one-page book built with the student edition's extension: the
    exercise stays; both solution forms, with the gated one's code, go."""
    pytest.importorskip("jupyter_book")
    (tmp_path / "_config.yml").write_text(
        "title: mini\nexecute:\n  execute_notebooks: 'off'\nonly_build_toc_files: true\n"
        f"sphinx:\n  local_extensions:\n    student_edition: {ROOT / 'tools'}\n"
        "  extra_extensions:\n    - sphinx_exercise\n  config:\n    hide_solutions: true\n"
    )
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: index\nchapters:\n  - file: page\n"
    )
    (tmp_path / "index.md").write_text("# Index\n\nHello.\n")
    md = lambda cid, text: {
        "cell_type": "markdown",
        "id": cid,
        "metadata": {},
        "source": text,
    }
    cells = [
        md(
            "a",
            "# Page\n\n```{exercise} Title\n:label: ex-a\n\nDo EXERCISETEXT.\n```",
        ),
        md(
            "b",
            "```{solution-start} ex-a\n:class: dropdown\n```\nSOLUTIONPROSE here.",
        ),
        {
            "cell_type": "code",
            "id": "c",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "SOLUTIONCODE = 1",
        },
        md(
            "d",
            "```{solution-end}\n```\n\nAFTERTEXT stays.\n\n```{exercise} Two\n:label: ex-b\n\nSECONDEX.\n```\n\n"
            "```{solution} ex-b\n:class: dropdown\n\nPLAINSOLUTION.\n```",
        ),
    ]
    kernel = {
        "kernelspec": {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
    }
    (tmp_path / "page.ipynb").write_text(
        json.dumps(
            {
                "cells": cells,
                "metadata": kernel,
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    jb = Path(sys.executable).parent / "jupyter-book"
    run = subprocess.run(
        [str(jb), "build", str(tmp_path), "-W", "-n"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    html = (tmp_path / "_build" / "html" / "page.html").read_text()
    for kept in ("EXERCISETEXT", "AFTERTEXT", "SECONDEX"):
        assert kept in html
    for gone in ("SOLUTIONPROSE", "SOLUTIONCODE", "PLAINSOLUTION"):
        assert gone not in html


def test_student_config_merges_the_overlay(tmp_path):
    import yaml

    path = assignments.student_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    assert config["sphinx"]["config"]["hide_solutions"] is True
    extensions = config["sphinx"]["local_extensions"]
    assert Path(extensions["student_edition"]) == ROOT / "tools"
    assert "claims_ledger" in extensions  # the base config's extensions stay
    assert (
        config["repository"]
        == yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    )
