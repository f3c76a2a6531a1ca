"""Error attribution for imagined rollouts: whose error, the dynamics model's or the reward's?

Chapters 2 and 3 compare trajectories that share start states and a policy but differ in which
step functions are learned. This module holds the pieces they share:

* the stabilised-pendulum experiment (:func:`pendulum_setup`, :func:`train_pendulum_models`): a
  saturated linear policy that holds the pendulum upright from a box of start states, and MLP
  dynamics and reward models trained on transitions from a slightly larger box;
* :func:`state_errors`: the state error ``delta_t = ||s_hat_t - s_t||`` of a learned model
  against the truth, from the same start states;
* :func:`attribution_rollouts` and :func:`partial_returns`: rollouts of the four
  combinations (true or learned dynamics) x (true or learned reward), and discounted sums of their rewards
  over a grid of discounts and horizons (``vmap``-ped);
* :func:`tight_system`: the one-dimensional linear system with aligned signs on which the
  return-error bound of :mod:`imagination.bounds` holds with equality.

All step functions have the engine's signatures (:mod:`imagination.rollout`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import data, envs, models
from .rollout import Trajectory, rollout

__all__ = [
    "clipped_linear",
    "zero_reward",
    "PendulumSetup",
    "pendulum_setup",
    "PendulumModels",
    "train_pendulum_models",
    "sample_box",
    "StateErrors",
    "state_errors",
    "closed_loop_lipschitz_lower",
    "attribution_rollouts",
    "partial_returns",
    "affine_dynamics",
    "affine_reward",
    "TightSystem",
    "tight_system",
]

Array = jax.Array


# ----------------------------------------------------------------------------- step functions
def clipped_linear(
    params: tuple[Array, Array], s: Array, key: Array | None = None
) -> Array:
    """Saturated linear feedback ``a = clip(K s, -a_max, a_max)``; ``params = (K, a_max)``.

    Clipping is 1-Lipschitz, so the policy's Lipschitz constant is at most ``||K||_2`` (the
    constant the bounds use). Saturating in the policy keeps every action inside the range the
    dynamics model was trained on.
    """
    K, a_max = params
    return jnp.clip(K @ s, -a_max, a_max)


def zero_reward(params: Any, s: Array, a: Array) -> Array:
    """The reward ``0`` (engine signature), for rollouts where only the states matter."""
    return jnp.zeros((), s.dtype)


# ----------------------------------------------------------------------------- the pendulum experiment
class PendulumSetup(NamedTuple):
    """The stabilised-pendulum experiment of chapters 2 and 3.

    Attributes
    ----------
    env:
        The true pendulum (:func:`imagination.envs.pendulum`).
    policy_params:
        ``(K, a_max)`` for :func:`clipped_linear`.
    start_low, start_high:
        Box of start states ``(theta, theta_dot)``.
    data_low, data_high:
        Box from which training transitions (and the dense sample for ``eps``) are drawn.
    lip_policy:
        ``||K||_2``, a Lipschitz constant of the policy.
    """

    env: envs.Env
    policy_params: tuple[Array, Array]
    start_low: Array
    start_high: Array
    data_low: Array
    data_high: Array
    lip_policy: float


def pendulum_setup(
    gain: tuple[float, float] = (-7.0, -1.5),
    start_box: tuple[float, float] = (0.25, 0.5),
    data_box: tuple[float, float] = (0.5, 1.5),
) -> PendulumSetup:
    """The pendulum held upright by a saturated linear policy.

    Parameters
    ----------
    gain:
        ``K = (k_theta, k_theta_dot)``; the defaults stabilise the upright position
        (``3 |k_theta| > 3 g / (2 l) = 15`` beats gravity) from every start state in the default box.
    start_box:
        Half-widths ``(theta, theta_dot)`` of the start-state box.
    data_box:
        Half-widths of the training-data box; it contains every true trajectory started in the
        start box (chapter 2 checks this), with room for imagined ones that drift.
    """
    if len(gain) != 2:
        raise ValueError(
            f"gain must have two entries (theta, theta_dot), got {gain!r}"
        )
    for name, box in (("start_box", start_box), ("data_box", data_box)):
        if len(box) != 2 or min(box) <= 0:
            raise ValueError(
                f"{name} must be two positive half-widths, got {box!r}"
            )
    env = envs.pendulum()
    K = jnp.asarray([gain], jnp.float32)
    a_max = jnp.asarray(env.params.max_torque, jnp.float32)
    sb = jnp.asarray(start_box, jnp.float32)
    db = jnp.asarray(data_box, jnp.float32)
    lip_policy = float(np.linalg.norm(np.asarray(K, np.float64), 2))
    return PendulumSetup(env, (K, a_max), -sb, sb, -db, db, lip_policy)


class PendulumModels(NamedTuple):
    """Learned pendulum models and the data they were trained on.

    ``dynamics`` are layers for :func:`imagination.models.dynamics_model`, ``reward`` layers for
    :func:`imagination.models.reward_model` (``None`` when not trained); ``dynamics_loss`` and
    ``reward_loss`` are the training curves.
    """

    dynamics: Any
    reward: Any
    transitions: data.Transitions
    dynamics_loss: Array
    reward_loss: Array | None


def train_pendulum_models(
    setup: PendulumSetup,
    key: Array,
    n_data: int,
    *,
    hidden: tuple[int, ...] = (32, 32),
    steps: int = 2000,
    learning_rate: float = 3e-3,
    reward: bool = True,
) -> PendulumModels:
    """Buy ``n_data`` transitions from the data box and train MLP dynamics (and reward) models.

    Actions are uniform on ``[-a_max, a_max]``, the range of :func:`clipped_linear`. The reward
    model is trained on the same ``(s, a)`` pairs (in the book's later chapters the two data sets
    are bought separately).
    """
    if int(n_data) != n_data or n_data < 1:
        raise ValueError(f"n_data must be a positive integer, got {n_data!r}")
    k_data, k_dyn, k_rew = jax.random.split(key, 3)
    tr = data.sample_transitions(
        setup.env,
        k_data,
        int(n_data),
        action_scale=float(setup.policy_params[1]),
        state_low=setup.data_low,
        state_high=setup.data_high,
    )
    dyn, dyn_loss = models.train_dynamics(
        k_dyn,
        tr.states,
        tr.actions,
        tr.next_states,
        hidden=hidden,
        steps=steps,
        learning_rate=learning_rate,
    )
    rew = rew_loss = None
    if reward:
        rew, rew_loss = models.train_reward(
            k_rew,
            tr.states,
            tr.actions,
            tr.rewards,
            hidden=hidden,
            steps=steps,
            learning_rate=learning_rate,
        )
    return PendulumModels(dyn, rew, tr, dyn_loss, rew_loss)


def sample_box(key: Array, n: int, low: Array, high: Array) -> Array:
    """``n`` points uniform on the box ``[low, high]`` (a dense sample of a region)."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    low = jnp.asarray(low, jnp.float32)
    high = jnp.asarray(high, jnp.float32)
    return jax.random.uniform(
        key, (int(n), low.shape[0]), jnp.float32, low, high
    )


# ----------------------------------------------------------------------------- state errors
class StateErrors(NamedTuple):
    """``errors[b, t] = ||s_hat_t - s_t||`` with the two trajectories that produced it.

    ``true_states`` ``(B, H+1, ds)`` and ``true_actions`` ``(B, H, da)`` are the pairs at which
    the theorem needs the one-step error; ``model_states`` are the imagined states.
    """

    errors: Array
    true_states: Array
    true_actions: Array
    model_states: Array


def state_errors(
    true_dynamics: Callable,
    true_params: Any,
    model_dynamics: Callable,
    model_params: Any,
    policy: Callable,
    policy_params: Any,
    start_states: Array,
    key: Array,
    *,
    horizon: int,
) -> StateErrors:
    """Roll the true and the learned dynamics from the same start states under one policy.

    Parameters
    ----------
    true_dynamics, model_dynamics:
        Step functions ``f(params, s, a)`` and ``f_hat(params, s, a)``.
    true_params, model_params, policy_params:
        Their parameters.
    policy:
        ``policy(params, s, key)``; the same key is used for both rollouts.
    start_states:
        ``(B, ds)``.
    key:
        PRNG key.
    horizon:
        Number of steps ``H``.

    Returns
    -------
    StateErrors
        ``errors`` has shape ``(B, H + 1)`` and ``errors[:, 0] == 0``.
    """
    true = rollout(
        true_dynamics,
        zero_reward,
        policy,
        (true_params, None, policy_params),
        start_states,
        key,
        horizon=horizon,
    )
    imag = rollout(
        model_dynamics,
        zero_reward,
        policy,
        (model_params, None, policy_params),
        start_states,
        key,
        horizon=horizon,
    )
    errors = jnp.linalg.norm(imag.states - true.states, axis=-1)
    return StateErrors(errors, true.states, true.actions, imag.states)


def closed_loop_lipschitz_lower(
    model: Callable,
    params: Any,
    policy: Callable,
    policy_params: Any,
    states: Array,
) -> Array:
    """Largest local constant ``||d/ds model(s, policy(s))||_2`` over ``states``.

    This is a *lower* estimate of the Lipschitz constant of the closed-loop map
    ``s -> f_hat(s, pi(s))``, the constant that actually governs how state errors grow. The
    theorem uses the cruder ``L_f (1 + L_pi)``, which is never smaller (chain rule and the norm
    ``||s|| + ||a||``).
    """
    key = jax.random.key(0)

    def closed(s):
        return model(params, s, policy(policy_params, s, key))

    def local(s):
        return jnp.linalg.norm(jax.jacfwd(closed)(s), ord=2)

    return jnp.max(jax.vmap(local)(states))


# ----------------------------------------------------------------------------- attribution
def attribution_rollouts(
    true_dynamics: Callable,
    true_dynamics_params: Any,
    true_reward: Callable,
    true_reward_params: Any,
    model_dynamics: Callable,
    model_dynamics_params: Any,
    model_reward: Callable,
    model_reward_params: Any,
    policy: Callable,
    policy_params: Any,
    start_states: Array,
    key: Array,
    *,
    horizon: int,
) -> dict[str, Trajectory]:
    """Rollouts of the four (dynamics, reward) combinations, undiscounted.

    Keys: ``"true"`` (f, r), ``"reward"`` (f, r_hat: only the reward is learned),
    ``"dynamics"`` (f_hat, r: only the dynamics are learned) and ``"both"`` (f_hat, r_hat). All
    four share start states, policy and key, so the differences of their returns are due to the
    models alone. Each value is a :class:`~imagination.rollout.Trajectory` with ``gamma = 1``;
    discount its ``rewards`` with :func:`partial_returns`, and get the state error of the
    imagined dynamics from ``out["dynamics"].states - out["true"].states``.
    """
    combos = {
        "true": (
            true_dynamics,
            true_dynamics_params,
            true_reward,
            true_reward_params,
        ),
        "reward": (
            true_dynamics,
            true_dynamics_params,
            model_reward,
            model_reward_params,
        ),
        "dynamics": (
            model_dynamics,
            model_dynamics_params,
            true_reward,
            true_reward_params,
        ),
        "both": (
            model_dynamics,
            model_dynamics_params,
            model_reward,
            model_reward_params,
        ),
    }
    out = {}
    for name, (dyn, dyn_p, rew, rew_p) in combos.items():
        traj = rollout(
            dyn,
            rew,
            policy,
            (dyn_p, rew_p, policy_params),
            start_states,
            key,
            horizon=horizon,
            gamma=1.0,
        )
        out[name] = traj
    return out


@jax.jit
def partial_returns(rewards: Array, gammas: Array, horizons: Array) -> Array:
    """Discounted partial sums ``sum_{t < H} gamma^t r_t`` on a grid of ``gamma`` and ``H``.

    Parameters
    ----------
    rewards:
        ``(B, T)`` per-step rewards.
    gammas:
        ``(G,)`` discounts.
    horizons:
        ``(K,)`` integer horizons, each at most ``T``.

    Returns
    -------
    jax.Array
        ``(G, K, B)``; computed by a ``vmap`` over discounts and horizons.
    """
    ts = jnp.arange(rewards.shape[-1])

    def one(gamma, horizon):
        weights = jnp.where(
            ts < horizon, gamma ** ts.astype(rewards.dtype), 0.0
        )
        return rewards @ weights

    return jax.vmap(lambda g: jax.vmap(lambda h: one(g, h))(horizons))(
        jnp.asarray(gammas, rewards.dtype)
    )


# ----------------------------------------------------------------------------- the tight system
def affine_dynamics(params: tuple[Array, Array], s: Array, a: Array) -> Array:
    """One-dimensional ``f(s, a) = p (s + a) + c``; ``params = (p, c)``, ``s, a`` of shape ``(1,)``."""
    p, c = params
    return p * (s + a) + c


def affine_reward(params: tuple[Array, Array], s: Array, a: Array) -> Array:
    """One-dimensional ``r(s, a) = l (s + a) + c`` (a scalar); ``params = (l, c)``."""
    l, c = params  # noqa: E741
    return l * (s[0] + a[0]) + c


class TightSystem(NamedTuple):
    """Parameters of the aligned one-dimensional system (NOTES, result 2).

    True ``f(s, a) = p (s + a)``, ``r(s, a) = l (s + a)``; learned ``f_hat = f + eps_d``,
    ``r_hat = r + eps_r``; policy ``pi(s) = k s`` (:func:`imagination.policies.linear` with
    ``K = [[k]]``). The exact constants are ``L_f = p``, ``L_r = l``, ``L_pi = k`` and the sup
    errors are ``eps_d`` and ``eps_r``.
    """

    true_dynamics: tuple[Array, Array]
    model_dynamics: tuple[Array, Array]
    true_reward: tuple[Array, Array]
    model_reward: tuple[Array, Array]
    policy: Array
    eps_dynamics: float
    eps_reward: float
    lip_dynamics: float
    lip_reward: float
    lip_policy: float


def tight_system(
    p: float, k: float, l: float, eps_d: float, eps_r: float
) -> TightSystem:  # noqa: E741
    """Build the aligned system on which the return-error bound is attained.

    Parameters
    ----------
    p, k, l:
        Positive dynamics, policy and reward coefficients.
    eps_d, eps_r:
        Non-negative constant offsets of the learned dynamics and reward.
    """
    for name, v in (("p", p), ("k", k), ("l", l)):
        if not float(v) > 0:
            raise ValueError(f"{name} must be positive, got {v!r}")
    for name, v in (("eps_d", eps_d), ("eps_r", eps_r)):
        if not float(v) >= 0:
            raise ValueError(f"{name} must be non-negative, got {v!r}")
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return TightSystem(
        (f32(p), f32(0.0)),
        (f32(p), f32(eps_d)),
        (f32(l), f32(0.0)),
        (f32(l), f32(eps_r)),
        f32([[k]]),
        float(eps_d),
        float(eps_r),
        float(p),
        float(l),
        float(k),
    )
