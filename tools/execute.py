#!/usr/bin/env python3
"""Execute every notebook page of the book in parallel, into the book's
execution cache.

``jupyter-book build`` (``execute_notebooks: cache``) executes the pages one
after another while it reads them; a page whose code is already in the cache
(``_build/.jupyter_cache``) is taken from there. This script fills that cache
first, running the pages that are not cached yet over a pool of one process a
core (jupyter-cache's ``local-parallel`` executor, each page in its own
folder, as the build would run it, so pages write their claims to the
ledger). The build then executes nothing. A page that fails is not cached:
the build runs it again and reports the error in full.

Usage::

    python tools/execute.py          # every notebook page in _toc.yml
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor

ROOT = Path(__file__).resolve().parents[1]


def _files(entry) -> list[str]:
    out = []
    if isinstance(entry, dict):
        if "file" in entry:
            out.append(entry["file"])
        for value in entry.values():
            if isinstance(value, (list, dict)):
                out.extend(_files(value))
    elif isinstance(entry, list):
        for item in entry:
            out.extend(_files(item))
    return out


def pages() -> list[Path]:
    """The notebook pages of the table of contents, in its order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [ROOT / f"{f}.ipynb" for f in [toc.get("root", ""), *_files(toc)]]
    return [p for p in found if p.is_file()]


def main() -> int:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    timeout = int(config.get("execute", {}).get("timeout", 300))
    cache = get_cache(ROOT / "_build" / ".jupyter_cache")
    todo = pages()
    for path in todo:
        cache.add_nb_to_project(str(path))
    start = time.perf_counter()
    executor = load_executor("local-parallel", cache)
    result = executor.run_and_cache(
        filter_uris=[str(p) for p in todo], timeout=timeout
    )
    seconds = time.perf_counter() - start
    ran = len(result.succeeded) + len(result.excepted) + len(result.errored)
    print(
        f"execute: {ran} of {len(todo)} pages ran in {seconds:.0f} s "
        f"({len(todo) - ran} cached); {len(result.excepted)} failed"
    )
    for path in result.excepted + result.errored:
        print(
            f"  failed: {Path(path).relative_to(ROOT)} (the build reruns it)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
