"""A latent world model of the pendulum seen through a 16-dimensional observation.

The agent does not see the pendulum's state ``s = (theta, theta_dot)``. It sees an observation
``o = P [cos theta, sin theta, theta_dot]``, a fixed random projection to :data:`OBS_DIM`
dimensions (:func:`projection`, fixed seed). It learns

* an encoder ``z = e(o)`` (MLP, latent dimension 3 by default) and a decoder ``o = d(z)``,
* latent dynamics ``f_hat(z, a) = z + mlp([z; a])`` (residual, :func:`imagination.models.dynamics_model`),
* a reward head ``r_hat(z, a)`` (:func:`imagination.models.reward_model`),

and imagines in latent space: ``z_0 = e(o(s_0))``, ``z_{t+1} = f_hat(z_t, a_t)``.

Training loss (per window ``(o_t, o_{t+1}, o_{t+2})`` of a true trajectory, actions ``a_t, a_{t+1}``)::

    ||d(z_k) - o_k||^2                       reconstruction, k = t, t+1, t+2
  + ||d(z_hat_k) - o_k||^2                   next observations predicted through the decoder
  + ||z_hat_k - e(o_k)||^2                   latent consistency, k = t+1, t+2
  + (r_hat(z_k, a_k) - r_k)^2                reward, k = t, t+1
  + lambda * [1 - cos(z_{t+1} - z_t, z_{t+2} - z_{t+1})]      temporal straightening

with ``z_k = e(o_k)`` and ``z_hat`` the two-step latent rollout from ``z_t``. The decoder terms
make a collapsed latent useless (a constant ``z`` cannot reconstruct ``o``), so the consistency
term cannot be won by mapping every observation to one point; the consistency term is what makes
the latent rollout track the encoded true trajectory, which is the quantity the return bound
measures. The straightening term is the curvature loss of Wang et al. (2026): it is
scale-invariant, so it cannot shrink the latent either. All terms are averaged over the batch.

Spectral normalisation (optional: ``spectral_cap`` for every layer of the latent dynamics,
``reward_cap`` for the reward head; never the encoder or decoder). The three variants of
chapter 5 differ only in three numbers (``curvature_weight``, ``spectral_cap``, ``reward_cap``),
which may be traced, so one ``vmap`` trains all of them and several seeds at once.

Why the bound lives in latent space. With ``z*_t = e(o(s_t))`` the encoded true trajectory and
``delta_t = ||z_hat_t - z*_t||``, a latent rollout whose actions are ``a_t = pi(z_t)`` obeys::

    delta_{t+1} <= (L_z + L_a L_pi) delta_t + eps_d,
    |r_hat(z_hat_t, pi(z_hat_t)) - r(s_t, a_t)| <= (R_z + R_a L_pi) delta_t + eps_r,

where ``L_z, L_a`` are the Lipschitz constants of ``f_hat`` in ``z`` and in ``a`` separately
(the blocks of its Jacobian), ``R_z, R_a`` those of ``r_hat``, ``L_pi`` the policy's constant,
``eps_d = sup ||f_hat(z*, a) - e(o(f(s, a)))||`` (latent one-step error) and
``eps_r = sup |r_hat(z*, a) - r(s, a)|``, both over the visited pairs. So
:func:`imagination.bounds.return_error_bound` applies verbatim with ``L_f = L_z + L_a L_pi``,
``L_r = R_z + R_a L_pi`` and ``L_pi = 0`` (:func:`bound_from_constants`). An open-loop action
sequence (:func:`evaluate`) has ``L_pi = 0``: only the ``z`` blocks enter.

Latent units are arbitrary, and this form of the bound does not depend on them: under
``z -> c z`` (same predictions) ``L_z`` is unchanged (the Jacobian is conjugated by ``c``),
``eps_d -> c eps_d``, ``R_z -> R_z / c``, ``L_a -> c L_a`` and ``L_pi -> L_pi / c``, so every
product in the bound is unchanged, for the upper constants (products of layer norms) as for the
lower ones. The book's pair-norm constants ``max(L_z, L_a)`` do not have this property (chapter
5 measures by how much they fail it). For a unit-free one-step error :class:`LatentMetrics` also
reports the error of the decoded prediction in observation space.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import bounds, models
from .envs import Env
from .rollout import Trajectory, discounted_returns, rollout

__all__ = [
    "OBS_DIM",
    "PROJECTION_SEED",
    "projection",
    "observe",
    "LatentParams",
    "init_latent",
    "encode",
    "decode",
    "latent_dynamics",
    "latent_reward",
    "cap_heads",
    "step_cosines",
    "curvature",
    "random_policy",
    "collect",
    "Windows",
    "windows",
    "latent_loss",
    "train_latent",
    "imagine",
    "Constants",
    "LatentMetrics",
    "evaluate",
    "bound_from_constants",
    "return_bounds",
    "rescale_latent",
    "linear_fit_residual",
    "velocity_readout",
    "damping_policy",
    "ClosedLoopMetrics",
    "evaluate_closed_loop",
    "tight_return_gap",
    "SeedRatio",
    "seed_ratio",
]

Array = jax.Array

OBS_DIM = 16
"""Dimension of the pendulum's observation."""

PROJECTION_SEED = 5
"""Seed of the fixed random projection (the same "camera" in every chapter and test)."""


# ----------------------------------------------------------------------------- observations
def projection(obs_dim: int = OBS_DIM, seed: int = PROJECTION_SEED) -> Array:
    """The fixed random matrix ``P`` of shape ``(obs_dim, 3)``, entries ``N(0, 1/3)``.

    ``o = P [cos theta, sin theta, theta_dot]``: the observation is a linear, injective (with
    probability one, for ``obs_dim >= 3``) image of features that make the angle continuous.
    """
    if int(obs_dim) != obs_dim or obs_dim < 3:
        raise ValueError(f"obs_dim must be an integer >= 3, got {obs_dim!r}")
    return jax.random.normal(
        jax.random.key(int(seed)), (int(obs_dim), 3)
    ) / jnp.sqrt(3.0)


def observe(P: Array, s: Array) -> Array:
    """Observation ``P [cos theta, sin theta, theta_dot]`` of one pendulum state ``s``."""
    return P @ jnp.stack([jnp.cos(s[0]), jnp.sin(s[0]), s[1]])


# ----------------------------------------------------------------------------- the model
class LatentParams(NamedTuple):
    """Parameters of the latent model: four MLPs as lists of ``(W, b)`` layers."""

    encoder: list
    decoder: list
    dynamics: list
    reward: list


def _unit_last(layers: list) -> list:
    # models.mlp_init shrinks the last layer by 0.1 (a residual starts near the identity);
    # the encoder and decoder should start at full scale.
    W, b = layers[-1]
    return layers[:-1] + [(10.0 * W, b)]


def init_latent(
    key: Array,
    *,
    obs_dim: int = OBS_DIM,
    action_dim: int = 1,
    latent_dim: int = 3,
    hidden: int = 32,
) -> LatentParams:
    """Initialise encoder ``(obs, h, z)``, decoder ``(z, h, obs)``, dynamics and reward
    ``(z + a, h, h, out)`` MLPs.

    Parameters
    ----------
    key:
        PRNG key.
    obs_dim, action_dim, latent_dim, hidden:
        Sizes (positive integers).
    """
    for name, v in (
        ("obs_dim", obs_dim),
        ("action_dim", action_dim),
        ("latent_dim", latent_dim),
        ("hidden", hidden),
    ):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    k1, k2, k3, k4 = jax.random.split(key, 4)
    za = latent_dim + action_dim
    return LatentParams(
        encoder=_unit_last(models.mlp_init(k1, (obs_dim, hidden, latent_dim))),
        decoder=_unit_last(models.mlp_init(k2, (latent_dim, hidden, obs_dim))),
        dynamics=models.mlp_init(k3, (za, hidden, hidden, latent_dim)),
        reward=_unit_last(models.mlp_init(k4, (za, hidden, hidden, 1))),
    )


def encode(params: LatentParams, o: Array) -> Array:
    """Latent state ``z = e(o)`` of one observation."""
    return models.mlp_apply(params.encoder, o)


def decode(params: LatentParams, z: Array) -> Array:
    """Reconstructed observation ``d(z)``."""
    return models.mlp_apply(params.decoder, z)


latent_dynamics = models.dynamics_model
"""``f_hat(layers, z, a) = z + mlp([z; a])``: :func:`imagination.models.dynamics_model` on latents."""

latent_reward = models.reward_model
"""``r_hat(layers, z, a)``: :func:`imagination.models.reward_model` on latents."""


def cap_heads(
    params: LatentParams,
    cap: float | Array,
    reward_cap: float | Array | None = None,
) -> LatentParams:
    """Spectrally normalise every layer of the dynamics (to norm ``<= cap``) and of the reward
    head (to norm ``<= reward_cap``, default ``cap``).

    ``inf`` (or a traced ``inf``) leaves a head unchanged. The encoder and decoder are never
    capped. A per-layer cap ``c`` on the residual MLP of depth 3 gives ``L_f <= 1 + c**3``.
    """
    reward_cap = cap if reward_cap is None else reward_cap
    return params._replace(
        dynamics=models.spectral_normalize(params.dynamics, cap),
        reward=models.spectral_normalize(params.reward, reward_cap),
    )


# ----------------------------------------------------------------------------- curvature
def step_cosines(z: Array, eps: float = 1e-12) -> Array:
    """Cosines between consecutive steps of trajectories.

    Parameters
    ----------
    z:
        ``(..., T, d)``: points ``z_0, ..., z_{T-1}`` of trajectories (``T >= 3``).
    eps:
        Guard added to squared step lengths (a zero step has cosine 0, not NaN).

    Returns
    -------
    jax.Array
        ``(..., T - 2)``: ``cos(z_{t+1} - z_t, z_{t+2} - z_{t+1})``.
    """
    if z.ndim < 2 or z.shape[-2] < 3:
        raise ValueError(
            f"z must have shape (..., T, d) with T >= 3, got {z.shape}"
        )
    d = jnp.diff(z, axis=-2)
    u, v = d[..., :-1, :], d[..., 1:, :]
    num = jnp.sum(u * v, axis=-1)
    return num / jnp.sqrt(
        (jnp.sum(u * u, -1) + eps) * (jnp.sum(v * v, -1) + eps)
    )


def curvature(z: Array) -> Array:
    """Temporal-straightening curvature ``mean_t [1 - cos(z_{t+1} - z_t, z_{t+2} - z_{t+1})]``.

    Zero for points on a straight line travelled in one direction, 2 for a path that reverses at
    every step; averaged over every axis of ``z`` but the last (Wang et al. 2026).
    """
    return jnp.mean(1.0 - step_cosines(z))


# ----------------------------------------------------------------------------- data
def random_policy(scale: Array, s: Array, key: Array) -> Array:
    """State-independent policy: ``a ~ U[-scale, scale]`` (engine signature; ``L_pi = 0``)."""
    return scale * jax.random.uniform(
        key, jnp.shape(scale), jnp.float32, -1.0, 1.0
    )


def collect(
    env: Env,
    key: Array,
    n: int,
    horizon: int,
    *,
    action_scale: float = 2.0,
    gamma: float = 1.0,
) -> Trajectory:
    """``n`` true trajectories of ``horizon`` steps from the start distribution, with uniformly
    random actions (:func:`random_policy`), run by :func:`imagination.rollout.rollout`."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if action_scale <= 0:
        raise ValueError(
            f"action_scale must be positive, got {action_scale!r}"
        )
    k_s, k_r = jax.random.split(key)
    starts = env.sample_start(env.params, k_s, int(n))
    scale = jnp.full((env.action_dim,), float(action_scale), jnp.float32)
    return rollout(
        env.dynamics,
        env.reward,
        random_policy,
        (env.params, env.params, scale),
        starts,
        k_r,
        horizon=int(horizon),
        gamma=float(gamma),
    )


class Windows(NamedTuple):
    """Three-step windows of true trajectories, the training data of the latent model.

    Attributes
    ----------
    obs:
        ``(n, 3, obs_dim)``: ``o_t, o_{t+1}, o_{t+2}``.
    actions:
        ``(n, 2, action_dim)``: ``a_t, a_{t+1}``.
    rewards:
        ``(n, 2)``: ``r_t, r_{t+1}``.
    """

    obs: Array
    actions: Array
    rewards: Array


def windows(P: Array, traj: Trajectory) -> Windows:
    """Cut every trajectory of ``traj`` (horizon ``>= 2``) into overlapping three-step windows."""
    H = traj.actions.shape[1]
    if H < 2:
        raise ValueError(f"trajectories need a horizon >= 2, got {H}")
    obs = jax.vmap(jax.vmap(observe, in_axes=(None, 0)), in_axes=(None, 0))(
        P, traj.states
    )
    t = jnp.arange(H - 1)
    o = jnp.stack([obs[:, t], obs[:, t + 1], obs[:, t + 2]], axis=2)
    a = jnp.stack([traj.actions[:, t], traj.actions[:, t + 1]], axis=2)
    r = jnp.stack([traj.rewards[:, t], traj.rewards[:, t + 1]], axis=2)
    flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    return Windows(flat(o), flat(a), flat(r))


# ----------------------------------------------------------------------------- training
def latent_loss(
    params: LatentParams,
    batch: Windows,
    curvature_weight: float | Array = 0.0,
    spectral_cap: float | Array = math.inf,
    reward_cap: float | Array = math.inf,
) -> Array:
    """The training loss of the module docstring on a batch of :class:`Windows`, with the heads
    capped by :func:`cap_heads` (``inf``: no cap)."""
    p = cap_heads(params, spectral_cap, reward_cap)
    enc = jax.vmap(jax.vmap(encode, in_axes=(None, 0)), in_axes=(None, 0))
    dec = jax.vmap(jax.vmap(decode, in_axes=(None, 0)), in_axes=(None, 0))
    step = jax.vmap(latent_dynamics, in_axes=(None, 0, 0))
    rew = jax.vmap(
        jax.vmap(latent_reward, in_axes=(None, 0, 0)), in_axes=(None, 0, 0)
    )
    z = enc(p, batch.obs)  # (n, 3, dz)
    z1 = step(p.dynamics, z[:, 0], batch.actions[:, 0])
    z2 = step(p.dynamics, z1, batch.actions[:, 1])
    z_hat = jnp.stack([z1, z2], axis=1)  # (n, 2, dz)
    recon = jnp.mean(jnp.sum((dec(p, z) - batch.obs) ** 2, -1))
    predict = jnp.mean(jnp.sum((dec(p, z_hat) - batch.obs[:, 1:]) ** 2, -1))
    consistency = jnp.mean(jnp.sum((z_hat - z[:, 1:]) ** 2, -1))
    reward = jnp.mean(
        (rew(p.reward, z[:, :2], batch.actions) - batch.rewards) ** 2
    )
    return (
        recon
        + predict
        + consistency
        + reward
        + curvature_weight * curvature(z)
    )


def train_latent(
    key: Array,
    data: Windows,
    *,
    curvature_weight: float | Array = 0.0,
    spectral_cap: float | Array | None = None,
    reward_cap: float | Array | None = None,
    latent_dim: int = 3,
    hidden: int = 32,
    steps: int = 2000,
    learning_rate: float = 3e-3,
    batch_size: int = 256,
) -> tuple[LatentParams, Array]:
    """Train the latent model on :class:`Windows` with Adam (:func:`imagination.models.fit`).

    Parameters
    ----------
    key:
        PRNG key (initialisation and minibatches).
    data:
        Training windows (:func:`windows`).
    curvature_weight:
        Weight ``lambda >= 0`` of the straightening term; may be traced.
    spectral_cap:
        Cap on every layer's spectral norm in the latent dynamics; ``None`` (or ``inf``) for no
        cap; may be traced.
    reward_cap:
        The same for the reward head; ``None`` (or ``inf``) for no cap.
    latent_dim, hidden:
        Latent dimension and hidden width.
    steps, learning_rate, batch_size:
        Passed to :func:`imagination.models.fit`.

    Returns
    -------
    (params, losses)
        Parameters with the cap already applied to the heads, and the loss at every step.
        ``vmap`` over ``key``, ``curvature_weight`` and ``spectral_cap`` to train variants and
        seeds in one call.
    """
    if (
        isinstance(curvature_weight, (int, float))
        and not curvature_weight >= 0
    ):
        raise ValueError(
            f"curvature_weight must be non-negative, got {curvature_weight!r}"
        )
    for name, c in (
        ("spectral_cap", spectral_cap),
        ("reward_cap", reward_cap),
    ):
        if isinstance(c, (int, float)) and not c > 0:
            raise ValueError(f"{name} must be positive or None, got {c!r}")
    cap = math.inf if spectral_cap is None else spectral_cap
    rcap = math.inf if reward_cap is None else reward_cap
    k_init, k_fit = jax.random.split(key)
    params = init_latent(
        k_init,
        obs_dim=data.obs.shape[-1],
        action_dim=data.actions.shape[-1],
        latent_dim=latent_dim,
        hidden=hidden,
    )
    loss = lambda p, b: latent_loss(p, b, curvature_weight, cap, rcap)  # noqa: E731
    params, losses = models.fit(
        loss,
        params,
        data,
        k_fit,
        steps=steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
    )
    return cap_heads(params, cap, rcap), losses


# ----------------------------------------------------------------------------- evaluation
def imagine(
    params: LatentParams, z0: Array, actions: Array, gamma: float
) -> tuple[Array, Array]:
    """Latent rollout replaying an open-loop action sequence.

    Parameters
    ----------
    params:
        Latent model.
    z0:
        ``(B, dz)`` start latents.
    actions:
        ``(B, H, da)`` actions.
    gamma:
        Discount.

    Returns
    -------
    (latents, returns)
        ``(B, H + 1, dz)`` imagined latents ``z_hat_0 = z0, ..., z_hat_H`` and ``(B,)`` imagined
        discounted returns ``sum_t gamma^t r_hat(z_hat_t, a_t)``.
    """

    def one(z, acts):
        def step(z, a):
            return latent_dynamics(params.dynamics, z, a), (
                z,
                latent_reward(params.reward, z, a),
            )

        z_last, (zs, rs) = jax.lax.scan(step, z, acts)
        return jnp.concatenate([zs, z_last[None]], 0), discounted_returns(
            rs, gamma
        )

    return jax.vmap(one)(z0, actions)


def _block_norms(model: Callable, layers: list, z: Array, a: Array):
    """Spectral norms of the ``z`` and ``a`` blocks of the Jacobian at one point."""
    Jz, Ja = jax.jacfwd(model, argnums=(1, 2))(layers, z, a)
    Jz, Ja = jnp.atleast_2d(Jz), jnp.atleast_2d(Ja)
    return jnp.linalg.norm(Jz, ord=2), jnp.linalg.norm(Ja, ord=2)


def _block_uppers(layers: list, dz: int) -> tuple[Array, Array]:
    """Products of layer norms with the first layer cut to its ``z`` or ``a`` columns."""
    (W0, b0), rest = layers[0], layers[1:]
    up_z = models.lipschitz_upper([(W0[:, :dz], b0)] + rest)
    up_a = models.lipschitz_upper([(W0[:, dz:], b0)] + rest)
    return up_z, up_a


class Constants(NamedTuple):
    """Lipschitz constants of the latent heads, block by block.

    ``*_lower``: largest local constant (spectral norm of the Jacobian block) on the sample;
    ``*_upper``: product of layer norms (:func:`imagination.models.lipschitz_upper`), plus 1 for
    the residual dynamics' ``z`` block. ``dyn_*`` are ``f_hat``'s ``z`` and ``a`` blocks,
    ``rew_*`` those of ``r_hat``.
    """

    dyn_z_lower: Array
    dyn_z_upper: Array
    dyn_a_lower: Array
    dyn_a_upper: Array
    rew_z_lower: Array
    rew_z_upper: Array
    rew_a_lower: Array
    rew_a_upper: Array


def _constants(params: LatentParams, z: Array, a: Array) -> Constants:
    dz = z.shape[-1]
    dzl, dal = jax.vmap(_block_norms, in_axes=(None, None, 0, 0))(
        latent_dynamics, params.dynamics, z, a
    )
    rzl, ral = jax.vmap(_block_norms, in_axes=(None, None, 0, 0))(
        latent_reward, params.reward, z, a
    )
    dzu, dau = _block_uppers(params.dynamics, dz)
    rzu, rau = _block_uppers(params.reward, dz)
    return Constants(
        jnp.max(dzl),
        1.0 + dzu,
        jnp.max(dal),
        dau,
        jnp.max(rzl),
        rzu,
        jnp.max(ral),
        rau,
    )


def linear_fit_residual(z: Array, a: Array) -> Array:
    """How far latent dynamics are from linear: the share of the variance of the steps
    ``z_{t+1} - z_t`` that the best affine map of ``(z_t, a_t)`` (least squares) leaves
    unexplained.

    Parameters
    ----------
    z:
        ``(B, T + 1, dz)`` latent trajectories.
    a:
        ``(B, T, da)`` actions.

    Returns
    -------
    jax.Array
        ``trace(C^{-1} R) / dz`` with ``C`` the covariance of the steps and ``R`` that of the
        fit's residuals: a number in ``[0, 1]``, ``0`` for exactly affine dynamics, the mean
        unexplained share over whitened directions. Unchanged by any invertible linear map of
        the latent (``C -> A C A^T``, ``R -> A R A^T``), so it compares representations.
    """
    if z.ndim != 3 or a.ndim != 3 or z.shape[1] != a.shape[1] + 1:
        raise ValueError(
            f"z must be (B, T + 1, dz) and a (B, T, da), got {z.shape} and "
            f"{a.shape}"
        )
    dz = z.shape[-1]
    x = jnp.concatenate(
        [z[:, :-1], a, jnp.ones(a.shape[:2] + (1,), z.dtype)], -1
    ).reshape(-1, dz + a.shape[-1] + 1)
    y = jnp.diff(z, axis=1).reshape(-1, dz)
    coef, *_ = jnp.linalg.lstsq(x, y)
    resid = y - x @ coef
    centred = y - jnp.mean(y, axis=0)
    C, R = centred.T @ centred, resid.T @ resid
    return jnp.trace(jnp.linalg.solve(C, R)) / dz


class LatentMetrics(NamedTuple):
    """What chapter 5 measures on one latent model (all scalars but the returns).

    Attributes
    ----------
    lip_dynamics_lower, lip_dynamics_upper:
        Constant of ``f_hat`` in ``z`` (the Jacobian's ``z`` block): largest local constant on
        encoded and imagined latents; ``1 +`` the product of the residual MLP's layer norms with
        the first layer cut to its ``z`` columns.
    lip_dynamics_action_lower, lip_dynamics_action_upper:
        The same for the ``a`` block (it enters only under a feedback policy).
    lip_reward_lower, lip_reward_upper, lip_reward_action_lower, lip_reward_action_upper:
        The same for ``r_hat``.
    curvature:
        :func:`curvature` of the encoded true trajectories.
    linear_residual:
        :func:`linear_fit_residual` of the encoded true trajectories.
    eps_dynamics:
        ``max ||f_hat(z*_t, a_t) - z*_{t+1}||`` over the evaluation trajectories (latent units).
    eps_observation:
        ``max ||d(f_hat(z*_t, a_t)) - o_{t+1}||``: the same prediction decoded, in observation
        units (comparable across models).
    eps_reward:
        ``max |r_hat(z*_t, a_t) - r_t|``.
    latent_step:
        Mean ``||z*_{t+1} - z*_t||``, the latent scale against which ``eps_dynamics`` reads.
    imagined_returns, true_returns:
        ``(B,)`` discounted returns of the latent rollouts and of the true trajectories.
    """

    lip_dynamics_lower: Array
    lip_dynamics_upper: Array
    lip_dynamics_action_lower: Array
    lip_dynamics_action_upper: Array
    lip_reward_lower: Array
    lip_reward_upper: Array
    lip_reward_action_lower: Array
    lip_reward_action_upper: Array
    curvature: Array
    linear_residual: Array
    eps_dynamics: Array
    eps_observation: Array
    eps_reward: Array
    latent_step: Array
    imagined_returns: Array
    true_returns: Array


def _encode_states(params: LatentParams, P: Array, states: Array):
    obs = jax.vmap(jax.vmap(observe, in_axes=(None, 0)), in_axes=(None, 0))(
        P, states
    )
    z = jax.vmap(jax.vmap(encode, in_axes=(None, 0)), in_axes=(None, 0))(
        params, obs
    )
    return obs, z


def _one_step_errors(params, obs, z, actions, rewards):
    B, H = actions.shape[:2]
    dz = z.shape[-1]
    zs = z[:, :-1].reshape(-1, dz)
    acts = actions.reshape(B * H, -1)
    pred = jax.vmap(latent_dynamics, in_axes=(None, 0, 0))(
        params.dynamics, zs, acts
    )
    eps_d = jnp.max(jnp.linalg.norm(pred - z[:, 1:].reshape(-1, dz), axis=1))
    pred_obs = jax.vmap(decode, in_axes=(None, 0))(params, pred)
    eps_o = jnp.max(
        jnp.linalg.norm(pred_obs - obs[:, 1:].reshape(B * H, -1), axis=1)
    )
    r_hat = jax.vmap(latent_reward, in_axes=(None, 0, 0))(
        params.reward, zs, acts
    )
    eps_r = jnp.max(jnp.abs(r_hat - rewards.reshape(-1)))
    return eps_d, eps_o, eps_r, zs, acts


def evaluate(
    params: LatentParams, P: Array, traj: Trajectory, gamma: float
) -> LatentMetrics:
    """Measure a latent model on true trajectories ``traj`` (jittable; ``vmap`` over models).

    The sup errors are maxima over every ``(s_t, a_t)`` of ``traj``: exactly the points where
    the derivation of the return bound (module docstring) evaluates them, so
    :func:`return_bounds` with the upper constants is a guarantee for these trajectories.
    """
    obs, z = _encode_states(params, P, traj.states)
    dz = z.shape[-1]
    eps_d, eps_o, eps_r, zs, acts = _one_step_errors(
        params, obs, z, traj.actions, traj.rewards
    )
    z_im, ret_im = imagine(params, z[:, 0], traj.actions, gamma)
    sample_z = jnp.concatenate([zs, z_im[:, :-1].reshape(-1, dz)])
    sample_a = jnp.concatenate([acts, acts])
    c = _constants(params, sample_z, sample_a)
    return LatentMetrics(
        lip_dynamics_lower=c.dyn_z_lower,
        lip_dynamics_upper=c.dyn_z_upper,
        lip_dynamics_action_lower=c.dyn_a_lower,
        lip_dynamics_action_upper=c.dyn_a_upper,
        lip_reward_lower=c.rew_z_lower,
        lip_reward_upper=c.rew_z_upper,
        lip_reward_action_lower=c.rew_a_lower,
        lip_reward_action_upper=c.rew_a_upper,
        curvature=curvature(z),
        linear_residual=linear_fit_residual(z, traj.actions),
        eps_dynamics=eps_d,
        eps_observation=eps_o,
        eps_reward=eps_r,
        latent_step=jnp.mean(jnp.linalg.norm(jnp.diff(z, axis=1), axis=-1)),
        imagined_returns=ret_im,
        true_returns=discounted_returns(traj.rewards, gamma),
    )


def bound_from_constants(
    eps_dynamics,
    eps_reward,
    lip_dynamics,
    lip_reward,
    gamma: float,
    horizon: int,
) -> np.ndarray:
    """The return-error bound ``sum_{t<H} gamma^t (eps_r + L_r delta_t)``,
    ``delta_{t+1} = L_f delta_t + eps_d``, element-wise over arrays of equal shape.

    This is :func:`imagination.bounds.return_error_bound` with ``L_pi = 0``: pass the
    closed-loop constants ``L_f = L_z + L_a L_pi`` and ``L_r = R_z + R_a L_pi`` (module
    docstring) for a feedback policy.
    """
    arrs = np.broadcast_arrays(
        *(
            np.asarray(x, np.float64)
            for x in (eps_dynamics, eps_reward, lip_dynamics, lip_reward)
        )
    )
    vals = [
        bounds.return_error_bound(a, b, c, d, 0.0, gamma, horizon=horizon)
        for a, b, c, d in zip(*(x.ravel() for x in arrs))
    ]
    return np.asarray(vals, np.float64).reshape(arrs[0].shape)


def return_bounds(
    metrics: LatentMetrics, gamma: float, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """The return-error bound of an open-loop latent rollout (``L_pi = 0``), with upper and with
    lower Lipschitz estimates of the ``z`` blocks.

    Parameters
    ----------
    metrics:
        One :class:`LatentMetrics` or a batch of them (leading axes on every field).
    gamma, horizon:
        Discount and number of imagined steps, as in
        :func:`imagination.bounds.return_error_bound`.

    Returns
    -------
    (certified, estimated)
        Arrays shaped like ``metrics.eps_dynamics``: the bound with the upper constants (a
        guarantee) and with the lower ones (an optimistic estimate, not a guarantee). Both are
        unchanged when the latent is rescaled (module docstring).
    """
    m = metrics
    return (
        bound_from_constants(
            m.eps_dynamics,
            m.eps_reward,
            m.lip_dynamics_upper,
            m.lip_reward_upper,
            gamma,
            horizon,
        ),
        bound_from_constants(
            m.eps_dynamics,
            m.eps_reward,
            m.lip_dynamics_lower,
            m.lip_reward_lower,
            gamma,
            horizon,
        ),
    )


def rescale_latent(params: LatentParams, c: float | Array) -> LatentParams:
    """The same model in latent units multiplied by ``c``: ``z -> c z``, same predictions.

    The encoder's output layer is multiplied by ``c``; the decoder's input weights and the
    ``z`` columns of the first layers of the dynamics and reward heads are divided by ``c``; the
    dynamics head's output layer is multiplied by ``c``. Works on a batch of models (leading
    axes on every array).
    """
    dz = params.encoder[-1][0].shape[-2]
    (We, be), (Wd, bd) = params.encoder[-1], params.decoder[0]
    (Wf, bf), (Wr, br) = params.dynamics[0], params.reward[0]
    Wl, bl = params.dynamics[-1]
    return params._replace(
        encoder=params.encoder[:-1] + [(c * We, c * be)],
        decoder=[(Wd / c, bd)] + params.decoder[1:],
        dynamics=[(Wf.at[..., :dz].divide(c), bf)]
        + params.dynamics[1:-1]
        + [(c * Wl, c * bl)],
        reward=[(Wr.at[..., :dz].divide(c), br)] + params.reward[1:],
    )


# ----------------------------------------------------------------------------- feedback policy
def velocity_readout(
    params: LatentParams, P: Array, states: Array
) -> tuple[Array, Array]:
    """Least-squares read-out ``theta_dot ~ w . z + b`` of the angular velocity from the latent.

    Parameters
    ----------
    params:
        Latent model.
    P:
        Projection (:func:`projection`).
    states:
        ``(n, 2)`` pendulum states on which the read-out is fitted.

    Returns
    -------
    (w, b)
        ``(dz,)`` weights and a scalar offset.
    """
    if states.ndim != 2 or states.shape[-1] != 2:
        raise ValueError(f"states must have shape (n, 2), got {states.shape}")
    _, z = _encode_states(params, P, states[:, None])
    z = z[:, 0]
    x = jnp.concatenate([z, jnp.ones((z.shape[0], 1), z.dtype)], 1)
    coef, *_ = jnp.linalg.lstsq(x, states[:, 1])
    return coef[:-1], coef[-1]


def damping_policy(
    policy_params: tuple[Array, Array, Array], z: Array
) -> Array:
    """Latent feedback ``a = clip(-g (w . z + b), -2, 2)``: damping of the read-out velocity.

    ``policy_params = (w, b, g)``. Its Lipschitz constant is ``L_pi = g ||w||`` (the clip is
    1-Lipschitz).
    """
    w, b, g = policy_params
    return jnp.clip(-g * (w @ z + b), -2.0, 2.0)[None]


def _true_feedback(pp, s: Array, key: Array) -> Array:
    # engine signature: the true system acts on its encoded state
    params, P, policy_params = pp
    return damping_policy(policy_params, encode(params, observe(P, s)))


class ClosedLoopMetrics(NamedTuple):
    """A latent model imagining under :func:`damping_policy` (:func:`evaluate_closed_loop`).

    Attributes
    ----------
    lip_policy:
        ``L_pi = g ||w||``.
    constants:
        :class:`Constants` on the closed-loop encoded and imagined latents.
    eps_dynamics, eps_reward:
        Sup one-step errors on the visited pairs ``(z*_t, pi(z*_t))``.
    imagined_returns, true_returns:
        ``(B,)`` discounted returns of the latent and of the true closed loop.
    """

    lip_policy: Array
    constants: Constants
    eps_dynamics: Array
    eps_reward: Array
    imagined_returns: Array
    true_returns: Array

    def bounds(self, gamma: float, horizon: int):
        """(certified, estimated) bounds with ``L_f = L_z + L_a L_pi``, ``L_r = R_z + R_a L_pi``."""
        c, lp = self.constants, np.asarray(self.lip_policy, np.float64)
        out = []
        for dz, da, rz, ra in (
            (c.dyn_z_upper, c.dyn_a_upper, c.rew_z_upper, c.rew_a_upper),
            (c.dyn_z_lower, c.dyn_a_lower, c.rew_z_lower, c.rew_a_lower),
        ):
            f = lambda x: np.asarray(x, np.float64)  # noqa: E731
            out.append(
                bound_from_constants(
                    self.eps_dynamics,
                    self.eps_reward,
                    f(dz) + f(da) * lp,
                    f(rz) + f(ra) * lp,
                    gamma,
                    horizon,
                )
            )
        return out[0], out[1]


def evaluate_closed_loop(
    params: LatentParams,
    P: Array,
    env: Env,
    policy_params: tuple[Array, Array, Array],
    starts: Array,
    gamma: float,
    horizon: int,
) -> ClosedLoopMetrics:
    """Imagine under the latent feedback :func:`damping_policy` and compare with the true
    closed loop, in which the pendulum acts on its encoded state (jittable; ``vmap`` over models
    and gains).

    Parameters
    ----------
    params:
        Latent model.
    P:
        Projection.
    env:
        The pendulum (:func:`imagination.envs.pendulum`).
    policy_params:
        ``(w, b, g)`` of :func:`damping_policy`.
    starts:
        ``(B, 2)`` true start states.
    gamma, horizon:
        Discount and number of steps.
    """
    true = rollout(
        env.dynamics,
        env.reward,
        _true_feedback,
        (env.params, env.params, (params, P, policy_params)),
        starts,
        jax.random.key(0),
        horizon=int(horizon),
        gamma=float(gamma),
    )
    obs, z = _encode_states(params, P, true.states)
    dz = z.shape[-1]
    eps_d, _, eps_r, zs, acts = _one_step_errors(
        params, obs, z, true.actions, true.rewards
    )

    def step(zc, _):
        a = damping_policy(policy_params, zc)
        return latent_dynamics(params.dynamics, zc, a), (
            zc,
            a,
            latent_reward(params.reward, zc, a),
        )

    def one(z0):
        _, (zi, ai, ri) = jax.lax.scan(step, z0, None, length=int(horizon))
        return zi, ai, discounted_returns(ri, gamma)

    zi, ai, ret_im = jax.vmap(one)(z[:, 0])
    sample_z = jnp.concatenate([zs, zi.reshape(-1, dz)])
    sample_a = jnp.concatenate([acts, ai.reshape(acts.shape)])
    w, _, g = policy_params
    return ClosedLoopMetrics(
        lip_policy=jnp.abs(g) * jnp.linalg.norm(w),
        constants=_constants(params, sample_z, sample_a),
        eps_dynamics=eps_d,
        eps_reward=eps_r,
        imagined_returns=ret_im,
        true_returns=true.returns,
    )


# ----------------------------------------------------------------------------- tight system
def tight_return_gap(
    log_coeffs: Array,
    eps_d: float,
    eps_r: float,
    gamma: float,
    horizon: int,
    start: float = 1.0,
) -> Array:
    """Imagined-minus-true return of the aligned system of chapter 3, by rollouts.

    ``f(s, a) = p (s + a)``, ``r(s, a) = l (s + a)``, ``pi(s) = k s``; the learned models add
    ``eps_d`` and ``eps_r`` (:func:`imagination.attribution.tight_system`). The coefficients
    enter as ``log_coeffs = log(p, l, k)`` (traced), so ``jax.grad`` of the log of the gap gives
    its elasticities ``d log gap / d log (p, l, k)``. The dtype follows ``log_coeffs`` (use
    float64 under ``imagination.device.enable_x64()`` for derivatives to many digits).

    Parameters
    ----------
    log_coeffs:
        ``(3,)``: ``log p, log l, log k``.
    eps_d, eps_r:
        Non-negative offsets of the learned models.
    gamma, horizon:
        Discount and number of steps of both rollouts.
    start:
        The start state (the gap does not depend on it: the system is linear).
    """
    from . import policies

    if jnp.shape(log_coeffs) != (3,):
        raise ValueError(
            f"log_coeffs must have shape (3,), got {jnp.shape(log_coeffs)}"
        )
    for name, v in (("eps_d", eps_d), ("eps_r", eps_r)):
        if not float(v) >= 0:
            raise ValueError(f"{name} must be non-negative, got {v!r}")
    p, l, k = jnp.exp(log_coeffs)  # noqa: E741
    dt = jnp.asarray(log_coeffs).dtype
    zero = jnp.zeros((), dt)
    s0 = jnp.full((1, 1), start, dt)
    returns = []
    for ed, er in (
        (zero, zero),
        (jnp.asarray(eps_d, dt), jnp.asarray(eps_r, dt)),
    ):
        traj = rollout(
            models.affine_dynamics,
            models.affine_reward,
            policies.linear,
            ((p, ed), (l, er), jnp.reshape(k, (1, 1))),
            s0,
            jax.random.key(0),
            horizon=int(horizon),
            gamma=float(gamma),
        )
        returns.append(traj.returns[0])
    return returns[1] - returns[0]


# ----------------------------------------------------------------------------- seeds
class SeedRatio(NamedTuple):
    """Ratio of geometric means over seeds with its confidence interval."""

    ratio: float
    low: float
    high: float

    def verdict(self, below: str, above: str, unclear: str) -> str:
        """``below`` if the whole interval is under 1, ``above`` if over 1, else ``unclear``."""
        if self.high < 1:
            return below
        if self.low > 1:
            return above
        return unclear


def seed_ratio(a, b, level: float = 0.95) -> SeedRatio:
    """Compare a positive quantity of two variants over independent seeds.

    Parameters
    ----------
    a, b:
        Positive per-seed values of the two variants (at least two each).
    level:
        Confidence level in ``(0, 1)``.

    Returns
    -------
    SeedRatio
        ``exp(mean log a - mean log b)`` with a Welch ``t`` interval on the difference of the
        mean logs: the interval of the ratio of geometric means.
    """
    from scipy import stats

    la, lb = (np.log(np.asarray(x, np.float64).ravel()) for x in (a, b))
    for name, x in (("a", la), ("b", lb)):
        if x.size < 2 or not np.all(np.isfinite(x)):
            raise ValueError(
                f"{name} must hold at least two positive finite values"
            )
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    va, vb = la.var(ddof=1) / la.size, lb.var(ddof=1) / lb.size
    se = math.sqrt(va + vb)
    dof = (
        (va + vb) ** 2 / (va**2 / (la.size - 1) + vb**2 / (lb.size - 1))
        if se > 0
        else la.size + lb.size - 2
    )
    d = la.mean() - lb.mean()
    h = stats.t.ppf(0.5 + level / 2, dof) * se
    return SeedRatio(
        float(math.exp(d)), float(math.exp(d - h)), float(math.exp(d + h))
    )
