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

The module also holds the JAX helper of chapter 4 that trains many models on nested subsets of a
data pool at once (:func:`train_on_subsets`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from . import bounds as _bounds
from ._checks import number
from .models import fit as _fit
from .models import mlp_init as _mlp_init

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
    "train_on_subsets",
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
        try:
            e = float(self.exponent)
        except (TypeError, ValueError):
            raise ValueError(
                f"exponent must be a finite number, got {self.exponent!r}"
            ) from None
        if not math.isfinite(e):
            raise ValueError(
                f"exponent must be a finite number, got {self.exponent!r}"
            )
        object.__setattr__(self, "exponent", e)

    def __call__(self, n):
        """The error at sample size ``n`` (a number or an array)."""
        if isinstance(n, (int, float)):
            return self.coef * float(n) ** -self.exponent
        return self.coef * np.asarray(n, dtype=np.float64) ** -self.exponent

    def __str__(self) -> str:
        return f"{self.coef:.4g} * N^(-{self.exponent:.4g})"


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
        Fewer than two points, mismatched lengths, non-positive or non-finite values, or all
        sizes equal.
    """
    x = np.asarray(n, dtype=np.float64).ravel()
    y = np.asarray(err, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(
            f"n and err must have the same length, got {x.size} and {y.size}"
        )
    if x.size < 2:
        raise ValueError(
            f"fit_power_law needs at least two points, got {x.size}"
        )
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError("n must contain positive finite values only")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError("err must contain positive finite values only")
    lx, ly = np.log(x), np.log(y)
    if np.ptp(lx) == 0:
        raise ValueError("n must contain at least two different sizes")
    slope, intercept = np.polyfit(lx, ly, 1)
    return PowerLaw(float(np.exp(intercept)), float(-slope))


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
    w_dyn, w_rew = _weights_fn(lf, lr, lp, g)
    if g * lf * (1 + lp) >= 1:
        w_dyn = math.inf
    return float(w_dyn), float(w_rew)


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
        rho = float(_ratio_fn(ad, ar, al, wd, wr, cd, cr))
        n_r = C_ / (cd * rho + cr)
        n_d = rho * n_r
    else:
        ln_d0, ln_r0 = math.log(C_ / cd), math.log(C_ / cr)

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
        n_d = C_ / cd * math.exp(_log_sigmoid(u))
        n_r = C_ / cr * math.exp(_log_sigmoid(-u))
    value = wd * dynamics(n_d) + wr * reward(n_r)
    return Allocation(float(n_d), float(n_r), float(value))


# ============================================================================= JAX: many models
def _mse(model: Callable) -> Callable:
    def loss(layers, batch):
        s, a, y = batch
        pred = jax.vmap(model, in_axes=(None, 0, 0))(layers, s, a)
        return jnp.mean(
            jnp.sum((pred - y).reshape(s.shape[0], -1) ** 2, axis=1)
        )

    return loss


def train_on_subsets(
    model: Callable,
    key: jax.Array,
    states: jax.Array,
    actions: jax.Array,
    targets: jax.Array,
    sizes: jax.Array,
    *,
    hidden: Sequence[int] = (32, 32),
    steps: int = 1500,
    learning_rate: float = 3e-3,
    batch_size: int = 128,
    pad: int | None = None,
) -> Any:
    """Train one model per size ``n`` in ``sizes`` on the first ``n`` rows of a data pool, at once.

    Every model sees the same padded array (the first ``pad`` rows of the pool) and draws its
    minibatches from its first ``n`` rows only (``n_valid`` of :func:`imagination.models.fit`), so
    the sizes are an ordinary batch axis: one :func:`jax.vmap` trains them all, each by Adam in a
    :func:`jax.lax.scan` on the plain mean squared error. ``vmap`` the call over ``key`` and the
    pool to add seeds. Nested subsets of one pool make a learning curve whose points differ only
    in how much data they saw.

    Parameters
    ----------
    model:
        :func:`imagination.models.dynamics_model` or :func:`imagination.models.reward_model`
        (any ``model(layers, s, a)`` whose output has the shape of one row of ``targets``).
    key:
        PRNG key (split over sizes; each size gets its own initialisation and minibatches).
    states, actions, targets:
        The pool, ``(n_pool, ds)``, ``(n_pool, da)``, ``(n_pool, k)`` or ``(n_pool,)``.
    sizes:
        Integer array of subset sizes, each in ``[1, pad]`` (may be traced; larger values are
        clipped to ``pad``).
    hidden, steps, learning_rate, batch_size:
        MLP hidden widths and the training options of :func:`imagination.models.fit`.
    pad:
        Number of pool rows every model receives (static); defaults to ``n_pool``.

    Returns
    -------
    layers
        The trained MLP layers, stacked along a leading axis of length ``len(sizes)``.
    """
    states = jnp.asarray(states)
    actions = jnp.asarray(actions)
    targets = jnp.asarray(targets)
    n_pool = states.shape[0]
    if actions.shape[0] != n_pool or targets.shape[0] != n_pool:
        raise ValueError(
            "states, actions and targets must have the same number of rows"
        )
    pad = n_pool if pad is None else int(pad)
    if not 1 <= pad <= n_pool:
        raise ValueError(
            f"pad must be an integer in [1, {n_pool}] (the pool size), got {pad!r}"
        )
    sizes = jnp.asarray(sizes, jnp.int32)
    if sizes.ndim != 1:
        raise ValueError(
            f"sizes must be a one-dimensional array, got shape {sizes.shape}"
        )
    out_dim = 1 if targets.ndim == 1 else targets.shape[1]
    in_dim = states.shape[1] + actions.shape[1]
    data = (states[:pad], actions[:pad], targets[:pad])

    def one(k, n):
        k_init, k_fit = jax.random.split(k)
        layers = _mlp_init(k_init, (in_dim, *hidden, out_dim), states.dtype)
        layers, _ = _fit(
            _mse(model),
            layers,
            data,
            k_fit,
            steps=steps,
            learning_rate=learning_rate,
            batch_size=batch_size,
            n_valid=jnp.clip(n, 1, pad),
        )
        return layers

    keys = jax.random.split(key, sizes.shape[0])
    return jax.vmap(one)(keys, sizes)
