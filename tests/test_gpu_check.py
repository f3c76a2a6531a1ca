"""The GPU check runs here first, at CPU sizes, so its first GPU run is not its first run."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _notebook(path: Path, cells: list[str]) -> Path:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
                "source": c,
            }
            for c in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))
    return path


def test_run_notebook_executes_magics_and_fails_on_an_error(tmp_path):
    good = _notebook(
        tmp_path / "good.ipynb", ["x = 1", "%time y = x + 1", "assert y == 2"]
    )
    bad = _notebook(
        tmp_path / "bad.ipynb", ["x = 1", "assert x == 2, 'wrong'"]
    )
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), "--run-notebook", str(good)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    fail = subprocess.run(
        [sys.executable, str(SCRIPT), "--run-notebook", str(bad)],
        capture_output=True,
        text=True,
    )
    assert fail.returncode != 0 and "cell 1 failed" in fail.stderr


def test_gpu_check_runs_a_chapter_and_writes_a_summary(tmp_path):
    """One chapter: its lecture and its section pages, each with its claims."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--out",
            str(out),
            "--chapters",
            "01",
            "--no-benchmark",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["versions"]["backend"] == "cpu"
    pages = [c["chapter"] for c in summary["chapters"]]
    book = SCRIPT.parents[1] / "book"
    want = sorted(
        p.relative_to(book).with_suffix("").as_posix()
        for p in [*book.glob("01_*.ipynb"), *book.glob("01_*/*.ipynb")]
    )
    assert sorted(pages) == want and len(want) > 1
    for c in summary["chapters"]:
        assert c["passed"], c
        assert (out / "claims" / f"{c['chapter']}.json").is_file()
    assert "| 01_" in (out / "summary.md").read_text()
