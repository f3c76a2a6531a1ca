"""Compounding-error and return-error bounds, derived once with sympy.

The symbolic expressions are importable (chapters 2 and 3 re-derive and assert them); the numeric
functions are their :func:`sympy.lambdify` forms, so no formula is typed twice.

Conventions (``../shared/paper/NOTES.md``, results 1 and 2): deterministic dynamics and policy,
``||(s, a)|| = ||s|| + ||a||``; ``eps_dynamics`` and ``eps_reward`` are sup errors of the learned
models over the region visited; Lipschitz constants are those of the *learned* dynamics and reward
and of the policy; the closed-loop constant is ``L = lip_dynamics * (1 + lip_policy)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import sympy as sp

from ._checks import number

__all__ = [
    "symbols",
    "delta_recursion_solution",
    "delta_closed_form",
    "per_step_reward_error",
    "return_error_infinite",
    "compounding_error_bound",
    "return_error_bound",
    "bound_weights_expr",
    "per_step_from_delta",
]

# ----------------------------------------------------------------------------- symbols
eps_d, eps_r = sp.symbols("epsilon_d epsilon_r", nonnegative=True)
L_f, L_r, L_pi, L = sp.symbols("L_f L_r L_pi L", nonnegative=True)
gamma = sp.symbols("gamma", nonnegative=True)
t = sp.symbols("t", integer=True, nonnegative=True)
delta_t = sp.symbols("delta_t", nonnegative=True)

symbols = {
    "eps_d": eps_d,
    "eps_r": eps_r,
    "L_f": L_f,
    "L_r": L_r,
    "L_pi": L_pi,
    "L": L,
    "gamma": gamma,
    "t": t,
    "delta_t": delta_t,
}
"""The sympy symbols used by the expressions below, by name."""

# ----------------------------------------------------------------------------- derivations
_delta = sp.Function("delta")
delta_recursion_solution: sp.Expr = sp.rsolve(
    _delta(t + 1) - L * _delta(t) - eps_d, _delta(t), {_delta(0): 0}
)
"""Solution of ``delta_{t+1} = L delta_t + eps_d`` with ``delta_0 = 0`` (``sympy.rsolve``)."""

delta_closed_form: sp.Expr = sp.Piecewise(
    (sp.limit(delta_recursion_solution, L, 1), sp.Eq(L, 1)),
    (sp.factor(delta_recursion_solution), True),
)
"""``delta_t = eps_d (L^t - 1)/(L - 1)``, with its ``L = 1`` limit ``t eps_d``."""

per_step_from_delta: sp.Expr = eps_r + L_r * (1 + L_pi) * delta_t
"""Per-step reward error bound ``eps_r + L_r (1 + L_pi) delta_t`` in terms of the state error."""

per_step_reward_error: sp.Expr = per_step_from_delta.subs(
    delta_t, sp.factor(delta_recursion_solution)
)
"""Bound on ``|r_hat(s_hat_t, a_hat_t) - r(s_t, a_t)|`` at step ``t`` (for ``L != 1``)."""


def _convergent_branch(expr: sp.Expr) -> sp.Expr:
    return expr.replace(
        lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0]
    )


return_error_infinite: sp.Expr = sp.factor(
    sp.simplify(
        _convergent_branch(
            sp.summation(gamma**t * per_step_reward_error, (t, 0, sp.oo))
        ).subs(L, L_f * (1 + L_pi))
    )
)
"""``sum_{t>=0} gamma^t [eps_r + L_r (1 + L_pi) delta_t]`` for ``gamma L < 1``, with
``L = L_f (1 + L_pi)``; equals ``eps_r/(1-gamma) + gamma L_r (1+L_pi) eps_d/((1-gamma)(1-gamma L))``."""

bound_weights_expr: tuple[sp.Expr, sp.Expr] = (
    sp.factor(sp.diff(return_error_infinite, eps_d)),
    sp.factor(sp.diff(return_error_infinite, eps_r)),
)
"""Coefficients ``(w_d, w_r)`` of ``eps_d`` and ``eps_r`` in :data:`return_error_infinite`."""

# The infinite-horizon bound is linear in the two errors: w_d eps_d + w_r eps_r.
assert (
    sp.simplify(
        return_error_infinite
        - bound_weights_expr[0] * eps_d
        - bound_weights_expr[1] * eps_r
    )
    == 0
)

_delta_np = sp.lambdify((eps_d, L, t), delta_closed_form, "numpy")
_step_np = sp.lambdify(
    (eps_r, L_r, L_pi, delta_t), per_step_from_delta, "numpy"
)
_w_d_math = sp.lambdify((L_f, L_r, L_pi, gamma), bound_weights_expr[0], "math")
_w_r_math = sp.lambdify((gamma,), bound_weights_expr[1], "math")


# ----------------------------------------------------------------------------- validation
# ----------------------------------------------------------------------------- public API
def compounding_error_bound(eps_dynamics: float, lip: float, t):
    """Bound ``eps_d (L^t - 1)/(L - 1)`` on the state error after ``t`` imagined steps.

    Parameters
    ----------
    eps_dynamics:
        Sup one-step error ``eps_d`` of the learned dynamics.
    lip:
        Closed-loop Lipschitz constant ``L`` (``lip_dynamics * (1 + lip_policy)``).
    t:
        Number of steps: a non-negative integer or an array of them.

    Returns
    -------
    float or numpy.ndarray
        ``t * eps_d`` where ``L = 1`` and ``0`` at ``t = 0``; same shape as ``t``.

    Raises
    ------
    ValueError
        If ``eps_dynamics`` or ``lip`` is negative, or ``t`` is not a non-negative integer.

    Examples
    --------
    >>> compounding_error_bound(0.1, 2.0, [0, 1, 2, 3])
    array([0. , 0.1, 0.3, 0.7])
    """
    eps = number("eps_dynamics", eps_dynamics, finite=False)
    lip = number("lip", lip, finite=False)
    t_arr = np.asarray(t)
    if (
        t_arr.dtype.kind not in "iuf"
        or np.any(t_arr < 0)
        or np.any(t_arr != np.round(t_arr))
    ):
        raise ValueError(
            f"t must be a non-negative integer or an array of them, got {t!r}"
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.asarray(
            _delta_np(eps, lip, t_arr.astype(np.float64)), dtype=np.float64
        )
    # t = 0 (and eps = 0) give exactly 0, also where L^t overflows (0 * inf would be nan).
    out = np.where((t_arr == 0) | (eps == 0.0), 0.0, out)
    return float(out) if out.ndim == 0 else out


def return_error_bound(
    eps_dynamics: float,
    eps_reward: float,
    lip_dynamics: float,
    lip_reward: float,
    lip_policy: float,
    gamma: float,
    horizon: int | None = None,
) -> float:
    """Bound on ``|J_hat - J|``, the error of an imagined return (extension of Asadi et al. 2018).

    With ``L = lip_dynamics * (1 + lip_policy)`` and ``delta_t`` from
    :func:`compounding_error_bound`, the bound is
    ``sum_{t < horizon} gamma^t [eps_reward + lip_reward (1 + lip_policy) delta_t]``.

    Parameters
    ----------
    eps_dynamics, eps_reward:
        Sup errors of the learned dynamics and reward models.
    lip_dynamics, lip_reward, lip_policy:
        Lipschitz constants of the learned dynamics, the learned reward and the policy.
    gamma:
        Discount: in ``[0, 1)`` for the infinite horizon, ``[0, 1]`` for a finite one.
    horizon:
        Number of steps; ``None`` for the infinite discounted sum
        ``eps_r/(1-gamma) + gamma L_r (1+L_pi) eps_d / ((1-gamma)(1-gamma L))``, which is
        ``math.inf`` when ``gamma L >= 1`` (unless ``eps_dynamics`` or ``lip_reward`` is 0, when
        the dynamics term vanishes). ``L^t`` may overflow to ``inf`` for long horizons; the
        bound is then ``inf``, which is still true.

    Returns
    -------
    float
        The bound (``0`` for ``horizon = 0``).

    Raises
    ------
    ValueError
        Naming the parameter: a negative (or non-numeric) error or Lipschitz constant, ``gamma``
        outside ``[0, 1)`` (infinite horizon) or ``[0, 1]`` (finite), a negative or
        non-integer ``horizon``.

    Examples
    --------
    >>> round(return_error_bound(0.1, 0.2, 0.5, 1.0, 0.5, 0.9), 4)
    6.1538
    """
    eps_d_ = number("eps_dynamics", eps_dynamics, finite=False)
    eps_r_ = number("eps_reward", eps_reward, finite=False)
    lf = number("lip_dynamics", lip_dynamics, finite=False)
    lr = number("lip_reward", lip_reward, finite=False)
    lp = number("lip_policy", lip_policy, finite=False)
    g = number("gamma", gamma, finite=False)
    loop = lf * (1 + lp)
    if horizon is None:
        if not g < 1:
            raise ValueError(
                f"gamma must lie in [0, 1) for an infinite horizon, got {gamma!r}"
            )
        if (
            eps_d_ == 0.0 or lr == 0.0
        ):  # the dynamics term vanishes, whatever gamma L is
            return float(_w_r_math(g) * eps_r_)
        if g * loop >= 1:
            return math.inf
        return float(_w_d_math(lf, lr, lp, g) * eps_d_ + _w_r_math(g) * eps_r_)
    if (
        isinstance(horizon, bool)
        or not isinstance(horizon, numbers.Integral)
        or horizon < 0
    ):
        raise ValueError(
            f"horizon must be a non-negative integer or None, got {horizon!r}"
        )
    if g > 1:
        raise ValueError(
            f"gamma must lie in [0, 1] for a finite horizon, got {gamma!r}"
        )
    ts = np.arange(int(horizon))
    deltas = compounding_error_bound(eps_d_, loop, ts)
    if (
        lr == 0.0
    ):  # the dynamics term vanishes even where delta_t overflowed (0 * inf = nan)
        deltas = np.zeros_like(deltas)
    discounts = g ** ts.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        terms = discounts * _step_np(eps_r_, lr, lp, deltas)
    # A zero discount kills the term even where delta_t overflowed (0 * inf = nan).
    terms = np.where(discounts == 0.0, 0.0, terms)
    return float(np.sum(terms))
