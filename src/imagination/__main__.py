"""Command line of the ``imagination`` package: ``python -m imagination <command> ...``.

Commands
--------
allocate
    Split a data budget between transitions (dynamics) and reward labels so that the
    return-error bound is smallest (chapter 4, :func:`imagination.allocation.optimal_allocation`).

Each command is a subparser with its own ``run`` function, so new commands are one
``_add_<name>`` function away. Bad input prints one line, ``imagination <command>: error: ...``,
to standard error and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import textwrap
import warnings
from typing import Callable, Sequence

from ._checks import number

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) and exit status 2."""

    def error(self, message: str):  # noqa: D401  (argparse API)
        self.exit(2, f"{self.prog}: error: {message}\n")


class _InputError(Exception):
    """Bad input found after parsing (file contents, inconsistent options)."""


# ============================================================================= allocate
_ALLOCATE_EPILOG = """\
examples:
  python -m imagination allocate --budget 1e5 --dynamics 3.0,0.35 --reward 5.0,0.6
  python -m imagination allocate --budget 1e5 --dynamics 3.0,0.35 --reward 5.0,0.6 \\
      --cost-reward 10 --gamma 0.9 --lip-dynamics 0.9 --lip-reward 1.5 --lip-policy 0.1
  python -m imagination allocate --budget 5e4 --fit errors.csv --cost-dynamics 2

errors.csv has a header row with the columns n, dynamics_error, reward_error; leave a cell
blank where that error was not measured at that n. Each law needs two or more measured points.
The bound minimised is w_d * eps_d(N_d) + w_r * eps_r(N_r) subject to
c_d * N_d + c_r * N_r = budget (NOTES result 3; book chapter 4).
"""


def _law(text: str):
    from .allocation import PowerLaw

    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f"expected COEF,EXP (two numbers), got {text!r}"
        )
    try:
        coef, exp = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected COEF,EXP (two numbers), got {text!r}"
        ) from None
    if not (coef > 0 and math.isfinite(coef)):
        raise argparse.ArgumentTypeError(
            f"COEF must be a positive number, got {parts[0]!r}"
        )
    if not (exp > 0 and math.isfinite(exp)):
        raise argparse.ArgumentTypeError(
            f"EXP must be a positive number, got {parts[1]!r}"
        )
    return PowerLaw(coef, exp)


def _float_type(positive: bool) -> Callable[[str], float]:
    kind = "positive" if positive else "non-negative"

    def convert(text: str) -> float:
        try:  # the command line parses its strings; the API takes numbers only
            return number("value", float(text), positive=positive)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a {kind} number, got {text!r}"
            ) from None

    return convert


_positive_float = _float_type(positive=True)
_nonneg_float = _float_type(positive=False)


def _add_allocate(sub) -> None:
    p = sub.add_parser(
        "allocate",
        help="split a data budget between transitions and reward labels",
        description=textwrap.fill(
            "Split a data budget between transitions (which train the dynamics model) and reward "
            "labels (which train the reward model) so that the bound on the imagined-return error, "
            "w_d*eps_d(N_d) + w_r*eps_r(N_r), is smallest, with power-law learning curves "
            "eps(N) = COEF * N^(-EXP). Prints the laws, the optimal allocation, the ratio "
            "N_d/N_r, and the bound at the optimum and at a 50/50 split of the budget.",
            width=88,
        ),
        epilog=_ALLOCATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--budget",
        type=_positive_float,
        required=True,
        metavar="C",
        help="total budget C, in the same money unit as the prices (required)",
    )
    laws = p.add_argument_group(
        "learning curves",
        textwrap.fill(
            "give each law as COEF,EXP, or measure them and pass --fit; an explicit law overrides "
            "the fitted one",
            width=88,
        ),
    )
    laws.add_argument(
        "--dynamics",
        type=_law,
        metavar="COEF,EXP",
        help="dynamics error eps_d(N_d) = COEF * N_d^(-EXP), EXP > 0",
    )
    laws.add_argument(
        "--reward",
        type=_law,
        metavar="COEF,EXP",
        help="reward error eps_r(N_r) = COEF * N_r^(-EXP), EXP > 0",
    )
    laws.add_argument(
        "--fit",
        metavar="CSV",
        help="fit the laws by least squares in log-log space to a CSV file with "
        "columns n, dynamics_error, reward_error (blank cells allowed)",
    )
    prices = p.add_argument_group("prices")
    prices.add_argument(
        "--cost-dynamics",
        type=_positive_float,
        default=1.0,
        metavar="C_D",
        help="price of one transition (default 1)",
    )
    prices.add_argument(
        "--cost-reward",
        type=_positive_float,
        default=1.0,
        metavar="C_R",
        help="price of one reward label (default 1)",
    )
    weights = p.add_argument_group(
        "weights of the two errors in the bound",
        textwrap.fill(
            "either give them directly, or give --gamma and the three Lipschitz constants to use the "
            "infinite-horizon bound's weights w_r = 1/(1-gamma), "
            "w_d = gamma*L_r*(1+L_pi) / ((1-gamma)*(1-gamma*L_f*(1+L_pi))); default w_d = w_r = 1",
            width=88,
        ),
    )
    weights.add_argument(
        "--weight-dynamics",
        type=_positive_float,
        metavar="W_D",
        help="weight w_d of the dynamics error",
    )
    weights.add_argument(
        "--weight-reward",
        type=_positive_float,
        metavar="W_R",
        help="weight w_r of the reward error",
    )
    weights.add_argument(
        "--gamma",
        type=_nonneg_float,
        metavar="GAMMA",
        help="discount in [0, 1); needs the three --lip-* options",
    )
    weights.add_argument(
        "--lip-dynamics",
        type=_nonneg_float,
        metavar="L_F",
        help="Lipschitz constant of the learned dynamics",
    )
    weights.add_argument(
        "--lip-reward",
        type=_nonneg_float,
        metavar="L_R",
        help="Lipschitz constant of the learned reward",
    )
    weights.add_argument(
        "--lip-policy",
        type=_nonneg_float,
        metavar="L_PI",
        help="Lipschitz constant of the policy",
    )
    p.set_defaults(run=_run_allocate)


def _read_errors(path: str) -> dict[str, tuple[list[float], list[float]]]:
    """Read ``n, dynamics_error, reward_error`` columns; blank cells are skipped per column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise _InputError(
            f"cannot read --fit file {path!r}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise _InputError(
            f"--fit file {path!r} is not a UTF-8 text file (a binary or UTF-16 file?); "
            "save it as UTF-8 CSV"
        ) from None
    except csv.Error as exc:
        raise _InputError(
            f"--fit file {path!r} is not a valid CSV file: {exc}"
        ) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise _InputError(f"--fit file {path!r} is empty")
    header = [h.strip() for h in rows[0]]
    for col in ("n", "dynamics_error", "reward_error"):
        if header.count(col) > 1:
            raise _InputError(
                f"--fit file {path!r} has the column {col!r} {header.count(col)} times; "
                "keep one"
            )
    if "n" not in header:
        raise _InputError(
            f"--fit file {path!r} has no column 'n' (header: {', '.join(header)})"
        )
    out: dict[str, tuple[list[float], list[float]]] = {}
    for col in ("dynamics_error", "reward_error"):
        if col not in header:
            continue
        ns, errs = [], []
        for line, row in enumerate(rows[1:], start=2):
            cells = dict(zip(header, (c.strip() for c in row)))
            if not cells.get(col):
                continue
            try:
                n, e = float(cells.get("n", "")), float(cells[col])
            except ValueError:
                raise _InputError(
                    f"{path}, line {line}: n and {col} must be numbers, got "
                    f"{cells.get('n', '')!r} and {cells[col]!r}"
                ) from None
            if not (n > 0 and e > 0 and math.isfinite(n) and math.isfinite(e)):
                raise _InputError(
                    f"{path}, line {line}: n and {col} must be positive"
                )
            ns.append(n)
            errs.append(e)
        out[col] = (ns, errs)
    return out


def _log_r2(law, ns: Sequence[float], errs: Sequence[float]) -> float:
    ly = [math.log(e) for e in errs]
    pred = [math.log(law.coef) - law.exponent * math.log(n) for n in ns]
    mean = sum(ly) / len(ly)
    ss_tot = sum((y - mean) ** 2 for y in ly)
    ss_res = sum((y - q) ** 2 for y, q in zip(ly, pred))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0


def _laws(args: argparse.Namespace) -> tuple[dict, dict[str, str]]:
    """The two learning curves, given (``--dynamics``, ``--reward``) or fitted (``--fit``),
    and a note on where each came from."""
    from .allocation import fit_power_law

    laws = {"dynamics": args.dynamics, "reward": args.reward}
    sources = {k: "given" for k, v in laws.items() if v is not None}
    if args.fit is not None and None in laws.values():
        data = _read_errors(args.fit)
        for name in ("dynamics", "reward"):
            if laws[name] is not None:
                continue
            col = f"{name}_error"
            if col not in data:
                raise _InputError(
                    f"--fit file {args.fit!r} has no column {col!r}"
                )
            ns, errs = data[col]
            if len(ns) < 2:
                raise _InputError(
                    f"--fit file {args.fit!r}: column {col} needs at least two measured points, "
                    f"got {len(ns)}"
                )
            try:
                laws[name] = fit_power_law(ns, errs)
            except ValueError as exc:
                raise _InputError(
                    f"--fit file {args.fit!r}, column {col}: {exc}"
                ) from None
            if not laws[name].exponent > 0:
                raise _InputError(
                    f"--fit file {args.fit!r}: the fitted {name} error does not shrink with n "
                    f"(exponent {laws[name].exponent:.3g}); a budget cannot buy it down"
                )
            sources[name] = (
                f"fitted to {len(ns)} points of {args.fit}, log-log R^2 = "
                f"{_log_r2(laws[name], ns, errs):.3f}"
            )
    for name, flag in (("dynamics", "--dynamics"), ("reward", "--reward")):
        if laws[name] is None:
            raise _InputError(
                f"no {name} learning curve: give {flag} COEF,EXP or --fit CSV"
            )
    return laws, sources


def _weights(args: argparse.Namespace) -> tuple[float, float, str]:
    """``(w_d, w_r, note)``: given, default, or the infinite-horizon bound's weights from
    ``--gamma`` and the Lipschitz constants."""
    from .allocation import bound_weights

    lips = (args.lip_dynamics, args.lip_reward, args.lip_policy)
    direct = (args.weight_dynamics, args.weight_reward)
    if args.gamma is None:
        if any(v is not None for v in lips):
            raise _InputError(
                "--lip-dynamics, --lip-reward and --lip-policy need --gamma"
            )
        w_d = 1.0 if args.weight_dynamics is None else args.weight_dynamics
        w_r = 1.0 if args.weight_reward is None else args.weight_reward
        given = any(w is not None for w in direct)
        return w_d, w_r, "given" if given else "default"
    if any(w is not None for w in direct):
        raise _InputError(
            "give either --weight-dynamics/--weight-reward or --gamma with the "
            "Lipschitz constants, not both"
        )
    if any(v is None for v in lips):
        raise _InputError(
            "--gamma needs --lip-dynamics, --lip-reward and --lip-policy"
        )
    if not args.gamma < 1:
        raise _InputError(f"--gamma must lie in [0, 1), got {args.gamma:g}")
    w_d, w_r = bound_weights(*lips, args.gamma)
    loop = args.gamma * args.lip_dynamics * (1 + args.lip_policy)
    if math.isinf(w_d):
        raise _InputError(
            f"gamma * L_f * (1 + L_pi) = {loop:.4g} >= 1: the infinite-horizon bound is "
            f"infinite, so no allocation can make it finite (use smaller Lipschitz constants "
            f"or a smaller --gamma)"
        )
    if w_d == 0:
        raise _InputError(
            "the dynamics weight is 0 (gamma = 0 or L_r = 0): the bound does "
            "not depend on the dynamics model; spend the budget on reward labels"
        )
    note = (
        f"from gamma = {args.gamma:g}, L_f = {lips[0]:g}, L_r = {lips[1]:g}, "
        f"L_pi = {lips[2]:g} (gamma*L = {loop:.4g})"
    )
    return w_d, w_r, note


def _optimum(args, laws, w_d: float, w_r: float):
    """The optimal allocation, its bound checked to be finite."""
    from .allocation import optimal_allocation

    try:
        best = optimal_allocation(
            args.budget,
            laws["dynamics"],
            laws["reward"],
            cost_dynamics=args.cost_dynamics,
            cost_reward=args.cost_reward,
            weight_dynamics=w_d,
            weight_reward=w_r,
        )
    except ValueError as exc:
        raise _InputError(str(exc)) from None
    if not math.isfinite(best.bound):
        raise _InputError(
            "the bound at the optimum exceeds the float range (about 1.8e308): the "
            "coefficients or weights are too large for the budget"
        )
    return best


def _count(ln_n: float, digits: int = 6) -> str:
    """``exp(ln_n)`` to 6 digits, also beyond the float range (``5e+324``, never ``inf``
    or ``0``)."""
    if -708.0 < ln_n < 709.0:
        return f"{math.exp(ln_n):.{digits}g}"
    exp10 = ln_n / math.log(10.0)
    power = math.floor(exp10)
    mantissa = f"{10.0 ** (exp10 - power):.{digits}g}"
    if mantissa.startswith("10"):  # 9.9999996 rounds up
        mantissa, power = "1", power + 1
    return f"{mantissa}e{power:+03d}"


def _log_bound(
    laws, w_d: float, w_r: float, ln_nd: float, ln_nr: float
) -> float:
    """``log(w_d eps_d(N_d) + w_r eps_r(N_r))`` from ``log N``: no overflow or underflow."""
    terms = [
        math.log(w) + math.log(law.coef) - law.exponent * ln_n
        for w, law, ln_n in (
            (w_d, laws["dynamics"], ln_nd),
            (w_r, laws["reward"], ln_nr),
        )
    ]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def _fifty_fifty(args, laws) -> tuple[float, float]:
    """``(log N_d, log N_r)`` when half the budget buys each kind of sample: from logs, a
    count beyond the float range (a tiny price) is still a count."""
    half = math.log(args.budget) - math.log(2.0)
    return (
        half - math.log(args.cost_dynamics),
        half - math.log(args.cost_reward),
    )


def _run_allocate(args: argparse.Namespace) -> int:
    laws, sources = _laws(args)
    w_d, w_r, weight_note = _weights(args)
    best = _optimum(args, laws, w_d, w_r)
    ln_nd, ln_nr = math.log(best.n_dynamics), math.log(best.n_reward)
    ln_best = _log_bound(laws, w_d, w_r, ln_nd, ln_nr)
    half_d, half_r = _fifty_fifty(args, laws)
    ln_half = _log_bound(laws, w_d, w_r, half_d, half_r)
    budget, c_d, c_r = args.budget, args.cost_dynamics, args.cost_reward
    share = math.exp(math.log(c_d) + ln_nd - math.log(budget))
    gap = ln_half - ln_best  # >= 0 up to rounding: the optimum is the minimum
    gain = (
        f"{100 * math.expm1(gap):+.1f}%"
        if gap < 700
        else f"{_count(gap, 4)} times the optimum"
    )

    print(
        f"dynamics error  eps_d(N) = {laws['dynamics']}   ({sources['dynamics']})"
    )
    print(
        f"reward error    eps_r(N) = {laws['reward']}   ({sources['reward']})"
    )
    print(
        f"weights         w_d = {w_d:.6g}, w_r = {w_r:.6g}   ({weight_note})"
    )
    print(
        f"prices          c_d = {c_d:g} per transition, c_r = {c_r:g} per reward label; "
        f"budget C = {budget:g}"
    )
    print("optimal allocation")
    print(
        f"  transitions   N_d = {best.n_dynamics:.6g}   ({100 * share:.1f}% of the budget)"
    )
    print(
        f"  reward labels N_r = {best.n_reward:.6g}   ({100 * (1 - share):.1f}% of the budget)"
    )
    ratio = _count(ln_nd - ln_nr, 4)
    print(f"  ratio         N_d / N_r = {ratio}")
    print(
        f"bound at the optimum       w_d*eps_d + w_r*eps_r = {_count(ln_best)}"
    )
    print(
        f"bound at a 50/50 split     {_count(ln_half)}   "
        f"(N_d = {_count(half_d)}, N_r = {_count(half_r)}; "
        f"{gain})"
    )
    short = [
        what
        for what, n in (
            ("transition", best.n_dynamics),
            ("reward label", best.n_reward),
        )
        if n < 1
    ]
    if short:
        print(
            f"note: the optimum buys less than one {' and less than one '.join(short)}: "
            "the budget is smaller than the price of a sample, so the continuous optimum "
            "cannot be bought as it stands (raise --budget)"
        )
    return 0


# ============================================================================= entry point
def build_parser() -> argparse.ArgumentParser:
    """The ``imagination`` argument parser, one subparser per command."""
    parser = _Parser(
        prog="imagination",
        description="Command-line tools of the book 'Training in Imagination'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_allocate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad input).

    Parameters
    ----------
    argv:
        Arguments without the program name; ``None`` reads ``sys.argv[1:]``.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a one-line error (2)
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        # every problem is checked and reported in one line; no numpy warning is printed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(args.run(args))
    except _InputError as exc:
        print(f"imagination {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
