"""The imagined-rollout engine.

An imagined rollout runs a policy through a *dynamics* function and scores it with a *reward*
function. The engine does not care whether those are the true world (:mod:`imagination.envs`) or
learned models (:mod:`imagination.models`): every step function shares one signature,

* ``dynamics(params, s, a) -> s_next``  (state ``(ds,)``, action ``(da,)``),
* ``reward(params, s, a) -> r``          (a scalar),
* ``policy(params, s, key) -> a``        (deterministic policies ignore ``key``),

so swapping true for learned dynamics or reward is one argument, which is exactly what the error
attribution of the later chapters needs.

Implementation: one fused step (policy, reward, dynamics) scanned over time with
:func:`jax.lax.scan`, :func:`jax.vmap` over the batch, :func:`jax.jit` around the whole. Each
rollout gets its own PRNG key (split from the caller's key), so results are reproducible by seed and
identical whether the batch runs on one device or is sharded over several.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "Trajectory",
    "rollout",
    "make_rollout",
    "discounted_returns",
    "shard_batch",
]

Array = jax.Array
Params = Any
StepFn = Callable[[Params, Array, Array], Array]
PolicyFn = Callable[[Params, Array, Array], Array]


class Trajectory(NamedTuple):
    """A batch of imagined trajectories.

    Attributes
    ----------
    states:
        ``(batch, horizon + 1, state_dim)``: ``s_0, ..., s_H``.
    actions:
        ``(batch, horizon, action_dim)``: ``a_t = policy(s_t)``.
    rewards:
        ``(batch, horizon)``: ``r_t = reward(s_t, a_t)``.
    returns:
        ``(batch,)``: the discounted return ``sum_t gamma**t r_t``.
    """

    states: Array
    actions: Array
    rewards: Array
    returns: Array


def discounted_returns(rewards: Array, gamma: float) -> Array:
    """Discounted sum ``sum_t gamma**t r_t`` over the last axis of ``rewards``."""
    horizon = rewards.shape[-1]
    discounts = gamma ** jnp.arange(horizon, dtype=rewards.dtype)
    return rewards @ discounts


def _single_rollout(
    dynamics: StepFn,
    reward: StepFn,
    policy: PolicyFn,
    horizon: int,
    gamma: float,
    params: tuple[Params, Params, Params],
    s0: Array,
    key: Array,
) -> Trajectory:
    dyn_p, rew_p, pol_p = params
    gamma = jnp.asarray(gamma, s0.dtype)

    def step(carry, key_t):
        s, ret, disc = carry
        a = policy(pol_p, s, key_t)
        r = reward(rew_p, s, a)
        s_next = dynamics(dyn_p, s, a)
        return (s_next, ret + disc * r, disc * gamma), (s, a, r)

    keys = jax.random.split(key, horizon)
    zero = jnp.zeros((), s0.dtype)
    (s_last, ret, _), (states, actions, rewards) = jax.lax.scan(
        step, (s0, zero, jnp.ones((), s0.dtype)), keys
    )
    states = jnp.concatenate([states, s_last[None]], axis=0)
    return Trajectory(states, actions, rewards, ret)


def _check(horizon: int, gamma: float) -> None:
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(
            f"horizon must be a positive integer, got {horizon!r}"
        )
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")


def _starts_and_keys(start_states: Array, key: Array) -> tuple[Array, Array]:
    """The ``(batch, state_dim)`` start states and one PRNG key per rollout."""
    start_states = jnp.asarray(start_states)
    if start_states.ndim != 2:
        raise ValueError(
            f"start_states must have shape (batch, state_dim), got {start_states.shape}"
        )
    return start_states, jax.random.split(key, start_states.shape[0])


def _batched(
    single: Callable[..., Trajectory], params, start_states, keys
) -> Trajectory:
    return jax.vmap(single, in_axes=(None, 0, 0))(params, start_states, keys)


def make_rollout(
    dynamics: StepFn,
    reward: StepFn,
    policy: PolicyFn,
    *,
    horizon: int,
    gamma: float = 1.0,
) -> Callable[[Params, Params, Params, Array, Array], Trajectory]:
    """Build a jitted batch-rollout function for fixed step functions.

    Parameters
    ----------
    dynamics, reward, policy:
        Step functions with the signatures in the module docstring.
    horizon:
        Number of steps ``H``.
    gamma:
        Discount in ``[0, 1]``.

    Returns
    -------
    run(dynamics_params, reward_params, policy_params, start_states, key) -> Trajectory
        A pure, jitted function; ``start_states`` has shape ``(batch, state_dim)``. It can be
        ``vmap``-ped over any of the parameter arguments (ensembles, seeds) and differentiated with
        respect to them (the reparameterized gradient through a learned model).
    """
    _check(horizon, gamma)
    single = partial(
        _single_rollout, dynamics, reward, policy, int(horizon), float(gamma)
    )

    @jax.jit
    def run(dynamics_params, reward_params, policy_params, start_states, key):
        start_states, keys = _starts_and_keys(start_states, key)
        return _batched(
            single,
            (dynamics_params, reward_params, policy_params),
            start_states,
            keys,
        )

    return run


@partial(jax.jit, static_argnames=("dynamics", "reward", "policy", "horizon"))
def _rollout_jit(
    dynamics, reward, policy, horizon, gamma, params, start_states, keys
):
    # gamma is traced, not static: sweeping the discount reuses one compiled rollout.
    return _batched(
        partial(_single_rollout, dynamics, reward, policy, horizon, gamma),
        params,
        start_states,
        keys,
    )


def rollout(
    dynamics: StepFn,
    reward: StepFn,
    policy: PolicyFn,
    params: tuple[Params, Params, Params],
    start_states: Array,
    key: Array,
    *,
    horizon: int,
    gamma: float = 1.0,
    shard: bool = False,
) -> Trajectory:
    """Roll a batch of trajectories through ``dynamics``, scored by ``reward``.

    Parameters
    ----------
    dynamics, reward, policy:
        Step functions (module docstring). They are static arguments: pass the same function
        objects (module-level functions, not fresh lambdas) to reuse the compiled code.
    params:
        ``(dynamics_params, reward_params, policy_params)``, any pytrees.
    start_states:
        ``(batch, state_dim)``.
    key:
        A PRNG key; rollout ``i`` uses the ``i``-th key of ``jax.random.split(key, batch)``.
    horizon, gamma:
        Number of steps (static: a new horizon compiles a new rollout) and discount (traced: a
        sweep over discounts reuses one compiled rollout).
    shard:
        Split the batch across all ``jax.devices()`` (see :func:`shard_batch`). Results are the
        same as on one device.

    Examples
    --------
    >>> from imagination import envs, policies
    >>> env = envs.pendulum()
    >>> s0 = env.sample_start(env.params, jax.random.key(0), 4)
    >>> traj = rollout(env.dynamics, env.reward, policies.linear,
    ...                (env.params, env.params, jnp.zeros((1, 2))), s0, jax.random.key(1), horizon=10)
    >>> traj.states.shape
    (4, 11, 2)
    """
    _check(horizon, gamma)
    start_states, keys = _starts_and_keys(start_states, key)
    if shard:
        start_states, keys = shard_batch(start_states, keys)
    return _rollout_jit(
        dynamics,
        reward,
        policy,
        int(horizon),
        jnp.asarray(gamma, start_states.dtype),
        params,
        start_states,
        keys,
    )


def shard_batch(*arrays: Array) -> tuple[Array, ...]:
    """Place arrays on all devices, split along their first (batch) axis.

    Uses a one-axis :class:`jax.sharding.Mesh` named ``"batch"`` and a
    :class:`~jax.sharding.NamedSharding`; jitted code that consumes the arrays then runs in
    parallel on every device with no change to the calling code. The batch size must be a
    multiple of the device count (:func:`imagination.device.mc_size` rounds sizes accordingly).
    """
    devices = np.array(jax.devices())
    n = len(devices)
    for x in arrays:
        if x.shape[0] % n:
            raise ValueError(
                f"batch size {x.shape[0]} is not a multiple of the device count {n}"
            )
    sharding = NamedSharding(Mesh(devices, ("batch",)), PartitionSpec("batch"))
    return tuple(jax.device_put(x, sharding) for x in arrays)
