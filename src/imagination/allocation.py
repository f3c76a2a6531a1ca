"""Optimal split of a data budget between transitions (dynamics) and reward labels.

NOTES, result 3. The return-error bound of :mod:`imagination.bounds` is linear in the two model
errors, ``w_d eps_d + w_r eps_r``. With power-law learning curves
``eps_d(N_d) = a_d N_d^(-alpha)`` and ``eps_r(N_r) = a_r N_r^(-beta)`` (Kaplan et al. 2020 style)
and prices ``c_d``, ``c_r`` per sample, the best use of a budget ``C`` solves

    minimise  w_d a_d N_d^(-alpha) + w_r a_r N_r^(-beta)   s.t.  c_d N_d + c_r N_r = C.

The Lagrangian, its first-order conditions and the equal-exponent ratio are derived here once with
sympy (importable, re-derived in chapter 4); the numerical solver evaluates the *lambdified*
optimality condition, so no formula is typed twice. Along the budget line the objective is a sum
of two strictly convex functions of the fraction spent on dynamics, which tends to infinity at
both ends, so the minimiser is unique and interior; it is found by bisection on the log-odds of
that fraction (pure Python floats, no scipy), or in closed form when ``alpha == beta``.

The module is mathematics only: it imports no learned model. The experiments of chapter 4 that
train models (:func:`imagination.learning_curves.train_on_subsets` and the rest) live in
:mod:`imagination.learning_curves`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy as sp

from . import bounds as _bounds
from ._checks import log_array, number, real, real_array

__all__ = [
    "PowerLaw",
    "Allocation",
    "fit_power_law",
    "bound_weights",
    "optimal_allocation",
    "symbols",
    "objective",
    "lagrangian",
    "first_order_conditions",
    "multiplier_dynamics",
    "multiplier_reward",
    "optimality_condition",
    "log_optimality_gap",
    "equal_exponent_ratio",
]

# ============================================================================= sympy derivation
N_d, N_r, lam = sp.symbols("N_d N_r lambda", positive=True)
a_d, a_r, alpha, beta = sp.symbols("a_d a_r alpha beta", positive=True)
w_d, w_r, c_d, c_r, C = sp.symbols("w_d w_r c_d c_r C", positive=True)
_ln_Nd, _ln_Nr = sp.symbols("ln_N_d ln_N_r", real=True)

symbols = {
    "N_d": N_d,
    "N_r": N_r,
    "lambda": lam,
    "a_d": a_d,
    "a_r": a_r,
    "alpha": alpha,
    "beta": beta,
    "w_d": w_d,
    "w_r": w_r,
    "c_d": c_d,
    "c_r": c_r,
    "C": C,
}
"""The sympy symbols of the derivation, by name (all positive)."""

objective: sp.Expr = w_d * a_d * N_d**-alpha + w_r * a_r * N_r**-beta
"""The bound ``w_d eps_d(N_d) + w_r eps_r(N_r)`` under power-law learning curves."""

lagrangian: sp.Expr = objective + lam * (c_d * N_d + c_r * N_r - C)
"""Lagrangian of the budget-constrained problem, multiplier ``lambda``."""

first_order_conditions: tuple[sp.Expr, sp.Expr] = (
    sp.diff(lagrangian, N_d),
    sp.diff(lagrangian, N_r),
)
"""``(dL/dN_d, dL/dN_r)``; both vanish at the optimum."""

multiplier_dynamics: sp.Expr = sp.solve(first_order_conditions[0], lam)[0]
"""``lambda`` from ``dL/dN_d = 0``: the bound reduction per unit of money spent on transitions,
``alpha w_d a_d N_d^(-alpha-1) / c_d``."""

multiplier_reward: sp.Expr = sp.solve(first_order_conditions[1], lam)[0]
"""``lambda`` from ``dL/dN_r = 0``: ``beta w_r a_r N_r^(-beta-1) / c_r``."""

optimality_condition: sp.Eq = sp.Eq(multiplier_dynamics, multiplier_reward)
"""At the optimum the last unit of money buys the same bound reduction on either side."""

log_optimality_gap: sp.Expr = sp.expand_log(
    sp.log(multiplier_dynamics) - sp.log(multiplier_reward), force=True
).subs({sp.log(N_d): _ln_Nd, sp.log(N_r): _ln_Nr})
"""``log(lambda_d / lambda_r)`` written in ``ln_N_d = log N_d`` and ``ln_N_r = log N_r``: zero at the
optimum, strictly decreasing in ``ln_N_d`` and increasing in ``ln_N_r``."""

_rho = sp.Symbol("rho", positive=True)
equal_exponent_ratio: sp.Expr = sp.powdenest(
    sp.expand_power_base(
        sp.solve(
            sp.Eq(
                multiplier_dynamics.subs(N_d, _rho * N_r),
                multiplier_reward.subs(beta, alpha),
            ),
            _rho,
        )[0],
        force=True,
    ),
    force=True,
)
"""``N_d / N_r`` at the optimum when ``alpha == beta``:
``(w_d a_d c_r / (w_r a_r c_d))^(1/(1+alpha))``."""

_gap_fn = sp.lambdify(
    (_ln_Nd, _ln_Nr, a_d, a_r, alpha, beta, w_d, w_r, c_d, c_r),
    log_optimality_gap,
    "math",
)
_ratio_fn = sp.lambdify(
    (a_d, a_r, alpha, w_d, w_r, c_d, c_r), equal_exponent_ratio, "math"
)
_log_ratio_fn = sp.lambdify(
    (a_d, a_r, alpha, w_d, w_r, c_d, c_r),
    sp.expand_log(sp.log(equal_exponent_ratio), force=True),
    "math",
)
_weights_fn = sp.lambdify(
    (_bounds.L_f, _bounds.L_r, _bounds.L_pi, _bounds.gamma),
    _bounds.bound_weights_expr,
    "math",
)


# ============================================================================= validation
# ============================================================================= learning curves
@dataclass(frozen=True)
class PowerLaw:
    """A power-law learning curve ``eps(n) = coef * n ** -exponent``.

    Parameters
    ----------
    coef:
        Positive prefactor (the error at ``n = 1``).
    exponent:
        Finite rate of decay; positive for a curve that improves with data. (A fitted exponent
        can come out non-positive; :func:`optimal_allocation` rejects such a law.)

    Examples
    --------
    >>> PowerLaw(2.0, 0.5)(4.0)
    1.0
    """

    coef: float
    exponent: float

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "coef", number("coef", self.coef, positive=True)
        )
        e = real("exponent", self.exponent)  # bool and strings: TypeError
        if not math.isfinite(e):
            raise ValueError(
                f"exponent must be a finite number, got {self.exponent!r}"
            )
        object.__setattr__(self, "exponent", e)

    def __call__(self, n):
        """The error at sample size ``n >= 0`` (a number or an array).

        ``inf`` at ``n = 0`` for a positive exponent; a value beyond the float range rounds to
        ``inf`` or ``0`` (never an ``OverflowError`` or ``nan``). A Python int is used exactly
        at any size (``n = 10**400``: ``coef * 10**(-400 exponent)``). A negative, NaN,
        ``bool`` or string ``n`` raises (``ValueError``, ``TypeError``) naming ``n``.
        """
        if np.ndim(n) == 0 and not isinstance(n, (list, tuple)):
            number("n", n, finite=False)
            with np.errstate(all="ignore"):
                return float(self([n])[0])
        try:
            x = real_array("n", n)
        except (TypeError, ValueError):
            raise ValueError(
                f"n must be non-negative numbers, got {n!r:.80}"
            ) from None
        if np.any(np.isnan(x)) or np.any(x < 0):
            raise ValueError(f"n must be non-negative numbers, got {n!r:.80}")
        with np.errstate(all="ignore"):
            out = self.coef * x**-self.exponent
            # where the direct form over- or underflowed, use log space
            bad = ~np.isfinite(out) | (out == 0)
            if np.any(bad):
                with np.errstate(all="ignore"):
                    lg = math.log(self.coef) - self.exponent * log_array(n, x)
                    alt = np.exp(lg)
                alt = np.where(np.isnan(lg), out, alt)
                out = np.where(bad, alt, out)
        return out

    def __str__(self) -> str:
        # the exponent as it acts: N^(-0.5) for 0.5, N^(0.5) for -0.5 (+ 0.0: no "-0")
        return f"{self.coef:.4g} * N^({-self.exponent + 0.0:.4g})"


def fit_power_law(n: Sequence[float], err: Sequence[float]) -> PowerLaw:
    """Fit ``err = coef * n ** -exponent`` by least squares in log-log space.

    Parameters
    ----------
    n:
        Sample sizes (positive).
    err:
        Measured errors at those sizes (positive), same length as ``n``.

    Returns
    -------
    PowerLaw
        The fitted law; ``log err ~ log coef - exponent log n``.

    Raises
    ------
    ValueError
        Fewer than two points, mismatched lengths, non-positive or non-finite values, or sizes
        too close together for the fit to mean anything: when the rounding of the sizes alone
        (relative ``2.2e-16`` each) could move the exponent by more than one part in a million,
        as for ``n = [1, 1 + 1e-15]``.

    Notes
    -----
    Python ints are used exactly at any size (``n = 10**400`` enters as ``log n``).
    """
    x = real_array("n", n).ravel()  # bool and strings: TypeError
    y = real_array("err", err).ravel()
    if x.shape != y.shape:
        raise ValueError(
            f"n and err must have the same length, got {x.size} and {y.size}"
        )
    if x.size < 2:
        raise ValueError(
            f"fit_power_law needs at least two points, got {x.size}"
        )
    lx = log_array(n, x).ravel()  # exact for ints beyond the float range
    if not np.all(np.isfinite(lx)) or np.any(x <= 0):
        raise ValueError("n must contain positive finite values only")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError("err must contain positive finite values only")
    ly = np.log(y)
    if np.ptp(lx) == 0:
        raise ValueError("n must contain at least two different sizes")
    # The slope is (change of log err) / (change of log n). Each log n carries a rounding of
    # about eps (1 + |log n|) (the size's own rounding, then the log's); relative to the
    # spread of log n that is the relative error of the exponent from rounding alone.
    wobble = np.finfo(np.float64).eps * (1.0 + np.max(np.abs(lx)))
    if wobble > 1e-6 * np.ptp(lx):
        raise ValueError(
            f"n: the sizes are too close together (log n spans {np.ptp(lx):.3g}); their "
            f"rounding alone could move the fitted exponent by {wobble / np.ptp(lx):.2g} of "
            "itself; measure at sizes further apart"
        )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # an ill-conditioned fit is reported below, not as a warning
        warnings.simplefilter("ignore")
        slope, intercept = np.polyfit(lx, ly, 1)
        coef = float(np.exp(intercept))
    if not (math.isfinite(slope) and 0 < coef < math.inf):
        raise ValueError(
            f"n and err give a law outside the float range (coef = exp({intercept:.4g}), "
            f"exponent {-slope:.4g}); are the sizes in n too close together?"
        )
    return PowerLaw(coef, float(-slope))


# ============================================================================= bound weights
def bound_weights(
    lip_dynamics: float, lip_reward: float, lip_policy: float, gamma: float
) -> tuple[float, float]:
    """Coefficients ``(w_d, w_r)`` of ``eps_d`` and ``eps_r`` in the infinite-horizon bound.

    ``w_r = 1/(1-gamma)`` and ``w_d = gamma L_r (1 + L_pi) / ((1-gamma)(1-gamma L))`` with
    ``L = L_f (1 + L_pi)``, lambdified from :data:`imagination.bounds.bound_weights_expr`.

    Parameters
    ----------
    lip_dynamics, lip_reward, lip_policy:
        Lipschitz constants ``L_f``, ``L_r``, ``L_pi`` (non-negative).
    gamma:
        Discount in ``[0, 1)``.

    Returns
    -------
    (weight_dynamics, weight_reward)
        ``weight_dynamics`` is ``math.inf`` when ``gamma L >= 1`` (the infinite sum diverges).
    """
    lf = number("lip_dynamics", lip_dynamics)
    lr = number("lip_reward", lip_reward)
    lp = number("lip_policy", lip_policy)
    g = number("gamma", gamma)
    if not g < 1:
        raise ValueError(f"gamma must lie in [0, 1), got {gamma!r}")
    # the lambdified weights evaluated exactly, rounded once (gamma L = 1 exactly gives inf,
    # no overflow or 0 * inf in between)
    return _bounds._weights(lf, lr, lp, g)


# ============================================================================= allocation
@dataclass(frozen=True)
class Allocation:
    """The optimal split of a budget.

    Attributes
    ----------
    n_dynamics:
        Number of transitions ``N_d`` (continuous; round down to buy).
    n_reward:
        Number of reward labels ``N_r``.
    bound:
        The minimised bound ``w_d eps_d(N_d) + w_r eps_r(N_r)``.
    """

    n_dynamics: float
    n_reward: float
    bound: float

    @property
    def ratio(self) -> float:
        """``N_d / N_r``."""
        if self.n_reward == 0:  # underflow of a subnormal count
            return math.inf
        return self.n_dynamics / self.n_reward


def _log_sigmoid(u: float) -> float:
    """``log(1 / (1 + exp(-u)))`` without overflow."""
    return -math.log1p(math.exp(-u)) if u >= 0 else u - math.log1p(math.exp(u))


def optimal_allocation(
    budget: float,
    dynamics: PowerLaw,
    reward: PowerLaw,
    *,
    cost_dynamics: float = 1.0,
    cost_reward: float = 1.0,
    weight_dynamics: float = 1.0,
    weight_reward: float = 1.0,
) -> Allocation:
    """Split ``budget`` between transitions and reward labels to minimise the error bound.

    Minimises ``weight_dynamics * dynamics(N_d) + weight_reward * reward(N_r)`` subject to
    ``cost_dynamics * N_d + cost_reward * N_r = budget`` (the whole budget is spent), over
    continuous ``N_d, N_r > 0``.

    Parameters
    ----------
    budget:
        Total money ``C`` (positive).
    dynamics, reward:
        :class:`PowerLaw` learning curves ``eps_d(N_d)`` and ``eps_r(N_r)``, positive exponents.
    cost_dynamics, cost_reward:
        Prices ``c_d``, ``c_r`` of one transition and one reward label (positive).
    weight_dynamics, weight_reward:
        Weights ``w_d``, ``w_r`` of the two errors in the bound (positive, finite); see
        :func:`bound_weights`.

    Returns
    -------
    Allocation
        ``n_dynamics``, ``n_reward`` and the minimised ``bound``.

    Notes
    -----
    With ``alpha == beta`` the ratio is the lambdified :data:`equal_exponent_ratio` and
    ``N_r = C / (c_d rho + c_r)``. Otherwise the root of the lambdified
    :data:`log_optimality_gap` is bracketed and bisected in ``u = log(x / (1 - x))``, where
    ``x = c_d N_d / C`` is the fraction of money spent on transitions; the gap is strictly
    decreasing in ``u``, so the root is unique. Bisection runs to floating-point resolution in
    ``u``, which gives ``N_d`` and ``N_r`` to near machine precision, both computed from ``u``
    without cancellation (``x`` and ``1 - x`` are separate sigmoids).
    """
    C_ = number("budget", budget, positive=True)
    cd = number("cost_dynamics", cost_dynamics, positive=True)
    cr = number("cost_reward", cost_reward, positive=True)
    wd = number("weight_dynamics", weight_dynamics, positive=True)
    wr = number("weight_reward", weight_reward, positive=True)
    for name, law in (("dynamics", dynamics), ("reward", reward)):
        if not isinstance(law, PowerLaw):
            raise ValueError(
                f"{name} must be a PowerLaw, got {type(law).__name__}"
            )
        if not law.exponent > 0:
            raise ValueError(
                f"{name} exponent must be positive (an error that shrinks with data), "
                f"got {law.exponent!r}"
            )
    ad, al = dynamics.coef, dynamics.exponent
    ar, be = reward.coef, reward.exponent

    if al == be:
        ln_rho = _log_ratio_fn(ad, ar, al, wd, wr, cd, cr)
        ln_cd, ln_cr = math.log(cd) + ln_rho, math.log(cr)
        top = max(ln_cd, ln_cr)  # log(c_d rho + c_r) without overflow
        ln_den = top + math.log(math.exp(ln_cd - top) + math.exp(ln_cr - top))
        ln_nr = math.log(C_) - ln_den
        ln_nd = ln_rho + ln_nr
    else:
        ln_d0 = math.log(C_) - math.log(cd)
        ln_r0 = math.log(C_) - math.log(cr)

        def gap(u: float) -> float:
            return _gap_fn(
                ln_d0 + _log_sigmoid(u),
                ln_r0 + _log_sigmoid(-u),
                ad,
                ar,
                al,
                be,
                wd,
                wr,
                cd,
                cr,
            )

        lo, hi = -1.0, 1.0
        while gap(lo) <= 0:
            lo *= 2.0
            if lo < -1e6:
                raise ValueError(
                    "optimal_allocation: could not bracket the optimum (inputs too extreme)"
                )
        while gap(hi) >= 0:
            hi *= 2.0
            if hi > 1e6:
                raise ValueError(
                    "optimal_allocation: could not bracket the optimum (inputs too extreme)"
                )
        for _ in range(400):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            if gap(mid) > 0:
                lo = mid
            else:
                hi = mid
        u = 0.5 * (lo + hi)
        ln_nd = ln_d0 + _log_sigmoid(u)
        ln_nr = ln_r0 + _log_sigmoid(-u)
    # Everything from the logs: no overflow, underflow or 0 ** -alpha in between.
    for name, ln_n in (("dynamics", ln_nd), ("reward", ln_nr)):
        if not -744.0 < ln_n < 709.7:
            raise ValueError(
                f"budget: the optimal number of {name} samples, exp({ln_n:.4g}), is outside "
                f"the float range; rescale budget and costs"
            )
    n_d, n_r = math.exp(ln_nd), math.exp(ln_nr)
    value = 0.0
    for w, a, e, ln_n in ((wd, ad, al, ln_nd), (wr, ar, be, ln_nr)):
        try:
            value += math.exp(math.log(w) + math.log(a) - e * ln_n)
        except OverflowError:  # beyond the float range
            value = math.inf
    return Allocation(float(n_d), float(n_r), float(value))
