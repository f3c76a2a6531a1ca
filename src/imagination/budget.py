"""The noise-budget tradeoff: how noisy should cheap reward labels be? (pure mathematics)

Setting (``../shared/paper/NOTES.md``, result 6). A rollout whose reward labels carry zero-mean
noise of variance ``v`` costs ``c(v)`` (noisier labels are cheaper). A budget ``B`` buys
``N = B / c(v)`` rollouts, and the ``N``-rollout REINFORCE estimate has total variance (trace of its
covariance)

``Var(v) = (V0 + v G) c(v) / B``,

where ``V0`` is the variance of one clean single-rollout estimate and ``G`` the noise factor of
:func:`imagination.reinforce.noise_variance_term` (``N`` is treated as a continuous quantity).
Choosing the noise level is the one-dimensional problem ``min_v (V0 + v G) c(v)``.

The symbolic results are derived once here with sympy and are importable (chapter 7 re-derives and
asserts them); the closed forms used numerically are their :func:`sympy.lambdify` forms, so no
formula is typed twice. This module contains no simulator: it is the arithmetic of the tradeoff.

* :data:`objective_expr`, :data:`gradient_variance_expr`: the objective with a generic cost ``c(v)``.
* :data:`elasticity_condition`: at an interior optimum the *noise share* of the variance equals the
  *elasticity* of the cost, ``v G / (V0 + v G) = -d log c / d log v``.
* :data:`power_optimum_expr`: for ``c = k v^(-p)``, ``v* = p V0 / ((1 - p) G)`` (``0 < p < 1``).
* :data:`label_repeats_expr`: averaging ``m`` labels of variance ``sigma0^2`` per reward
  (``v = sigma0^2 / m``, ``c = c_roll + m c_label``) gives ``m* = sqrt(sigma0^2 G c_roll / (V0 c_label))``.
"""

from __future__ import annotations

import math
from typing import Callable, Union

import numpy as np
import sympy as sp

from ._checks import integer_array, log_array, number, real_array

__all__ = [
    "symbols",
    "objective_expr",
    "gradient_variance_expr",
    "log_derivative_expr",
    "noise_share_expr",
    "cost_elasticity_expr",
    "elasticity_condition",
    "power_objective_expr",
    "power_optimum_expr",
    "label_objective_expr",
    "label_repeats_expr",
    "gradient_variance",
    "optimal_noise_variance",
    "optimal_noise_variance_power",
    "optimal_label_repeats",
    "loo_variance",
]

Cost = Union[Callable[[np.ndarray], np.ndarray], float]

# ----------------------------------------------------------------------------- symbols
v = sp.Symbol("v", positive=True)
V0, G, B, k, p = sp.symbols("V_0 G B k p", positive=True)
m = sp.Symbol("m", positive=True)
sigma0_sq = sp.Symbol("sigma_0^2", positive=True)
c_roll, c_label = sp.symbols("c_roll c_label", positive=True)
c = sp.Function("c")

symbols = {
    "v": v,
    "V0": V0,
    "G": G,
    "B": B,
    "k": k,
    "p": p,
    "m": m,
    "sigma0_sq": sigma0_sq,
    "c_roll": c_roll,
    "c_label": c_label,
    "c": c,
}
"""The sympy symbols (and the undefined cost function ``c``) used below, by name."""

# ----------------------------------------------------------------------------- derivations
gradient_variance_expr: sp.Expr = (V0 + v * G) * c(v) / B
"""``(V0 + v G) c(v) / B``: variance of the average of ``N = B / c(v)`` rollout estimates."""

objective_expr: sp.Expr = sp.simplify(gradient_variance_expr * B)
"""``(V0 + v G) c(v)``: the budget-free objective (``B`` only scales it)."""

log_derivative_expr: sp.Expr = sp.expand(
    v * sp.diff(sp.log(objective_expr), v)
)
"""``d log[(V0 + v G) c(v)] / d log v``; an interior optimum makes it vanish."""

noise_share_expr: sp.Expr = v * G / (V0 + v * G)
"""Share of the variance due to label noise, ``v G / (V0 + v G)``."""

cost_elasticity_expr: sp.Expr = -v * sp.diff(c(v), v) / c(v)
"""Elasticity of the cost, ``-d log c / d log v`` (the percentage saving per percent more noise)."""

assert (
    sp.simplify(
        log_derivative_expr - (noise_share_expr - cost_elasticity_expr)
    )
    == 0
)
elasticity_condition: sp.Eq = sp.Eq(noise_share_expr, cost_elasticity_expr)
"""First-order condition ``v G / (V0 + v G) = -d log c / d log v`` (noise share = elasticity)."""

power_objective_expr: sp.Expr = objective_expr.subs(c(v), k * v ** (-p))
"""The objective for the power cost ``c(v) = k v^(-p)``."""

_power_roots = sp.solve(sp.diff(power_objective_expr, v), v)
assert len(_power_roots) == 1
power_optimum_expr: sp.Expr = sp.factor(_power_roots[0])
"""Stationary point ``p V0 / ((1 - p) G)`` of the power-cost objective (a minimum for ``0 < p < 1``)."""

label_objective_expr: sp.Expr = objective_expr.subs(
    c(v), c_roll + m * c_label
).subs(v, sigma0_sq / m)
"""``(V0 + sigma0^2 G / m)(c_roll + m c_label)``: averaging ``m`` labels per reward."""

_label_roots = sp.solve(sp.diff(label_objective_expr, m), m)
assert len(_label_roots) == 1
label_repeats_expr: sp.Expr = sp.simplify(_label_roots[0])
"""``sqrt(sigma0^2 G c_roll / (V0 c_label))``, the continuous optimal number of labels per reward."""

_C = sp.Symbol(
    "C", positive=True
)  # the value c(v), so the objective lambdifies without a callable
_variance_np = sp.lambdify(
    (v, V0, G, B, _C), gradient_variance_expr.subs(c(v), _C), "numpy"
)
_objective_np = sp.lambdify(
    (v, V0, G, _C), objective_expr.subs(c(v), _C), "numpy"
)
_power_math = sp.lambdify((V0, G, p), power_optimum_expr, "math")
_repeats_math = sp.lambdify(
    (sigma0_sq, G, c_roll, V0, c_label), label_repeats_expr, "math"
)


# ----------------------------------------------------------------------------- validation
def _cost_values(cost: Cost, x: np.ndarray) -> np.ndarray:
    """``cost(x)`` as a float64 array shaped like ``x``, checked positive and finite."""
    if callable(cost):
        try:
            out = np.asarray(cost(x), dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"cost must accept a NumPy array of noise variances: {err}"
            ) from None
    else:
        out = np.asarray(number("cost", cost, positive=True), dtype=np.float64)
    try:
        out = np.broadcast_to(out, x.shape)
    except ValueError:
        raise ValueError(
            f"cost must return one price per noise variance: shape {x.shape}, got {out.shape}"
        ) from None
    if not np.all(np.isfinite(out)) or not np.all(out > 0):
        bad = x[~(np.isfinite(out) & (out > 0))]
        raise ValueError(
            f"cost must be positive and finite; it is not at v = {bad[:3]}"
        )
    return out


def _interval(v_min, v_max) -> tuple[float, float]:
    lo = number("v_min", v_min, positive=True)
    hi = number("v_max", v_max, positive=True)
    if hi < lo:
        raise ValueError(
            f"v_max must be >= v_min (the interval is empty), got [{lo}, {hi}]"
        )
    return lo, hi


# ----------------------------------------------------------------------------- public API
def gradient_variance(v, budget: float, cost: Cost, v0: float, g: float):
    """Variance ``(v0 + v g) cost(v) / budget`` of a budget-limited REINFORCE estimate.

    Parameters
    ----------
    v:
        Label-noise variance(s) ``>= 0``: a number or an array.
    budget:
        Budget ``B`` per gradient estimate; it buys ``B / cost(v)`` rollouts (a continuous count).
    cost:
        Price of one rollout's labels as a function of their noise variance (it must accept NumPy
        arrays and return positive prices), or a positive number for a constant price.
    v0:
        Variance (trace of the covariance) of one rollout's estimate with clean labels.
    g:
        Noise factor ``G = sum_t gamma^(2t) E||Psi_t||^2``
        (:func:`imagination.reinforce.noise_variance_term` with ``sigma = 1``).

    Returns
    -------
    float or numpy.ndarray
        Same shape as ``v``.
    """
    budget = number("budget", budget, positive=True)
    v0 = number("v0", v0, positive=True)
    g = number("g", g, positive=True)
    x = real_array("v", v)
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(f"v must be finite and non-negative, got {v!r}")
    c = _cost_values(cost, x)
    with np.errstate(all="ignore"):
        out = np.asarray(_variance_np(x, v0, g, budget, c), dtype=np.float64)
        # where an intermediate product over- or underflowed, the same formula in log space
        tiny = np.finfo(np.float64).tiny
        xg = x * g
        bad = (
            ~np.isfinite(out)
            | (out < tiny)
            | ((xg < tiny) & (x > 0))
            | ~np.isfinite(xg)
            | (v0 < tiny)
            | (c < tiny)
            | (budget < tiny)
        )
        if np.any(bad):
            lg = (
                np.logaddexp(np.log(v0), np.log(x) + np.log(g))
                + np.log(c)
                - np.log(budget)
            )
            out = np.where(bad, np.exp(lg), out)
    return float(out) if out.ndim == 0 else out


def _golden(f, lo: np.ndarray, hi: np.ndarray, iters: int = 90):
    """Vectorised golden-section search on the brackets ``[lo_i, hi_i]``; best point seen."""
    r = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.copy(), hi.copy()
    x1, x2 = b - r * (b - a), a + r * (b - a)
    f1, f2 = f(x1), f(x2)
    xs, fs = [lo, hi, x1, x2], [f(lo), f(hi), f1, f2]
    for _ in range(iters):
        left = f1 <= f2  # a minimum of a unimodal function lies in [a, x2]
        a, b = np.where(left, a, x1), np.where(left, x2, b)
        new = np.where(left, b - r * (b - a), a + r * (b - a))
        fnew = f(new)
        x1, x2, f1, f2 = (
            np.where(left, new, x2),
            np.where(left, x1, new),
            np.where(left, fnew, f2),
            np.where(left, f1, fnew),
        )
        xs.append(new)
        fs.append(fnew)
    xs, fs = np.concatenate(xs), np.concatenate(fs)
    i = int(np.argmin(fs))
    return xs[i], fs[i]


def optimal_noise_variance(
    v0: float,
    g: float,
    cost: Cost,
    v_min: float,
    v_max: float,
    *,
    grid_per_decade: int = 2048,
) -> float:
    """Global minimiser of ``(v0 + v g) cost(v)`` over ``[v_min, v_max]``.

    The cost need not be convex, smooth or even continuous (price tiers are step functions), so the
    search is global and does not use derivatives:

    1. evaluate the objective on a dense log-spaced grid (both endpoints included,
       ``grid_per_decade`` points per decade, at least 4097);
    2. in *every* grid interval, bisect 60 times towards the half with the larger change of the
       objective: a jump keeps its full size under halving while a smooth change shrinks, so this
       brackets each discontinuity to machine precision and yields the points just left and right
       of it;
    3. refine the best discrete local minima of all these points by golden-section search on the
       one-grid-step brackets on either side of each, and return the best point evaluated.

    Two discontinuities closer than one grid step, or a basin narrower than one grid step, can be
    missed; raise ``grid_per_decade`` for such costs.

    Parameters
    ----------
    v0, g:
        Clean single-rollout variance and noise factor (both positive), as in
        :func:`gradient_variance`.
    cost:
        Positive price of a rollout's labels as a function of the noise variance; it must accept a
        NumPy array (or be a positive number).
    v_min, v_max:
        The noise variances on offer, ``0 < v_min <= v_max < inf``.
    grid_per_decade:
        Density of the initial grid.

    Returns
    -------
    float
        The minimising noise variance (``v_min`` when the interval is one point).
    """
    v0 = number("v0", v0, positive=True)
    g = number("g", g, positive=True)
    lo, hi = _interval(v_min, v_max)
    if (
        isinstance(grid_per_decade, (bool, np.bool_))
        or not isinstance(grid_per_decade, (int, np.integer))
        or grid_per_decade < 16
    ):
        raise ValueError(
            f"grid_per_decade must be an integer >= 16, got {grid_per_decade!r}"
        )
    if not callable(cost):
        number("cost", cost, positive=True)
        return lo  # constant price: the objective increases with v
    if lo == hi:
        _cost_values(cost, np.array([lo]))
        return lo

    def f(x):
        return _objective_np(x, v0, g, _cost_values(cost, x))

    decades = math.log10(hi) - math.log10(lo)  # hi / lo can overflow
    n = int(min(max(4097, math.ceil(grid_per_decade * decades) + 1), 200_001))
    grid = np.geomspace(lo, hi, n)
    grid[0], grid[-1] = lo, hi
    fg = f(grid)

    # 2. bisect every interval towards its steepest change (brackets the jumps)
    a, b, fa, fb = (
        grid[:-1].copy(),
        grid[1:].copy(),
        fg[:-1].copy(),
        fg[1:].copy(),
    )
    for _ in range(60):
        mid = 0.5 * (a + b)
        fm = f(mid)
        left = np.abs(fm - fa) >= np.abs(fb - fm)
        a, fa = np.where(left, a, mid), np.where(left, fa, fm)
        b, fb = np.where(left, mid, b), np.where(left, fm, fb)

    # 3. discrete local minima of the merged points, refined on both sides
    pts = np.concatenate([grid, a, b])
    vals = np.concatenate([fg, fa, fb])
    order = np.lexsort((vals, pts))
    pts, vals = pts[order], vals[order]
    left_ok = np.concatenate([[True], vals[1:] <= vals[:-1]])
    right_ok = np.concatenate([vals[:-1] <= vals[1:], [True]])
    minima = np.flatnonzero(left_ok & right_ok)
    best = minima[np.argsort(vals[minima], kind="stable")[:16]]
    xc = pts[best]
    j_lo = np.clip(
        np.searchsorted(grid, xc, side="left") - 1, 0, n - 1
    )  # largest grid < x
    j_hi = np.clip(
        np.searchsorted(grid, xc, side="right"), 0, n - 1
    )  # smallest grid > x
    brackets_lo = np.concatenate([np.minimum(grid[j_lo], xc), xc])
    brackets_hi = np.concatenate([xc, np.maximum(grid[j_hi], xc)])
    x_ref, f_ref = _golden(f, brackets_lo, brackets_hi)
    i = int(np.argmin(vals))
    if f_ref < vals[i]:
        return float(x_ref)
    return float(pts[i])


def optimal_noise_variance_power(v0: float, g: float, p: float) -> float:
    """Optimal noise variance for the power cost ``c(v) = k v^(-p)`` (any ``k > 0``).

    Parameters
    ----------
    v0, g:
        Clean single-rollout variance and noise factor (both positive).
    p:
        Cost exponent ``>= 0``: a 1% noisier label is ``p`` percent cheaper.

    Returns
    -------
    float
        ``p v0 / ((1 - p) g)`` for ``0 < p < 1`` (:data:`power_optimum_expr`); ``0.0`` for ``p = 0``
        (noise saves nothing, buy clean labels); ``math.inf`` for ``p >= 1``, where the objective
        decreases in ``v`` without end, so the noisiest labels on offer win.
    """
    v0 = number("v0", v0, positive=True)
    g = number("g", g, positive=True)
    p = number("p", p)
    if p == 0:
        return 0.0
    if p >= 1:
        return math.inf
    try:
        out = float(_power_math(v0, g, p))
    except (ZeroDivisionError, OverflowError):
        out = math.nan
    if not (math.isfinite(out) and out >= np.finfo(np.float64).tiny):
        # an intermediate product over- or underflowed: the same formula in log space
        try:
            out = math.exp(
                math.log(v0) - math.log(g) + math.log(p) - math.log1p(-p)
            )
        except OverflowError:  # beyond the float range
            out = math.inf
    return out


def optimal_label_repeats(
    v0: float,
    g: float,
    label_noise_var: float,
    cost_rollout: float,
    cost_label: float,
) -> float:
    """Optimal (continuous) number ``m`` of noisy labels averaged per reward.

    Averaging ``m`` independent labels of variance ``label_noise_var`` gives noise variance
    ``label_noise_var / m`` at price ``cost_rollout + m cost_label`` per rollout. The objective is
    convex in ``m`` with stationary point :data:`label_repeats_expr`; at least one label is needed.

    Parameters
    ----------
    v0, g:
        Clean single-rollout variance and noise factor (both positive).
    label_noise_var:
        Variance ``sigma0^2 >= 0`` of one label.
    cost_rollout:
        Price of generating one imagined rollout (positive).
    cost_label:
        Price of one labelling pass over a rollout (positive).

    Returns
    -------
    float
        ``max(1, sqrt(label_noise_var g cost_rollout / (v0 cost_label)))``. The best integer is the
        floor or the ceiling of this value (the objective is convex in ``m``).
    """
    v0 = number("v0", v0, positive=True)
    g = number("g", g, positive=True)
    s2 = number("label_noise_var", label_noise_var)
    cr = number("cost_rollout", cost_rollout, positive=True)
    cl = number("cost_label", cost_label, positive=True)
    if s2 == 0:
        return 1.0
    return max(1.0, float(_repeats_math(s2, g, cr, v0, cl)))


def loo_variance(n, v, v0: float, g: float, v_loo: float):
    """Exact variance of the ``n``-rollout estimate with the leave-one-out baseline.

    The budget model :func:`gradient_variance` divides the single-rollout
    variance ``v0 + v g`` by ``n``. The estimator the book runs subtracts,
    from rollout ``i``'s rewards-to-go, the mean over the *other* ``n - 1``
    rollouts; its variance (trace of the covariance) is exactly

    ``v0 / n + v_loo / (n (n - 1)) + v g / (n - 1)``

    (chapter 7 derives it): the baseline's own label noise raises the noise
    term from ``v g / n`` to ``v g / (n - 1)``, and its clean part adds
    ``v_loo / (n (n - 1))``.

    Parameters
    ----------
    n:
        Rollouts per estimate, integers ``>= 2`` (a number or an array).
    v:
        Label-noise variance(s) ``>= 0``, broadcastable against ``n``.
    v0:
        Variance of one clean rollout's estimate with the exact baseline
        ``E G_t`` (positive).
    g:
        Noise factor ``G`` (positive).
    v_loo:
        The leave-one-out term of :class:`imagination.training.PilotStats`
        (``>= 0``).

    Returns
    -------
    float or numpy.ndarray
        The broadcast shape of ``n`` and ``v``.
    """
    v0 = number("v0", v0, positive=True)
    g = number("g", g, positive=True)
    v_loo = number("v_loo", v_loo)
    integer_array("n", n, minimum=2)  # exact: any int, 10**400 included
    nn = real_array("n", n)  # inf where an int lies beyond the float range
    x = real_array("v", v)
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(f"v must be finite and non-negative, got {v!r}")
    # ordered so that a term overflows only where its true value does
    with np.errstate(over="ignore"):
        out = v0 / nn + v_loo / nn / (nn - 1) + x / (nn - 1) * g
    if np.any(
        np.isinf(nn)
    ):  # the same terms from the exact log n (n - 1 rounds to n)
        ln = np.broadcast_to(log_array(n, nn), out.shape)
        with np.errstate(divide="ignore"):
            alt = (
                np.exp(math.log(v0) - ln)
                + np.exp(np.log(v_loo) - 2 * ln)
                + np.exp(np.log(x) + math.log(g) - ln)
            )
        out = np.where(np.broadcast_to(np.isinf(nn), out.shape), alt, out)
    return float(out) if out.ndim == 0 else out
