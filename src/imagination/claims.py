"""Claims: every numerical check of a chapter, recorded in a verification ledger.

A chapter opens a :class:`Ledger` and sends each check through it. A check is
one of four kinds, and the kind says what it can show:

``test``
    An independent measurement (imagined rollouts) against a prediction
    derived with sympy. It passes when ``|measured - predicted| <= tol`` with
    ``tol = z * se + rtol * |predicted| + atol`` (element-wise, for arrays).
    Its **resolution** is the smallest relative error in the prediction that
    the check is sure to detect: shifting the prediction by that fraction, in
    either direction, makes the check fail. The ledger computes the mutated
    check and refuses to record a test whose resolution is above
    ``max_resolution`` (10% by default): a check that cannot fail is not a
    test.
``bound``
    An inequality ``measured <= bound``; records the slack ``bound/measured``
    (the smallest over elements). A bound that holds with large slack shows
    that it holds, not that it is the right formula.
``consistency``
    Two forms of one expression agree (the package against sympy, a closed
    form against its recursion). Catches transcription errors, not wrong
    mathematics.
``sanity``
    Holds by construction or with huge slack; kept as a guard, and said so.

Executing a chapter writes its claims to ``_build/claims/<chapter>.json`` at
the root of the book (found by walking up to ``_config.yml``; the environment
variable ``IMAGINATION_CLAIMS_DIR`` overrides the folder). The book's
"Verification ledger" page renders them all. A failing claim is written, then
raises :class:`ClaimFailed`, so the chapter and the build fail.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "KINDS",
    "Claim",
    "ClaimFailed",
    "Ledger",
    "claims_dir",
    "load",
    "resolution",
]

KINDS = ("test", "bound", "consistency", "sanity")


class ClaimFailed(AssertionError):
    """A recorded claim did not hold."""


@dataclass
class Claim:
    """One check, as written to the ledger."""

    id: str
    chapter: str
    statement: str
    kind: str
    passed: bool
    predicted: float | None = None
    measured: float | None = None
    se: float | None = None
    resolution: float | None = None
    slack: float | None = None
    size: int = 1
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        """One short line: what was checked and how it came out."""
        verdict = "pass" if self.passed else "FAIL"
        if self.kind == "test" and self.resolution is not None:
            figure = f", resolves {self.resolution:.2g}"
        elif self.kind == "bound" and self.slack is not None:
            figure = f", slack {self.slack:.3g}x"
        else:
            figure = ""
        return f"<{self.kind} {self.id}: {verdict}{figure}>"


def claims_dir(start: str | os.PathLike | None = None) -> Path | None:
    """Where the ledger files go: ``$IMAGINATION_CLAIMS_DIR``, or
    ``<book root>/_build/claims`` where the book root is the first folder
    from ``start`` (default: the working directory) upward holding
    ``_config.yml``; ``None`` outside a book checkout (e.g. on Colab)."""
    env = os.environ.get("IMAGINATION_CLAIMS_DIR")
    if env:
        return Path(env)
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (
            folder / "_toc.yml"
        ).is_file():
            return folder / "_build" / "claims"
    return None


def load(directory: str | os.PathLike | None = None) -> list[dict]:
    """All claims in the ledger folder, chapter by chapter."""
    folder = Path(directory) if directory is not None else claims_dir()
    if folder is None or not folder.is_dir():
        return []
    out: list[dict] = []
    for path in sorted(folder.glob("*.json")):
        out.extend(json.loads(path.read_text()))
    return out


def _array(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {value!r}") from None
    return arr


def _float(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _tolerance(pred, se, z, rtol, atol) -> np.ndarray:
    return z * se + rtol * np.abs(pred) + atol


def _passes(pred, meas, tol) -> bool:
    ok = np.abs(meas - pred) <= tol
    return bool(np.all(ok & np.isfinite(meas)))


def resolution(predicted, measured, *, se=0.0, z=4.0, rtol=0.0, atol=0.0):
    """The smallest relative error in ``predicted`` that the check detects.

    For element ``i`` the check fails once the prediction moves by more than
    ``(tol_i + |m_i - p_i|) / |p_i|`` of itself, in either direction; the
    whole check fails when any element does, so the resolution is the
    smallest of these. Elements predicted to be zero cannot detect a
    relative error and are skipped (all zero: ``inf``).

    This is the resolution of a check that passes; for one that fails, pass
    ``measured=predicted`` to get its power ``tol / |p|``.
    """
    p = _array("predicted", predicted)
    m = _array("measured", measured)
    tol = _tolerance(p, _array("se", se), z, rtol, atol)
    p, m, tol = np.broadcast_arrays(p, m, tol)
    nz = np.abs(p) > 0
    if not np.any(nz):
        return math.inf
    # The tolerance's rtol part moves with the prediction: shifted by a
    # fraction r, the deviation grows by at least r|p| while the tolerance
    # grows by at most rtol * r|p|, hence the factor 1 / (1 - rtol).
    r = (tol[nz] + np.abs(m[nz] - p[nz])) / (np.abs(p[nz]) * (1 - rtol))
    return float(np.min(r))


class Ledger:
    """The claims of one chapter.

    Parameters
    ----------
    chapter:
        The chapter's file stem, e.g. ``"02_compounding_error"``.
    directory:
        Ledger folder. By default :func:`claims_dir`, but only when the
        chapter's own notebook (``<chapter>.ipynb``) is in the working
        directory or ``IMAGINATION_CLAIMS_DIR`` is set: a copy of the chapter
        run elsewhere (an assignment, Colab) keeps its claims in memory and
        never overwrites the book's ledger.
    """

    def __init__(
        self, chapter: str, directory: str | os.PathLike | None = None
    ):
        if not isinstance(chapter, str) or not chapter.strip():
            raise ValueError(
                f"chapter must be a non-empty string, got {chapter!r}"
            )
        self.chapter = chapter
        if directory is not None:
            folder = Path(directory)
        elif os.environ.get("IMAGINATION_CLAIMS_DIR"):
            folder = claims_dir()
        elif (Path.cwd() / f"{chapter}.ipynb").is_file():
            # the chapter itself is executing (the book build, nbval)
            folder = claims_dir()
        else:
            # a copy elsewhere (an assignment, Colab): never overwrite the ledger
            folder = None
        self.path = folder / f"{chapter}.json" if folder is not None else None
        self.claims: list[Claim] = []
        self._write()

    # -- recording ---------------------------------------------------------
    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = [asdict(c) for c in self.claims]
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=1, allow_nan=False))
        tmp.replace(self.path)

    def _record(self, claim: Claim) -> Claim:
        if any(c.id == claim.id for c in self.claims):
            # re-running a cell replaces its claim rather than duplicating it
            self.claims = [c for c in self.claims if c.id != claim.id]
        self.claims.append(claim)
        self._write()
        if not claim.passed:
            raise ClaimFailed(
                f"claim {claim.id!r} ({claim.kind}) failed: {claim.statement}"
                + (f" [{claim.detail}]" if claim.detail else "")
            )
        return claim

    @staticmethod
    def _check_id(id: str, statement: str) -> None:
        if not isinstance(id, str) or not id.strip():
            raise ValueError(f"id must be a non-empty string, got {id!r}")
        if not isinstance(statement, str) or not statement.strip():
            raise ValueError(
                f"statement must be a non-empty string, got {statement!r}"
            )

    def test(
        self,
        id: str,
        statement: str,
        *,
        predicted: Any,
        measured: Any,
        se: Any = 0.0,
        z: float = 4.0,
        rtol: float = 0.0,
        atol: float = 0.0,
        max_resolution: float = 0.10,
    ) -> Claim:
        """A measurement against a derived prediction (see the module docs).

        ``se`` is the standard error of ``measured - predicted`` (combine
        both when the prediction is itself estimated); ``rtol`` and ``atol``
        cover rounding in deterministic comparisons. Raises ``ValueError``
        when the check's resolution exceeds ``max_resolution``, and
        :class:`ClaimFailed` when the check fails.
        """
        self._check_id(id, statement)
        for name, v in (("z", z), ("rtol", rtol), ("atol", atol)):
            if not (
                isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
            ):
                raise ValueError(
                    f"{name} must be a finite number >= 0, got {v!r}"
                )
        if not rtol < 1:
            raise ValueError(f"rtol must be below 1, got {rtol!r}")
        if not (0 < max_resolution <= 1):
            raise ValueError(
                f"max_resolution must be in (0, 1], got {max_resolution!r}"
            )
        p = _array("predicted", predicted)
        m = _array("measured", measured)
        s = _array("se", se)
        if np.any(s < 0) or not np.all(np.isfinite(s)):
            raise ValueError("se must be finite and >= 0")
        try:
            p, m, s = np.broadcast_arrays(p, m, s)
        except ValueError:
            raise ValueError(
                f"predicted {p.shape}, measured {m.shape} and se {s.shape} "
                "do not broadcast"
            ) from None
        if not np.all(np.isfinite(p)):
            raise ValueError(f"predicted must be finite, got {predicted!r}")
        tol = _tolerance(p, s, z, rtol, atol)
        passed = _passes(p, m, tol)
        # A passing check is sure to catch a prediction off by `res`; a
        # failing one has already caught an error, and its power is tol/|p|.
        res = resolution(
            p, m if passed else p, se=s, z=z, rtol=rtol, atol=atol
        )
        if not res <= max_resolution:
            raise ValueError(
                f"claim {id!r} cannot be a test: it resolves only a {res:.1%} "
                f"error in the prediction (limit {max_resolution:.0%}); raise "
                "the sample or sharpen the experiment"
            )
        # The mutation check: the prediction off by its resolution must fail.
        step = res * (1 + 1e-9) + 1e-15
        for sign in (1.0, -1.0) if passed else ():
            mutated = p * (1 + sign * step)
            mtol = _tolerance(mutated, s, z, rtol, atol)
            if _passes(mutated, m, mtol):
                raise ValueError(
                    f"claim {id!r}: a prediction off by {sign * step:+.2%} still "
                    "passes, so the check cannot detect its stated resolution"
                )
        # the decisive element: the one closest to failing
        with np.errstate(divide="ignore", invalid="ignore"):
            margin = np.where(tol > 0, np.abs(m - p) / tol, np.inf * (m != p))
        i = int(np.nanargmax(np.where(np.isfinite(margin), margin, 0.0)))
        if not np.all(np.isfinite(m)):
            i = int(np.flatnonzero(~np.isfinite(m.ravel()))[0])
        flat = (p.ravel(), m.ravel(), s.ravel())
        dev = np.abs(m - p)
        detail = (
            f"largest |measured - predicted| = {float(np.nanmax(dev)):.3g}"
        )
        if np.any(s > 0):
            detail += f" ({float(np.nanmax(dev / np.where(s > 0, s, np.inf))):.2f} se)"
        return self._record(
            Claim(
                id=id,
                chapter=self.chapter,
                statement=statement,
                kind="test",
                passed=passed,
                predicted=_float(flat[0][i]),
                measured=_float(flat[1][i]),
                se=_float(flat[2][i]) if np.any(s > 0) else None,
                resolution=res,
                size=int(p.size),
                detail=detail,
                extra={"z": z, "rtol": rtol, "atol": atol},
            )
        )

    def bound(
        self, id: str, statement: str, *, bound: Any, measured: Any
    ) -> Claim:
        """``measured <= bound`` element-wise; records the smallest slack."""
        self._check_id(id, statement)
        b = _array("bound", bound)
        m = _array("measured", measured)
        b, m = np.broadcast_arrays(b, m)
        passed = bool(np.all(m <= b) and np.all(np.isfinite(m)))
        pos = m > 0
        slack = float(np.min(b[pos] / m[pos])) if np.any(pos) else math.inf
        i = (
            int(np.argmin(np.where(pos, b / np.where(pos, m, 1), np.inf)))
            if np.any(pos)
            else 0
        )
        return self._record(
            Claim(
                id=id,
                chapter=self.chapter,
                statement=statement,
                kind="bound",
                passed=passed,
                predicted=_float(b.ravel()[i]),
                measured=_float(m.ravel()[i]),
                slack=_float(slack),
                size=int(b.size),
                detail="bound / measured, smallest over elements",
            )
        )

    def consistency(
        self,
        id: str,
        statement: str,
        *,
        a: Any,
        b: Any,
        rtol: float = 1e-9,
        atol: float = 0.0,
    ) -> Claim:
        """Two forms of one quantity agree to ``rtol``/``atol``."""
        self._check_id(id, statement)
        x, y = np.broadcast_arrays(_array("a", a), _array("b", b))
        passed = bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=False))
        dev = np.abs(x - y)
        i = int(np.nanargmax(dev)) if dev.size else 0
        return self._record(
            Claim(
                id=id,
                chapter=self.chapter,
                statement=statement,
                kind="consistency",
                passed=passed,
                predicted=_float(x.ravel()[i]) if x.size else None,
                measured=_float(y.ravel()[i]) if y.size else None,
                size=int(x.size),
                detail=f"largest difference {float(np.nanmax(dev)) if dev.size else 0:.3g}",
            )
        )

    def sanity(
        self, id: str, statement: str, *, passed: Any, detail: str = ""
    ) -> Claim:
        """A guard that holds by construction or with huge slack."""
        self._check_id(id, statement)
        ok = bool(np.all(np.asarray(passed)))
        return self._record(
            Claim(
                id=id,
                chapter=self.chapter,
                statement=statement,
                kind="sanity",
                passed=ok,
                detail=str(detail),
            )
        )

    # -- reading -----------------------------------------------------------
    def __getitem__(self, id: str) -> Claim:
        for c in self.claims:
            if c.id == id:
                return c
        raise KeyError(id)

    def counts(self) -> dict[str, int]:
        """How many claims of each kind this chapter recorded."""
        return {k: sum(c.kind == k for c in self.claims) for k in KINDS}

    def summary(self):
        """The chapter's claims as a rendered table (for the chapter's end)."""
        from .notebook import table

        rows = []
        for c in self.claims:
            if c.kind == "test":
                fig = f"resolves {c.resolution:.1%}"
            elif c.kind == "bound":
                fig = "slack " + (
                    "inf" if c.slack is None else f"{c.slack:.3g}x"
                )
            else:
                fig = ""
            rows.append(
                (
                    f"`{c.id}`",
                    c.kind,
                    c.statement,
                    fig,
                    "pass" if c.passed else "FAIL",
                )
            )
        return table(rows, ["claim", "kind", "statement", "figure", "result"])
