"""Data sets bought from a true environment: transitions for dynamics models, labels for rewards.

The two kinds of data of the paper (NOTES, setting): transitions ``(s, a, s')`` train the learned
dynamics, reward labels ``(s, a, r)`` train the learned reward. Both are drawn here with states
from the environment's start distribution (or a given box) and uniformly random actions, in one
vectorised call.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .envs import Env

__all__ = ["Transitions", "sample_transitions"]

Array = jax.Array


class Transitions(NamedTuple):
    """``n`` samples ``(s, a, s', r)`` with ``s' = f(s, a)`` and ``r = r(s, a)``."""

    states: Array
    actions: Array
    next_states: Array
    rewards: Array


def sample_transitions(
    env: Env,
    key: Array,
    n: int,
    *,
    action_scale: float = 2.0,
    state_low: Array | None = None,
    state_high: Array | None = None,
) -> Transitions:
    """Draw ``n`` transitions and reward labels from the true environment.

    Parameters
    ----------
    env:
        A true environment from :mod:`imagination.envs`.
    key:
        PRNG key.
    n:
        Number of samples.
    action_scale:
        Actions are uniform on ``[-action_scale, action_scale]^da``.
    state_low, state_high:
        If both are given, states are uniform on that box; otherwise they come from
        ``env.sample_start``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if action_scale <= 0:
        raise ValueError(
            f"action_scale must be positive, got {action_scale!r}"
        )
    if (state_low is None) != (state_high is None):
        raise ValueError("state_low and state_high must be given together")
    k_s, k_a = jax.random.split(key)
    if state_low is None:
        states = env.sample_start(env.params, k_s, int(n))
    else:
        lo = jnp.asarray(state_low, jnp.float32)
        hi = jnp.asarray(state_high, jnp.float32)
        states = jax.random.uniform(
            k_s, (int(n), env.state_dim), jnp.float32, lo, hi
        )
    actions = jax.random.uniform(
        k_a, (int(n), env.action_dim), jnp.float32, -action_scale, action_scale
    )
    next_states = jax.vmap(env.dynamics, in_axes=(None, 0, 0))(
        env.params, states, actions
    )
    rewards = jax.vmap(env.reward, in_axes=(None, 0, 0))(
        env.params, states, actions
    )
    return Transitions(states, actions, next_states, rewards)
