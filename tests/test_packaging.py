"""Repository hygiene: dependency lists in sync, notebooks stored without outputs, chapters in the TOC."""

import json
import pathlib
import re
import subprocess
import sys

import yaml

try:  # Python 3.11+
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from bootstrap import notebooks as _pages  # noqa: E402  (every notebook page)


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(map(_norm, project["dependencies"]))
    for extra in project["optional-dependencies"].values():
        declared |= set(map(_norm, extra))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(
        d["pip"]
        for d in env["dependencies"]
        if isinstance(d, dict) and "pip" in d
    )
    listed = {_norm(r) for r in pip if not r.startswith("-e")}
    assert listed == declared, (
        f"only in environment.yml: {sorted(listed - declared)}; "
        f"only in pyproject.toml: {sorted(declared - listed)}"
    )


def test_jupyter_book_stays_on_1x():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    jb = [
        r
        for r in project["optional-dependencies"]["book"]
        if r.startswith("jupyter-book")
    ]
    assert jb and "<2" in jb[0]


def test_notebooks_are_committed_without_outputs():
    dirty = []
    for nb in _pages():
        cells = json.loads(nb.read_text())["cells"]
        if any(
            c.get("outputs") or c.get("execution_count")
            for c in cells
            if c["cell_type"] == "code"
        ):
            dirty.append(nb.name)
    assert not dirty, f"strip outputs before committing: {dirty}"


def test_every_chapter_is_in_the_toc_and_starts_with_the_colab_bootstrap():
    toc = (ROOT / "_toc.yml").read_text()
    for nb in _pages():
        page = nb.relative_to(ROOT).with_suffix("").as_posix()
        assert page in toc, f"{page} is not in _toc.yml"
    # one definition of the cell and of the package source (_config.yml)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bootstrap.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_chapters_import_glue_from_the_package_not_myst_nb():
    """Colab has no myst-nb: a chapter that imports it fails at its second cell."""
    for nb in _pages():
        src = "".join(
            "".join(c["source"])
            for c in json.loads(nb.read_text())["cells"]
            if c["cell_type"] == "code"
        )
        assert "myst_nb" not in src, f"{nb.name} imports myst_nb"


def _lock_entries():
    """(name, version, marker) for every pinned line of requirements.lock."""
    out = []
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(
            r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$",
            line,
        )
        if m:
            out.append(
                (m.group(1).lower().replace("_", "-"), m.group(2), m.group(3))
            )
    return out


def test_lock_pins_every_requirement_within_pyproject_ranges():
    """The lock satisfies the ranges people installing the package rely on."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = re.search(
        r"^EXTRAS\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M
    ).group(1)
    reqs = list(project["dependencies"])
    for extra in extras.split(","):
        reqs += project["optional-dependencies"][extra]
    entries = _lock_entries()
    for text in reqs:
        req = Requirement(text)
        name = req.name.lower().replace("_", "-")
        versions = [v for n, v, _ in entries if n == name]
        assert versions, (
            f"{name} is not pinned in requirements.lock (run make lock)"
        )
        for v in versions:
            assert req.specifier.contains(v, prereleases=True), (
                f"requirements.lock pins {name}=={v}, outside pyproject's {req.specifier}"
            )


def test_lock_has_hashes_and_covers_supported_pythons():
    text = (ROOT / "requirements.lock").read_text()
    pinned = [
        line
        for line in text.splitlines()
        if re.match(r"^[A-Za-z0-9_.\-]+==", line)
    ]
    hashes = text.count("--hash=sha256:")
    assert pinned and hashes >= len(pinned), (
        "every pin needs a hash (--generate-hashes)"
    )
    assert "--universal" in text and "--python-version 3.10" in text


def test_every_figure_uses_the_house_style():
    """Figures come from imagination.plotting.figure (column width, legible fonts)."""
    for nb in _pages():
        cells = json.loads(nb.read_text())["cells"]
        src = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "code"
        )
        bad = re.findall(r"plt\.subplots\(|figsize\s*=|plt\.figure\(", src)
        assert not bad, f"{nb.name} draws outside the house style: {bad}"
