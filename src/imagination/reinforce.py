"""REINFORCE (score-function) gradient estimators on imagined trajectories, with noisy labels.

Notation of ``../shared/paper/NOTES.md`` (result 5): the per-step score is
``psi_t = grad_theta log pi(a_t | s_t)``, the cumulative score ``Psi_t = sum_{k<=t} psi_k``, and the
single-rollout estimator

``g = sum_t gamma^t r_t Psi_t = sum_t psi_t G_t``,  ``G_t = sum_{k>=t} gamma^k r_k``,

the two forms being the same sum regrouped (the right one is the *reward-to-go* form). A baseline
``b_t`` that does not depend on ``a_t`` may be subtracted from ``G_t`` without bias.

Reward labels are corrupted by :func:`noisy_labels`: ``r~_t = r_t + bias(s_t) + sigma scale(s_t) xi_t``
with ``xi`` zero-mean, unit-variance noise (Gaussian by default). Everything is a pure function of
arrays, ``vmap``-ped over rollouts and jittable.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

__all__ = [
    "step_scores",
    "cumulative_scores",
    "rewards_to_go",
    "reinforce_gradients",
    "noisy_labels",
    "noise_variance_term",
    "flatten_gradients",
]

Array = jax.Array
LogProb = Callable[[Any, Array, Array], Array]


def step_scores(log_prob: LogProb, policy_params: Any, states: Array, actions: Array) -> Any:
    """Per-step scores ``psi_t = grad_theta log pi(a_t | s_t)``.

    Parameters
    ----------
    log_prob:
        ``log_prob(policy_params, s, a) -> scalar``.
    states:
        ``(batch, H, ds)`` or ``(batch, H + 1, ds)`` (a :class:`~imagination.rollout.Trajectory`'s
        states; the final state is dropped).
    actions:
        ``(batch, H, da)``.

    Returns
    -------
    A pytree shaped like ``policy_params`` with two leading axes ``(batch, H)``.
    """
    H = actions.shape[1]
    states = states[:, :H]
    grad = jax.grad(log_prob)
    return jax.vmap(jax.vmap(grad, in_axes=(None, 0, 0)), in_axes=(None, 0, 0))(
        policy_params, states, actions
    )


def cumulative_scores(scores: Any) -> Any:
    """``Psi_t = sum_{k <= t} psi_k`` along the time axis (axis 1)."""
    return jax.tree_util.tree_map(lambda x: jnp.cumsum(x, axis=1), scores)


def rewards_to_go(rewards: Array, gamma: float) -> Array:
    """``G_t = sum_{k >= t} gamma^k r_k`` (discounted from time 0) for ``rewards`` of shape ``(batch, H)``."""
    H = rewards.shape[-1]
    disc = rewards * gamma ** jnp.arange(H, dtype=rewards.dtype)
    return jnp.flip(jnp.cumsum(jnp.flip(disc, -1), -1), -1)


def reinforce_gradients(
    log_prob: LogProb,
    policy_params: Any,
    states: Array,
    actions: Array,
    rewards: Array,
    gamma: float,
    baseline: Array | float | None = None,
) -> Any:
    """One REINFORCE gradient estimate per rollout, in reward-to-go form.

    ``g_i = sum_t psi_{i,t} (G_{i,t} - b_t)``. Average over the batch axis for the usual
    ``N``-rollout estimator; keep the per-rollout estimates to measure its variance.

    Parameters
    ----------
    log_prob, policy_params, states, actions:
        As in :func:`step_scores`.
    rewards:
        ``(batch, H)`` reward labels (true, learned, or noisy).
    gamma:
        Discount in ``[0, 1]``.
    baseline:
        ``None``, a scalar, or an array broadcastable to ``(batch, H)`` subtracted from ``G_t``;
        it must not depend on the action it multiplies.

    Returns
    -------
    A pytree shaped like ``policy_params`` with a leading ``batch`` axis.
    """
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if rewards.ndim != 2 or rewards.shape != actions.shape[:2]:
        raise ValueError(
            f"rewards must have shape (batch, H) = {actions.shape[:2]}, got {rewards.shape}"
        )
    scores = step_scores(log_prob, policy_params, states, actions)
    G = rewards_to_go(rewards, gamma)
    if baseline is not None:
        G = G - baseline
    return jax.tree_util.tree_map(
        lambda x: jnp.einsum("bt,bt...->b...", G.astype(x.dtype), x), scores
    )


def noisy_labels(
    key: Array,
    rewards: Array,
    states: Array | None = None,
    *,
    sigma: float = 0.0,
    bias: float | Callable[[Array], Array] = 0.0,
    scale: Callable[[Array], Array] | None = None,
    sampler: Callable[[Array, tuple[int, ...]], Array] | None = None,
) -> Array:
    """Corrupt reward labels: ``r~ = r + bias(s) + sigma * scale(s) * xi``.

    Parameters
    ----------
    key:
        PRNG key for the noise ``xi``.
    rewards:
        ``(batch, H)`` clean labels.
    states:
        ``(batch, H[+1], ds)``; needed only when ``bias`` or ``scale`` is a function of the state.
    sigma:
        Noise standard deviation (non-negative).
    bias:
        A constant offset or a function ``bias(s) -> scalar``; zero gives zero-mean noise.
    scale:
        Optional state-dependent noise scale ``scale(s) -> scalar`` (heteroscedastic noise).
    sampler:
        ``sampler(key, shape)`` drawing zero-mean, unit-variance noise; standard normal by default.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be non-negative, got {sigma!r}")
    draw = jax.random.normal if sampler is None else sampler
    xi = draw(key, rewards.shape).astype(rewards.dtype)
    H = rewards.shape[1]

    def per_state(fn):
        if states is None:
            raise ValueError("states must be given when bias or scale is a function of the state")
        return jax.vmap(jax.vmap(fn))(states[:, :H]).astype(rewards.dtype)

    b = per_state(bias) if callable(bias) else jnp.asarray(bias, rewards.dtype)
    sc = per_state(scale) if scale is not None else jnp.ones((), rewards.dtype)
    return rewards + b + sigma * sc * xi


def flatten_gradients(grads: Any) -> Array:
    """Flatten a batched gradient pytree to an array ``(batch, n_params)``."""
    leaves = jax.tree_util.tree_leaves(grads)
    return jnp.concatenate([x.reshape(x.shape[0], -1) for x in leaves], axis=1)


def noise_variance_term(scores: Any, gamma: float, sigma: float = 1.0) -> Array:
    """Estimate ``sigma^2 sum_t gamma^(2t) E||Psi_t||^2`` from sampled per-step scores.

    This is the trace of the covariance that zero-mean label noise of variance ``sigma^2`` adds to
    one rollout's estimate (NOTES result 5); an ``N``-rollout average adds it divided by ``N``.

    Parameters
    ----------
    scores:
        Per-step scores from :func:`step_scores` (leading axes ``(batch, H)``).
    gamma:
        Discount in ``[0, 1]``.
    sigma:
        Noise standard deviation; ``sigma = 1`` returns the factor ``G`` of the notes.
    """
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if sigma < 0:
        raise ValueError(f"sigma must be non-negative, got {sigma!r}")
    Psi = cumulative_scores(scores)
    sq = sum(
        jnp.sum(x.reshape(x.shape[0], x.shape[1], -1) ** 2, axis=-1)
        for x in jax.tree_util.tree_leaves(Psi)
    )  # (batch, H)
    H = sq.shape[1]
    disc2 = gamma ** (2 * jnp.arange(H, dtype=sq.dtype))
    return sigma**2 * jnp.mean(sq @ disc2)
