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
"""

from __future__ import annotations

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
    "LevelBatch",
    "make_level_estimator",
    "make_train_levels",
    "PilotStats",
    "make_pilot",
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
    """

    v0: Array
    v0_se: Array
    g: Array
    g_se: Array
    mean_grad: Array


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
    if (
        isinstance(n_rollouts, bool)
        or int(n_rollouts) != n_rollouts
        or n_rollouts < 2
    ):
        raise ValueError(
            f"n_rollouts must be an integer >= 2, got {n_rollouts!r}"
        )
    n = int(n_rollouts)
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
        return PilotStats(
            jnp.mean(dev2),
            jnp.std(dev2) / jnp.sqrt(n),
            jnp.mean(per_g),
            jnp.std(per_g) / jnp.sqrt(n),
            mean,
        )

    return pilot
