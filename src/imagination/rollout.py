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

from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import _checks

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
    finite:
        ``(batch,)`` booleans: rollout ``i`` stayed finite (no NaN or infinity in its states,
        actions, rewards or return). One reduction computed inside the jitted rollout, so a
        batch that went non-finite (an unstable model, an overflowing step, a NaN start state)
        is seen with ``traj.finite.all()``. ``None`` for a trajectory built by hand.
    """

    states: Array
    actions: Array
    rewards: Array
    returns: Array
    finite: Array | None = None


def discounted_returns(rewards: Array, gamma: float) -> Array:
    """Discounted sum ``sum_t gamma**t r_t`` over the last axis of ``rewards``.

    ``gamma`` may be traced (inside ``jit``); a concrete ``gamma`` must be a real number in
    ``[0, 1]`` and ``rewards`` an array with at least one axis, else a ``ValueError`` or
    ``TypeError`` naming the argument.
    """
    if not isinstance(gamma, jax.core.Tracer):
        g = _checks.real("gamma", gamma)
        if not 0.0 <= g <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if jnp.ndim(rewards) < 1:
        raise ValueError(
            f"rewards must have at least one axis (time), got shape {jnp.shape(rewards)}"
        )
    rewards = jnp.asarray(rewards)
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
        _check_step_outputs(
            s, a, r, s_next
        )  # shapes only: at trace time, free
        return (s_next, ret + disc * r, disc * gamma), (s, a, r)

    keys = jax.random.split(key, horizon)
    zero = jnp.zeros((), s0.dtype)
    (s_last, ret, _), (states, actions, rewards) = jax.lax.scan(
        step, (s0, zero, jnp.ones((), s0.dtype)), keys
    )
    states = jnp.concatenate([states, s_last[None]], axis=0)
    # A NaN or inf reward reaches the return; states and actions are checked directly.
    finite = (
        jnp.isfinite(ret)
        & jnp.isfinite(states).all()
        & jnp.isfinite(actions).all()
    )
    return Trajectory(states, actions, rewards, ret, finite)


def _check_step_outputs(s, a, r, s_next) -> None:
    """Clear errors for step functions whose outputs do not fit the engine (trace time)."""
    if jnp.ndim(a) != 1:
        raise ValueError(
            f"policy must return an action of shape (action_dim,), got shape "
            f"{jnp.shape(a)} for a state of shape {s.shape}"
        )
    if jnp.shape(r) != ():
        raise ValueError(
            f"reward must return a scalar, got shape {jnp.shape(r)} "
            f"(state shape {s.shape}, action shape {jnp.shape(a)})"
        )
    if jnp.shape(s_next) != s.shape or jnp.result_type(s_next) != s.dtype:
        raise ValueError(
            f"dynamics must return a state like start_states' rows (shape {s.shape}, "
            f"dtype {s.dtype}), got shape {jnp.shape(s_next)}, dtype "
            f"{jnp.result_type(s_next)}: check state_dim of start_states"
        )


def _check(horizon: int, gamma: float) -> None:
    h = _checks.integer("horizon", horizon, minimum=1)
    # a Python int is exact at any size, but one scan runs at most 2**31 - 1 steps
    if h > 2**31 - 1:
        raise ValueError(
            f"horizon must be at most 2**31 - 1 steps (the length of one scan), got "
            f"{_checks.show(horizon)}"
        )
    g = _checks.real("gamma", gamma)
    if not 0.0 <= g <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")


def _concretely_finite(x: Array) -> bool:
    """``False`` only for a concrete array with a NaN or inf; under a trace (jit, vmap, grad)
    the values are unknown and the trajectory's ``finite`` flag reports them instead."""
    if isinstance(x, jax.core.Tracer):
        return True
    try:
        return bool(jnp.isfinite(x).all())
    except jax.errors.ConcretizationTypeError:  # a constant inside a jit trace
        return True


def _starts_and_keys(start_states: Array, key: Array) -> tuple[Array, Array]:
    """The ``(batch, state_dim)`` start states and one PRNG key per rollout, checked: a
    floating dtype, two dimensions, a non-empty batch and, for a concrete array (not a
    tracer), finite values."""
    try:
        with np.errstate(
            over="ignore"
        ):  # float64 beyond float32: reported below
            start_states = jnp.asarray(start_states)
    except (TypeError, ValueError) as err:
        raise _checks.ArgumentTypeError(
            f"start_states must be a (batch, state_dim) array of floats: {err}"
        ) from None
    if not jnp.issubdtype(start_states.dtype, jnp.floating):
        raise _checks.ArgumentTypeError(
            f"start_states must have a floating-point dtype, got {start_states.dtype} "
            f"(convert with .astype(jnp.float32))"
        )
    if start_states.ndim != 2 or 0 in start_states.shape:
        raise ValueError(
            f"start_states must have shape (batch, state_dim), both positive, got "
            f"{start_states.shape}"
        )
    if not _concretely_finite(start_states):
        raise ValueError(
            "start_states must be finite (they contain NaN or inf, or values "
            f"beyond the {start_states.dtype} range)"
        )
    if not (
        isinstance(key, jax.Array)
        and (
            jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
            or (key.dtype == jnp.uint32 and key.shape == (2,))
        )
        and (key.shape in ((), (2,)))
    ):
        raise _checks.ArgumentTypeError(
            f"key must be one PRNG key (jax.random.key(seed)), got {key!r:.80}"
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
        with _naming_start_states(start_states):  # trace time only
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

    Returns
    -------
    Trajectory
        With ``finite[i]`` false where rollout ``i`` produced a NaN or an infinity (an unstable
        or overflowing model): check ``traj.finite.all()`` before trusting a batch mean.

    Raises
    ------
    ValueError, TypeError
        Naming the argument: ``horizon`` not a positive integer, ``gamma`` outside ``[0, 1]``
        (or not a real number), ``start_states`` not a non-empty ``(batch, state_dim)`` array of
        floats or not finite, a state dimension the step functions cannot take, ``key`` not a
        PRNG key, a step function returning the wrong shape.

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
    with _naming_start_states(start_states):
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


@contextmanager
def _naming_start_states(start_states: Array):
    """Re-raise a shape or type error from inside the step functions as a ``ValueError``
    that names ``start_states`` and its shape (a wrong ``state_dim`` otherwise fails deep
    inside JAX). The original error is kept as the cause and in the message."""
    try:
        yield
    except (TypeError, ValueError) as err:
        if "start_states" in str(err) or "must return" in str(err):
            raise
        raise ValueError(
            f"the step functions failed on start_states of shape {start_states.shape} "
            f"(state_dim {start_states.shape[-1]}): check that the state dimension matches "
            f"the dynamics, reward and policy parameters. {type(err).__name__}: "
            f"{str(err).splitlines()[0]}"
        ) from err


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
        if jnp.ndim(x) < 1:
            raise ValueError(
                f"arrays must have a batch axis, got shape {jnp.shape(x)}"
            )
        if x.shape[0] % n:
            raise ValueError(
                f"batch size {x.shape[0]} is not a multiple of the device count {n}"
            )
    sharding = NamedSharding(Mesh(devices, ("batch",)), PartitionSpec("batch"))
    return tuple(jax.device_put(x, sharding) for x in arrays)
