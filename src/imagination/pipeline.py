"""Training in imagination end to end: buy data, fit models, train a policy, check it in the world.

The capstone chapter runs the whole loop of the book under a fixed budget of real samples:

1. **buy** transitions ``(s, a, s')`` and reward labels ``(s, a, r)`` from the true environment
   (:func:`imagination.data.sample_transitions`, on a box of states around the task's region);
2. **fit** a residual MLP dynamics model and an MLP reward model on the first ``n_dynamics`` and
   ``n_reward`` of them (``imagination.learning_curves.train_on_subsets``, so the sizes
   may be traced and ``vmap``-ped);
3. **train a policy in imagination**: REINFORCE with a leave-one-out baseline
   (:func:`imagination.reinforce.make_train_policy`) and, for comparison, the reparameterized
   (pathwise) gradient, ``jax.grad`` of the imagined return through
   :func:`imagination.rollout.make_rollout`;
4. **evaluate** the policy's mean action in the true environment and in imagination, and measure
   every constant of the return-error bound on the states the two rollouts visit.

Two further tools test the theory the chapter leans on: :func:`make_label_noise_probe` measures
the variance that label noise adds to the REINFORCE estimate, and :func:`tight_system_gap` runs
the system that attains the certificate; :func:`compare_paired` reads a comparison over seeds
from its interval.

Everything is a pure function of a PRNG key and the two sample sizes, built by
:func:`make_pipeline` (PureJaxRL's ``make_train`` style) and jitted, so seeds and splits are one
``vmap`` axis.

Norm. The bound of chapter 3 holds for any norm on states; the constants are measured in the
weighted norm ``||s||_w = ||diag(w) s||_2`` of :attr:`Task.norm_weights` (for the pendulum,
``w = (1, 1/4)`` shrinks the angular velocity, in which the stabilised closed loop contracts).
The dual norm of a reward gradient is then ``||diag(1/w) g||_2``.
"""

from __future__ import annotations

import textwrap
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import data as _data
from . import envs as _envs
from . import learning_curves as _curves
from . import models as _models
from . import policies as _policies
from . import reinforce as _reinforce
from .rollout import make_rollout

__all__ = [
    "TORQUE_LIMIT",
    "Task",
    "pendulum_stabilisation",
    "ModelConfig",
    "PolicyConfig",
    "learned_dynamics",
    "learned_reward",
    "sample_box",
    "Evaluation",
    "Result",
    "Pipeline",
    "make_pipeline",
    "make_label_noise_probe",
    "aligned_return_gap",
    "tight_system_gap",
    "Comparison",
    "compare_paired",
    "Plan",
    "plan_budget",
    "certificates",
]

Array = jax.Array

TORQUE_LIMIT: float = _envs.PendulumParams().max_torque
"""The pendulum's torque limit; the learned models clip actions to it, as the true world does."""


# ============================================================================= the task
class Task(NamedTuple):
    """What is controlled, where the data come from, and how returns are counted.

    All fields are Python numbers, tuples or functions, so a ``Task`` is hashable and can be a
    static argument.

    Attributes
    ----------
    env:
        The true environment (:func:`imagination.envs.pendulum`).
    start_low, start_high:
        Box of start states of the control task.
    data_low, data_high:
        Box of states on which transitions and labels are bought (actions uniform on
        ``[-TORQUE_LIMIT, TORQUE_LIMIT]``).
    horizon, gamma:
        Imagined (and evaluated) horizon ``H`` and discount.
    norm_weights:
        Weights ``w`` of the state norm ``||diag(w) s||_2`` in which the bound's constants are
        measured.
    exploration_std:
        Standard deviation of the Gaussian policy's exploration noise (fixed, not learned).
    """

    env: _envs.Env
    start_low: tuple
    start_high: tuple
    data_low: tuple
    data_high: tuple
    horizon: int
    gamma: float
    norm_weights: tuple
    exploration_std: float


def pendulum_stabilisation(
    *,
    horizon: int = 40,
    gamma: float = 0.9,
    start_angle: float = 0.3,
    start_speed: float = 0.3,
    data_angle: float = 0.8,
    data_speed: float = 2.5,
    speed_weight: float = 0.25,
    exploration_std: float = 0.5,
) -> Task:
    """Stabilise the inverted pendulum near upright.

    The state is ``(phi, phi_dot)``, the angle from upright and its rate. Start states are
    uniform on ``|phi| <= start_angle``, ``|phi_dot| <= start_speed``; data are bought on the
    larger box ``|phi| <= data_angle``, ``|phi_dot| <= data_speed``. A full swing-up is out of
    reach of a linear policy with torque ``|u| <= 2`` (gravity's term ``15 sin phi`` exceeds the
    motor's ``3 |u| <= 6`` beyond ``|phi| ~ 0.41``), which is why the task starts near
    the top.

    Parameters
    ----------
    horizon, gamma:
        Horizon and discount.
    start_angle, start_speed:
        Half-widths of the start box.
    data_angle, data_speed:
        Half-widths of the data box (at least those of the start box).
    speed_weight:
        Weight of ``phi_dot`` in the state norm (the angle has weight 1).
    exploration_std:
        Exploration noise of the Gaussian policy.
    """
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(
            f"horizon must be a positive integer, got {horizon!r}"
        )
    if not 0.0 < float(gamma) < 1.0:
        raise ValueError(f"gamma must lie in (0, 1), got {gamma!r}")
    for name, value in (
        ("start_angle", start_angle),
        ("start_speed", start_speed),
        ("speed_weight", speed_weight),
        ("exploration_std", exploration_std),
    ):
        if not float(value) > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    if not data_angle >= start_angle:
        raise ValueError(
            f"data_angle must be >= start_angle, got {data_angle!r}"
        )
    if not data_speed >= start_speed:
        raise ValueError(
            f"data_speed must be >= start_speed, got {data_speed!r}"
        )
    return Task(
        env=_envs.pendulum(),
        start_low=(-float(start_angle), -float(start_speed)),
        start_high=(float(start_angle), float(start_speed)),
        data_low=(-float(data_angle), -float(data_speed)),
        data_high=(float(data_angle), float(data_speed)),
        horizon=int(horizon),
        gamma=float(gamma),
        norm_weights=(1.0, float(speed_weight)),
        exploration_std=float(exploration_std),
    )


class ModelConfig(NamedTuple):
    """Size and training of the dynamics and reward MLPs (Adam in one ``lax.scan``).

    ``pool`` is the largest number of samples of either kind a pipeline may buy: the data sets are
    the first ``n`` rows of pools of this size, padded to it (static shapes, traced sizes).
    """

    hidden: tuple = (32, 32)
    steps: int = 1000
    learning_rate: float = 1e-2
    batch_size: int = 64
    pool: int = 512


class PolicyConfig(NamedTuple):
    """Policy training in imagination: updates, rollouts per update, Adam step size."""

    steps: int = 150
    n_rollouts: int = 16
    learning_rate: float = 0.5
    n_eval: int = 64


# ============================================================================= step functions
def learned_dynamics(layers: Any, s: Array, a: Array) -> Array:
    """Residual MLP dynamics seeing the torque clipped to ``[-2, 2]``, as the true pendulum does."""
    return _models.dynamics_model(
        layers, s, jnp.clip(a, -TORQUE_LIMIT, TORQUE_LIMIT)
    )


def learned_reward(layers: Any, s: Array, a: Array) -> Array:
    """MLP reward seeing the torque clipped to ``[-2, 2]``."""
    return _models.reward_model(
        layers, s, jnp.clip(a, -TORQUE_LIMIT, TORQUE_LIMIT)
    )


def sample_box(low: tuple, high: tuple, key: Array, n: int) -> Array:
    """``n`` states uniform on the box ``[low, high]`` (shape ``(n, len(low))``)."""
    lo = jnp.asarray(low, jnp.float32)
    hi = jnp.asarray(high, jnp.float32)
    return jax.random.uniform(key, (n, lo.shape[0]), jnp.float32, lo, hi)


# ============================================================================= results
class Evaluation(NamedTuple):
    """A deterministic policy ``a = K s`` checked in the true world and in imagination.

    Per-start quantities are over the ``n_eval`` start states; the constants are the largest
    local values on the states the true and imagined rollouts visit and on the midpoints between
    them (lower estimates of the sups the bound needs).

    Attributes
    ----------
    true_return, imagined_return:
        ``(n_eval,)`` discounted returns ``J(s_0)`` and ``J_hat(s_0)``.
    eps_dynamics, eps_reward:
        Largest model errors on the true trajectory's state-action pairs (weighted norm).
    lip_closed_loop, lip_reward_closed_loop:
        Lipschitz estimates of ``s -> f_hat(s, K s)`` and ``s -> r_hat(s, K s)``.
    lip_dynamics, lip_reward, lip_policy:
        The separate constants of the chapter-3 bound: of ``f_hat`` and ``r_hat`` in the norm
        ``||s||_w + |a|``, and ``||K diag(1/w)||_2``.
    in_box:
        Fraction of *imagined* states inside the data box, the models' training region (a check
        that needs no access to the true world).
    state_error:
        ``(H + 1,)`` the measured state error ``delta_t = max_{s_0} ||s_hat_t - s_t||_w`` along
        the horizon (``delta_0 = 0``): what the compounding recursion of chapter 2 bounds.
    """

    true_return: Array
    imagined_return: Array
    eps_dynamics: Array
    eps_reward: Array
    lip_closed_loop: Array
    lip_reward_closed_loop: Array
    lip_dynamics: Array
    lip_reward: Array
    lip_policy: Array
    in_box: Array
    state_error: Array


class Result(NamedTuple):
    """One end-to-end run.

    Attributes
    ----------
    model_errors:
        ``(eps_d, eps_r)`` sup errors on a test sample of the data box (the learning-curve error).
    reinforce, reparam:
        :class:`Evaluation` of the gain learned by REINFORCE and by the pathwise gradient.
    reinforce_gain, reparam_gain:
        The learned gains ``K`` (``(1, 2)``).
    reinforce_curve, reparam_curve:
        ``(steps,)`` mean imagined return during training.
    dynamics, reward:
        The trained model layers.
    """

    model_errors: tuple
    reinforce: Evaluation
    reparam: Evaluation
    reinforce_gain: Array
    reparam_gain: Array
    reinforce_curve: Array
    reparam_curve: Array
    dynamics: Any
    reward: Any


class Pipeline(NamedTuple):
    """The pieces built by :func:`make_pipeline`, each batched over a leading *row* axis.

    Every function takes arrays whose first axis indexes independent runs (seeds, sample sizes,
    noise levels) and maps a jitted, ``vmap``-ped single-run function over them in chunks of
    ``rows`` (padding the last chunk), so each piece is compiled once whatever the number of runs.

    Attributes
    ----------
    fit_models(keys, n_dynamics, n_reward) -> (dyn_layers, rew_layers)
        Buy pools with each key and train both models on their first ``n_*`` rows.
    model_errors(keys, dyn_layers, rew_layers) -> (eps_d, eps_r)
        Sup errors (weighted norm) on a fresh test sample of the data box, each ``(runs,)``.
    train_reinforce(keys, dyn_layers, rew_layers, sigma) -> reinforce.TrainResult
        REINFORCE in imagination from ``init_params``, reward labels ``r_hat + sigma xi``.
    train_reparam(keys, dyn_layers, rew_layers) -> (gains, curves)
        Pathwise gradient of the imagined return, same budget of rollouts and updates.
    evaluate(keys, gains, dyn_layers, rew_layers) -> Evaluation
        The deterministic policies ``a = K s`` in the true world and in imagination.
    end_to_end(keys, n_dynamics, n_reward) -> Result
        All of the above in order.
    init_params:
        The initial Gaussian policy ``(K = 0, log_std)``.
    task, model_config, policy_config, rows:
        The configuration.
    """

    fit_models: Callable
    model_errors: Callable
    train_reinforce: Callable
    train_reparam: Callable
    evaluate: Callable
    end_to_end: Callable
    init_params: tuple
    task: Task
    model_config: ModelConfig
    policy_config: PolicyConfig
    rows: int


def _numeric(a: Any) -> bool:
    """A number, a NumPy array or a flat list/tuple of numbers (converted to one array)."""
    if isinstance(a, (int, float, np.ndarray)):
        return True
    return isinstance(a, (list, tuple)) and all(
        isinstance(x, (int, float, np.integer, np.floating)) for x in a
    )


def _batched(fn: Callable, rows: int) -> Callable:
    """Map the single-run ``fn`` over the leading axis of its arguments, ``rows`` runs per call."""
    mapped = jax.jit(jax.vmap(fn))

    def call(*args):
        args = [jnp.asarray(a) if _numeric(a) else a for a in args]
        n = jax.tree_util.tree_leaves(args)[0].shape[0]
        if n < 1:
            raise ValueError("at least one run is needed")
        for leaf in jax.tree_util.tree_leaves(args):
            if leaf.ndim == 0 or leaf.shape[0] != n:
                raise ValueError(
                    f"every argument needs a leading axis of length {n} (one per run)"
                )
        chunks = -(-n // rows)
        idx = jnp.minimum(jnp.arange(chunks * rows), n - 1)
        outs = []
        for c in range(chunks):
            part = idx[c * rows : (c + 1) * rows]
            outs.append(
                mapped(*jax.tree_util.tree_map(lambda x: x[part], args))
            )
        out = jax.tree_util.tree_map(
            lambda *xs: jnp.concatenate(xs)[:n], *outs
        )
        return out

    return call


# ============================================================================= measurement
def _weighted_closed_loop(dyn, rew, K, w, s):
    """Local closed-loop constants at one state ``s`` in the weighted norm."""
    w_inv = 1.0 / w

    def cl_dyn(x):
        return learned_dynamics(dyn, x, K @ x)

    def cl_rew(x):
        return learned_reward(rew, x, K @ x)

    J = jax.jacfwd(cl_dyn)(s)
    g = jax.grad(cl_rew)(s)
    lip_cl = jnp.linalg.norm((w[:, None] * J) * w_inv[None, :], ord=2)
    lip_rcl = jnp.linalg.norm(g * w_inv)
    # separate constants, norm ||s||_w + |a| on pairs: max of the two block norms
    a = K @ s
    Js, Ja = jax.jacfwd(learned_dynamics, argnums=(1, 2))(dyn, s, a)
    gs, ga = jax.grad(learned_reward, argnums=(1, 2))(rew, s, a)
    lip_f = jnp.maximum(
        jnp.linalg.norm((w[:, None] * Js) * w_inv[None, :], ord=2),
        jnp.linalg.norm(w[:, None] * Ja, ord=2),
    )
    lip_r = jnp.maximum(jnp.linalg.norm(gs * w_inv), jnp.linalg.norm(ga))
    return lip_cl, lip_rcl, lip_f, lip_r


def _check_sizes(config: ModelConfig, policy_config: PolicyConfig) -> None:
    for name, value in (
        ("hidden widths", min(config.hidden) if config.hidden else 0),
        ("model steps", config.steps),
        ("batch_size", config.batch_size),
        ("pool", config.pool),
        ("policy steps", policy_config.steps),
        ("n_eval", policy_config.n_eval),
    ):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(
                f"{name} must be a positive integer, got {value!r}"
            )
    if policy_config.n_rollouts < 2:
        raise ValueError(
            f"n_rollouts must be >= 2 (leave-one-out baseline), got "
            f"{policy_config.n_rollouts!r}"
        )
    if not config.learning_rate > 0 or not policy_config.learning_rate > 0:
        raise ValueError("learning rates must be positive")


# ============================================================================= the factory
def make_pipeline(
    task: Task,
    model_config: ModelConfig = ModelConfig(),
    policy_config: PolicyConfig = PolicyConfig(),
    *,
    rows: int = 4,
    n_test: int = 1024,
    segment_points: int = 1,
) -> Pipeline:
    """Build the end-to-end pipeline for ``task`` (PureJaxRL's ``make_train`` style).

    Parameters
    ----------
    task:
        The control task (:func:`pendulum_stabilisation`).
    model_config:
        MLP widths and training (:class:`ModelConfig`).
    policy_config:
        Policy training and evaluation sizes (:class:`PolicyConfig`).
    rows:
        Runs per compiled call (the ``vmap`` width); choose it to divide the numbers of runs you
        ask for, e.g. ``device.mc_size`` of the seed count times the number of configurations.
    n_test:
        Size of the test sample on which :attr:`Pipeline.model_errors` measures sup errors.
    segment_points:
        Number of evenly spaced interior points of each segment ``[s_t, s_hat_t]`` on which,
        besides both trajectories, the Lipschitz constants are estimated (1: the midpoint).

    Returns
    -------
    Pipeline
        Batched functions (see :class:`Pipeline`). Sample sizes must lie in
        ``[1, model_config.pool]``; being traced, they are clipped to that range, not checked.

    Examples
    --------
    >>> pipe = make_pipeline(pendulum_stabilisation(horizon=10),
    ...                      ModelConfig(hidden=(8,), steps=20, pool=32),
    ...                      PolicyConfig(steps=5, n_rollouts=4, n_eval=8), rows=2)
    >>> out = pipe.end_to_end(jax.random.split(jax.random.key(0), 2), [16, 32], [16, 8])
    >>> out.reinforce_gain.shape
    (2, 1, 2)
    """
    _check_pipeline_args(
        task, model_config, policy_config, rows, n_test, segment_points
    )
    start = partial(sample_box, task.start_low, task.start_high)
    log_std = jnp.log(
        jnp.full((task.env.action_dim,), task.exploration_std, jnp.float32)
    )
    init_params = (
        jnp.zeros((task.env.action_dim, task.env.state_dim), jnp.float32),
        log_std,
    )
    buy = _purchase(task)
    train_reinforce, train_reparam = _policy_trainers(
        task, policy_config, start, init_params
    )
    b_fit = _batched(_model_fitter(buy, model_config), rows)
    b_err = _batched(_model_errors(task, buy, int(n_test)), rows)
    b_rf = _batched(train_reinforce, rows)
    b_rp = _batched(train_reparam, rows)
    b_eval = _batched(
        _evaluator(task, policy_config, start, int(segment_points)), rows
    )
    return Pipeline(
        b_fit,
        b_err,
        b_rf,
        b_rp,
        b_eval,
        _end_to_end(b_fit, b_err, b_rf, b_rp, b_eval),
        init_params,
        task,
        model_config,
        policy_config,
        int(rows),
    )


# The steps of make_pipeline, each a factory of one unbatched function (one run).
def _check_pipeline_args(
    task, model_config, policy_config, rows, n_test, segment_points
) -> None:
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task, got {type(task).__name__}")
    if not isinstance(model_config, ModelConfig):
        raise ValueError(
            f"model_config must be a ModelConfig, got {type(model_config).__name__}"
        )
    if not isinstance(policy_config, PolicyConfig):
        raise ValueError(
            f"policy_config must be a PolicyConfig, got {type(policy_config).__name__}"
        )
    _check_sizes(model_config, policy_config)
    for name, value in (
        ("rows", rows),
        ("n_test", n_test),
        ("segment_points", segment_points),
    ):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(
                f"{name} must be a positive integer, got {value!r}"
            )


def _purchase(task: Task) -> Callable:
    """``buy(key, n)``: ``n`` transitions bought from the task's world."""

    def buy(key, n):
        return _data.sample_transitions(
            task.env,
            key,
            n,
            action_scale=TORQUE_LIMIT,
            state_low=task.data_low,
            state_high=task.data_high,
        )

    return buy


def _model_fitter(buy: Callable, mc: ModelConfig) -> Callable:
    """``fit_models(key, n_dynamics, n_reward)``: two purchases, two MLPs trained on the
    first ``n`` rows of each."""

    def train(model, key, pool, targets, n):
        layers = _curves.train_on_subsets(
            model,
            key,
            pool.states,
            pool.actions,
            targets,
            jnp.clip(jnp.asarray(n, jnp.int32), 1, mc.pool)[None],
            hidden=mc.hidden,
            steps=mc.steps,
            learning_rate=mc.learning_rate,
            batch_size=mc.batch_size,
            pad=mc.pool,
        )
        return jax.tree_util.tree_map(lambda x: x[0], layers)

    def fit_models(key, n_dynamics, n_reward):
        k_pd, k_pr, k_d, k_r = jax.random.split(key, 4)
        pool_d, pool_r = (
            buy(k_pd, mc.pool),
            buy(k_pr, mc.pool),
        )  # two separate purchases
        dyn = train(
            _models.dynamics_model, k_d, pool_d, pool_d.next_states, n_dynamics
        )
        rew = train(
            _models.reward_model, k_r, pool_r, pool_r.rewards, n_reward
        )
        return dyn, rew

    return fit_models


def _model_errors(task: Task, buy: Callable, n_test: int) -> Callable:
    """``model_errors(key, dyn, rew)``: sup errors on a fresh test purchase."""
    w = jnp.asarray(task.norm_weights, jnp.float32)

    def model_errors(key, dyn, rew):
        test = buy(key, n_test)
        pred = jax.vmap(learned_dynamics, in_axes=(None, 0, 0))(
            dyn, test.states, test.actions
        )
        eps_d = jnp.max(jnp.linalg.norm((pred - test.next_states) * w, axis=1))
        r_hat = jax.vmap(learned_reward, in_axes=(None, 0, 0))(
            rew, test.states, test.actions
        )
        eps_r = jnp.max(jnp.abs(r_hat - test.rewards))
        return eps_d, eps_r

    return model_errors


def _policy_trainers(
    task: Task, pc: PolicyConfig, start: Callable, init_params
) -> tuple[Callable, Callable]:
    """``train_reinforce(key, dyn, rew, sigma)`` and ``train_reparam(key, dyn, rew)``: the
    linear gain trained in imagination by REINFORCE and by the pathwise gradient."""
    H, gamma, log_std = task.horizon, task.gamma, init_params[1]
    reinforce_train = _reinforce.make_train_policy(
        learned_dynamics,
        learned_reward,
        _policies.gaussian_linear,
        _policies.gaussian_linear_log_prob,
        start,
        horizon=H,
        gamma=gamma,
        n_rollouts=pc.n_rollouts,
        steps=pc.steps,
        optimizer=pc.learning_rate,
        baseline="loo",
        mask=(True, False),
    )

    def train_reinforce(key, dyn, rew, sigma):
        return reinforce_train(dyn, rew, init_params, key, sigma)

    imagine = make_rollout(
        learned_dynamics,
        learned_reward,
        _policies.gaussian_linear,
        horizon=H,
        gamma=gamma,
    )
    opt = optax.adam(pc.learning_rate)

    def train_reparam(key, dyn, rew):
        def objective(K, k):
            k_s, k_r = jax.random.split(k)
            traj = imagine(
                dyn, rew, (K, log_std), start(k_s, pc.n_rollouts), k_r
            )
            return -jnp.mean(traj.returns)

        def update(carry, k):
            K, state = carry
            loss, g = jax.value_and_grad(objective)(K, k)
            upd, state = opt.update(g, state, K)
            return (optax.apply_updates(K, upd), state), -loss

        K0 = init_params[0]
        (K, _), curve = jax.lax.scan(
            update, (K0, opt.init(K0)), jax.random.split(key, pc.steps)
        )
        return K, curve

    return train_reinforce, train_reparam


def _evaluator(
    task: Task, pc: PolicyConfig, start: Callable, segment_points: int
) -> Callable:
    """``evaluate(key, K, dyn, rew)``: true and imagined returns of the gain ``K`` and the
    constants of the certificate measured along both trajectories (:class:`Evaluation`)."""
    env, H, gamma = task.env, task.horizon, task.gamma
    w = jnp.asarray(task.norm_weights, jnp.float32)
    data_lo = jnp.asarray(task.data_low, jnp.float32)
    data_hi = jnp.asarray(task.data_high, jnp.float32)
    true_run = make_rollout(
        env.dynamics, env.reward, _policies.linear, horizon=H, gamma=gamma
    )
    imag_run = make_rollout(
        learned_dynamics,
        learned_reward,
        _policies.linear,
        horizon=H,
        gamma=gamma,
    )

    def evaluate(key, K, dyn, rew):
        k_s, k_r = jax.random.split(key)
        s0 = start(k_s, pc.n_eval)
        true = true_run(env.params, env.params, K, s0, k_r)
        imag = imag_run(dyn, rew, K, s0, k_r)
        # model errors on the true trajectory's pairs (s_t, K s_t): what the proof uses
        S = true.states[:, :H].reshape(-1, env.state_dim)
        A = true.actions.reshape(-1, env.action_dim)
        f_hat = jax.vmap(learned_dynamics, in_axes=(None, 0, 0))(dyn, S, A)
        f = jax.vmap(env.dynamics, in_axes=(None, 0, 0))(env.params, S, A)
        eps_d = jnp.max(jnp.linalg.norm((f_hat - f) * w, axis=1))
        r_hat = jax.vmap(learned_reward, in_axes=(None, 0, 0))(rew, S, A)
        eps_r = jnp.max(jnp.abs(r_hat - true.rewards.reshape(-1)))
        # Lipschitz estimates on both trajectories and the midpoints between them
        S_hat = imag.states[:, :H].reshape(-1, env.state_dim)
        frac = jnp.arange(1, segment_points + 1) / (segment_points + 1)
        inner = S[None] + frac[:, None, None] * (S_hat - S)[None]
        pts = jnp.concatenate([S, S_hat, inner.reshape(-1, env.state_dim)])
        lips = jax.vmap(
            _weighted_closed_loop, in_axes=(None, None, None, None, 0)
        )(dyn, rew, K, w, pts)
        lip_cl, lip_rcl, lip_f, lip_r = (jnp.max(x) for x in lips)
        lip_pi = jnp.linalg.norm(K / w[None, :], ord=2)
        inside = jnp.all((S_hat >= data_lo) & (S_hat <= data_hi), axis=1)
        gap = jnp.linalg.norm((imag.states - true.states) * w, axis=-1)
        return Evaluation(
            true.returns,
            imag.returns,
            eps_d,
            eps_r,
            lip_cl,
            lip_rcl,
            lip_f,
            lip_r,
            lip_pi,
            jnp.mean(inside),
            jnp.max(gap, axis=0),
        )

    return evaluate


def _end_to_end(b_fit, b_err, b_rf, b_rp, b_eval) -> Callable:
    """``end_to_end(keys, n_dynamics, n_reward)``: the batched steps in order (:class:`Result`)."""

    def end_to_end(keys, n_dynamics, n_reward):
        ks = jax.vmap(lambda k: jax.random.split(k, 5))(keys)
        dyn, rew = b_fit(ks[:, 0], n_dynamics, n_reward)
        eps = b_err(ks[:, 1], dyn, rew)
        n = ks.shape[0]
        rf = b_rf(ks[:, 2], dyn, rew, jnp.zeros((n,), jnp.float32))
        K_rf = rf.params[0][:, -1]
        K_rp, curve_rp = b_rp(ks[:, 3], dyn, rew)
        return Result(
            eps,
            b_eval(ks[:, 4], K_rf, dyn, rew),
            b_eval(ks[:, 4], K_rp, dyn, rew),
            K_rf,
            K_rp,
            rf.returns,
            curve_rp,
            dyn,
            rew,
        )

    return end_to_end


# ============================================================================= label noise
def make_label_noise_probe(
    task: Task, *, n_rollouts: int, n_batches: int, n_draws: int = 1
) -> Callable:
    """Measure the label-noise part of the pipeline's REINFORCE estimator.

    The estimator of :func:`make_pipeline` averages ``n_rollouts`` per-rollout estimates
    ``sum_t psi_t (G_t - b_t)`` with the leave-one-out baseline ``b_t`` (gain only, the
    exploration noise frozen). It is linear in the reward labels, so the difference between the
    estimates from noisy labels ``r_hat + sigma xi`` and from clean ones on the *same* rollouts
    is the estimator applied to the noise ``sigma xi`` alone. Chapter 9 predicts its mean square,
    ``E||g_noisy - g_clean||^2 = sigma^2 G / (n_rollouts - 1)``, from the noise factor ``G``.

    Parameters
    ----------
    task:
        The control task (:func:`pendulum_stabilisation`).
    n_rollouts:
        Rollouts per estimate (``>= 2``, the leave-one-out baseline needs another rollout).
    n_batches:
        Independent batches of ``n_rollouts`` imagined rollouts each.
    n_draws:
        Independent label-noise draws per batch (noise is cheap; rollouts are not).

    Returns
    -------
    probe(dyn_layers, rew_layers, policy_params, key, sigma) -> Array
        Jitted; ``(n_batches, n_draws)`` squared norms ``||g_noisy - g_clean||^2``, where
        ``policy_params = (K, log_std)`` of :func:`imagination.policies.gaussian_linear`.

    Examples
    --------
    >>> probe = make_label_noise_probe(pendulum_stabilisation(horizon=5),
    ...                                n_rollouts=4, n_batches=3, n_draws=2)
    >>> layers = _models.mlp_init(jax.random.key(0), (3, 8, 2))
    >>> rew = _models.mlp_init(jax.random.key(1), (3, 8, 1))
    >>> pol = (jnp.zeros((1, 2)), jnp.log(jnp.full((1,), 0.5)))
    >>> probe(layers, rew, pol, jax.random.key(2), 1.0).shape
    (3, 2)
    """
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task, got {type(task).__name__}")
    for name, value, low in (
        ("n_rollouts", n_rollouts, 2),
        ("n_batches", n_batches, 1),
        ("n_draws", n_draws, 1),
    ):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(
                f"{name} must be an integer >= {low}, got {value!r}"
            )
    n, m, k = int(n_rollouts), int(n_batches), int(n_draws)
    H, gamma = task.horizon, task.gamma
    run = make_rollout(
        learned_dynamics,
        learned_reward,
        _policies.gaussian_linear,
        horizon=H,
        gamma=gamma,
    )

    @jax.jit
    def probe(dyn, rew, policy_params, key, sigma):
        k_s, k_r, k_n = jax.random.split(key, 3)
        s0 = sample_box(task.start_low, task.start_high, k_s, n * m)
        traj = run(dyn, rew, policy_params, s0, k_r)
        psi = _reinforce.step_scores(
            _policies.gaussian_linear_log_prob,
            policy_params,
            traj.states,
            traj.actions,
        )[0].reshape(m, n, H, -1)  # gain scores only
        noise = sigma * jax.random.normal(k_n, (k, m * n, H))
        togo = jax.vmap(_reinforce.rewards_to_go, in_axes=(0, None))(
            noise, gamma
        ).reshape(k, m, n, H)
        loo = (jnp.sum(togo, axis=2, keepdims=True) - togo) / (n - 1)
        d = jnp.einsum("kbit,bitp->kbp", togo - loo, psi) / n
        return jnp.sum(d**2, axis=-1).T

    return probe


# ============================================================================= tight system
def _constants(**named: Any) -> list[np.ndarray]:
    """Broadcast named non-negative finite constants to one shape, or raise naming one."""
    arrays = []
    for name, value in named.items():
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        arrays.append(arr)
    try:
        return list(np.broadcast_arrays(*arrays))
    except ValueError:
        raise ValueError(
            f"the constants {', '.join(named)} must broadcast to one shape"
        ) from None


def _gamma_horizon(gamma: float, horizon: int) -> None:
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
        raise ValueError(
            f"horizon must be a positive integer, got {horizon!r}"
        )


def aligned_return_gap(
    eps_dynamics: Any,
    eps_reward: Any,
    lip_dynamics: Any,
    lip_reward: Any,
    lip_policy: Any,
    gamma: float,
    horizon: int,
    starts: Any = (0.0,),
) -> np.ndarray:
    """Imagined-minus-true return of the aligned one-dimensional system, by rollouts.

    For each set of constants the true world is ``f(s, a) = p (s + a)``, ``r(s, a) = l (s + a)``
    (:func:`imagination.models.affine_dynamics`, ``affine_reward``), the learned models
    are ``f + eps_d`` and ``r + eps_r``, and the policy is ``a = k s``, with
    ``p = lip_dynamics``, ``l = lip_reward`` and ``k = lip_policy``. Every error points the same
    way, so the state error obeys ``delta_{t+1} = p (1 + k) delta_t + eps_d`` with equality and
    the return gap attains the bound ``sum_{t<H} gamma^t [eps_r + l (1 + k) delta_t]`` from
    every start state. Both returns come from the rollout engine
    (:func:`imagination.rollout.make_rollout`), which composes policy, dynamics and reward
    itself: the factor ``(1 + k)`` is not typed anywhere here.

    Parameters
    ----------
    eps_dynamics, eps_reward, lip_dynamics, lip_reward, lip_policy:
        Arrays that broadcast to one shape (one entry per system), all ``>= 0``.
    gamma, horizon:
        Discount in ``[0, 1]`` and number of steps ``>= 1``.
    starts:
        Start states ``s_0`` (one-dimensional, any finite values).

    Returns
    -------
    numpy.ndarray
        ``J_hat(s_0) - J(s_0)`` of shape ``(*constants shape, len(starts))`` (float64 numbers
        from float32 rollouts).

    Examples
    --------
    >>> gap = aligned_return_gap(0.1, 0.2, 0.5, 0.5, 1.0, 1.0, 2, starts=[0.0, 1.0])
    >>> np.round(gap, 5).tolist()
    [0.45, 0.45]
    """
    ed, er, lf, lr, lp = _constants(
        eps_dynamics=eps_dynamics,
        eps_reward=eps_reward,
        lip_dynamics=lip_dynamics,
        lip_reward=lip_reward,
        lip_policy=lip_policy,
    )
    _gamma_horizon(gamma, horizon)
    s0 = np.asarray(starts, dtype=np.float64).ravel()
    if s0.size < 1 or not np.all(np.isfinite(s0)):
        raise ValueError(f"starts must be finite numbers, got {starts!r}")
    shape = ed.shape
    f32 = lambda a: jnp.asarray(a.ravel(), jnp.float32)  # noqa: E731
    gap = _aligned_gaps(
        f32(ed),
        f32(er),
        f32(lf),
        f32(lr),
        f32(lp),
        jnp.asarray(s0[:, None], jnp.float32),
        float(gamma),
        int(horizon),
    )
    return np.asarray(gap, dtype=np.float64).reshape(*shape, s0.size)


@partial(jax.jit, static_argnums=(6, 7))
def _aligned_gaps(ed, er, lf, lr, lp, s0, gamma, horizon):
    run = make_rollout(
        _models.affine_dynamics,
        _models.affine_reward,
        _policies.linear,
        horizon=horizon,
        gamma=gamma,
    )
    key = jax.random.key(0)

    def one(e_d, e_r, p, l, k):  # noqa: E741
        zero = jnp.zeros((), jnp.float32)
        K = jnp.reshape(k, (1, 1))
        imagined = run((p, e_d), (l, e_r), K, s0, key).returns
        true = run((p, zero), (l, zero), K, s0, key).returns
        return imagined - true

    return jax.vmap(one)(ed, er, lf, lr, lp)


def tight_system_gap(
    eps_dynamics: Any,
    eps_reward: Any,
    lip_closed_loop: Any,
    lip_reward_closed_loop: Any,
    gamma: float,
    horizon: int,
) -> np.ndarray:
    """Imagined-minus-true return of the system that attains the certificate with ``L_pi = 0``.

    :func:`aligned_return_gap` with ``lip_policy = 0`` from ``s_0 = 0``: the true world is
    ``s' = L s``, ``r = l s`` and the learned models add ``eps_d`` and ``eps_r``, so the engine
    iterates ``delta_{t+1} = L delta_t + eps_d``, the recursion that the certificate sums (a
    consistency check of the closed form, not an independent test).

    Parameters
    ----------
    eps_dynamics, eps_reward, lip_closed_loop, lip_reward_closed_loop:
        Arrays of one shape (one entry per run), all ``>= 0``.
    gamma, horizon:
        Discount in ``[0, 1]`` and number of steps ``>= 1``.

    Returns
    -------
    numpy.ndarray
        ``J_hat - J`` per run (float64 numbers from a float32 rollout).

    Examples
    --------
    >>> round(float(tight_system_gap([0.1], [0.2], [1.0], [0.5], 1.0, 2)[0]), 5)
    0.45
    """
    ed, er, lc, lr = _constants(
        eps_dynamics=eps_dynamics,
        eps_reward=eps_reward,
        lip_closed_loop=lip_closed_loop,
        lip_reward_closed_loop=lip_reward_closed_loop,
    )
    return aligned_return_gap(ed, er, lc, lr, 0.0, gamma, horizon)[..., 0]


# ============================================================================= reading seeds
class Comparison(NamedTuple):
    """A paired comparison over seeds, read from its interval.

    Attributes
    ----------
    mean, half_width:
        Mean of ``a - b`` over the seeds and the half-width of its two-sided ``t``-interval.
    n:
        Number of seeds.
    verdict:
        One sentence whose wording follows the interval: which option did better and by how
        much when the interval excludes zero, else that the seeds cannot tell them apart.
    """

    mean: float
    half_width: float
    n: int
    verdict: str

    def __str__(self) -> str:
        """The verdict, wrapped to the page's column (79 characters)."""
        return textwrap.fill(self.verdict, 79)


def compare_paired(
    a: Any,
    b: Any,
    names: tuple[str, str] = ("a", "b"),
    *,
    level: float = 0.95,
    digits: int = 3,
) -> Comparison:
    """Compare two options run on the same seeds (``a[i]`` and ``b[i]`` share seed ``i``).

    Parameters
    ----------
    a, b:
        ``(n,)`` outcomes (larger is better), ``n >= 2``.
    names:
        How the verdict names the two options.
    level:
        Confidence level of the ``t``-interval, in ``(0, 1)``.
    digits:
        Decimals of the numbers in the verdict.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> compare_paired([1.0, 1.1, 0.9], [0.0, 0.1, 0.0], ("new", "old")).verdict
    'new did better than old by 0.967 ± 0.143 (95% interval over 3 seeds)'
    """
    from scipy import stats

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"a and b must be 1-D of one length, got {x.shape} and {y.shape}"
        )
    if x.size < 2:
        raise ValueError(f"a needs at least 2 seeds, got {x.size}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise ValueError("a and b must be finite")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    d = x - y
    n = int(d.size)
    mean = float(d.mean())
    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    half = q * float(d.std(ddof=1)) / np.sqrt(n)
    pct = f"{100 * level:.0f}%"
    tail = f"({pct} interval over {n} seeds)"
    if mean - half > 0 or mean + half < 0:
        win, lose = names if mean > 0 else names[::-1]
        verdict = (
            f"{win} did better than {lose} by {abs(mean):.{digits}f} "
            f"± {half:.{digits}f} {tail}"
        )
    else:
        verdict = (
            f"the seeds cannot tell {names[0]} from {names[1]}: the "
            f"difference is {mean:+.{digits}f} ± {half:.{digits}f} {tail}, "
            "an interval that contains zero"
        )
    return Comparison(mean, float(half), n, verdict)


# ============================================================================= plan and certify
class Plan(NamedTuple):
    """The split of a budget chosen from learning curves and a pilot (:func:`plan_budget`).

    Attributes
    ----------
    sizes:
        ``(k,)`` learning-curve sample sizes.
    eps_dynamics, eps_reward:
        ``(k, seeds)`` sup errors of the two models on a test sample of the data box.
    law_dynamics, law_reward:
        Power laws fitted to the means over seeds
        (:func:`imagination.allocation.fit_power_law`).
    lip_closed_loop, lip_reward_closed_loop:
        Medians over the pilot runs of the closed-loop constants of the pathwise gains.
    weights:
        ``(w_d, w_r)``: the finite-horizon bound at unit errors (its partial derivatives).
    allocation:
        The bound-optimal split (:func:`imagination.allocation.optimal_allocation`).
    n_dynamics, n_reward:
        The split rounded to whole samples (``n_dynamics + n_reward = budget``).
    budget:
        The number of real samples (a transition and a label cost the same).
    """

    sizes: np.ndarray
    eps_dynamics: np.ndarray
    eps_reward: np.ndarray
    law_dynamics: Any
    law_reward: Any
    lip_closed_loop: float
    lip_reward_closed_loop: float
    weights: tuple
    allocation: Any
    n_dynamics: int
    n_reward: int
    budget: int


def plan_budget(
    pipe: Pipeline, budget: int, sizes: Any, seeds: int, key: Array
) -> Plan:
    """Choose the split of ``budget`` real samples that minimises the certificate's bound.

    Three steps, each batched over seeds: fit both models at every size in ``sizes`` and fit
    power laws to the mean sup errors; run a *pilot* (the whole pipeline at the largest size)
    to estimate the closed-loop constants of the policy that will be trained; take the
    weights ``w_d, w_r`` of the finite-horizon bound (:func:`imagination.bounds.return_error_bound`
    at unit errors, closed-loop constants, ``L_pi = 0``) and split the budget with
    :func:`imagination.allocation.optimal_allocation`.

    Parameters
    ----------
    pipe:
        The pipeline (:func:`make_pipeline`).
    budget:
        Real samples to split, ``2 <= budget <= pipe.model_config.pool``.
    sizes:
        At least two increasing learning-curve sizes in ``[1, pool]``.
    seeds:
        Seeds per size (and pilot runs), ``>= 1``.
    key:
        PRNG key.

    Returns
    -------
    Plan
    """
    from . import allocation as _allocation
    from . import bounds as _bounds

    pool = pipe.model_config.pool
    sizes = np.asarray(sizes)
    if (
        sizes.ndim != 1
        or sizes.size < 2
        or np.any(np.diff(sizes) <= 0)
        or sizes[0] < 1
        or sizes[-1] > pool
    ):
        raise ValueError(
            f"sizes must be >= 2 increasing sizes in [1, {pool}], got {sizes!r}"
        )
    if (
        isinstance(budget, bool)
        or int(budget) != budget
        or not 2 <= budget <= pool
    ):
        raise ValueError(
            f"budget must be an integer in [2, {pool}], got {budget!r}"
        )
    if isinstance(seeds, bool) or int(seeds) != seeds or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    k_curve, k_pilot = jax.random.split(key)
    n_rep = np.repeat(sizes, seeds)  # every size, every seed: one batch axis
    curve_keys = jax.random.split(k_curve, n_rep.size)
    dyn, rew = pipe.fit_models(curve_keys, n_rep, n_rep)
    e_d, e_r = (
        np.asarray(e, np.float64).reshape(sizes.size, seeds)
        for e in pipe.model_errors(curve_keys, dyn, rew)
    )
    law_d = _allocation.fit_power_law(sizes, e_d.mean(axis=1))
    law_r = _allocation.fit_power_law(sizes, e_r.mean(axis=1))
    full = np.full(seeds, sizes[-1])
    pilot = pipe.end_to_end(jax.random.split(k_pilot, seeds), full, full)
    lip_cl = float(np.median(pilot.reparam.lip_closed_loop))
    lip_rcl = float(np.median(pilot.reparam.lip_reward_closed_loop))
    task = pipe.task
    w_d, w_r = (
        _bounds.return_error_bound(
            e_d1, e_r1, lip_cl, lip_rcl, 0.0, task.gamma, task.horizon
        )
        for e_d1, e_r1 in ((1.0, 0.0), (0.0, 1.0))  # unit errors
    )
    split = _allocation.optimal_allocation(
        budget, law_d, law_r, weight_dynamics=w_d, weight_reward=w_r
    )
    n_d = int(np.clip(round(split.n_dynamics), 1, budget - 1))
    return Plan(
        sizes,
        e_d,
        e_r,
        law_d,
        law_r,
        lip_cl,
        lip_rcl,
        (w_d, w_r),
        split,
        n_d,
        int(budget) - n_d,
        int(budget),
    )


def certificates(
    evaluation: Evaluation, task: Task, *, separate: bool = False
) -> np.ndarray:
    """The certificate ``E_pi`` of every run of an :class:`Evaluation` (chapter 9's theorem).

    Parameters
    ----------
    evaluation:
        The runs (``Pipeline.evaluate`` or a field of :class:`Result`).
    task:
        The task (its discount and horizon).
    separate:
        ``False``: the closed-loop constants ``L_cl``, ``l_cl`` with ``L_pi = 0`` (the theorem's
        form). ``True``: chapter 3's bound with the separate constants ``L_f``, ``L_r``,
        ``L_pi``.

    Returns
    -------
    numpy.ndarray
        ``(runs,)`` bounds on ``max_{s_0} |J_hat(s_0) - J(s_0)|``
        (:func:`imagination.bounds.return_error_bound`, evaluated exactly).
    """
    from . import bounds as _bounds

    if not isinstance(evaluation, Evaluation):
        raise ValueError(
            f"evaluation must be an Evaluation, got {type(evaluation).__name__}"
        )
    ev = evaluation
    cols = (
        (ev.lip_dynamics, ev.lip_reward, ev.lip_policy)
        if separate
        else (
            ev.lip_closed_loop,
            ev.lip_reward_closed_loop,
            np.zeros(np.shape(ev.eps_dynamics)),
        )
    )
    rows = zip(ev.eps_dynamics, ev.eps_reward, *cols)
    return np.array(
        [
            _bounds.return_error_bound(
                *(float(x) for x in row), task.gamma, task.horizon
            )
            for row in rows
        ]
    )
