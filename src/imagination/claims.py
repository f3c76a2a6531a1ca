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
``search``
    A search for the worst case of an inequality: the largest ratio
    ``measured / bound`` that gradient ascent over a class of systems found
    (it must stay at most 1), and the same search run against plausible
    wrong bounds. Its **power** is the list of wrong bounds it refuted; a
    search that refutes none is refused, as a test without resolution is.

A vector test is judged by its worst element: its resolution is the largest,
over the elements, of the relative error in that element alone that the check
is sure to detect, and the claim records that decisive element.

Executing a page writes its claims to ``_build/claims/<page>.json`` at the
root of the book (found by walking up to ``_config.yml``; the environment
variable ``IMAGINATION_CLAIMS_DIR`` overrides the folder). A page is a
chapter's lecture (``"02_compounding_error"``) or one of its section pages
(``"02_compounding_error/slack_ladder"``, written to a sub-folder). The file
records the content hash of the package (:func:`package_hash`) and of the
page's code (:func:`notebook_hash`), so the book's "Verification ledger" page
can refuse claims written by an older package or notebook. A failing claim is
written, then raises :class:`ClaimFailed`, so the page and the build fail.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
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
    "load_pages",
    "notebook_hash",
    "package_hash",
    "resolution",
    "share",
]

KINDS = ("test", "bound", "consistency", "sanity", "search")


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
        figure = self.figure()
        return f"<{self.kind} {self.id}: {verdict}{', ' if figure else ''}{figure}>"

    def figure(self) -> str:
        """The claim's figure of merit in a few words ("resolves 2.5%")."""
        if self.kind == "test" and self.resolution is not None:
            return f"resolves {share(self.resolution)}"
        if self.kind == "bound":
            return (
                "slack inf"
                if self.slack is None
                else f"slack {self.slack:.3g}x"
            )
        if self.kind == "search" and self.measured is not None:
            wrong = self.extra.get("wrong_bounds", {})
            refuted = self.extra.get("refuted", [])
            return (
                f"worst ratio {self.measured:.4g}, refutes "
                f"{len(refuted)}/{len(wrong)} wrong bounds"
            )
        return ""


def share(r: float) -> str:
    """A relative error as a percentage, readable from 1e-12 to 1 and above
    (``0.025 -> "2.5%"``, ``3e-6 -> "0.0003%"``)."""
    r = float(r)
    if not math.isfinite(r):
        return "inf"
    return f"{r:.1%}" if r >= 1e-3 else f"{100 * r:.2g}%"


def package_hash() -> str:
    """SHA-256 (first 16 hex digits) of the package's source files, in path
    order: claims written by another version of the package carry another
    hash."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def notebook_hash(path: str | os.PathLike) -> str:
    """SHA-256 (first 16 hex digits) of a notebook's code cells, the part
    whose change calls for a new execution (Markdown edits do not)."""
    nb = json.loads(Path(path).read_text())
    h = hashlib.sha256()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            h.update(("".join(src) if isinstance(src, list) else src).encode())
            h.update(b"\x00")
    return h.hexdigest()[:16]


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


def load_pages(directory: str | os.PathLike | None = None) -> dict[str, dict]:
    """Every page's ledger file: ``{page: {"page", "package", "notebook",
    "claims"}}``, pages in path order (a chapter before its sections)."""
    folder = Path(directory) if directory is not None else claims_dir()
    if folder is None or not folder.is_dir():
        return {}
    files = {
        path.relative_to(folder).with_suffix("").as_posix(): path
        for path in folder.rglob("*.json")
    }
    return {
        page: json.loads(files[page].read_text()) for page in sorted(files)
    }


def load(directory: str | os.PathLike | None = None) -> list[dict]:
    """All claims in the ledger folder, page by page."""
    return [
        c for data in load_pages(directory).values() for c in data["claims"]
    ]


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


def _element_resolutions(p, m, tol, rtol) -> np.ndarray:
    """Per element, the relative error in that element alone that its check
    is sure to detect (``inf`` where the prediction is zero)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (tol + np.abs(m - p)) / (np.abs(p) * (1 - rtol))
    return np.where(np.abs(p) > 0, r, np.inf)


def _worst(r: np.ndarray) -> tuple[float, int]:
    """The worst finite element resolution and its flat index (``inf`` and
    0 when no element can resolve a relative error)."""
    finite = np.isfinite(r)
    if not np.any(finite):
        return math.inf, 0
    i = int(np.argmax(np.where(finite, r, -np.inf)))
    return float(r.flat[i]), i


def resolution(predicted, measured, *, se=0.0, z=4.0, rtol=0.0, atol=0.0):
    """The relative error in ``predicted`` that the check is sure to detect,
    judged by its worst element.

    Element ``i`` alone fails once its prediction moves by more than
    ``r_i = (tol_i + |m_i - p_i|) / |p_i|`` of itself, in either direction.
    A vector check is only as sharp as its weakest element, so the resolution
    is the largest ``r_i``: an error of that size in *any one* element is
    detected. Elements predicted to be zero cannot detect a relative error
    and are left out (all zero: ``inf``).

    This is the resolution of a check that passes; for one that fails, pass
    ``measured=predicted`` to get its power ``tol / |p|``.
    """
    p = _array("predicted", predicted)
    m = _array("measured", measured)
    tol = _tolerance(p, _array("se", se), z, rtol, atol)
    p, m, tol = np.broadcast_arrays(p, m, tol)
    # The tolerance's rtol part moves with the prediction: shifted by a
    # fraction r, the deviation grows by at least r|p| while the tolerance
    # grows by at most rtol * r|p|, hence the factor 1 / (1 - rtol).
    return _worst(_element_resolutions(p, m, tol, rtol))[0]


class Ledger:
    """The claims of one chapter.

    Parameters
    ----------
    chapter:
        The page: a chapter's file stem, e.g. ``"02_compounding_error"``, or
        a section page under it, ``"02_compounding_error/slack_ladder"``.
    directory:
        Ledger folder. By default :func:`claims_dir`, but only when the
        page's own notebook (``slack_ladder.ipynb`` for the example) is in
        the working directory or ``IMAGINATION_CLAIMS_DIR`` is set: a copy of
        the page run elsewhere (an assignment, Colab) keeps its claims in
        memory and never overwrites the book's ledger.
    """

    def __init__(
        self, chapter: str, directory: str | os.PathLike | None = None
    ):
        if not isinstance(chapter, str) or not chapter.strip():
            raise ValueError(
                f"chapter must be a non-empty string, got {chapter!r}"
            )
        parts = chapter.split("/")
        if any(not p.strip() or p in (".", "..") for p in parts):
            raise ValueError(
                f"chapter must be a page name like '02_x' or '02_x/section', "
                f"got {chapter!r}"
            )
        self.chapter = chapter
        notebook = Path.cwd() / f"{parts[-1]}.ipynb"
        if directory is not None:
            folder = Path(directory)
        elif os.environ.get("IMAGINATION_CLAIMS_DIR"):
            folder = claims_dir()
        elif notebook.is_file():
            # the page itself is executing (the book build, nbval)
            folder = claims_dir()
        else:
            # a copy elsewhere (an assignment, Colab): never overwrite the ledger
            folder = None
        self.path = folder / f"{chapter}.json" if folder is not None else None
        self.package = package_hash()
        self.notebook = notebook_hash(notebook) if notebook.is_file() else None
        self.claims: list[Claim] = []
        self._write()

    # -- recording ---------------------------------------------------------
    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "page": self.chapter,
            "package": self.package,
            "notebook": self.notebook,
            "claims": [asdict(c) for c in self.claims],
        }
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
        # A passing check is sure to catch an element off by `res`; a
        # failing one has already caught an error, and its power is tol/|p|.
        r = _element_resolutions(p, m if passed else p, tol, rtol)
        res, worst = _worst(r)
        if not res <= max_resolution:
            weak = int(np.sum(r > max_resolution))
            raise ValueError(
                f"claim {id!r} cannot be a test: its worst element resolves "
                f"only a {res:.1%} error in the prediction ({weak} of "
                f"{r.size} elements above the {max_resolution:.0%} limit); "
                "raise the sample, sharpen the experiment or split the claim"
            )
        if passed:
            # the decisive element: the one that resolves worst
            i = worst
        else:
            # the element that failed by the widest margin (or is not finite)
            with np.errstate(divide="ignore", invalid="ignore"):
                margin = np.abs(m - p) / tol
            margin = np.where(np.isfinite(m), margin, np.inf)
            i = int(np.nanargmax(np.where(np.isnan(margin), np.inf, margin)))
        # The mutation check: the decisive element off by `res` must fail.
        step = res * (1 + 1e-9) + 1e-15
        for sign in (1.0, -1.0) if passed else ():
            mutated = p.copy()
            mutated.flat[i] = p.flat[i] * (1 + sign * step)
            mtol = _tolerance(mutated, s, z, rtol, atol)
            if _passes(mutated, m, mtol):
                raise ValueError(
                    f"claim {id!r}: a prediction off by {sign * step:+.2%} "
                    "still passes, so the check cannot detect its stated "
                    "resolution"
                )
        pi, mi, si = (float(a.flat[i]) for a in (p, m, s))
        has_se = bool(np.any(s > 0))
        zi = (mi - pi) / si if si > 0 and math.isfinite(mi) else None
        dev = np.abs(m - p)
        detail = (
            f"element {i} of {p.size} decides; largest |measured - predicted|"
            f" = {float(np.nanmax(dev)):.3g}"
        )
        if has_se:
            with np.errstate(divide="ignore", invalid="ignore"):
                zmax = float(np.nanmax(np.where(s > 0, dev / s, 0.0)))
            detail += f" ({zmax:.2f} se)"
        return self._record(
            Claim(
                id=id,
                chapter=self.chapter,
                statement=statement,
                kind="test",
                passed=passed,
                predicted=_float(pi),
                measured=_float(mi),
                se=_float(si) if has_se else None,
                resolution=res,
                size=int(p.size),
                detail=detail,
                extra={
                    "z": z,
                    "rtol": rtol,
                    "atol": atol,
                    "element": i,
                    "z_element": _float(zi),
                },
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

    def search(
        self,
        id: str,
        statement: str,
        *,
        ratio: Any,
        where: str,
        family: str,
        budget: Any,
        wrong_bounds: Mapping[str, Any],
        rtol: float = 1e-6,
    ) -> Claim:
        """A worst-case search of an inequality ``measured <= bound``.

        Parameters
        ----------
        ratio : float
            The largest ``measured / bound`` the search found over the class;
            the claim passes when it is at most ``1 + rtol``.
        where : str
            Where that ratio was found (the system, start state, horizon).
        family : str
            The class of systems searched, in words.
        budget : str or Mapping
            What the search spent (restarts, ascent steps, evaluations), as
            a string or a mapping.
        wrong_bounds : Mapping[str, float]
            Plausible wrong bounds, each mapped to the largest
            ``measured / wrong bound`` the same search found. A wrong bound
            is *refuted* when that ratio exceeds ``1 + rtol``.
        rtol : float
            Rounding allowance of the ratio (the search runs in float64).

        Raises
        ------
        ValueError
            When the search refutes no wrong bound: it would not be
            evidence.
        ClaimFailed
            When the ratio exceeds ``1 + rtol``.
        """
        self._check_id(id, statement)
        if not (
            isinstance(rtol, (int, float))
            and math.isfinite(rtol)
            and rtol >= 0
        ):
            raise ValueError(
                f"rtol must be a finite number >= 0, got {rtol!r}"
            )
        for name, text in (("where", where), ("family", family)):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{name} must be a non-empty string")
        best = _array("ratio", ratio)
        if best.size != 1:
            raise ValueError(
                f"ratio must be one number, got shape {best.shape}"
            )
        best = float(best)
        if math.isnan(best):
            raise ValueError("ratio must be a number, got nan")
        if not isinstance(wrong_bounds, Mapping) or not wrong_bounds:
            raise ValueError(
                "wrong_bounds must map each wrong bound's name to the ratio "
                "the search found against it"
            )
        wrong: dict[str, float] = {}
        for name, value in wrong_bounds.items():
            v = _array(f"wrong_bounds[{name!r}]", value)
            if v.size != 1 or math.isnan(float(v)):
                raise ValueError(f"wrong_bounds[{name!r}] must be one number")
            wrong[str(name)] = float(v)
        refuted = [n for n, v in wrong.items() if v > 1 + rtol]
        if not refuted:
            raise ValueError(
                f"claim {id!r} cannot be a search: it refutes none of the "
                f"wrong bounds {sorted(wrong)}, so it would also have passed "
                "a wrong bound; search harder or harder-hitting mutations"
            )
        budget_text = (
            ", ".join(f"{k} {v}" for k, v in budget.items())
            if isinstance(budget, Mapping)
            else str(budget)
        )
        passed = bool(best <= 1 + rtol)
        return self._record(
            Claim(
                id=id,
                chapter=self.chapter,
                statement=statement,
                kind="search",
                passed=passed,
                predicted=1.0,
                measured=_float(best),
                size=1,
                detail=f"worst case at {where}",
                extra={
                    "family": family,
                    "budget": budget_text,
                    "where": where,
                    "rtol": rtol,
                    "wrong_bounds": {
                        n: (v if math.isfinite(v) else None)
                        for n, v in wrong.items()
                    },
                    "refuted": refuted,
                },
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
        """The page's claims as a rendered table (for the page's end)."""
        from .notebook import table

        rows = [
            (
                f"`{c.id}`",
                c.kind,
                c.statement,
                c.figure(),
                "pass" if c.passed else "FAIL",
            )
            for c in self.claims
        ]
        return table(rows, ["claim", "kind", "statement", "figure", "result"])
