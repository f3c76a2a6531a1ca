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

from ._checks import integer_array, number

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


# ----------------------------------------------------------------------------- exact evaluation
# The finite-horizon bound in O(1): sum_{t<H} gamma^t = S and
# sum_{t<H} gamma^t delta_t / eps_d = D (closed forms from sympy.summation; D's L = 1 branch is
# the limit sum_t t gamma^t), so the bound is eps_r S + L_r (1 + L_pi) eps_d D.
_H = sp.Symbol("H", integer=True, positive=True)
horizon_discount_sum: sp.Expr = sp.summation(gamma**t, (t, 0, _H - 1))
"""``S = sum_{t<H} gamma^t`` (``H`` where ``gamma = 1``)."""
horizon_delta_sum: sp.Expr = sp.Piecewise(
    (sp.summation(gamma**t * t, (t, 0, _H - 1)), sp.Eq(L, 1)),
    (
        sp.summation(
            gamma**t * sp.factor(delta_recursion_solution) / eps_d,
            (t, 0, _H - 1),
        ),
        True,
    ),
)
"""``D = sum_{t<H} gamma^t delta_t / eps_d``, every branch (``L = 1``, ``gamma = 1``,
``gamma L = 1``) in closed form."""
return_error_finite: sp.Expr = (
    eps_r * horizon_discount_sum + L_r * (1 + L_pi) * eps_d * horizon_delta_sum
)
"""The finite-horizon bound ``sum_{t<H} gamma^t [eps_r + L_r (1+L_pi) delta_t]`` in closed form
(``L`` the closed-loop constant); :func:`return_error_bound` evaluates it in O(1)."""
symbols["H"] = _H

_S_mp = sp.lambdify((gamma, _H), horizon_discount_sum, "mpmath")
_D_mp = sp.lambdify((L, gamma, _H), horizon_delta_sum, "mpmath")
_delta_mp = sp.lambdify((eps_d, L, t), delta_closed_form, "mpmath")
_w_d_mp = sp.lambdify((L_f, L_r, L_pi, gamma), bound_weights_expr[0], "mpmath")
_w_r_mp = sp.lambdify((gamma,), bound_weights_expr[1], "mpmath")


def _exact(fn, floats, ints=()):
    """``float(fn(*floats, *ints))`` evaluated in mpmath at a precision that makes the float
    inputs' sums and products exact and survives the cancellations of the closed forms (near
    ``L = 1``, ``gamma = 1``, ``gamma L = 1``); checked by repeating at twice the precision.
    The float result is correctly rounded: ``inf`` only above the float range, ``0`` only below
    it. No overflow or ``0 * inf`` can occur inside (mpmath exponents are unbounded)."""
    import mpmath

    span = max((abs(math.frexp(x)[1]) for x in floats if x), default=0)
    prec = 256 + 2 * span + 2 * sum(int(n).bit_length() for n in ints)
    prev = None
    for _ in range(6):
        with mpmath.workprec(prec):
            val = fn(*(mpmath.mpf(x) for x in floats), *ints)
        if prev is not None and (
            val == prev or abs(val - prev) <= abs(val) * mpmath.mpf(2) ** -80
        ):
            break
        prev, prec = val, 2 * prec
    return float(val)


def _loop_at_least_one(g: float, lf: float, lp: float) -> bool:
    """Exact test of ``gamma * L_f * (1 + L_pi) >= 1`` for finite floats."""
    import mpmath

    span = max((abs(math.frexp(x)[1]) for x in (g, lf, lp) if x), default=0)
    with mpmath.workprec(4 * span + 512):  # enough bits for the exact product
        return bool(mpmath.mpf(g) * mpmath.mpf(lf) * (1 + mpmath.mpf(lp)) >= 1)


def _weights(lf: float, lr: float, lp: float, g: float) -> tuple[float, float]:
    """Correctly rounded ``(w_d, w_r)`` of the infinite-horizon bound (``0 <= g < 1``);
    ``w_d = inf`` exactly when ``gamma L >= 1`` (the sum diverges) or a constant is ``inf``."""
    w_r = _exact(_w_r_mp, (g,))
    if g == 0.0 or lr == 0.0:
        return 0.0, w_r
    if math.isinf(lr) or math.isinf(lp):
        return math.inf, w_r
    if lf != 0.0 and (math.isinf(lf) or _loop_at_least_one(g, lf, lp)):
        return math.inf, w_r
    return _exact(_w_d_mp, (lf, lr, lp, g)), w_r


def _delta_exact(eps: float, lip: float, t: int) -> float:
    """``delta_t`` for one ``t``, correctly rounded (``eps``, ``lip`` may be ``inf``)."""
    if t == 0 or eps == 0.0:
        return 0.0
    if t == 1 or lip == 0.0:  # delta_1 = eps; L = 0 gives eps for every t >= 1
        return eps
    if math.isinf(eps) or math.isinf(lip):
        return math.inf
    return _exact(_delta_mp, (eps, lip), (t,))


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
        ``t * eps_d`` where ``L = 1`` and ``0`` at ``t = 0``; same shape as ``t``. Each value is
        evaluated exactly and rounded once (no overflow of ``L^t``, no cancellation near
        ``L = 1``): ``eps_d`` at ``t = 1`` whatever ``L`` (``inf`` included), ``inf`` only where
        the bound is infinite or above the float range, never NaN.

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
    try:  # exact at any size: t = 2**70 is a number of steps like any other
        t_arr = integer_array("t", t)
    except ValueError:
        raise ValueError(
            f"t must be a non-negative integer or an array of them, got {t!r:.80}"
        ) from None
    # Each distinct t evaluated exactly and rounded once (no overflow of L^t, no 0 * inf,
    # no cancellation near L = 1): `inf` only where the bound is infinite or above 1.8e308.
    uniq, inverse = np.unique(t_arr, return_inverse=True)
    vals = np.array(
        [_delta_exact(eps, lip, int(u)) for u in uniq], dtype=np.float64
    )
    out = vals[inverse].reshape(t_arr.shape)
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
        the dynamics term vanishes). A finite horizon is evaluated in O(1) from the closed form
        :data:`return_error_finite` (any horizon, ``10**9`` included).

    Returns
    -------
    float
        The bound (``0`` for ``horizon = 0``), evaluated exactly and rounded once: never NaN,
        ``inf`` only where the bound is infinite (an infinite input that is not multiplied by
        an exact zero, or ``gamma L >= 1`` on the infinite horizon) or above the float range.

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
    if horizon is None:
        if not g < 1:
            raise ValueError(
                f"gamma must lie in [0, 1) for an infinite horizon, got {gamma!r}"
            )
        # a term that is exactly 0 (eps = 0, L_r = 0, gamma = 0) is dropped before it can meet
        # an inf; the sum diverges where gamma L >= 1 (tested exactly, not on a rounded w_d)
        rew_zero = eps_r_ == 0.0
        dyn_zero = eps_d_ == 0.0 or lr == 0.0 or g == 0.0
        if (not rew_zero and math.isinf(eps_r_)) or (
            not dyn_zero
            and (
                math.isinf(eps_d_)
                or math.isinf(lr)
                or math.isinf(lp)
                or (
                    lf != 0.0
                    and (math.isinf(lf) or _loop_at_least_one(g, lf, lp))
                )
            )
        ):
            return math.inf
        if dyn_zero:
            return (
                0.0
                if rew_zero
                else _exact(lambda e, g_: e * _w_r_mp(g_), (eps_r_, g))
            )
        return _exact(
            lambda ed, er, a, b, c, g_: (
                ed * _w_d_mp(a, b, c, g_) + er * _w_r_mp(g_)
            ),
            (eps_d_, eps_r_, lf, lr, lp, g),
        )
    if (
        isinstance(horizon, (bool, np.bool_))
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
    H = int(horizon)
    if H == 0:
        return 0.0
    # eps_r S + L_r (1 + L_pi) eps_d D (return_error_finite), in O(1). S >= 1 is finite; D = 0
    # exactly when H = 1 or gamma = 0 (only the t = 0 term, where delta_0 = 0).
    dyn_zero = eps_d_ == 0.0 or lr == 0.0 or H == 1 or g == 0.0
    lf_ = (
        0.0 if H <= 2 else lf
    )  # D does not depend on L for H <= 2 (delta_1 = eps_d)
    if math.isinf(eps_r_) or (
        not dyn_zero
        and (
            math.isinf(eps_d_)
            or math.isinf(lr)
            or math.isinf(lp)
            or math.isinf(lf_)
        )
    ):
        return math.inf
    if dyn_zero:
        return (
            0.0
            if eps_r_ == 0.0
            else _exact(lambda e, g_, n: e * _S_mp(g_, n), (eps_r_, g), (H,))
        )
    return _exact(
        lambda ed, er, a, b, c, g_, n: (
            er * _S_mp(g_, n) + b * (1 + c) * ed * _D_mp(a * (1 + c), g_, n)
        ),
        (eps_d_, eps_r_, lf_, lr, lp, g),
        (H,),
    )


# ----------------------------------------------------------------------------- weighted norms
# Chapter 2: the same proof in a norm ||x||_P = sqrt(x^T P x) in which the
# closed loop g(s) = f_hat(s, pi(s)) contracts. With L_P the Lipschitz
# constant of g in the P-norm and eps_d^P the one-step error in the P-norm,
# delta^P_{t+1} <= L_P delta^P_t + eps_d^P, delta^P_0 = 0.
eps_P, L_P = sp.symbols("epsilon_d^P L_P", positive=True)
symbols.update({"eps_P": eps_P, "L_P": L_P})

_delta_P = sp.Function("delta_P")
weighted_delta_solution: sp.Expr = sp.factor(
    sp.rsolve(
        _delta_P(t + 1) - L_P * _delta_P(t) - eps_P,
        _delta_P(t),
        {_delta_P(0): 0},
    )
)
"""Solution ``eps_P (L_P^t - 1)/(L_P - 1)`` of the weighted-norm recursion."""

_rate = sp.symbols("lambda_P", positive=True)  # L_P = exp(-lambda_P) < 1
weighted_delta_limit: sp.Expr = sp.simplify(
    sp.limit(weighted_delta_solution.subs(L_P, sp.exp(-_rate)), t, sp.oo).subs(
        _rate, -sp.log(L_P)
    )
)
"""``lim_{t -> oo}`` of :data:`weighted_delta_solution` for ``0 < L_P < 1``:
``eps_P / (1 - L_P)``."""

_limit_math = sp.lambdify((eps_P, L_P), weighted_delta_limit, "math")


def contraction_limit(eps_dynamics: float, lip: float) -> float:
    """Limit ``eps_d / (1 - L)`` of the compounding bound when ``L < 1``.

    The bound ``eps_d (1 - L^t)/(1 - L)`` increases with ``t`` to this value,
    so for a contracting closed loop (in whatever norm ``eps_d`` and ``L``
    are measured) it holds at every ``t``. Lambdified from
    :data:`weighted_delta_limit`.

    Parameters
    ----------
    eps_dynamics:
        One-step error ``eps_d`` (non-negative).
    lip:
        Closed-loop Lipschitz constant ``L`` (non-negative).

    Returns
    -------
    float
        ``eps_d / (1 - L)``; ``math.inf`` when ``L >= 1`` and ``eps_d > 0``
        (the bound grows without limit), ``0`` when ``eps_d = 0``.

    Raises
    ------
    ValueError
        If ``eps_dynamics`` or ``lip`` is negative or not a number.

    Examples
    --------
    >>> round(contraction_limit(0.1, 0.75), 12)
    0.4
    """
    eps = number("eps_dynamics", eps_dynamics, finite=False)
    lip_ = number("lip", lip, finite=False)
    if eps == 0.0:
        return 0.0
    if lip_ >= 1:
        return math.inf
    return float(_limit_math(eps, lip_))


__all__ += [
    "weighted_delta_solution",
    "weighted_delta_limit",
    "contraction_limit",
]
