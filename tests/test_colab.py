"""The Colab path, as close as this machine gets to it.

A fresh virtual environment holds only what a Colab runtime ships
preinstalled (JAX, NumPy, SciPy, matplotlib, sympy, ipykernel, at the locked
versions), plus a stand-in ``google.colab`` module that is imported when the
interpreter starts, as on Colab. Each chapter is copied, alone, into an empty
folder (no repository checkout beside it) and run in that environment's
kernel: the bootstrap cell takes its Colab branch and really runs
``%pip install``, pointed by ``IMAGINATION_SOURCE`` at a local clone of this
repository's HEAD (so uncommitted changes are not seen). Then the bootstrap
and import cells of every chapter run, and chapter 1 runs in full. The test
fails if the install changes the preinstalled JAX, or if a chapter fails.

It takes a few minutes (building the environment dominates), so it is
marked ``colab`` and runs in ``make test`` and CI; ``make test-unit`` skips
it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
# What a Colab runtime ships that the book uses (the rest comes with them).
COLAB_PREINSTALLED = (
    "jax",
    "jaxlib",
    "numpy",
    "scipy",
    "matplotlib",
    "sympy",
    "ipykernel",
)

pytestmark = pytest.mark.colab

STANDIN_OUTPUT = """\
import contextlib


@contextlib.contextmanager
def use_tags(tags):
    yield


@contextlib.contextmanager
def redirect_to_element(selector):
    yield


def clear(output_tags=None):
    pass


def eval_js(script, ignore_result=False):
    return None
"""


def _locked_pins(names) -> list[str]:
    """``name==version`` for this Python from the lock (markers evaluated)."""
    from packaging.markers import Marker

    pins = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(
            r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$",
            line,
        )
        if not m:
            continue
        name, version, marker = m.group(1).lower(), m.group(2), m.group(3)
        if marker and not Marker(marker).evaluate():
            continue
        pins[name] = version
    missing = [n for n in names if n not in pins]
    assert not missing, f"{missing} not in {LOCK.name}"
    return [f"{n}=={pins[n]}" for n in names]


def _pip_versions(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {d["name"].lower(): d["version"] for d in json.loads(out)}


@pytest.fixture(scope="module")
def colab_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("colab")
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Colab ships a current pip (older ones reject git+file URLs)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        check=True,
    )
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            *_locked_pins(COLAB_PREINSTALLED),
        ],
        check=True,
    )
    # the stand-in google.colab, imported at start-up like Colab's own
    site = Path(
        subprocess.run(
            [
                str(python),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "__init__.py").write_text("")
    (site / "google" / "colab" / "__init__.py").write_text(
        '"""Stand-in for tests."""\n'
    )
    # JAX's debugger imports google.colab.output when it sees Colab
    (site / "google" / "colab" / "output.py").write_text(STANDIN_OUTPUT)
    (site / "zz_colab_standin.pth").write_text("import google.colab\n")
    # its kernel, visible to nbclient through JUPYTER_PATH
    subprocess.run(
        [
            str(python),
            "-m",
            "ipykernel",
            "install",
            "--prefix",
            str(env_dir),
            "--name",
            "colab-like",
            "--display-name",
            "colab-like",
        ],
        check=True,
        capture_output=True,
    )
    # a local clone of HEAD stands in for the GitHub repository
    clone = base / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    head = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    before = _pip_versions(python)
    assert "imagination" not in before and "myst-nb" not in before
    return {
        "python": python,
        "env_dir": env_dir,
        "source": f"git+file://{clone}@{head}",
        "before": before,
        "base": base,
    }


def _run(notebook: Path, env: dict, cells: int | None, workdir: Path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    if cells is not None:
        code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"][
            :cells
        ]
        nb.cells = [nb.cells[i] for i in code]
    workdir.mkdir(parents=True, exist_ok=True)
    # alone: no checkout beside it
    shutil.copy(notebook, workdir / notebook.name)
    old = dict(os.environ)
    os.environ["JUPYTER_PATH"] = str(env["env_dir"] / "share" / "jupyter")
    os.environ["IMAGINATION_SOURCE"] = env["source"]
    os.environ.pop("PYTHONPATH", None)
    os.environ.pop("IMAGINATION_CLAIMS_DIR", None)
    try:
        NotebookClient(
            nb,
            kernel_name="colab-like",
            timeout=600,
            resources={"metadata": {"path": str(workdir)}},
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _chapters():
    return sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def test_bootstrap_installs_without_touching_jax_and_chapter_1_runs(colab_env):
    nb = _run(
        ROOT / "book" / "01_imagined_rollouts.ipynb",
        colab_env,
        None,
        colab_env["base"] / "ch01",
    )
    after = _pip_versions(colab_env["python"])
    assert "imagination" in after, "the bootstrap did not install the package"
    for name in ("jax", "jaxlib"):
        assert after[name] == colab_env["before"][name], (
            f"the bootstrap changed Colab's {name}: "
            f"{colab_env['before'][name]} -> {after[name]}"
        )
    assert "myst-nb" not in after, "the bootstrap pulled in the book build"
    text = "".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "JAX" in text  # the imports cell printed the backend


@pytest.mark.parametrize("chapter", _chapters()[1:], ids=lambda p: p.stem)
def test_every_chapter_imports_on_colab(colab_env, chapter):
    # the bootstrap (a no-op re-install now) and the imports cell
    _run(chapter, colab_env, 2, colab_env["base"] / chapter.stem)


def test_standin_is_visible_to_the_kernel_only(colab_env):
    out = subprocess.run(
        [
            str(colab_env["python"]),
            "-c",
            "import sys; print('google.colab' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "True"
    assert "google.colab" not in sys.modules
