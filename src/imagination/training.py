"""REINFORCE at several budget levels at once: one flat batch, one compilation.

A noise-budget sweep (chapter 7) compares *levels*: level ``l`` draws ``sizes[l]`` imagined rollouts
per gradient estimate and labels them with noise of standard deviation ``sigmas[l]``. Building one
:func:`imagination.reinforce.make_train_policy` per level would compile once per rollout count
(``n_rollouts`` is a static shape). Here all levels share one flat batch of ``sum(sizes)`` rollouts;
each rollout carries its level's policy parameters and noise level, and the estimates are reduced
per level with segment sums. The rollout count of every level is still exact (no padding, no wasted
rollouts), and the whole sweep is one jitted function, ``vmap``-pable over seeds.

The estimator is the reward-to-go REINFORCE estimate of :mod:`imagination.reinforce` with the
leave-one-out baseline *within each level* (:func:`imagination.reinforce.loo_baseline`), so a level
of ``N`` rollouts is distributed as :func:`imagination.reinforce.make_gradient_sampler` with
``n_rollouts=N`` and ``baseline="loo"``.

To *measure* the variance of such estimates precisely (they are heavy-tailed), :func:`make_pool`
draws one large pool of imagined rollouts, :func:`pool_statistics` estimates the constants ``V0``,
``G`` and ``V_loo`` of :func:`imagination.budget.loo_variance` in independent blocks of it, and
:func:`group_variance` measures, in the same blocks, the variance of the ``N``-rollout estimate with
noisy (optionally repeated and averaged) labels, so that prediction and measurement can be compared
block by block.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .reinforce import (
    _append_final,
    _ascent_step,
    as_optimizer,
    flatten_gradients,
    noise_variance_term,
    noisy_labels,
    reinforce_gradients,
    rewards_to_go,
    step_scores,
)
from .rollout import Trajectory, make_rollout

__all__ = [
    "Pool",
    "PoolStats",
    "make_pool",
    "pool_statistics",
    "group_variance",
    "near_optimal",
    "LevelBatch",
    "make_level_estimator",
    "make_train_levels",
    "PilotStats",
    "make_pilot",
    "BudgetProblem",
    "budget_problem",
]

Array = jax.Array


class LevelBatch(NamedTuple):
    """One flat batch of rollouts for all levels, with per-rollout and per-level estimates.

    Attributes
    ----------
    trajectory:
        The imagined :class:`~imagination.rollout.Trajectory` of all ``sum(sizes)`` rollouts,
        level 0's first.
    labels:
        ``(sum(sizes), H)`` the (noisy) reward labels the estimates used.
    per_rollout:
        Pytree shaped like one level's policy parameters with a leading ``sum(sizes)`` axis:
        ``sum_t psi_t (G_t - b_t)`` with the leave-one-out baseline of the rollout's level.
    grads:
        Pytree with a leading ``len(sizes)`` axis: each level's average of its rollouts' estimates.
    """

    trajectory: Trajectory
    labels: Array
    per_rollout: Any
    grads: Any


def _sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(int(n) for n in sizes)
    except (TypeError, ValueError):
        raise ValueError(
            f"sizes must be a sequence of integers >= 2, got {sizes!r}"
        ) from None
    if not out or any(n < 2 or n != s for n, s in zip(out, sizes)):
        raise ValueError(
            f"sizes must be a non-empty sequence of integers >= 2, got {sizes!r}"
        )
    return out


def make_level_estimator(
    dynamics: Callable,
    reward: Callable,
    policy: Callable,
    log_prob: Callable,
    sample_start: Callable[[Array, int], Array],
    *,
    horizon: int,
    gamma: float,
    sizes: Sequence[int],
) -> Callable[..., LevelBatch]:
    """Build a jitted function returning one REINFORCE estimate per level.

    Parameters
    ----------
    dynamics, reward, policy:
        Step functions of :mod:`imagination.rollout`; ``reward`` gives the clean labels.
    log_prob:
        ``log_prob(policy_params, s, a) -> scalar`` of ``policy``.
    sample_start:
        ``sample_start(key, n) -> (n, state_dim)``.
    horizon, gamma:
        Imagined horizon and discount.
    sizes:
        Rollouts per level, each ``>= 2`` (the leave-one-out baseline needs another rollout).

    Returns
    -------
    estimate(dyn_params, rew_params, pol_params, key, sigmas) -> LevelBatch
        ``pol_params`` has a leading axis of length ``len(sizes)`` (one parameter set per level) and
        ``sigmas`` shape ``(len(sizes),)``. Level ``l``'s estimate is
        ``reinforce_gradients(..., baseline="loo")`` on its own rollouts and labels, averaged.
    """
    sizes = _sizes(sizes)
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    gamma = float(gamma)
    n_levels, total = len(sizes), sum(sizes)
    seg = jnp.asarray(np.repeat(np.arange(n_levels), sizes))
    counts = jnp.asarray(sizes, jnp.float32)
    run = make_rollout(dynamics, reward, policy, horizon=horizon, gamma=gamma)

    @jax.jit
    def estimate(
        dyn_params, rew_params, pol_params, key, sigmas
    ) -> LevelBatch:
        k_start, k_roll, k_label = jax.random.split(key, 3)
        starts = sample_start(k_start, total)
        keys = jax.random.split(k_roll, total)
        flat_params = jax.tree_util.tree_map(lambda x: x[seg], pol_params)
        traj = jax.vmap(_single(run), in_axes=(None, None, 0, 0, 0))(
            dyn_params, rew_params, flat_params, starts, keys
        )
        sig = jnp.asarray(sigmas, traj.rewards.dtype)[seg][:, None]
        labels = noisy_labels(k_label, traj.rewards, sigma=sig)
        scores = jax.vmap(
            lambda p, s, a: jax.tree_util.tree_map(
                lambda x: x[0], step_scores(log_prob, p, s[None], a[None])
            )
        )(flat_params, traj.states, traj.actions)
        G = rewards_to_go(labels, gamma)
        level_sum = jax.ops.segment_sum(G, seg, n_levels)  # (L, H)
        base = (level_sum[seg] - G) / (
            counts[seg][:, None] - 1.0
        )  # leave-one-out, per level
        adv = G - base
        per = jax.tree_util.tree_map(
            lambda x: jnp.einsum("bt,bt...->b...", adv.astype(x.dtype), x),
            scores,
        )
        grads = jax.tree_util.tree_map(
            lambda x: (
                jax.ops.segment_sum(x, seg, n_levels)
                / counts.reshape((-1,) + (1,) * (x.ndim - 1))
            ),
            per,
        )
        return LevelBatch(traj, labels, per, grads)

    return estimate


def _single(run):
    """One rollout with its own policy parameters (a batch of one through the engine)."""

    def f(dyn_p, rew_p, pol_p, s0, key):
        traj = run(dyn_p, rew_p, pol_p, s0[None], key)
        return jax.tree_util.tree_map(lambda x: x[0], traj)

    return f


def make_train_levels(
    dynamics: Callable,
    reward: Callable,
    policy: Callable,
    log_prob: Callable,
    sample_start: Callable[[Array, int], Array],
    *,
    horizon: int,
    gamma: float,
    sizes: Sequence[int],
    steps: int,
    optimizer: optax.GradientTransformation | float = 1e-2,
    mask: Any = None,
) -> Callable[..., Any]:
    """Build a jitted REINFORCE training run for all levels at once (``lax.scan`` over updates).

    Every update draws ``sizes[l]`` fresh imagined rollouts for level ``l`` with its current policy,
    labels them with noise ``sigmas[l]``, and takes one optax step of gradient *ascent* with the
    level's leave-one-out estimate (:func:`make_level_estimator`). The levels train independently
    (the optimizer state is per coordinate, e.g. Adam or SGD); they only share the compiled code.

    Parameters
    ----------
    dynamics, reward, policy, log_prob, sample_start, horizon, gamma, sizes:
        As in :func:`make_level_estimator`.
    steps:
        Number of updates.
    optimizer:
        An ``optax.GradientTransformation`` or a learning rate for ``optax.adam``.
    mask:
        Optional pytree of booleans shaped like the policy parameters; ``False`` leaves are frozen.

    Returns
    -------
    train(dyn_params, rew_params, pol_params, key, sigmas) -> params path
        ``pol_params`` is one parameter set (shared start for all levels); the result has leading
        axes ``(steps + 1, len(sizes))``. ``vmap`` it over keys for seeds.
    """
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    opt = as_optimizer(optimizer)
    estimate = make_level_estimator(
        dynamics,
        reward,
        policy,
        log_prob,
        sample_start,
        horizon=horizon,
        gamma=gamma,
        sizes=sizes,
    )
    n_levels = len(_sizes(sizes))

    @jax.jit
    def train(dyn_params, rew_params, pol_params, key, sigmas):
        params = jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(x, (n_levels,) + jnp.shape(x)),
            pol_params,
        )
        state = opt.init(params)

        def update(carry, k):
            p, s = carry
            g = estimate(dyn_params, rew_params, p, k, sigmas).grads
            p_new, s = _ascent_step(opt, g, s, p, mask)
            return (p_new, s), p

        (last, _), path = jax.lax.scan(
            update, (params, state), jax.random.split(key, steps)
        )
        return _append_final(path, last)

    return train


# ----------------------------------------------------------------------------- pilot statistics
class PilotStats(NamedTuple):
    """What a pilot batch says about a policy's REINFORCE estimator.

    Attributes
    ----------
    v0, v0_se:
        Variance (trace of the covariance) of one clean single-rollout estimate, and its standard
        error.
    g, g_se:
        The noise factor ``G = sum_t gamma^(2t) E||Psi_t||^2``
        (:func:`imagination.reinforce.noise_variance_term`), and its standard error.
    mean_grad:
        ``(n_params,)`` the pilot's average gradient (an unbiased estimate of the true gradient, with
        variance ``v0 / n_rollouts``).
    v_loo:
        The leave-one-out term ``V_loo = sum_{t,t'} E[psi_t . psi_t'] Cov(G_t, G_t')
        + sum_{t,t'} E[psi_t D_t'] . E[psi_t' D_t]`` (``D_t = G_t - E G_t``): with the
        leave-one-out baseline an ``N``-rollout estimate has variance
        ``v0 / N + v_loo / (N (N - 1)) + v g / (N - 1)``
        (:func:`imagination.budget.loo_variance`).
    """

    v0: Array
    v0_se: Array
    g: Array
    g_se: Array
    mean_grad: Array
    v_loo: Array | None = None


def make_pilot(
    dynamics: Callable,
    reward: Callable,
    policy: Callable,
    log_prob: Callable,
    sample_start: Callable[[Array, int], Array],
    *,
    horizon: int,
    gamma: float,
    n_rollouts: int,
    select: Callable[[Any], Any] | None = None,
) -> Callable[..., PilotStats]:
    """Build a jitted pilot that estimates ``V0`` and ``G`` for a policy from clean rollouts.

    Parameters
    ----------
    dynamics, reward, policy, log_prob, sample_start, horizon, gamma:
        As in :func:`make_level_estimator`.
    n_rollouts:
        Pilot size (static).
    select:
        Optional function picking the trained part of a parameter pytree (e.g. ``lambda p: p[0]``
        for a Gaussian policy's gain when its ``log_std`` is frozen); ``None`` keeps everything.

    Returns
    -------
    pilot(dyn_params, rew_params, pol_params, key) -> PilotStats
    """
    n = _count("n_rollouts", n_rollouts, 2)
    pick = (lambda t: t) if select is None else select
    run = make_rollout(dynamics, reward, policy, horizon=horizon, gamma=gamma)
    gamma = float(gamma)

    @jax.jit
    def pilot(dyn_params, rew_params, pol_params, key) -> PilotStats:
        k_start, k_roll = jax.random.split(key)
        traj = run(
            dyn_params,
            rew_params,
            pol_params,
            sample_start(k_start, n),
            k_roll,
        )
        grads = flatten_gradients(
            pick(
                reinforce_gradients(
                    log_prob,
                    pol_params,
                    traj.states,
                    traj.actions,
                    traj.rewards,
                    gamma,
                    baseline="loo",
                )
            )
        )
        mean = jnp.mean(grads, axis=0)
        dev2 = jnp.sum((grads - mean) ** 2, axis=1) * n / (n - 1)
        scores = pick(
            step_scores(log_prob, pol_params, traj.states, traj.actions)
        )
        per_g = jax.vmap(
            lambda sc: noise_variance_term(
                jax.tree_util.tree_map(lambda x: x[None], sc), gamma
            )
        )(scores)
        # the leave-one-out term: scores (n, H, d), centred rewards-to-go
        s = _flat_scores(scores, n)
        G = rewards_to_go(traj.rewards, gamma)
        D = G - jnp.mean(G, axis=0)
        M = jnp.einsum("itd,iud->tu", s, s) / n  # E[psi_t . psi_u]
        cov = jnp.einsum("it,iu->tu", D, D) / (n - 1)  # Cov(G_t, G_u)
        U = jnp.einsum("itd,iu->tud", s, D) / n  # E[psi_t D_u]
        v_loo = jnp.sum(M * cov) + jnp.einsum("tud,utd->", U, U)
        return PilotStats(
            jnp.mean(dev2),
            jnp.std(dev2) / jnp.sqrt(n),
            jnp.mean(per_g),
            jnp.std(per_g) / jnp.sqrt(n),
            mean,
            v_loo,
        )

    return pilot


# ----------------------------------------------------------------------------- rollout pools
class Pool(NamedTuple):
    """A pool of imagined rollouts, kept as what the estimators need.

    Attributes
    ----------
    scores:
        ``(n, H, d)`` per-step scores ``psi_t`` of the selected parameters,
        flattened.
    rewards:
        ``(n, H)`` clean reward labels.
    """

    scores: Array
    rewards: Array


class PoolStats(NamedTuple):
    """Per-block estimates of the constants of the variance formula.

    Each attribute has shape ``(blocks,)``; block ``b`` is computed from its
    own rollouts only, so the blocks are independent replicates.

    Attributes
    ----------
    v0:
        Variance of one clean rollout's estimate (leave-one-out baseline over
        the block, so the exact baseline ``E G_t`` up to ``O(1/n)``).
    g:
        The noise factor ``G = sum_t gamma^(2t) E||Psi_t||^2``.
    v_loo:
        The leave-one-out term of :class:`PilotStats`.
    """

    v0: np.ndarray
    g: np.ndarray
    v_loo: np.ndarray


def make_pool(
    dynamics: Callable,
    reward: Callable,
    policy: Callable,
    log_prob: Callable,
    sample_start: Callable[[Array, int], Array],
    *,
    horizon: int,
    gamma: float,
    n_rollouts: int,
    select: Callable[[Any], Any] | None = None,
) -> Callable[..., Pool]:
    """Build a jitted function drawing a :class:`Pool` of imagined rollouts.

    Parameters
    ----------
    dynamics, reward, policy, log_prob, sample_start, horizon, gamma:
        As in :func:`make_level_estimator`.
    n_rollouts:
        Pool size (static, ``>= 2``).
    select:
        As in :func:`make_pilot`.

    Returns
    -------
    pool(dyn_params, rew_params, pol_params, key) -> Pool
    """
    n = _count("n_rollouts", n_rollouts, 2)
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    pick = (lambda t: t) if select is None else select
    run = make_rollout(
        dynamics, reward, policy, horizon=horizon, gamma=float(gamma)
    )

    @jax.jit
    def pool(dyn_params, rew_params, pol_params, key) -> Pool:
        k_start, k_roll = jax.random.split(key)
        traj = run(
            dyn_params,
            rew_params,
            pol_params,
            sample_start(k_start, n),
            k_roll,
        )
        sc = pick(step_scores(log_prob, pol_params, traj.states, traj.actions))
        return Pool(_flat_scores(sc, n), traj.rewards)

    return pool


def _count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _flat_scores(scores: Any, n: int) -> Array:
    """Per-step score pytree with axes ``(n, H, ...)`` as one ``(n, H, d)``."""
    return jnp.concatenate(
        [
            x.reshape(n, x.shape[1], -1)
            for x in jax.tree_util.tree_leaves(scores)
        ],
        axis=-1,
    )


def _loo_estimates(s: Array, labels: Array, gamma: float) -> Array:
    """Leave-one-out REINFORCE estimates of groups: ``s (k, N, H, d)``,
    ``labels (k, N, H)`` -> ``(k, d)`` (the average over each group)."""
    G = rewards_to_go(labels.reshape(-1, labels.shape[-1]), gamma)
    G = G.reshape(labels.shape)
    n = labels.shape[1]
    base = (jnp.sum(G, axis=1, keepdims=True) - G) / (n - 1)
    return jnp.einsum("knt,kntd->kd", G - base, s) / n


def _block_stats(s: Array, r: Array, gamma: float):
    """``(v0, g, v_loo)`` of one block: ``s (n, H, d)``, ``r (n, H)``."""
    n, H = r.shape
    est = _loo_estimates(s[None], r[None], gamma)  # the mean
    G = rewards_to_go(r, gamma)
    D = G - jnp.mean(G, axis=0)
    per = jnp.einsum("nt,ntd->nd", G - (jnp.sum(G, 0) - G) / (n - 1), s)
    v0 = jnp.sum((per - est) ** 2) / (n - 1)
    disc2 = gamma ** (2 * jnp.arange(H, dtype=r.dtype))
    g = jnp.mean(jnp.sum(jnp.cumsum(s, axis=1) ** 2, axis=-1) @ disc2)
    M = jnp.einsum("itd,iud->tu", s, s) / n  # E[psi_t . psi_u]
    cov = jnp.einsum("it,iu->tu", D, D) / (n - 1)  # Cov(G_t, G_u)
    U = jnp.einsum("itd,iu->tud", s, D) / n  # E[psi_t D_u]
    v_loo = jnp.sum(M * cov) + jnp.einsum("tud,utd->", U, U)
    return v0, g, v_loo


def _blocks(pool: Pool, blocks: int) -> tuple[Array, Array, int]:
    if not isinstance(pool, Pool):
        raise ValueError(f"pool must be a Pool, got {type(pool)!r}")
    b = _count("blocks", blocks, 1)
    n = pool.rewards.shape[0] // b
    if n < 2:
        raise ValueError(
            f"blocks = {b} leaves fewer than 2 rollouts per block"
        )
    s = pool.scores[: b * n].reshape((b, n) + pool.scores.shape[1:])
    r = pool.rewards[: b * n].reshape((b, n) + pool.rewards.shape[1:])
    return s, r, n


def pool_statistics(pool: Pool, gamma: float, blocks: int) -> PoolStats:
    """Estimate ``V0``, ``G`` and ``V_loo`` in each of ``blocks`` disjoint blocks.

    Parameters
    ----------
    pool:
        From :func:`make_pool`.
    gamma:
        The discount the pool was drawn with.
    blocks:
        Number of equal blocks (the remainder of the pool is dropped).

    Returns
    -------
    PoolStats
        float64 arrays of shape ``(blocks,)``.
    """
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    s, r, _ = _blocks(pool, blocks)
    out = jax.jit(
        jax.vmap(functools.partial(_block_stats, gamma=float(gamma)))
    )(s, r)
    return PoolStats(*(np.asarray(x, np.float64) for x in out))


def group_variance(
    pool: Pool,
    gamma: float,
    key: Array,
    *,
    size: int,
    sigma: float,
    blocks: int,
    repeats: int = 1,
    draws: int = 8,
    noise: str = "normal",
) -> np.ndarray:
    """Measured variance of the ``size``-rollout leave-one-out estimate, per block.

    Each block is cut into disjoint groups of ``size`` rollouts; each group
    is one ``size``-rollout estimate. Every imagined step is labelled with
    its clean reward plus ``sigma`` times the average of ``repeats``
    independent noise draws. By the law of total variance the estimate's
    variance (trace of the covariance) is the variance of the clean group
    estimates across groups plus the mean squared effect of the label noise
    (labels enter linearly, so the noise's effect is the estimate computed
    from the noise alone); the second term is averaged over ``draws``
    independent labellings of every group.

    Parameters
    ----------
    pool:
        From :func:`make_pool`.
    gamma:
        The pool's discount.
    key:
        PRNG key for the label noise.
    size:
        Rollouts per estimate, ``>= 2``.
    sigma:
        Standard deviation of one label's noise, ``>= 0``.
    blocks:
        As in :func:`pool_statistics`; each block needs ``>= 2`` groups.
    repeats:
        Labels averaged per reward (``>= 1``).
    draws:
        Independent labellings per group (``>= 1``).
    noise:
        ``"normal"``: each label's noise is standard normal; ``"rademacher"``:
        each label is off by ``+sigma`` or ``-sigma`` with equal chance (the
        ``repeats`` labels are drawn as the bits of one random 32-bit word,
        so ``repeats <= 32``).

    Returns
    -------
    numpy.ndarray
        ``(blocks,)`` float64: one unbiased variance estimate per block.
    """
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    size = _count("size", size, 2)
    repeats = _count("repeats", repeats, 1)
    draws = _count("draws", draws, 1)
    if noise not in ("normal", "rademacher"):
        raise ValueError(
            f"noise must be 'normal' or 'rademacher', got {noise!r}"
        )
    if noise == "rademacher" and repeats > 32:
        raise ValueError(
            f"repeats must be <= 32 for Rademacher noise, got {repeats}"
        )
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    s, r, n = _blocks(pool, blocks)
    k = n // size
    if k < 2:
        raise ValueError(
            f"size = {size} leaves fewer than 2 groups in a block of {n}"
        )
    return np.asarray(
        _group_variance(
            s,
            r,
            key,
            jnp.float32(sigma),
            float(gamma),
            size,
            k,
            repeats,
            draws,
            noise,
        ),
        np.float64,
    )


def _average_noise(key, shape, repeats, noise):
    """The average of ``repeats`` independent unit-variance draws per entry."""
    if noise == "normal":
        return jnp.mean(jax.random.normal(key, shape + (repeats,)), axis=-1)
    bits = jax.random.bits(key, shape, dtype=jnp.uint32)
    mask = jnp.uint32((1 << repeats) - 1) if repeats < 32 else ~jnp.uint32(0)
    ups = jax.lax.population_count(bits & mask).astype(jnp.float32)
    return (2.0 * ups - repeats) / repeats


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7, 8, 9))
def _group_variance(s, r, key, sigma, gamma, size, k, repeats, draws, noise):
    b, H, d = s.shape[0], s.shape[2], s.shape[3]
    sg = s[:, : k * size].reshape(b * k, size, H, d)
    rg = r[:, : k * size].reshape(b * k, size, H)
    clean = _loo_estimates(sg, rg, gamma).reshape(b, k, d)
    var_clean = jnp.sum(jnp.var(clean, axis=1, ddof=1), axis=-1)

    def noise_sq(kk):
        xi = _average_noise(kk, rg.shape, repeats, noise)
        eta = _loo_estimates(sg, sigma * xi.astype(rg.dtype), gamma)
        return jnp.mean(jnp.sum(eta**2, -1).reshape(b, k), axis=1)

    noise = jnp.mean(jax.lax.map(noise_sq, jax.random.split(key, draws)), 0)
    return var_clean + noise


def near_optimal(
    samples: Any, lower_is_better: bool = True, z: float = 2.0
) -> tuple[int, np.ndarray]:
    """The best level and the levels not significantly worse than it.

    Parameters
    ----------
    samples:
        ``(replicates, levels)``: paired replicates (row ``i`` of every level
        comes from the same seed, block or rollouts).
    lower_is_better:
        ``True`` for errors, ``False`` for returns.
    z:
        A level is near-optimal when its mean is within ``z`` standard errors
        of the paired difference of the best level's mean.

    Returns
    -------
    (best, mask)
        The index of the best mean and a boolean mask of near-optimal levels
        (the best included).
    """
    x = np.asarray(samples, np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(
            f"samples must have shape (replicates >= 2, levels), got {x.shape}"
        )
    if not (math.isfinite(z) and z >= 0):
        raise ValueError(f"z must be a finite number >= 0, got {z!r}")
    s = x if lower_is_better else -x
    best = int(np.argmin(s.mean(0)))
    diff = s - s[:, [best]]
    se = diff.std(0, ddof=1) / np.sqrt(s.shape[0])
    return best, diff.mean(0) <= z * np.maximum(se, 1e-300)


class BudgetProblem(NamedTuple):
    """The imagined linear-quadratic problem of chapter 7's experiments.

    Attributes
    ----------
    env:
        The true world: a discretised double integrator
        (:func:`imagination.envs.linear_system`).
    model:
        Weights ``W`` of the imagined dynamics
        (:func:`imagination.models.linear_model`), fitted to transitions
        bought from ``env`` with noisy next-state measurements.
    model_error:
        Largest absolute error of a coefficient of ``model``.
    imagined:
        Keyword arguments ``dynamics, reward, policy, log_prob,
        sample_start, horizon, gamma`` for :func:`make_pool`,
        :func:`make_pilot` and :func:`make_train_levels`.
    policy0:
        Initial parameters ``(K, log sigma_pi)`` of the Gaussian linear
        policy, with ``K = 0``.
    """

    env: Any
    model: Array
    model_error: float
    imagined: dict
    policy0: tuple


def budget_problem(
    key: Array,
    *,
    n_transitions: int = 200,
    measurement_noise: float = 0.05,
    horizon: int = 20,
    gamma: float = 0.95,
    policy_std: float = 0.5,
) -> BudgetProblem:
    """Build chapter 7's imagined problem (the same one on every page).

    The world is ``s' = A s + e a`` with ``A = [[1, 0.2], [0, 1]]``,
    ``e = (0.02, 0.2)`` and reward ``-(s's + 0.1 a^2)``; the imagined
    dynamics is a linear model fitted to ``n_transitions`` transitions whose
    next states carry Gaussian measurement noise of standard deviation
    ``measurement_noise``; the policy is ``a ~ N(K s, policy_std^2)``.

    Parameters
    ----------
    key:
        PRNG key for the bought transitions and their measurement noise.
    n_transitions:
        Transitions bought to fit the model (``>= 3``).
    measurement_noise:
        Standard deviation of the next-state measurement noise (``>= 0``).
    horizon, gamma:
        Rollout horizon (``>= 1``) and discount in ``[0, 1]``.
    policy_std:
        Standard deviation ``sigma_pi > 0`` of the policy.

    Returns
    -------
    BudgetProblem
    """
    from . import data, envs, models, policies

    n = _count("n_transitions", n_transitions, 3)
    horizon = _count("horizon", horizon, 1)
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if not (math.isfinite(measurement_noise) and measurement_noise >= 0):
        raise ValueError(
            "measurement_noise must be finite and >= 0, "
            f"got {measurement_noise!r}"
        )
    if not (math.isfinite(policy_std) and policy_std > 0):
        raise ValueError(f"policy_std must be > 0, got {policy_std!r}")
    env = envs.linear_system(
        [[1.0, 0.2], [0.0, 1.0]], [[0.02], [0.2]], R=[[0.1]], start_scale=1.0
    )
    k_data, k_meas = jax.random.split(key)
    bought = data.sample_transitions(env, k_data, n, action_scale=2.0)
    noise = measurement_noise * jax.random.normal(
        k_meas, bought.next_states.shape
    )
    W = models.fit_linear_model(
        bought.states, bought.actions, bought.next_states + noise
    )
    W_true = jnp.concatenate(
        [env.params.A, env.params.B, jnp.zeros((2, 1))], axis=1
    )
    imagined = dict(
        dynamics=models.linear_model,
        reward=env.reward,
        policy=policies.gaussian_linear,
        log_prob=policies.gaussian_linear_log_prob,
        sample_start=functools.partial(env.sample_start, env.params),
        horizon=horizon,
        gamma=float(gamma),
    )
    pol0 = (jnp.zeros((1, 2)), jnp.log(policy_std) * jnp.ones(1))
    return BudgetProblem(
        env, W, float(jnp.max(jnp.abs(W - W_true))), imagined, pol0
    )
