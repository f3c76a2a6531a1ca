"""Chapter 4's experiments: learning curves, certified constants, and a
falsifiable test of the optimal split.

:mod:`imagination.allocation` is mathematics (the sympy derivation and the
solver); everything here trains or rolls out models:

* :func:`train_on_subsets`: many models trained at once on nested subsets
  of one data pool (the sizes are a ``vmap`` axis), and
  :func:`pendulum_learning_curves`, which does it for dynamics and reward
  models on the stabilised pendulum, seeds as a second ``vmap`` axis;
* :func:`sup_errors` and :func:`closed_loop_constants`: the sup error and
  the closed-loop Lipschitz constants of every trained model (seed, size),
  the latter both estimated from below and certified
  (:func:`closed_loop_lipschitz_upper`: exact spectral norms of a ``tanh``
  MLP, the clipped policy handled exactly), so the weights of the bound can
  be followed as the data grow;
* :func:`imagined_return_gaps`: the actual imagined-return error of pairs of
  trained models, against the true pendulum;
* :func:`tight_budget_gaps` and :func:`tight_argmin`: the aligned linear
  system of :func:`imagination.attribution.tight_system` with offsets that
  follow power-law learning curves *exactly*. There the imagined-return gap
  equals the bound, so the split that minimises the gap measured on
  rollouts must be the one :func:`imagination.allocation.optimal_allocation`
  predicts.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import attribution, data, policies
from ._compat import enable_x64
from .models import (
    affine_dynamics,
    affine_reward,
    dynamics_model,
    reward_model,
    sup_error,
)
from .models import fit as _fit
from .models import mlp_init as _mlp_init
from .rollout import make_rollout, rollout

__all__ = [
    "train_on_subsets",
    "pendulum_learning_curves",
    "closed_loop_lipschitz_upper",
    "closed_loop_constants",
    "sup_errors",
    "imagined_return_gaps",
    "tight_budget_gaps",
    "tight_argmin",
]

Array = jax.Array


# ----------------------------------------------------------------------------- nested subsets
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
    """Train one model per size ``n`` in ``sizes`` on the first ``n`` rows
    of a data pool, all at once.

    Every model sees the same padded array (the first ``pad`` rows of the
    pool) and draws its minibatches from its first ``n`` rows only
    (``n_valid`` of :func:`imagination.models.fit`), so the sizes are an
    ordinary batch axis: one :func:`jax.vmap` trains them all, each by Adam
    in a :func:`jax.lax.scan` on the plain mean squared error. ``vmap`` the
    call over ``key`` and the pool to add seeds. Nested subsets of one pool
    make a learning curve whose points differ only in how much data they saw.

    Parameters
    ----------
    model:
        :func:`imagination.models.dynamics_model` or
        :func:`imagination.models.reward_model` (any ``model(layers, s, a)``
        whose output has the shape of one row of ``targets``).
    key:
        PRNG key (split over sizes; each size gets its own initialisation
        and minibatches).
    states, actions, targets:
        The pool, ``(n_pool, ds)``, ``(n_pool, da)``, ``(n_pool, k)`` or
        ``(n_pool,)``.
    sizes:
        Integer array of subset sizes, each in ``[1, pad]`` (may be traced;
        larger values are clipped to ``pad``).
    hidden, steps, learning_rate, batch_size:
        MLP hidden widths and the training options of
        :func:`imagination.models.fit`.
    pad:
        Number of pool rows every model receives (static); defaults to
        ``n_pool``.

    Returns
    -------
    layers
        The trained MLP layers, stacked along a leading axis of length
        ``len(sizes)``.
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
            f"pad must be an integer in [1, {n_pool}] (the pool size), "
            f"got {pad!r}"
        )
    sizes = jnp.asarray(sizes, jnp.int32)
    if sizes.ndim != 1:
        raise ValueError(
            f"sizes must be a one-dimensional array, got shape {sizes.shape}"
        )
    out_dim = 1 if targets.ndim == 1 else targets.shape[1]
    in_dim = states.shape[1] + actions.shape[1]
    batch = (states[:pad], actions[:pad], targets[:pad])

    def one(k, n):
        k_init, k_fit = jax.random.split(k)
        layers = _mlp_init(k_init, (in_dim, *hidden, out_dim), states.dtype)
        layers, _ = _fit(
            _mse(model),
            layers,
            batch,
            k_fit,
            steps=steps,
            learning_rate=learning_rate,
            batch_size=batch_size,
            n_valid=jnp.clip(n, 1, pad),
        )
        return layers

    keys = jax.random.split(key, sizes.shape[0])
    return jax.vmap(one)(keys, sizes)


def pendulum_learning_curves(
    setup: attribution.PendulumSetup,
    key: Array,
    sizes: Sequence[int],
    n_seeds: int,
    *,
    hidden: Sequence[int] = (32, 32),
    steps: int = 1000,
    action_scale: float = 2.0,
) -> tuple[Any, Any]:
    """Dynamics and reward models of the pendulum on nested subsets, per seed.

    For each seed two *separate* pools are bought from the true pendulum
    (:func:`imagination.data.sample_transitions` on the data box of
    ``setup``): transitions for the dynamics model, reward labels for the
    reward model. Each pool trains one model per size
    (:func:`train_on_subsets`). Seeds and sizes are two ``vmap`` axes of one
    compiled function.

    Parameters
    ----------
    setup:
        :func:`imagination.attribution.pendulum_setup`.
    key:
        PRNG key.
    sizes:
        Positive integer subset sizes.
    n_seeds:
        Number of independent repetitions (positive integer).
    hidden, steps:
        MLP widths and Adam steps per model.
    action_scale:
        Actions of the data are uniform in ``[-action_scale, action_scale]``.

    Returns
    -------
    (dynamics_layers, reward_layers)
        Layers stacked with leading axes ``(n_seeds, len(sizes))``.
    """
    sizes = np.asarray(sizes)
    if sizes.ndim != 1 or sizes.size == 0 or np.any(sizes < 1):
        raise ValueError("sizes must be a non-empty list of positive integers")
    if int(n_seeds) != n_seeds or n_seeds < 1:
        raise ValueError(
            f"n_seeds must be a positive integer, got {n_seeds!r}"
        )
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    env, n_pool = setup.env, int(sizes.max())
    sizes_j = jnp.asarray(sizes, jnp.int32)

    def buy(k):
        return data.sample_transitions(
            env,
            k,
            n_pool,
            action_scale=action_scale,
            state_low=setup.data_low,
            state_high=setup.data_high,
        )

    def one_seed(k):
        k_pd, k_pr, k_d, k_r = jax.random.split(k, 4)
        pool_d, pool_r = buy(k_pd), buy(k_pr)  # two separate purchases
        opts = dict(hidden=tuple(hidden), steps=int(steps))
        dyn = train_on_subsets(
            dynamics_model,
            k_d,
            pool_d.states,
            pool_d.actions,
            pool_d.next_states,
            sizes_j,
            **opts,
        )
        rew = train_on_subsets(
            reward_model,
            k_r,
            pool_r.states,
            pool_r.actions,
            pool_r.rewards,
            sizes_j,
            **opts,
        )
        return dyn, rew

    run = jax.jit(jax.vmap(one_seed))
    return jax.block_until_ready(run(jax.random.split(key, int(n_seeds))))


# ----------------------------------------------------------------------------- certified constants
def closed_loop_lipschitz_upper(
    layers: Any, gain: Array, *, residual: bool
) -> float:
    """Certified Lipschitz constant of ``s -> m(s, clip(K s, -a, a))``.

    ``m`` is a ``tanh`` MLP on ``[s; a]`` (plus ``s`` when ``residual``, as
    :func:`imagination.models.dynamics_model`). Along any segment the clip
    acts as ``D K`` with ``D`` diagonal, entries in ``[0, 1]``, so the first
    layer maps a state step ``ds`` to ``(W_s + W_a D K) ds``. The spectral
    norm is convex in ``D``, so its largest value over the box of ``D`` is
    at a vertex: the first-layer factor is the largest of
    ``||W_s + W_a D K||_2`` over the ``2^da`` diagonal 0/1 matrices ``D``.
    Later layers contribute their exact spectral norms and ``tanh`` at most
    1 (as in :func:`imagination.models.lipschitz_upper`). The result is a
    valid constant in the Euclidean norm of the state, up to float
    rounding; it is never above ``L_m (1 + ||K||)``.

    Parameters
    ----------
    layers:
        ``[(W, b), ...]`` of one model (no batch axes).
    gain:
        Policy gain ``K``, shape ``(da, ds)``.
    residual:
        ``True`` for the residual dynamics model (adds 1).

    Returns
    -------
    float
    """
    K = np.asarray(gain, np.float64)
    if K.ndim != 2:
        raise ValueError(f"gain must be a matrix (da, ds), got {K.shape}")
    da, ds = K.shape
    W0 = np.asarray(layers[0][0], np.float64)
    if W0.shape[1] != ds + da:
        raise ValueError(
            f"the first layer takes {W0.shape[1]} inputs, gain needs {ds + da}"
        )
    if da > 12:
        raise ValueError(f"gain has {da} action rows; at most 12 supported")
    Ws, Wa = W0[:, :ds], W0[:, ds:]
    first = max(
        np.linalg.norm(Ws + Wa @ (np.asarray(d, np.float64)[:, None] * K), 2)
        for d in itertools.product((0.0, 1.0), repeat=da)
    )
    rest = [
        np.linalg.norm(np.asarray(W, np.float64), 2) for W, _ in layers[1:]
    ]
    value = float(first * math.prod(rest))
    return value + 1.0 if residual else value


def _take(tree: Any, *index: int) -> Any:
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def _reward_vec(params: Any, s: Array, a: Array) -> Array:
    return reward_model(params, s, a)[None]


def closed_loop_constants(
    setup: attribution.PendulumSetup,
    dyn_layers: Any,
    rew_layers: Any,
    states: Array,
) -> dict[str, np.ndarray]:
    """Closed-loop Lipschitz constants of every trained model, two ways.

    ``lower``: the largest local constant over ``states``
    (:func:`imagination.attribution.closed_loop_lipschitz_lower`), an
    *estimate from below*. ``upper``: :func:`closed_loop_lipschitz_upper`,
    a certified constant. For the dynamics model the map is
    ``s -> f_hat(s, pi(s))``, for the reward model ``s -> r_hat(s, pi(s))``.

    Parameters
    ----------
    setup:
        The pendulum setup (its policy is
        :func:`imagination.attribution.clipped_linear`).
    dyn_layers, rew_layers:
        Layers with leading axes ``(seeds, sizes)``, as returned by
        :func:`pendulum_learning_curves`.
    states:
        ``(n, 2)`` states at which the local constants are taken.

    Returns
    -------
    dict
        ``dyn_lower``, ``dyn_upper``, ``rew_lower``, ``rew_upper``: arrays
        of shape ``(seeds, sizes)``.
    """
    states = jnp.asarray(states)
    if states.ndim != 2 or states.shape[0] == 0:
        raise ValueError("states must be a non-empty (n, state_dim) array")
    pol, pp = attribution.clipped_linear, setup.policy_params

    def lower(model):
        one = lambda p: attribution.closed_loop_lipschitz_lower(  # noqa: E731
            model, p, pol, pp, states
        )
        return jax.jit(jax.vmap(jax.vmap(one)))

    out = {
        "dyn_lower": np.asarray(lower(dynamics_model)(dyn_layers)),
        "rew_lower": np.asarray(lower(_reward_vec)(rew_layers)),
    }
    K = np.asarray(pp[0])
    for name, layers, residual in (
        ("dyn_upper", dyn_layers, True),
        ("rew_upper", rew_layers, False),
    ):
        n_seeds, n_sizes = jax.tree_util.tree_leaves(layers)[0].shape[:2]
        out[name] = np.array(
            [
                [
                    closed_loop_lipschitz_upper(
                        _take(layers, i, j), K, residual=residual
                    )
                    for j in range(n_sizes)
                ]
                for i in range(n_seeds)
            ]
        )
    return out


def sup_errors(
    setup: attribution.PendulumSetup,
    dyn_layers: Any,
    rew_layers: Any,
    states: Array,
    actions: Array,
) -> tuple[np.ndarray, np.ndarray]:
    """Sup errors of every model, as maxima over a dense sample.

    :func:`imagination.models.sup_error` for each seed and size: an estimate
    of the sup that can only err low.

    Returns
    -------
    (eps_dynamics, eps_reward)
        Arrays of shape ``(seeds, sizes)``.
    """
    env = setup.env

    def errs(model, truth, layers):
        one = lambda p: sup_error(  # noqa: E731
            model, p, truth, env.params, states, actions
        )
        return np.asarray(jax.jit(jax.vmap(jax.vmap(one)))(layers))

    return (
        errs(dynamics_model, env.dynamics, dyn_layers),
        errs(reward_model, env.reward, rew_layers),
    )


def imagined_return_gaps(
    setup: attribution.PendulumSetup,
    dyn_layers: Any,
    rew_layers: Any,
    i_dynamics: Sequence[int],
    i_reward: Sequence[int],
    starts: Array,
    *,
    horizon: int,
    gamma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``|J_hat - J|`` of imagined rollouts, for pairs of trained models.

    For seed ``s`` and pair ``j`` the imagination uses the dynamics model
    ``dyn_layers[s, i_dynamics[j]]`` and the reward model
    ``rew_layers[s, i_reward[j]]``; true and imagined rollouts share the
    start states, the policy and the key.

    Returns
    -------
    (mean, max)
        Mean and largest ``|J_hat - J|`` over the start states, arrays of
        shape ``(seeds, pairs)``.
    """
    i_d = jnp.asarray(i_dynamics, jnp.int32)
    i_r = jnp.asarray(i_reward, jnp.int32)
    if i_d.shape != i_r.shape or i_d.ndim != 1:
        raise ValueError("i_dynamics and i_reward must be equal-length lists")
    env, pol, pp = setup.env, attribution.clipped_linear, setup.policy_params
    key = jax.random.key(4)
    truth = rollout(
        env.dynamics,
        env.reward,
        pol,
        (env.params, env.params, pp),
        starts,
        key,
        horizon=horizon,
        gamma=gamma,
    )
    imagine = make_rollout(
        dynamics_model, reward_model, pol, horizon=horizon, gamma=gamma
    )

    @jax.jit
    def run(dyn, rew):
        def one(d, r):
            traj = imagine(d, r, pp, starts, key)
            g = jnp.abs(traj.returns - truth.returns)
            return jnp.mean(g), jnp.max(g)

        def per_seed(d_seed, r_seed):
            return jax.vmap(
                lambda i, j: one(_take(d_seed, i), _take(r_seed, j))
            )(i_d, i_r)

        return jax.vmap(per_seed)(dyn, rew)

    mean, worst = run(dyn_layers, rew_layers)
    return np.asarray(mean), np.asarray(worst)


# ----------------------------------------------------------------------------- the tight system
def _laws(n_d, n_r, a_d, alpha, a_r, beta):
    return a_d * n_d ** (-alpha), a_r * n_r ** (-beta)


def _check_tight(p, k, l, gamma, horizon):  # noqa: E741
    for name, v in (("p", p), ("k", k), ("l", l)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if not (isinstance(gamma, (int, float)) and 0 <= gamma <= 1):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(
            f"horizon must be a positive integer, got {horizon!r}"
        )


def tight_budget_gaps(
    n_dynamics: Any,
    n_reward: Any,
    laws: tuple[Any, Any, Any, Any],
    *,
    p: float = 0.9,
    k: float = 0.2,
    l: float = 0.5,  # noqa: E741
    gamma: float = 0.9,
    horizon: int = 100,
    starts: Sequence[float] = (-1.0, 0.0, 2.0),
) -> np.ndarray:
    """Imagined-minus-true return of the tight system, per data split.

    The learned models of :func:`imagination.attribution.tight_system`
    carry the offsets ``eps_d = a_d N_d^(-alpha)`` and
    ``eps_r = a_r N_r^(-beta)``: errors that follow the power laws exactly.
    Both systems are rolled out (float64,
    :func:`imagination.rollout.make_rollout`, ``vmap``-ped over the splits)
    from the same ``starts``.

    Parameters
    ----------
    n_dynamics, n_reward:
        Arrays (broadcast together) of data sizes ``N_d``, ``N_r`` (> 0).
    laws:
        ``(a_d, alpha, a_r, beta)``, numbers or arrays broadcasting with the
        sizes (one learning-curve pair per split).
    p, k, l:
        Dynamics, policy and reward coefficients (positive).
    gamma, horizon:
        Discount in ``[0, 1]`` and number of steps.
    starts:
        One-dimensional start states (the gap does not depend on them).

    Returns
    -------
    numpy.ndarray
        ``J_hat - J``, shape ``broadcast shape + (len(starts),)``.
    """
    _check_tight(p, k, l, gamma, horizon)
    n_d, n_r, a_d, al, a_r, be = np.broadcast_arrays(
        *(np.asarray(x, np.float64) for x in (n_dynamics, n_reward, *laws))
    )
    if np.any(~np.isfinite(n_d) | (n_d <= 0)):
        raise ValueError("n_dynamics must be positive and finite")
    if np.any(~np.isfinite(n_r) | (n_r <= 0)):
        raise ValueError("n_reward must be positive and finite")
    if np.any(a_d <= 0) or np.any(a_r <= 0):
        raise ValueError("laws: the coefficients a_d, a_r must be positive")
    eps_d, eps_r = _laws(n_d, n_r, a_d, al, a_r, be)
    shape = eps_d.shape
    with enable_x64():
        run = _tight_rollout(int(horizon))
        f64 = lambda x: jnp.asarray(x, jnp.float64)  # noqa: E731
        s0 = f64(np.asarray(starts, np.float64).reshape(-1, 1))
        key = jax.random.key(0)
        g = f64(gamma)
        true = run(
            (f64(p), f64(0.0)), (f64(l), f64(0.0)), f64([[k]]), s0, key, g
        )
        ed, er = f64(eps_d.ravel()), f64(eps_r.ravel())
        imag = jax.vmap(
            lambda a, b: run((f64(p), a), (f64(l), b), f64([[k]]), s0, key, g)
        )(ed, er)
        gap = np.asarray(imag - true[None], np.float64)
    return gap.reshape(*shape, s0.shape[0])


_TIGHT_RUNS: dict[int, Callable] = {}


def _tight_rollout(horizon: int) -> Callable:
    """Discounted returns of the affine system (gamma traced), cached."""
    if horizon not in _TIGHT_RUNS:

        @jax.jit
        def run(dyn, rew, K, s0, key, gamma):
            rewards = jax.vmap(
                lambda s: _affine_rewards(dyn, rew, K, s, horizon)
            )(s0)
            disc = gamma ** jnp.arange(horizon, dtype=s0.dtype)
            return rewards @ disc

        _TIGHT_RUNS[horizon] = run
    return _TIGHT_RUNS[horizon]


def _affine_rewards(dyn, rew, K, s, horizon):
    # The rollout engine's step, for one trajectory (one scan over time).
    roll = make_rollout(
        affine_dynamics,
        affine_reward,
        policies.linear,
        horizon=horizon,
    )
    traj = roll(dyn, rew, K, s[None], jax.random.key(0))
    return traj.rewards[0]


def tight_argmin(
    budget: Any,
    laws: tuple[Any, Any, Any, Any],
    *,
    cost_dynamics: Any = 1.0,
    cost_reward: Any = 1.0,
    grid: int = 241,
    iters: int = 90,
    **system: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The split of ``budget`` that minimises the *measured* rollout gap.

    Along the budget line ``c_d N_d + c_r N_r = C`` the split is
    parametrised by the log-odds ``u`` of the money share spent on
    transitions. The mean gap of :func:`tight_budget_gaps` is evaluated on
    a grid of ``u`` in ``[-25, 25]``, then refined by golden-section search
    around the best grid point (every evaluation is a batch of rollouts; all
    cases are searched at once). Nothing here uses the bound or the
    optimality condition.

    Parameters
    ----------
    budget, cost_dynamics, cost_reward:
        ``C``, ``c_d``, ``c_r``: positive numbers or arrays (one per case).
    laws:
        ``(a_d, alpha, a_r, beta)`` as in :func:`tight_budget_gaps`.
    grid, iters:
        Grid points (>= 3) and golden-section iterations (>= 1).
    **system:
        ``p, k, l, gamma, horizon, starts`` of :func:`tight_budget_gaps`.

    Returns
    -------
    (n_dynamics, n_reward, gap)
        Arrays over the cases: the measured minimiser and the gap there.
    """
    if int(grid) != grid or grid < 3:
        raise ValueError(f"grid must be an integer >= 3, got {grid!r}")
    if int(iters) != iters or iters < 1:
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    C, cd, cr, *lw = np.broadcast_arrays(
        *(
            np.asarray(x, np.float64)
            for x in (budget, cost_dynamics, cost_reward, *laws)
        )
    )
    for name, v in (("budget", C), ("cost_dynamics", cd), ("cost_reward", cr)):
        if np.any(~np.isfinite(v) | (v <= 0)):
            raise ValueError(f"{name} must be positive and finite")
    lw = tuple(lw)

    def split(u):
        x = 0.5 * (1 + np.tanh(u / 2))  # sigmoid, stable
        y = 0.5 * (1 - np.tanh(u / 2))
        return C * x / cd, C * y / cr

    def gap(u):
        return tight_budget_gaps(*split(u), lw, **system).mean(-1)

    us = np.linspace(-25.0, 25.0, int(grid))
    vals = tight_budget_gaps(
        *split(us[:, None] + 0 * C), tuple(x[None] for x in lw), **system
    ).mean(-1)
    i = np.argmin(vals, axis=0)
    lo = us[np.clip(i - 1, 0, grid - 1)]
    hi = us[np.clip(i + 1, 0, grid - 1)]
    r = (math.sqrt(5) - 1) / 2
    a, b = hi - r * (hi - lo), lo + r * (hi - lo)
    fa, fb = gap(a), gap(b)
    for _ in range(int(iters)):
        left = fa < fb
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
        a_new = np.where(left, hi - r * (hi - lo), b)
        b_new = np.where(left, a, lo + r * (hi - lo))
        a, b = a_new, b_new
        f_new = gap(np.where(left, a, b))
        fa, fb = np.where(left, f_new, fb), np.where(left, fa, f_new)
    u = 0.5 * (lo + hi)
    n_d, n_r = split(u)
    return n_d, n_r, gap(u)
