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

Two factories build whole experiments as jitted pure functions (PureJaxRL's ``make_train`` style):
:func:`make_gradient_sampler` draws many independent single-rollout estimates (to measure the
estimator's mean and variance), and :func:`make_train_policy` runs REINFORCE with optax for a fixed
number of updates on imagined rollouts and returns the whole parameter path. Both are
``vmap``-pable over seeds and over the label-noise level. :func:`bias_check` is a regression
F-test (or, with ``robust=True``, an HC3 Wald test valid under heteroscedastic noise) that
detects state- or action-dependent label bias from a small clean label set.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy as sp

from .rollout import discounted_returns, make_rollout

__all__ = [
    "step_scores",
    "cumulative_scores",
    "rewards_to_go",
    "reinforce_gradients",
    "noisy_labels",
    "noise_factor_samples",
    "noise_variance_term",
    "flatten_gradients",
    "as_optimizer",
    "loo_baseline",
    "GradientSample",
    "make_gradient_sampler",
    "TrainResult",
    "make_train_policy",
    "BiasCheck",
    "bias_check",
    "fixed_std_gaussian",
    "normal_moment",
    "uniform_moment",
    "expect_polynomial",
    "replicate_variance",
    "SymbolicLQ",
    "symbolic_lq",
]

Array = jax.Array
LogProb = Callable[[Any, Array, Array], Array]


def step_scores(
    log_prob: LogProb, policy_params: Any, states: Array, actions: Array
) -> Any:
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
    return jax.vmap(
        jax.vmap(grad, in_axes=(None, 0, 0)), in_axes=(None, 0, 0)
    )(policy_params, states, actions)


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
        ``None``, a scalar, an array broadcastable to ``(batch, H)`` subtracted from ``G_t`` (it must
        not depend on the action it multiplies), or ``"loo"`` for the leave-one-out batch mean of
        ``G_t`` (:func:`loo_baseline`; it uses only the *other* rollouts, so it keeps every
        estimate unbiased).

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
    if isinstance(baseline, str) and baseline != "loo":
        raise ValueError(
            f"baseline must be None, a number, an array or 'loo', got {baseline!r}"
        )
    scores = step_scores(log_prob, policy_params, states, actions)
    G = rewards_to_go(rewards, gamma)
    if isinstance(baseline, str):
        G = G - loo_baseline(G)
    elif baseline is not None:
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
    actions: Array | None = None,
) -> Array:
    """Corrupt reward labels: ``r~ = r + bias(s) + sigma * scale(s) * xi``.

    With ``actions`` given, the callables are called as ``bias(s, a)`` and ``scale(s, a)`` instead
    (noise whose mean or size depends on the action as well as the state).

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
    actions:
        ``(batch, H, da)``; when given, ``bias`` and ``scale`` are functions of ``(s, a)``.

    ``sigma`` may be a traced value (so the function can be ``vmap``-ped over noise levels); the
    sign check then applies only to concrete values.
    """
    _check_nonnegative("sigma", sigma)
    draw = jax.random.normal if sampler is None else sampler
    xi = draw(key, rewards.shape).astype(rewards.dtype)
    H = rewards.shape[1]
    if actions is not None and actions.shape[:2] != rewards.shape:
        raise ValueError(
            f"actions must have leading shape (batch, H) = {rewards.shape}, got {actions.shape}"
        )

    def per_state(fn):
        if states is None:
            raise ValueError(
                "states must be given when bias or scale is a function of the state"
            )
        if actions is None:
            return jax.vmap(jax.vmap(fn))(states[:, :H]).astype(rewards.dtype)
        return jax.vmap(jax.vmap(fn))(states[:, :H], actions).astype(
            rewards.dtype
        )

    b = per_state(bias) if callable(bias) else jnp.asarray(bias, rewards.dtype)
    sc = per_state(scale) if scale is not None else jnp.ones((), rewards.dtype)
    return rewards + b + sigma * sc * xi


def flatten_gradients(grads: Any) -> Array:
    """Flatten a batched gradient pytree to an array ``(batch, n_params)``."""
    leaves = jax.tree_util.tree_leaves(grads)
    return jnp.concatenate([x.reshape(x.shape[0], -1) for x in leaves], axis=1)


def noise_factor_samples(
    scores: Any, gamma: float, weights: Array | None = None
) -> Array:
    """Per-rollout summands of the noise factor: ``sum_t gamma^(2t) w_t ||Psi_t||^2``.

    Their mean estimates ``G = sum_t gamma^(2t) E||Psi_t||^2`` (``weights=None``), and their
    spread gives the Monte-Carlo standard error of that estimate. With ``weights`` the squared
    noise scales ``sigma(s_t, a_t)^2`` of heteroscedastic labels, ``sigma^2`` times their mean is
    the variance such label noise adds to one rollout's estimate.

    Parameters
    ----------
    scores:
        Per-step scores from :func:`step_scores` (leading axes ``(batch, H)``).
    gamma:
        Discount in ``[0, 1]``.
    weights:
        Optional ``(batch, H)`` non-negative weights ``w_t``; all ones by default.

    Returns
    -------
    ``(batch,)`` array.
    """
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    Psi = cumulative_scores(scores)
    sq = sum(
        jnp.sum(x.reshape(x.shape[0], x.shape[1], -1) ** 2, axis=-1)
        for x in jax.tree_util.tree_leaves(Psi)
    )  # (batch, H)
    if weights is not None:
        if weights.shape != sq.shape:
            raise ValueError(
                f"weights must have shape (batch, H) = {sq.shape}, got {weights.shape}"
            )
        sq = sq * weights.astype(sq.dtype)
    H = sq.shape[1]
    disc2 = gamma ** (2 * jnp.arange(H, dtype=sq.dtype))
    return sq @ disc2


def noise_variance_term(
    scores: Any, gamma: float, sigma: float = 1.0
) -> Array:
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
    _check_nonnegative("sigma", sigma)
    return sigma**2 * jnp.mean(noise_factor_samples(scores, gamma))


# ----------------------------------------------------------------------------- helpers
def _check_nonnegative(name: str, value: Any) -> None:
    """Raise ``ValueError`` when a *concrete* value is negative (traced values pass through)."""
    if isinstance(value, jax.core.Tracer):
        return
    if float(np.min(np.asarray(value))) < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _masked(tree: Any, mask: Any) -> Any:
    """Zero the leaves of ``tree`` where the boolean pytree ``mask`` is False (``None``: all kept)."""
    if mask is None:
        return tree
    return jax.tree_util.tree_map(
        lambda x, m: jnp.where(m, x, 0.0), tree, mask
    )


def _ascent_step(
    opt: optax.GradientTransformation,
    grads: Any,
    opt_state: Any,
    params: Any,
    mask: Any = None,
) -> tuple[Any, Any]:
    """One optax step of gradient *ascent* along ``grads``; masked-out leaves stay fixed."""
    upd, opt_state = opt.update(
        _masked(jax.tree_util.tree_map(jnp.negative, grads), mask),
        opt_state,
        params,
    )
    return optax.apply_updates(params, _masked(upd, mask)), opt_state


def _append_final(path: Any, last: Any) -> Any:
    """A scanned parameter path ``(steps, ...)`` with the final parameters appended."""
    return jax.tree_util.tree_map(
        lambda xs, x: jnp.concatenate([xs, x[None]], axis=0), path, last
    )


def as_optimizer(
    optimizer: optax.GradientTransformation | float,
) -> optax.GradientTransformation:
    """An optax transformation as given, or ``optax.adam`` with a learning rate given as a number."""
    if isinstance(optimizer, bool):
        raise ValueError(
            f"optimizer must be an optax transformation or a learning rate, got {optimizer!r}"
        )
    if isinstance(optimizer, (int, float)):
        if optimizer <= 0:
            raise ValueError(
                f"optimizer (a learning rate) must be positive, got {optimizer!r}"
            )
        return optax.adam(float(optimizer))
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    raise ValueError(
        f"optimizer must be an optax.GradientTransformation or a learning rate, got {optimizer!r}"
    )


def loo_baseline(G: Array) -> Array:
    """Leave-one-out baseline: for rollout ``i``, the mean of ``G_t`` over the *other* rollouts.

    ``b_{i,t} = (sum_j G_{j,t} - G_{i,t}) / (N - 1)`` for ``G`` of shape ``(N, H)``. Since
    ``b_i`` depends only on rollouts ``j != i``, which are independent of rollout ``i``, subtracting
    it leaves each single-rollout estimate unbiased (a plain batch mean would not, by ``O(1/N)``).
    With ``N = 1`` the baseline is zero.
    """
    n = G.shape[0]
    if n == 1:
        return jnp.zeros_like(G)
    return (jnp.sum(G, axis=0, keepdims=True) - G) / (n - 1)


LabelFn = Callable[[Any, Array, Array], Array]


def _make_labeller(
    label_bias: LabelFn | None,
    noise_scale: LabelFn | None,
    sampler: Callable[[Array, tuple[int, ...]], Array] | None,
):
    def labels(key, traj, sigma, label_params):
        bias = (
            0.0
            if label_bias is None
            else (lambda s, a: label_bias(label_params, s, a))
        )
        scale = (
            None
            if noise_scale is None
            else (lambda s, a: noise_scale(label_params, s, a))
        )
        return noisy_labels(
            key,
            traj.rewards,
            traj.states,
            sigma=sigma,
            bias=bias,
            scale=scale,
            sampler=sampler,
            actions=traj.actions,
        )

    return labels


def _scores_to_grads(scores: Any, G: Array) -> Any:
    return jax.tree_util.tree_map(
        lambda x: jnp.einsum("bt,bt...->b...", G.astype(x.dtype), x), scores
    )


# ----------------------------------------------------------------------------- gradient sampler
class GradientSample(NamedTuple):
    """Independent single-rollout REINFORCE estimates and the quantities that explain them.

    Attributes
    ----------
    grads:
        Pytree shaped like the policy parameters with a leading ``n_rollouts`` axis: one estimate
        per rollout (average them for the ``N``-rollout estimator).
    noise_factor:
        Scalar: the Monte-Carlo estimate of ``G = sum_t gamma^(2t) E||Psi_t||^2`` from these
        rollouts (:func:`noise_variance_term` with ``sigma = 1``).
    returns:
        ``(n_rollouts,)`` discounted returns of the clean rewards.
    label_returns:
        ``(n_rollouts,)`` discounted returns of the (noisy) labels the estimate used.
    noise_factors:
        ``(n_rollouts,)`` per-rollout ``sum_t gamma^(2t) scale(s_t, a_t)^2 ||Psi_t||^2``
        (:func:`noise_factor_samples`; ``scale = 1`` without ``noise_scale``): ``sigma^2`` times
        their mean is the variance the label noise adds to one rollout's estimate, and their
        spread gives its standard error.
    """

    grads: Any
    noise_factor: Array
    returns: Array
    label_returns: Array
    noise_factors: Array


def make_gradient_sampler(
    dynamics: Callable,
    reward: Callable,
    policy: Callable,
    log_prob: LogProb,
    sample_start: Callable[[Array, int], Array],
    *,
    horizon: int,
    gamma: float = 1.0,
    n_rollouts: int,
    baseline: Array | float | str | None = None,
    label_bias: LabelFn | None = None,
    noise_scale: LabelFn | None = None,
    sampler: Callable[[Array, tuple[int, ...]], Array] | None = None,
) -> Callable[..., GradientSample]:
    """Build a jitted function drawing ``n_rollouts`` independent single-rollout estimates.

    Parameters
    ----------
    dynamics, reward, policy:
        Step functions of :mod:`imagination.rollout` (true or learned models); ``reward`` gives the
        *clean* labels.
    log_prob:
        ``log_prob(policy_params, s, a) -> scalar`` of ``policy``.
    sample_start:
        ``sample_start(key, n) -> (n, state_dim)`` start states (e.g.
        ``functools.partial(env.sample_start, env.params)``).
    horizon, gamma:
        Imagined horizon ``H`` and discount.
    n_rollouts:
        Number of rollouts (static).
    baseline:
        As in :func:`reinforce_gradients`. ``"loo"`` makes the estimates of one call dependent on
        each other (their average is still unbiased).
    label_bias, noise_scale:
        Optional ``fn(label_params, s, a) -> scalar``: the mean and the scale of the label noise,
        ``r~ = r + label_bias + sigma * noise_scale * xi`` (see :func:`noisy_labels`).
    sampler:
        Zero-mean, unit-variance noise ``sampler(key, shape)``; standard normal by default.

    Returns
    -------
    sample(dyn_params, rew_params, pol_params, key, sigma=0.0, label_params=None) -> GradientSample
        Pure and jitted; ``vmap`` it over keys (repeats), ``sigma`` or ``label_params``.
    """
    n = _check_count("n_rollouts", n_rollouts)
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if isinstance(baseline, str) and baseline != "loo":
        raise ValueError(
            f"baseline must be None, a number, an array or 'loo', got {baseline!r}"
        )
    run = make_rollout(dynamics, reward, policy, horizon=horizon, gamma=gamma)
    labels = _make_labeller(label_bias, noise_scale, sampler)
    gamma = float(gamma)

    @jax.jit
    def sample(
        dyn_params, rew_params, pol_params, key, sigma=0.0, label_params=None
    ):
        k_start, k_roll, k_label = jax.random.split(key, 3)
        traj = run(
            dyn_params,
            rew_params,
            pol_params,
            sample_start(k_start, n),
            k_roll,
        )
        r = labels(k_label, traj, sigma, label_params)
        scores = step_scores(log_prob, pol_params, traj.states, traj.actions)
        G = rewards_to_go(r, gamma)
        if isinstance(baseline, str):
            G = G - loo_baseline(G)
        elif baseline is not None:
            G = G - baseline
        grads = _scores_to_grads(scores, G)
        weights = None
        if noise_scale is not None:
            H = traj.actions.shape[1]
            sc = jax.vmap(
                jax.vmap(lambda s, a: noise_scale(label_params, s, a))
            )(traj.states[:, :H], traj.actions)
            weights = sc.astype(r.dtype) ** 2
        return GradientSample(
            grads,
            noise_variance_term(scores, gamma, 1.0),
            traj.returns,
            discounted_returns(r, gamma),
            noise_factor_samples(scores, gamma, weights),
        )

    return sample


# ----------------------------------------------------------------------------- training loop
class TrainResult(NamedTuple):
    """The path of a REINFORCE run in imagination.

    Attributes
    ----------
    params:
        Policy parameters with a leading axis of length ``steps + 1`` (start, then after each
        update).
    returns:
        ``(steps,)`` mean discounted *clean* return of the imagined rollouts used at each update
        (under the reward function given to the factory, before label noise).
    label_returns:
        ``(steps,)`` the same with the noisy labels the updates actually saw.
    """

    params: Any
    returns: Array
    label_returns: Array


def make_train_policy(
    dynamics: Callable,
    reward: Callable,
    policy: Callable,
    log_prob: LogProb,
    sample_start: Callable[[Array, int], Array],
    *,
    horizon: int,
    gamma: float = 1.0,
    n_rollouts: int,
    steps: int,
    optimizer: optax.GradientTransformation | float = 1e-2,
    baseline: Array | float | str | None = "loo",
    label_bias: LabelFn | None = None,
    noise_scale: LabelFn | None = None,
    sampler: Callable[[Array, tuple[int, ...]], Array] | None = None,
    mask: Any = None,
) -> Callable[..., TrainResult]:
    """Build a jitted REINFORCE training run in imagination (``lax.scan`` over updates).

    Each update draws ``n_rollouts`` start states, rolls the current policy through ``dynamics``
    (true or learned) with :func:`imagination.rollout.make_rollout`, labels the steps with
    ``reward`` corrupted by :func:`noisy_labels`, forms the ``N``-rollout reward-to-go estimate
    (with a baseline) and takes one optax step of gradient *ascent*.

    Parameters
    ----------
    dynamics, reward, policy, log_prob, sample_start, horizon, gamma:
        As in :func:`make_gradient_sampler`.
    n_rollouts:
        Rollouts per update ``N`` (static).
    steps:
        Number of updates (static).
    optimizer:
        An ``optax.GradientTransformation`` or a learning rate for ``optax.adam``.
    baseline:
        ``"loo"`` (default, leave-one-out batch mean), ``None``, or a number / array.
    label_bias, noise_scale, sampler:
        Label-noise model (see :func:`make_gradient_sampler`).
    mask:
        Optional pytree of booleans shaped like the policy parameters; leaves marked ``False`` are
        not trained (e.g. a Gaussian policy's fixed ``log_std``).

    Returns
    -------
    train(dyn_params, rew_params, pol_params, key, sigma=0.0, label_params=None) -> TrainResult
        Pure and jitted; ``vmap`` it over keys (seeds), ``sigma`` or ``label_params``.

    Examples
    --------
    >>> import functools, jax.numpy as jnp
    >>> from imagination import envs, policies
    >>> env = envs.linear_system([[1.0]], [[0.5]])
    >>> train = make_train_policy(env.dynamics, env.reward, policies.gaussian_linear,
    ...     policies.gaussian_linear_log_prob, functools.partial(env.sample_start, env.params),
    ...     horizon=5, gamma=0.9, n_rollouts=64, steps=100, optimizer=0.05,
    ...     mask=(True, False))
    >>> out = train(env.params, env.params, (jnp.zeros((1, 1)), jnp.log(0.3) * jnp.ones(1)),
    ...             jax.random.key(0), 0.5)
    >>> out.params[0].shape
    (101, 1, 1)
    """
    n = _check_count("n_rollouts", n_rollouts)
    steps = _check_count("steps", steps)
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma!r}")
    if isinstance(baseline, str) and baseline != "loo":
        raise ValueError(
            f"baseline must be None, a number, an array or 'loo', got {baseline!r}"
        )
    opt = as_optimizer(optimizer)
    sampler_fn = make_gradient_sampler(
        dynamics,
        reward,
        policy,
        log_prob,
        sample_start,
        horizon=horizon,
        gamma=gamma,
        n_rollouts=n,
        baseline=baseline,
        label_bias=label_bias,
        noise_scale=noise_scale,
        sampler=sampler,
    )

    @jax.jit
    def train(
        dyn_params, rew_params, pol_params, key, sigma=0.0, label_params=None
    ):
        opt_state = opt.init(pol_params)

        def update(carry, k):
            p, state = carry
            est = sampler_fn(dyn_params, rew_params, p, k, sigma, label_params)
            g = jax.tree_util.tree_map(
                lambda x: jnp.mean(x, axis=0), est.grads
            )
            p_new, state = _ascent_step(opt, g, state, p, mask)
            return (p_new, state), (
                p,
                jnp.mean(est.returns),
                jnp.mean(est.label_returns),
            )

        (p_last, _), (path, rets, lrets) = jax.lax.scan(
            update, (pol_params, opt_state), jax.random.split(key, steps)
        )
        return TrainResult(_append_final(path, p_last), rets, lrets)

    return train


# ----------------------------------------------------------------------------- bias detection
class BiasCheck(NamedTuple):
    """Result of :func:`bias_check`.

    Attributes
    ----------
    statistic:
        The F statistic.
    p_value:
        Its p-value under the null (Gaussian, homoscedastic label noise with zero mean, or with a
        mean that does not depend on the features when ``test="slopes"``).
    coef:
        Least-squares coefficients ``(intercept, features...)`` of the differences.
    df:
        ``(numerator, denominator)`` degrees of freedom.
    """

    statistic: Array
    p_value: Array
    coef: Array
    df: tuple[Any, Any]


def bias_check(
    differences: Array,
    features: Array,
    *,
    test: str = "slopes",
    n_valid: int | Array | None = None,
    robust: bool = False,
) -> BiasCheck:
    """Regression F-test for label bias on a small clean label set.

    Given ``n`` states (and actions) labelled both ways, regress the differences
    ``d_i = noisy_i - clean_i`` on ``[1, features_i]`` and test

    * ``test="slopes"``: the feature coefficients are zero (the bias does not depend on the state /
      action, so it cannot bias the policy gradient: a constant bias is harmless, chapter
      *Biased reward labels*), or
    * ``test="all"``: all coefficients, intercept included, are zero (no bias at all).

    Parameters
    ----------
    differences:
        ``(n,)`` noisy-minus-clean labels.
    features:
        ``(n, p)`` features of the labelled pairs (e.g. ``s^2``, ``a^2``, ``s a``).
    test:
        ``"slopes"`` or ``"all"``.
    n_valid:
        Use only the first ``n_valid`` rows (may be traced, so one compiled function can be
        ``vmap``-ped over data-set sizes); all rows by default.
    robust:
        ``False`` (default): the classical F-test, exact for Gaussian homoscedastic noise.
        ``True``: a Wald test with the heteroscedasticity-consistent HC3 covariance
        (MacKinnon and White 1985), ``W = c' V_HC3^{-1} c`` for the tested coefficients ``c``,
        referred to ``chi^2(q)``; asymptotically valid when the noise variance depends on the
        features, at the price of a size that is only approximately ``alpha`` at small ``n``.

    Returns
    -------
    BiasCheck
        Jittable and ``vmap``-pable over data sets (``test`` and ``robust`` are static). Reject at
        level ``alpha`` when ``p_value < alpha``; the false-alarm rate is exactly ``alpha`` for
        Gaussian homoscedastic noise (``robust=False``). Either test sees only the part of the
        bias that its features (and the intercept) can express: a bias uncorrelated with every
        feature is invisible to it. For ``robust=True`` the statistic is ``W`` and
        ``df = (q, inf)``.
    """
    if test not in ("slopes", "all"):
        raise ValueError(f"test must be 'slopes' or 'all', got {test!r}")
    if differences.ndim != 1:
        raise ValueError(
            f"differences must have shape (n,), got {differences.shape}"
        )
    if features.ndim != 2 or features.shape[0] != differences.shape[0]:
        raise ValueError(
            f"features must have shape (n, p) with n = {differences.shape[0]}, got {features.shape}"
        )
    n, p = features.shape
    if n_valid is None:
        n_valid = n
    if (
        not isinstance(n_valid, jax.core.Tracer)
        and not p + 1 < int(n_valid) <= n
    ):
        raise ValueError(
            f"need more samples than regressors and at most n: n_valid = {n_valid}, "
            f"p + 1 = {p + 1}, n = {n}"
        )
    dtype = differences.dtype
    w = (jnp.arange(n) < n_valid).astype(dtype)
    X = (
        jnp.concatenate([jnp.ones((n, 1), dtype), features], axis=1)
        * w[:, None]
    )
    d = differences * w
    coef = jnp.linalg.lstsq(X, d)[0]
    rss1 = jnp.sum(w * (d - X @ coef) ** 2)
    nv = jnp.asarray(n_valid, dtype)
    if test == "slopes":
        rss0 = jnp.sum(w * (d - jnp.sum(d) / nv) ** 2)
        d1 = p
    else:
        rss0 = jnp.sum(d**2)
        d1 = p + 1
    d2 = nv - p - 1
    if robust:
        return _hc3_wald(X, d, coef, test, d1)
    F = ((rss0 - rss1) / d1) / (rss1 / d2)
    # survival function of F(d1, d2): I_{d2 / (d2 + d1 F)}(d2 / 2, d1 / 2)
    pval = jax.scipy.special.betainc(d2 / 2.0, d1 / 2.0, d2 / (d2 + d1 * F))
    return BiasCheck(F, pval, coef, (d1, d2))


def _hc3_wald(X: Array, d: Array, coef: Array, test: str, q: int) -> BiasCheck:
    """Wald test of the slopes (or all coefficients) with the HC3 covariance.

    Rows of ``X`` that are all zero (masked out) have zero residual and leverage and contribute
    nothing.
    """
    XtX_inv = jnp.linalg.inv(X.T @ X)
    resid = d - X @ coef
    lev = jnp.einsum("ij,jk,ik->i", X, XtX_inv, X)
    u2 = (resid / (1.0 - lev)) ** 2
    cov = XtX_inv @ (X.T @ (u2[:, None] * X)) @ XtX_inv
    sel = slice(1, None) if test == "slopes" else slice(None)
    c = coef[sel]
    W = c @ jnp.linalg.solve(cov[sel, sel], c)
    pval = jax.scipy.special.gammaincc(q / 2.0, W / 2.0)
    return BiasCheck(W, pval, coef, (q, jnp.inf))


# ----------------------------------------------------------------------------- small pieces
def fixed_std_gaussian(log_std: float | Array) -> tuple[Callable, LogProb]:
    """A linear Gaussian policy whose only parameter is the gain ``K``.

    Returns ``(policy, log_prob)`` with ``policy(K, s, key) ~ N(K s, exp(log_std)^2)`` and its
    ``log_prob(K, s, a)``, built on :func:`imagination.policies.gaussian_linear`. Score-function
    estimates then differentiate with respect to ``K`` alone, which is what the scalar
    linear-quadratic examples of the book need.
    """
    from .policies import gaussian_linear, gaussian_linear_log_prob

    log_std = jnp.asarray(log_std, jnp.float32)

    def policy(K: Array, s: Array, key: Array) -> Array:
        return gaussian_linear((K, log_std), s, key)

    def log_prob(K: Array, s: Array, a: Array) -> Array:
        return gaussian_linear_log_prob((K, log_std), s, a)

    return policy, log_prob


def normal_moment(k: int) -> sp.Expr:
    """``E[xi^k]`` for a standard normal ``xi``: 0 for odd ``k``, ``(k - 1)!!`` for even ``k``."""
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return sp.Integer(0) if k % 2 else sp.factorial2(k - 1)


def uniform_moment(k: int, half_width: Any = 1) -> sp.Expr:
    """``E[U^k]`` for ``U ~ Uniform(-c, c)``: 0 for odd ``k``, ``c^k / (k + 1)`` for even ``k``."""
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    c = sp.sympify(half_width)
    return sp.Integer(0) if k % 2 else c**k / (k + 1)


def expect_polynomial(poly: sp.Poly, moments: dict) -> sp.Expr:
    """Exact expectation of a polynomial in *independent* random variables.

    Parameters
    ----------
    poly:
        A :class:`sympy.Poly` whose generators are random variables (its coefficients may contain
        other symbols, e.g. ``theta``).
    moments:
        ``{variable: k -> E[variable^k]}`` for every generator of ``poly`` (e.g.
        :func:`normal_moment`, :func:`uniform_moment`).

    Returns
    -------
    The expanded expectation ``sum_monomials coeff * prod_v E[v^k_v]``, exact because the variables
    are independent. Building trajectories as ``Poly`` objects (rather than expressions) keeps the
    expansion of squares of whole estimators fast.
    """
    gens = poly.gens
    missing = [g for g in gens if g not in moments]
    if missing:
        raise ValueError(f"moments has no entry for the generators {missing}")
    total = sp.Integer(0)
    for monom, coeff in poly.terms():
        term = coeff
        for g, k in zip(gens, monom):
            if k:
                term = term * moments[g](k)
        total += term
    return sp.expand(total)


def replicate_variance(samples: Any, n: int) -> tuple[float, float, int]:
    """Variance of the ``n``-sample average, estimated from independent single-sample draws.

    The 1-D ``samples`` (e.g. single-rollout gradient estimates) are cut into ``R = len // n``
    disjoint groups of ``n``; the group means are ``R`` independent copies of the ``n``-rollout
    estimator.

    Returns
    -------
    (variance, standard_error, R)
        The unbiased sample variance of the group means and its standard error
        ``sqrt((m4 - v^2) / R)`` (``m4`` the fourth central moment of the group means), the
        usual large-``R`` error of a variance estimate, valid for any distribution with a finite
        fourth moment.
    """
    x = np.asarray(samples, np.float64).ravel()
    n = _check_count("n", n)
    R = x.size // n
    if R < 2:
        raise ValueError(
            f"need at least 2 groups of n = {n}, got {x.size} samples"
        )
    means = x[: R * n].reshape(R, n).mean(axis=1)
    v = means.var(ddof=1)
    m4 = np.mean((means - means.mean()) ** 4)
    return float(v), float(np.sqrt(max(m4 - v**2, 0.0) / R)), int(R)


# ----------------------------------------------------------------------------- exact algebra
class SymbolicLQ(NamedTuple):
    """Chapter 6's scalar linear-quadratic REINFORCE problem as exact polynomials.

    ``s_{t+1} = A s_t + B u_t``, ``u_t = theta s_t + sigma_pi eps_t``, ``r_t = -(q s_t^2 + rho
    u_t^2)``, ``s_0 ~ U(-1, 1)``, labels ``r_t + sigma xi_t``. Every trajectory quantity is a
    :class:`sympy.Poly` in the independent random variables ``gens = (s_0, eps_t..., xi_t...)``
    whose coefficients are polynomials in the parameters; the symbol ``w`` stands for
    ``1 / sigma_pi`` until :meth:`expect` puts it back, which keeps the coefficients polynomial
    (and the expansion of squares of whole estimators fast).
    """

    symbols: dict
    """``theta, gamma, sigma, A, B, q, rho, sigma_pi, w, sigma_0, sigma_1`` by name."""
    horizon: int
    gens: tuple
    """The random variables: ``s_0``, the policy noises ``eps_t`` and label noises ``xi_t``."""
    states: tuple
    """``s_t`` for ``t < H``."""
    rewards: tuple
    """``r_t`` for ``t < H``."""
    scores: tuple
    """``psi_t = d/dtheta log pi(u_t | s_t) = w eps_t s_t``."""
    cum_scores: tuple
    """``Psi_t = sum_{k <= t} psi_k``."""
    g: sp.Poly
    """The clean single-rollout estimate ``sum_t gamma^t r_t Psi_t``."""
    e: sp.Poly
    """The label-noise part: the noisy estimate is ``g + sigma e``, ``e = sum_t gamma^t xi_t
    Psi_t``."""

    def poly(
        self, expr: Any, *extra: sp.Symbol, gens: tuple | None = None
    ) -> sp.Poly:
        """``expr`` as a polynomial in ``gens`` (default :attr:`gens`); ``extra`` symbols (for
        example a baseline ``b``) join the coefficient domain."""
        domain = sp.QQ[(*self.symbols.values(), *extra)]
        return sp.Poly(sp.sympify(expr), *(gens or self.gens), domain=domain)

    def expect(self, poly: sp.Poly) -> sp.Expr:
        """The exact expectation of ``poly`` (``s_0`` uniform on ``[-1, 1]``, every other
        generator standard normal), with ``w = 1 / sigma_pi`` put back."""
        s0 = self.gens[0]
        moments = {
            v: uniform_moment if v == s0 else normal_moment for v in poly.gens
        }
        ex = expect_polynomial(poly, moments)
        S = self.symbols
        return sp.expand(ex.subs(S["w"], 1 / S["sigma_pi"]))


def symbolic_lq(horizon: int) -> SymbolicLQ:
    """Roll chapter 6's linear-quadratic system forward symbolically for ``horizon`` steps.

    Parameters
    ----------
    horizon:
        Number of steps ``H`` (at least 1; the expansion grows quickly, ``H = 3`` takes seconds).

    Returns
    -------
    SymbolicLQ
        States, rewards, scores, cumulative scores and the clean and noise parts of the
        REINFORCE estimate, all symbolic in the system, costs, policy, discount and noise level.
    """
    H = _check_count("horizon", horizon)
    names = "theta gamma sigma A B q rho"
    theta, gamma, sigma, A, B, q, rho = sp.symbols(names, real=True)
    sd, w = sp.symbols("sigma_pi w", positive=True)
    sig0, sig1 = sp.symbols("sigma_0 sigma_1", real=True)
    symbols = dict(
        theta=theta, gamma=gamma, sigma=sigma, A=A, B=B, q=q, rho=rho,
        sigma_pi=sd, w=w, sigma_0=sig0, sigma_1=sig1,
    )  # fmt: skip
    s0 = sp.Symbol("s_0")
    eps = sp.symbols(f"varepsilon_0:{H}")
    xi = sp.symbols(f"xi_0:{H}")
    gens = (s0, *eps, *xi)
    domain = sp.QQ[tuple(symbols.values())]
    P = lambda x: sp.Poly(x, *gens, domain=domain)  # noqa: E731
    s, Psi = P(s0), P(0)
    states, rewards, scores, cum = [], [], [], []
    for t in range(H):
        u = theta * s + P(sd * eps[t])
        psi = s * P(w * eps[t])
        Psi = Psi + psi
        states.append(s)
        rewards.append(-(q * s**2 + rho * u**2))
        scores.append(psi)
        cum.append(Psi)
        s = A * s + B * u
    g = sum(
        (gamma**t * r * Ps for t, (r, Ps) in enumerate(zip(rewards, cum))),
        P(0),
    )
    e = sum(
        (P(gamma**t * x) * Ps for t, (x, Ps) in enumerate(zip(xi, cum))), P(0)
    )
    return SymbolicLQ(
        symbols, H, gens, *map(tuple, (states, rewards, scores, cum)), g, e
    )
