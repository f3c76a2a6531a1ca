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

Why the bound lives in latent space. Imagination replays a fixed open-loop action sequence (the
object a latent planner scores), so the policy's constant is ``L_pi = 0``. With
``z*_t = e(o(s_t))`` the encoded true trajectory and ``delta_t = ||z_hat_t - z*_t||``,
``delta_{t+1} <= L_f delta_t + eps_d`` and
``|r_hat(z_hat_t, a_t) - r(s_t, a_t)| <= L_r delta_t + eps_r``, where
``eps_d = sup ||f_hat(z*, a) - e(o(f(s, a)))||`` (latent one-step error) and
``eps_r = sup |r_hat(z*, a) - r(s, a)|`` (reward error on encoded true states). So
:func:`imagination.bounds.return_error_bound` applies verbatim with latent-space ``eps_d, L_f``
and ``L_r``. Latent units are arbitrary, but under a rescaling ``z -> c z`` the residual
dynamics' constant is unchanged while ``eps_d -> c eps_d`` and ``L_r -> L_r / c``, so the bound
(a statement about returns) is comparable across models. For a unit-free one-step error,
:class:`LatentMetrics` also reports the error of the decoded prediction in observation space.
"""

from __future__ import annotations

import math
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
    "LatentMetrics",
    "evaluate",
    "return_bounds",
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


class LatentMetrics(NamedTuple):
    """What chapter 5 measures on one latent model (all scalars but the returns).

    Attributes
    ----------
    lip_dynamics_lower, lip_dynamics_upper:
        Largest local constant of ``f_hat`` on encoded and imagined latents; ``1 +`` the product
        of the residual MLP's layer norms (:func:`imagination.models.lipschitz_upper`).
    lip_reward_lower, lip_reward_upper:
        The same for ``r_hat``.
    curvature:
        :func:`curvature` of the encoded true trajectories.
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
    lip_reward_lower: Array
    lip_reward_upper: Array
    curvature: Array
    eps_dynamics: Array
    eps_observation: Array
    eps_reward: Array
    latent_step: Array
    imagined_returns: Array
    true_returns: Array


def evaluate(
    params: LatentParams, P: Array, traj: Trajectory, gamma: float
) -> LatentMetrics:
    """Measure a latent model on true trajectories ``traj`` (jittable; ``vmap`` over models).

    The sup errors are maxima over every ``(s_t, a_t)`` of ``traj``: exactly the points where
    the derivation of the return bound (module docstring) evaluates them, so
    :func:`return_bounds` with the upper constants is a guarantee for these trajectories.
    """
    B, H = traj.actions.shape[:2]
    obs = jax.vmap(jax.vmap(observe, in_axes=(None, 0)), in_axes=(None, 0))(
        P, traj.states
    )
    z = jax.vmap(jax.vmap(encode, in_axes=(None, 0)), in_axes=(None, 0))(
        params, obs
    )
    dz = z.shape[-1]
    zs = z[:, :-1].reshape(-1, dz)
    acts = traj.actions.reshape(B * H, -1)
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
    eps_r = jnp.max(jnp.abs(r_hat - traj.rewards.reshape(-1)))
    z_im, ret_im = imagine(params, z[:, 0], traj.actions, gamma)
    sample_z = jnp.concatenate([zs, z_im[:, :-1].reshape(-1, dz)])
    sample_a = jnp.concatenate([acts, acts])
    return LatentMetrics(
        lip_dynamics_lower=models.lipschitz_lower(
            latent_dynamics, params.dynamics, sample_z, sample_a
        ),
        lip_dynamics_upper=1.0
        + models.lipschitz_upper(params.dynamics, split=dz),
        lip_reward_lower=models.lipschitz_lower(
            latent_reward, params.reward, sample_z, sample_a
        ),
        lip_reward_upper=models.lipschitz_upper(params.reward, split=dz),
        curvature=curvature(z),
        eps_dynamics=eps_d,
        eps_observation=eps_o,
        eps_reward=eps_r,
        latent_step=jnp.mean(jnp.linalg.norm(jnp.diff(z, axis=1), axis=-1)),
        imagined_returns=ret_im,
        true_returns=discounted_returns(traj.rewards, gamma),
    )


def return_bounds(
    metrics: LatentMetrics, gamma: float, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """The return-error bound (``L_pi = 0``) with upper and with lower Lipschitz estimates.

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
        guarantee) and with the lower ones (an optimistic estimate, not a guarantee).
    """
    e_d = np.asarray(metrics.eps_dynamics, np.float64)
    e_r = np.asarray(metrics.eps_reward, np.float64)
    out = []
    for lf, lr in (
        (metrics.lip_dynamics_upper, metrics.lip_reward_upper),
        (metrics.lip_dynamics_lower, metrics.lip_reward_lower),
    ):
        lf, lr = (
            np.broadcast_to(np.asarray(lf, np.float64), e_d.shape),
            np.asarray(lr, np.float64),
        )
        vals = [
            bounds.return_error_bound(a, b, c, d, 0.0, gamma, horizon=horizon)
            for a, b, c, d in zip(
                e_d.ravel(), e_r.ravel(), lf.ravel(), np.ravel(lr)
            )
        ]
        out.append(np.asarray(vals).reshape(e_d.shape))
    return out[0], out[1]
