"""Execute every chapter and the rollout benchmark on an accelerator, in one go.

Made for a lent GPU machine that has JAX (CUDA), sympy, optax, scipy,
matplotlib and pytest but no notebook runner and no package registry. The
chapters need only IPython beyond that (the book's ``glue`` falls back to a
no-op without myst-nb); its wheels travel in ``.whl/`` (fetch them here with
``benchmarks/gpu_wheels.sh``) and are installed into a private folder when
IPython is missing.

What it does, writing everything into ``--out``:

1. prints and records the devices JAX sees and the versions in use;
2. executes every chapter (``book/NN_*.ipynb``) and its section pages
   (``book/NN_*/*.ipynb``) cell by cell in a fresh
   IPython shell, one subprocess per chapter, with every assert and claim
   live and Monte-Carlo sizes at the backend's scale
   (:func:`imagination.device.mc_size`); claims land in ``out/claims``;
3. runs ``benchmarks/rollout_speed.py --sweep --json`` (batch up to 2^20 on
   an accelerator);
4. writes ``summary.json`` and ``summary.md``: per chapter pass/fail and
   seconds, the benchmark's figures, versions.

Usage::

    python benchmarks/gpu_check.py --out OUT [--chapters 01,02] [--jobs 3]
                                   [--quick-benchmark] [--no-benchmark]

Exit status 0 when every chapter passed and the benchmark ran.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".whl"
SITE = Path("/tmp/imagination-gpu-site")


def _ensure_ipython() -> dict[str, str]:
    """Import IPython, installing the travelling wheels first if needed."""
    env = {}
    try:
        import IPython  # noqa: F401
    except ImportError:
        wheels = sorted(str(p) for p in WHEELS.glob("*.whl"))
        if not wheels:
            raise SystemExit(
                "IPython is missing and no wheels travelled: run "
                "benchmarks/gpu_wheels.sh here, then carry .whl"
            )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--no-cache-dir",
                "--upgrade",
                "--target",
                str(SITE),
                *wheels,
            ],
            check=True,
        )
        sys.path.insert(0, str(SITE))
        env["PYTHONPATH"] = str(SITE)
    return env


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import jax

    out = {"python": platform.python_version()}
    for name in (
        "jax",
        "jaxlib",
        "numpy",
        "scipy",
        "sympy",
        "optax",
        "matplotlib",
        "ipython",
    ):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "absent"
    out["backend"] = jax.default_backend()
    out["devices"] = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
    return out


def run_notebook(path: Path) -> None:
    """Execute ``path``'s code cells in one IPython shell; raise on error."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    cells = json.loads(path.read_text())["cells"]
    os.chdir(path.parent)
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        result = shell.run_cell(src, store_history=False, silent=False)
        if not result.success:
            err = result.error_in_exec or result.error_before_exec
            raise SystemExit(f"{path.name}: cell {i} failed: {err!r}")


def _chapter(path: Path, out: Path, timeout: float, extra_env: dict) -> dict:
    env = dict(os.environ)
    env.update(extra_env)
    env["PYTHONPATH"] = os.pathsep.join(
        p
        for p in (
            extra_env.get("PYTHONPATH"),
            str(ROOT / "src"),
            os.environ.get("PYTHONPATH"),
        )
        if p
    )
    env["IMAGINATION_CLAIMS_DIR"] = str(out / "claims")
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # chapters share the GPU
    env["MPLBACKEND"] = "Agg"
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--run-notebook", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        ok, tail = proc.returncode == 0, (proc.stdout + proc.stderr)[-1500:]
    except subprocess.TimeoutExpired:
        ok, tail = False, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    page = path.relative_to(ROOT / "book").with_suffix("").as_posix()
    (out / f"{page.replace('/', '__')}.log").write_text(tail)
    status = "pass" if ok else "FAIL"
    print(f"  {page:48s} {status}  {seconds:6.1f} s", flush=True)
    return {
        "chapter": page,
        "passed": ok,
        "seconds": round(seconds, 1),
        "tail": "" if ok else tail,
    }


def _benchmark(quick: bool, extra_env: dict) -> dict:
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "rollout_speed.py"),
        "--json",
    ] + (["--quick"] if quick else ["--sweep"])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p
        for p in (
            extra_env.get("PYTHONPATH"),
            str(ROOT / "src"),
            os.environ.get("PYTHONPATH"),
        )
        if p
    )
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"ran": False, "seconds": seconds, "tail": proc.stderr[-1500:]}
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return {"ran": True, "seconds": round(seconds, 1), **json.loads(line)}


def _markdown(summary: dict) -> str:
    v = summary["versions"]
    lines = [
        f"# GPU check, {summary['date']}",
        "",
        f"Backend `{v['backend']}`, devices {', '.join(v['devices'])}; "
        f"Python {v['python']}, JAX {v['jax']}, jaxlib {v['jaxlib']}.",
        "",
        "| chapter | result | seconds |",
        "|---|---|---|",
    ]
    for c in summary["chapters"]:
        lines.append(
            f"| {c['chapter']} | {'pass' if c['passed'] else 'FAIL'} "
            f"| {c['seconds']} |"
        )
    b = summary.get("benchmark") or {}
    if b.get("ran"):
        lines += ["", "| benchmark figure | value |", "|---|---|"]
        for key in (
            "batch",
            "horizon",
            "jax_steps_per_s",
            "numpy_steps_per_s",
            "python_steps_per_s",
            "fraction_of_roofline",
            "roofline_flops_per_s",
            "jax_compile_s",
        ):
            if key in b:
                lines.append(
                    f"| {key} | {b[key]:,.4g} |"
                    if isinstance(b[key], (int, float))
                    else f"| {key} | {b[key]} |"
                )
        for row in b.get("sweep", []):
            if row.get("batch") == max(r["batch"] for r in b["sweep"]):
                lines.append(
                    f"| steps/s at batch {row['batch']}, horizon "
                    f"{row['horizon']} | {row['jax_steps_per_s']:,.4g} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("gpu-summary"))
    ap.add_argument(
        "--chapters",
        default="",
        help="comma-separated chapter numbers (default: all)",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="chapters run at once (they share the device)",
    )
    ap.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per chapter"
    )
    ap.add_argument("--quick-benchmark", action="store_true")
    ap.add_argument("--no-benchmark", action="store_true")
    ap.add_argument("--run-notebook", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run_notebook is not None:
        run_notebook(args.run_notebook.resolve())
        return 0
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    out = args.out.resolve()
    (out / "claims").mkdir(parents=True, exist_ok=True)
    extra_env = _ensure_ipython()
    sys.path.insert(0, str(ROOT / "src"))
    versions = _versions()
    print(
        f"JAX sees {versions['devices']} (backend {versions['backend']})",
        flush=True,
    )
    wanted = {c.strip() for c in args.chapters.split(",") if c.strip()}
    book = ROOT / "book"
    chapters = [
        p
        for p in sorted(
            [
                *book.glob("[0-9][0-9]_*.ipynb"),
                *book.glob("[0-9][0-9]_*/*.ipynb"),
            ]
        )
        if not wanted or p.relative_to(book).as_posix()[:2] in wanted
    ]
    if not chapters:
        ap.error(f"no chapter matches --chapters {args.chapters!r}")
    start = time.perf_counter()
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        results = list(
            pool.map(
                lambda p: _chapter(p, out, args.timeout, extra_env), chapters
            )
        )
    chapters_s = time.perf_counter() - start
    bench = (
        None
        if args.no_benchmark
        else _benchmark(args.quick_benchmark, extra_env)
    )
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "versions": versions,
        "jobs": args.jobs,
        "chapters_wall_s": round(chapters_s, 1),
        "chapters": results,
        "benchmark": bench,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(_markdown(summary))
    print(_markdown(summary))
    ok = all(r["passed"] for r in results) and (bench is None or bench["ran"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
