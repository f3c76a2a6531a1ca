"""The autograded assignments generated from the chapters (tools/assignments.py).

What CI proves here, for every chapter: the generator finds the chapter's
coding exercises; the student notebook as distributed fails every test
(nothing is pre-solved); the chapter's own answers, filled in, pass every
public and hidden test. Chapter 1 goes through the real otter grader end to
end (an untouched and a filled-in notebook; a submission that imports a
missing module, loops, and one that kills its kernel), and its student
notebook runs in a Colab-like setting: alone in an empty folder, with a fake
``google.colab`` module, installing this package with its own install cell.
The other chapters are graded in process with otter's own test-file runner
(the same test files, without a kernel per notebook), which keeps the whole
module within a few minutes on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import assignments  # noqa: E402
from otter.test_files import ExceptionTestFile  # noqa: E402

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
    assert all(len(cases) >= 2 for cases in results.values())


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


# -- chapter 1 through the real grader ---------------------------------------
def test_otter_grades_untouched_and_filled_notebooks(built, tmp_path):
    folder = _needs(built, FIRST)
    zip_ = folder / "autograder" / "autograder.zip"
    untouched = assignments.grade_one(
        zip_, folder / "student" / f"{FIRST}.ipynb"
    )
    filled = assignments.grade_one(
        zip_, folder / "solutions" / f"{FIRST}.ipynb"
    )
    assert untouched.possible == filled.possible > 0
    assert untouched.score == 0, untouched
    assert filled.score == filled.possible, assignments.report([filled])
    report = assignments.report([untouched, filled])
    assert (
        "full marks" in report and "points lost in 3 of 3 exercises" in report
    )
    assert "public check 1 failed" in report
    print(report)


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
        or "NameError" in by_question["ex-ch1-stability"]["output"]
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
    assert sorted(
        p.stem for p in (work / assignments.CHECKS_DIR).glob("*.py")
    ) == sorted(built[1][FIRST]["autograded"])
    for label in built[1][FIRST]["autograded"]:
        assert "failed" in text[f"check-{label}"].lower(), text[
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
