"""Write the Colab bootstrap cell into every chapter, from one definition.

The package source the bootstrap installs is defined once: the repository
URL and branch in ``_config.yml``, which also define where the launch buttons
open the notebooks, so the notebook a reader opens and the package its
bootstrap installs come from the same ref. ``IMAGINATION_SOURCE`` overrides
the source at run time (the Colab-path test points it at a local clone).

    python tools/bootstrap.py          # rewrite the cells
    python tools/bootstrap.py --check  # exit 1 if a notebook is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MARK = "# On Colab: install this book's package"

TEMPLATE = """\
# On Colab: install this book's package (nothing happens elsewhere).
import os
import sys

if "google.colab" in sys.modules:
    import jax  # Colab's own JAX stays: the install may not replace it
    import jaxlib

    repo = "{repo}"
    default = f"git+https://{{repo}}@{ref}"
    src = os.environ.get("IMAGINATION_SOURCE", default)
    pins = f"jax=={{jax.__version__}} jaxlib=={{jaxlib.__version__}}"
    %pip install -q "imagination @ {{src}}" {{pins}}"""


def repository() -> tuple[str, str]:
    """(host/owner/name, branch) of the repository, from ``_config.yml``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]
    url = repo["url"].removeprefix("https://").removesuffix(".git")
    return url, repo.get("branch", "main")


def source() -> str:
    """The default package source: ``git+https://<repository>@<branch>``."""
    url, ref = repository()
    return f"git+https://{url}@{ref}"


def cell_source() -> str:
    url, ref = repository()
    return TEMPLATE.format(repo=url, ref=ref)


def notebooks() -> list[Path]:
    """Every page notebook: chapters ``book/*.ipynb`` and their section pages
    ``book/NN_name/*.ipynb`` (folders starting with ``_`` hold no pages)."""
    book = ROOT / "book"
    return sorted(
        p
        for p in book.rglob("*.ipynb")
        if not any(
            part.startswith(("_", ".")) for part in p.relative_to(book).parts
        )
    )


def _is_bootstrap(cell: dict) -> bool:
    text = "".join(cell["source"])
    return cell["cell_type"] == "code" and (
        text.startswith(MARK) or "google.colab" in text
    )


def sync(path: Path, check: bool) -> bool:
    """Bring one notebook's bootstrap cell up to date; True if it was."""
    nb = json.loads(path.read_text())
    want = cell_source()
    lines = want.splitlines(keepends=True)
    first = next(
        i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
    )
    cell = nb["cells"][first]
    ok = (
        _is_bootstrap(cell)
        and "".join(cell["source"]) == want
        and "remove-cell" in cell.get("metadata", {}).get("tags", [])
    )
    if ok or check:
        return ok
    new = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": ["remove-cell"]},
        "outputs": [],
        "source": lines,
    }
    if _is_bootstrap(cell):
        new["id"] = cell.get("id", "colab-bootstrap")
        nb["cells"][first] = new
    else:
        new["id"] = "colab-bootstrap"
        nb["cells"].insert(first, new)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = [p.name for p in notebooks() if not sync(p, args.check)]
    if args.check and stale:
        print("bootstrap cell out of date in: " + ", ".join(stale))
        print("run: python tools/bootstrap.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
