"""Check that an environment holds the lowest versions ``pyproject.toml`` allows.

``make test-lowest`` installs the package with ``uv pip install --resolution lowest-direct``
and then runs this script with that environment's Python: for every ``name>=floor`` in the
installed package's dependencies it prints the floor and the installed version, and exits with
status 1 unless each installed version lies in the floor's release (``scipy>=1.11`` accepts
1.11.1, ``jax>=0.4.30`` only 0.4.30), so a later install step cannot silently lift a floor.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, requires, version


def floors(package: str = "imagination") -> dict[str, str]:
    """``{name: floor}`` for the unconditional ``name>=floor`` dependencies of ``package``."""
    out = {}
    for req in requires(package) or []:
        if ";" in req:  # extras and environment markers: not the runtime
            continue
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9.]*)", req)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def main() -> int:
    bad = []
    print(f"{'package':12} {'floor':>8} {'installed':>10}")
    for name, floor in floors().items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = "missing"
        n = len(floor.split("."))
        ok = have.split(".")[:n] == floor.split(".")
        print(
            f"{name:12} {floor:>8} {have:>10}{'' if ok else '   <- not the floor'}"
        )
        if not ok:
            bad.append(name)
    if bad:
        print(f"not at their floors: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
