#!/usr/bin/env python3
"""The verification ledger from the command line.

``check``
    The checks the book build makes before it renders the ledger page (see
    ``book/_ext/claims_ledger.py``), on the ledger files of the last build:
    every listed page wrote claims, ids match ``book/claims.yml``, no claim is
    stale or failed. Exit status 1 when any problem is found.
``ids --write``
    Rewrite ``book/claims.yml`` (the committed list of every page's claim
    ids) from the ledger of the last build. Do this on purpose, after adding,
    renaming or removing a claim, and commit the change with it.

Usage::

    python tools/ledger.py check
    python tools/ledger.py ids --write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import claims_ledger  # noqa: E402

from imagination import claims  # noqa: E402

HEADER = (
    "# The claim ids every page must record (checked by every book build).\n"
    "# Rewrite on purpose with: python tools/ledger.py ids --write\n"
)


def _pages(folder: Path) -> dict[str, dict]:
    pages = claims.load_pages(folder)
    if not pages:
        sys.exit(f"no ledger files under {folder}: build the book first")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--claims", type=Path, default=ROOT / "_build" / "claims"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check the last build's ledger")
    ids = sub.add_parser("ids", help="print or write book/claims.yml")
    ids.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    pages = _pages(args.claims)
    if args.command == "check":
        found = claims_ledger.problems(ROOT, pages)
        for line in found:
            print(line)
        print(f"{len(pages)} pages, {len(found)} problems")
        return 1 if found else 0
    listing = {
        page: [c["id"] for c in data["claims"]] for page, data in pages.items()
    }
    text = HEADER + yaml.safe_dump(listing, sort_keys=True, width=79)
    if args.write:
        (ROOT / claims_ledger.IDS_FILE).write_text(text)
        print(f"wrote {claims_ledger.IDS_FILE}: {len(listing)} pages")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
