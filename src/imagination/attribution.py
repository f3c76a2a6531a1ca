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
  return-error bound of :mod:`imagination.bounds` holds with equality;
* chapter 3's measurements: :func:`return_error_bound_grid` (the bound on a grid of discounts and
  horizons), :func:`measure_constants` (the theorem's constants for learned pendulum models),
  :func:`slack_ladder` (where the slack of the per-rollout bound comes from) and
  :func:`paired_returns` (true and imagined returns of one policy on shared start states, for
  comparing policies), and :func:`pendulum_experiment`, which trains, rolls out and measures in
  one call.

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
    "TightSystem",
    "tight_system",
    "return_error_bound_grid",
    "MeasuredConstants",
    "measure_constants",
    "slack_ladder",
    "paired_returns",
    "PendulumExperiment",
    "pendulum_experiment",
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
        Box of start states ``(phi, phi_dot)`` (angle from the top, angular velocity).
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
        ``K = (k_phi, k_phi_dot)`` on the angle ``phi`` and the angular velocity; the defaults
        stabilise the upright position (``3 |k_phi| > 3 g / (2 l) = 15`` beats gravity) from
        every start state in the default box.
    start_box:
        Half-widths ``(phi, phi_dot)`` of the start-state box.
    data_box:
        Half-widths of the training-data box; it contains every true trajectory started in the
        start box (chapter 2 checks this), with room for imagined ones that drift.
    """
    if len(gain) != 2:
        raise ValueError(
            f"gain must have two entries (phi, phi_dot), got {gain!r}"
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


# ----------------------------------------------------------------------------- chapter 3 helpers
def return_error_bound_grid(
    eps_dynamics: float,
    eps_reward: float,
    lip_dynamics: float,
    lip_reward: float,
    lip_policy: float,
    gammas: Any,
    horizons: Any,
) -> np.ndarray:
    """:func:`imagination.bounds.return_error_bound` on a grid of discounts and horizons.

    Parameters
    ----------
    eps_dynamics, eps_reward, lip_dynamics, lip_reward, lip_policy:
        As in :func:`imagination.bounds.return_error_bound`.
    gammas:
        ``(G,)`` discounts in ``[0, 1]``.
    horizons:
        ``(K,)`` non-negative integer horizons.

    Returns
    -------
    numpy.ndarray
        ``(G, K)`` float64 bounds, ``out[i, j]`` for ``gammas[i]`` and ``horizons[j]``.
    """
    from . import bounds

    g = np.atleast_1d(np.asarray(gammas, np.float64))
    h = np.atleast_1d(np.asarray(horizons))
    if g.ndim != 1 or g.size == 0:
        raise ValueError(
            f"gammas must be a non-empty 1-d array, got {gammas!r}"
        )
    if h.ndim != 1 or h.size == 0 or h.dtype.kind not in "iu":
        raise ValueError(
            f"horizons must be a non-empty 1-d integer array, got {horizons!r}"
        )
    args = (eps_dynamics, eps_reward, lip_dynamics, lip_reward, lip_policy)
    return np.array(
        [
            [
                bounds.return_error_bound(*args, float(gi), horizon=int(hj))
                for hj in h
            ]
            for gi in g
        ]
    )


class MeasuredConstants(NamedTuple):
    """The constants of the return-error theorem, measured for learned pendulum models.

    Attributes
    ----------
    eps_dynamics, eps_reward:
        Largest one-step errors over a dense sample of the visited box (with the policy's
        actions) and over the pairs the true rollouts visited, whichever is larger.
    lip_dynamics:
        Certified Lipschitz constant of the residual dynamics model (product of spectral norms,
        plus one).
    lip_reward:
        Certified Lipschitz constant of the reward model (product of spectral norms).
    lip_reward_local:
        Largest local constant of the reward model over the dense sample: an *estimate* (a
        lower bracket of the true constant), written :math:`\\hat L_r`.
    lip_policy:
        ``||K||_2``.
    loop:
        ``lip_dynamics * (1 + lip_policy)``, the closed-loop constant ``L`` of the theorem.
    """

    eps_dynamics: float
    eps_reward: float
    lip_dynamics: float
    lip_reward: float
    lip_reward_local: float
    lip_policy: float
    loop: float


def measure_constants(
    setup: PendulumSetup,
    trained: PendulumModels,
    true_run: Trajectory,
    key: Array,
    n_dense: int,
    *,
    n_local: int = 5000,
) -> MeasuredConstants:
    """Measure the theorem's constants for learned pendulum models.

    Parameters
    ----------
    setup:
        The experiment (:func:`pendulum_setup`).
    trained:
        The models (:func:`train_pendulum_models`, with a reward model).
    true_run:
        True rollouts under the policy; their states define the visited box, and their
        ``(s_t, a_t)`` pairs are searched for the largest error too.
    key:
        PRNG key for the dense sample.
    n_dense:
        Size of the dense uniform sample of the visited box.
    n_local:
        How many of the dense points are searched for the largest local constant of the reward.
    """
    if trained.reward is None:
        raise ValueError("trained must include a reward model (reward=True)")
    if int(n_local) != n_local or n_local < 1:
        raise ValueError(
            f"n_local must be a positive integer, got {n_local!r}"
        )
    env = setup.env
    states = np.asarray(true_run.states)
    dense_s = sample_box(
        key, n_dense, states.min(axis=(0, 1)), states.max(axis=(0, 1))
    )
    dense_a = jax.vmap(clipped_linear, in_axes=(None, 0))(
        setup.policy_params, dense_s
    )
    ds = states.shape[-1]
    traj_s = jnp.asarray(states[:, :-1].reshape(-1, ds))
    traj_a = true_run.actions.reshape(traj_s.shape[0], -1)

    def sup(model, params, truth):
        return max(
            float(models.sup_error(model, params, truth, env.params, s, a))
            for s, a in ((dense_s, dense_a), (traj_s, traj_a))
        )

    m = min(int(n_local), int(n_dense))
    lip_f = float(models.lipschitz_upper(trained.dynamics)) + 1.0
    lip_pi = float(setup.lip_policy)
    return MeasuredConstants(
        eps_dynamics=sup(
            models.dynamics_model, trained.dynamics, env.dynamics
        ),
        eps_reward=sup(models.reward_model, trained.reward, env.reward),
        lip_dynamics=lip_f,
        lip_reward=float(models.lipschitz_upper(trained.reward)),
        lip_reward_local=float(
            models.lipschitz_lower(
                models.reward_model, trained.reward, dense_s[:m], dense_a[:m]
            )
        ),
        lip_policy=lip_pi,
        loop=lip_f * (1 + lip_pi),
    )


def _discounted(x: Array, gamma: float, horizon: int) -> np.ndarray:
    x = np.asarray(x, np.float64)[:, :horizon]
    return x @ (gamma ** np.arange(x.shape[1], dtype=np.float64))


def slack_ladder(
    runs: dict[str, Trajectory],
    constants: MeasuredConstants,
    gamma: float,
    horizon: int,
) -> dict[str, np.ndarray]:
    """Per-rollout bounds that replace the theorem's worst cases one at a time.

    With ``delta_t = ||s_hat_t - s_t||`` and ``Delta a_t = ||a_hat_t - a_t||`` measured between
    the ``"both"`` and ``"true"`` rollouts of :func:`attribution_rollouts`, and
    ``e_t = |r_hat(s_t, a_t) - r(s_t, a_t)|`` the reward error on the true pairs (``"reward"``
    minus ``"true"``), each rung is ``sum_{t < H} gamma^t (...)`` of:

    ``per_rollout``
        ``eps_r + L_r (1 + L_pi) delta_t``: certified constants, measured state error (a bound).
    ``local_lr``
        ``eps_r + L_hat_r (1 + L_pi) delta_t``: the largest local ``L_hat_r`` (an estimate).
    ``action_error``
        ``eps_r + L_hat_r (delta_t + Delta a_t)``: the measured action error in place of
        ``L_pi delta_t``.
    ``typical_eps``
        ``e_t + L_hat_r (delta_t + Delta a_t)``: the reward error where it occurred in place of
        its sup ``eps_r``.
    ``gap``
        ``|J_hat - J|``, the measured error of the imagined return.

    Parameters
    ----------
    runs:
        Output of :func:`attribution_rollouts` with at least ``horizon`` steps.
    constants:
        From :func:`measure_constants`.
    gamma:
        Discount in ``[0, 1]``.
    horizon:
        Number of steps ``H``.

    Returns
    -------
    dict of numpy.ndarray
        Each entry ``(B,)`` float64, one value per rollout.
    """
    for name in ("true", "reward", "both"):
        if name not in runs:
            raise ValueError(
                f"runs must contain {name!r} (attribution_rollouts)"
            )
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    steps = runs["true"].rewards.shape[1]
    if int(horizon) != horizon or not 1 <= horizon <= steps:
        raise ValueError(
            f"horizon must be an integer in [1, {steps}], got {horizon!r}"
        )
    true, both = runs["true"], runs["both"]
    delta = jnp.linalg.norm(both.states[:, :-1] - true.states[:, :-1], axis=-1)
    d_act = jnp.linalg.norm(both.actions - true.actions, axis=-1)
    e_t = jnp.abs(runs["reward"].rewards - true.rewards)
    c = constants
    lr, lr_hat, lp = c.lip_reward, c.lip_reward_local, c.lip_policy
    g, h = float(gamma), int(horizon)
    return {
        "per_rollout": _discounted(c.eps_reward + lr * (1 + lp) * delta, g, h),
        "local_lr": _discounted(
            c.eps_reward + lr_hat * (1 + lp) * delta, g, h
        ),
        "action_error": _discounted(
            c.eps_reward + lr_hat * (delta + d_act), g, h
        ),
        "typical_eps": _discounted(e_t + lr_hat * (delta + d_act), g, h),
        "gap": np.abs(_discounted(both.rewards - true.rewards, g, h)),
    }


def paired_returns(
    env: envs.Env,
    trained: PendulumModels,
    policy_params: tuple[Array, Array],
    starts: Array,
    key: Array,
    *,
    gamma: float,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray]:
    """True and imagined returns of one policy from the same start states.

    The true return runs the pendulum and its reward; the imagined one the learned dynamics and
    the learned reward, with the same start states and key (common random numbers, so that
    differences between policies are measured on the same starts).

    Parameters
    ----------
    env:
        The true pendulum.
    trained:
        Learned models (:func:`train_pendulum_models`, with a reward model).
    policy_params:
        ``(K, a_max)`` for :func:`clipped_linear`.
    starts:
        ``(B, 2)`` start states.
    key:
        PRNG key.
    gamma:
        Discount in ``[0, 1]``.
    horizon:
        Number of steps.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``J`` and ``J_hat``, each ``(B,)`` float64.
    """
    if trained.reward is None:
        raise ValueError("trained must include a reward model (reward=True)")
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(
            f"horizon must be a positive integer, got {horizon!r}"
        )
    out = []
    for dyn, dyn_p, rew, rew_p in (
        (env.dynamics, env.params, env.reward, env.params),
        (
            models.dynamics_model,
            trained.dynamics,
            models.reward_model,
            trained.reward,
        ),
    ):
        traj = rollout(
            dyn,
            rew,
            clipped_linear,
            (dyn_p, rew_p, policy_params),
            starts,
            key,
            horizon=int(horizon),
            gamma=1.0,
        )
        out.append(_discounted(traj.rewards, float(gamma), int(horizon)))
    return out[0], out[1]


class PendulumExperiment(NamedTuple):
    """Chapter 3's pendulum experiment: models, rollouts and constants.

    Attributes
    ----------
    setup:
        The stabilised pendulum (:func:`pendulum_setup`).
    trained:
        Learned dynamics and reward models (:func:`train_pendulum_models`).
    starts:
        ``(B, 2)`` start states, uniform on the start box.
    runs:
        The four rollouts of :func:`attribution_rollouts`, undiscounted.
    constants:
        The theorem's constants (:func:`measure_constants`).
    """

    setup: PendulumSetup
    trained: PendulumModels
    starts: Array
    runs: dict[str, Trajectory]
    constants: MeasuredConstants


def pendulum_experiment(
    keys: tuple[Array, Array, Array, Array],
    *,
    n_data: int = 8000,
    n_rollouts: int = 2048,
    horizon: int = 100,
    n_dense: int = 100_000,
    hidden: tuple[int, ...] = (32, 32),
    steps: int = 2000,
) -> PendulumExperiment:
    """Train pendulum models, roll out the four combinations, measure.

    One call for what chapter 3's lecture and its section pages share:
    :func:`train_pendulum_models` on ``n_data`` transitions,
    :func:`attribution_rollouts` of the chapter's policy from ``n_rollouts``
    start states over ``horizon`` steps, and :func:`measure_constants` on a
    dense sample of ``n_dense`` points.

    Parameters
    ----------
    keys:
        Four PRNG keys: for training, start states, rollouts and constants.
    n_data, n_rollouts, horizon, n_dense:
        Positive integers: training transitions, rollouts, steps, dense
        sample size.
    hidden, steps:
        Hidden layer widths and Adam steps of both models.

    Returns
    -------
    PendulumExperiment
    """
    for name, v in (
        ("n_data", n_data),
        ("n_rollouts", n_rollouts),
        ("horizon", horizon),
        ("n_dense", n_dense),
    ):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if len(keys) != 4:
        raise ValueError(f"keys must hold four PRNG keys, got {len(keys)}")
    k_train, k_start, k_roll, k_const = keys
    setup = pendulum_setup()
    trained = train_pendulum_models(
        setup, k_train, int(n_data), hidden=hidden, steps=steps
    )
    starts = sample_box(
        k_start, int(n_rollouts), setup.start_low, setup.start_high
    )
    runs = attribution_rollouts(
        setup.env.dynamics,
        setup.env.params,
        setup.env.reward,
        setup.env.params,
        models.dynamics_model,
        trained.dynamics,
        models.reward_model,
        trained.reward,
        clipped_linear,
        setup.policy_params,
        starts,
        k_roll,
        horizon=int(horizon),
    )
    consts = measure_constants(
        setup, trained, runs["true"], k_const, int(n_dense)
    )
    return PendulumExperiment(setup, trained, starts, runs, consts)
