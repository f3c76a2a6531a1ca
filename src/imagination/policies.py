"""Policies with the engine's signature ``policy(params, s, key) -> a``.

Deterministic policies ignore the key. Stochastic (Gaussian) policies draw their noise from it and
expose ``log_prob`` for score-function (REINFORCE) estimators.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .models import mlp_apply

__all__ = ["linear", "mlp", "gaussian_linear", "gaussian_linear_log_prob"]

Array = jax.Array


def linear(K: Array, s: Array, key: Array | None = None) -> Array:
    """Linear state feedback ``a = K s``; ``K`` has shape ``(action_dim, state_dim)``."""
    return K @ s


def mlp(params, s: Array, key: Array | None = None) -> Array:
    """A deterministic MLP policy ``a = mlp(s)`` (parameters from :func:`imagination.models.mlp_init`)."""
    return mlp_apply(params, s)


def gaussian_linear(
    params: tuple[Array, Array], s: Array, key: Array
) -> Array:
    """Gaussian policy ``a ~ N(K s, diag(exp(log_std))^2)``; ``params = (K, log_std)``."""
    K, log_std = params
    mean = K @ s
    return mean + jnp.exp(log_std) * jax.random.normal(
        key, mean.shape, mean.dtype
    )


def gaussian_linear_log_prob(
    params: tuple[Array, Array], s: Array, a: Array
) -> Array:
    """``log pi(a | s)`` of :func:`gaussian_linear`."""
    K, log_std = params
    z = (a - K @ s) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi))
