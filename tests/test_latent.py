"""Tests of imagination.latent: observations, curvature, windows, training, evaluation, bound."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import envs, latent, models
from imagination.rollout import Trajectory


@pytest.fixture(scope="module")
def setup():
    env = envs.pendulum()
    P = latent.projection()
    traj = latent.collect(env, jax.random.key(0), 48, 12)
    return env, P, traj


def test_projection_fixed_and_observation_continuous_in_angle():
    P1, P2 = latent.projection(), latent.projection()
    assert P1.shape == (latent.OBS_DIM, 3)
    np.testing.assert_array_equal(P1, P2)
    assert not np.allclose(
        latent.projection(seed=latent.PROJECTION_SEED + 1), P1
    )
    s = jnp.array([0.3, -1.2])
    np.testing.assert_allclose(
        latent.observe(P1, s),
        latent.observe(P1, s + jnp.array([2 * jnp.pi, 0.0])),
        atol=1e-5,
    )
    expected = np.asarray(P1) @ np.array([np.cos(0.3), np.sin(0.3), -1.2])
    np.testing.assert_allclose(latent.observe(P1, s), expected, rtol=1e-5)


def test_curvature_line_circle_reversal():
    t = jnp.arange(10.0)[:, None]
    line = t * jnp.array([1.0, 2.0, -0.5])
    assert float(latent.curvature(line)) == pytest.approx(0.0, abs=1e-6)
    dphi = 0.3
    circle = (
        jnp.stack([jnp.cos(dphi * t[:, 0]), jnp.sin(dphi * t[:, 0])], axis=1)
        * 5.0
    )
    assert float(latent.curvature(circle)) == pytest.approx(
        1 - math.cos(dphi), rel=1e-4
    )
    zigzag = jnp.array([[0.0], [1.0], [0.0], [1.0]])
    assert float(latent.curvature(zigzag)) == pytest.approx(2.0, rel=1e-6)
    # batched: mean over trajectories and steps
    both = jnp.stack([line[:, :2], circle])
    assert float(latent.curvature(both)) == pytest.approx(
        (1 - math.cos(dphi)) / 2, rel=1e-4
    )
    # the gradient exists (used as a loss)
    g = jax.grad(latent.curvature)(circle)
    assert np.all(np.isfinite(g))


def test_windows_content(setup):
    env, P, traj = setup
    win = latent.windows(P, traj)
    B, H = traj.actions.shape[:2]
    assert win.obs.shape == (B * (H - 1), 3, latent.OBS_DIM)
    assert win.actions.shape == (B * (H - 1), 2, 1)
    assert win.rewards.shape == (B * (H - 1), 2)
    b, t = 5, 7
    k = b * (H - 1) + t
    np.testing.assert_allclose(
        win.obs[k, 2], latent.observe(P, traj.states[b, t + 2]), rtol=1e-5
    )
    np.testing.assert_allclose(win.actions[k, 1], traj.actions[b, t + 1])
    np.testing.assert_allclose(win.rewards[k, 0], traj.rewards[b, t])
    # the collected data are true pendulum transitions with actions in [-2, 2]
    nxt = jax.vmap(env.dynamics, in_axes=(None, 0, 0))(
        env.params, traj.states[:, t], traj.actions[:, t]
    )
    np.testing.assert_allclose(nxt, traj.states[:, t + 1], atol=1e-5)
    assert float(jnp.max(jnp.abs(traj.actions))) <= 2.0


@pytest.fixture(scope="module")
def trained(setup):
    env, P, traj = setup
    win = latent.windows(P, traj)
    lam = jnp.array([0.0, 0.0, 5.0])
    cap = jnp.array([jnp.inf, 0.8, jnp.inf])
    rcap = jnp.array([jnp.inf, 2.0, jnp.inf])
    keys = jax.random.split(jax.random.key(1), 3)
    train = jax.jit(
        jax.vmap(
            lambda k, l, c, r: latent.train_latent(
                k,
                win,
                curvature_weight=l,
                spectral_cap=c,
                reward_cap=r,
                steps=300,
                learning_rate=1e-2,
                batch_size=64,
            )
        )
    )
    params, losses = train(keys, lam, cap, rcap)
    return params, losses


def test_training_reduces_loss_and_respects_caps(trained):
    params, losses = trained
    assert np.all(np.isfinite(losses))
    first, last = (
        np.mean(losses[:, :20], axis=1),
        np.mean(losses[:, -20:], axis=1),
    )
    assert np.all(last < 0.5 * first)
    sn = jax.tree_util.tree_map(lambda x: x[1], params)
    for W, _ in sn.dynamics:
        assert np.linalg.norm(np.asarray(W), 2) <= 0.8 * (1 + 1e-4)
    for W, _ in sn.reward:
        assert np.linalg.norm(np.asarray(W), 2) <= 2.0 * (1 + 1e-4)
    # seeds/variants are distinct models
    assert not np.allclose(params.encoder[0][0][0], params.encoder[0][0][2])


def test_evaluate_brackets_and_certified_bound_holds(setup, trained):
    env, P, _ = setup
    params, _ = trained
    gamma, H = 0.95, 10
    traj = latent.collect(env, jax.random.key(7), 32, H, gamma=gamma)
    met = jax.jit(jax.vmap(lambda p: latent.evaluate(p, P, traj, gamma)))(
        params
    )
    assert np.all(
        np.asarray(met.lip_dynamics_lower)
        <= np.asarray(met.lip_dynamics_upper) * (1 + 1e-4)
    )
    assert np.all(
        np.asarray(met.lip_reward_lower)
        <= np.asarray(met.lip_reward_upper) * (1 + 1e-4)
    )
    assert float(met.lip_dynamics_upper[1]) <= (1 + 0.8**3) * (1 + 1e-4)
    np.testing.assert_allclose(met.true_returns[0], traj.returns, rtol=1e-5)
    certified, estimated = latent.return_bounds(met, gamma, H)
    assert certified.shape == (3,) and np.all(
        estimated <= certified * (1 + 1e-6)
    )
    err = np.max(
        np.abs(np.asarray(met.imagined_returns - met.true_returns)), axis=1
    )
    assert np.all(err <= certified)
    assert np.all(np.asarray(met.curvature) >= 0)


def test_imagine_replays_actions_through_the_model():
    params = latent.init_latent(jax.random.key(3))
    # zero last layers: the residual dynamics is the identity, the reward a constant bias
    params = params._replace(
        dynamics=params.dynamics[:-1]
        + [(jnp.zeros_like(params.dynamics[-1][0]), jnp.zeros(3))],
        reward=params.reward[:-1]
        + [(jnp.zeros_like(params.reward[-1][0]), jnp.array([-2.0]))],
    )
    z0 = jax.random.normal(jax.random.key(4), (4, 3))
    acts = jax.random.normal(jax.random.key(5), (4, 6, 1))
    zs, ret = latent.imagine(params, z0, acts, 0.5)
    assert zs.shape == (4, 7, 3)
    np.testing.assert_allclose(
        zs, jnp.repeat(z0[:, None], 7, axis=1), atol=1e-6
    )
    np.testing.assert_allclose(ret, -2.0 * (1 - 0.5**6) / 0.5, rtol=1e-5)


def test_value_errors(setup):
    env, P, traj = setup
    win = latent.windows(P, traj)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="obs_dim"):
        latent.projection(2)
    with pytest.raises(ValueError, match="latent_dim"):
        latent.init_latent(key, latent_dim=0)
    with pytest.raises(ValueError, match="z"):
        latent.curvature(jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="horizon"):
        latent.windows(
            P,
            Trajectory(
                traj.states[:, :2],
                traj.actions[:, :1],
                traj.rewards[:, :1],
                traj.returns,
            ),
        )
    with pytest.raises(ValueError, match="n"):
        latent.collect(env, key, 0, 5)
    with pytest.raises(ValueError, match="action_scale"):
        latent.collect(env, key, 3, 5, action_scale=0.0)
    with pytest.raises(ValueError, match="curvature_weight"):
        latent.train_latent(key, win, curvature_weight=-1.0)
    with pytest.raises(ValueError, match="spectral_cap"):
        latent.train_latent(key, win, spectral_cap=0.0)
    with pytest.raises(ValueError, match="reward_cap"):
        latent.train_latent(key, win, reward_cap=-1.0)


def test_spectral_normalize_inf_cap_has_finite_gradient():
    layers = models.mlp_init(jax.random.key(0), (3, 8, 2))
    g = jax.grad(
        lambda L: sum(
            jnp.sum(W**2) for W, _ in models.spectral_normalize(L, jnp.inf)
        )
    )(layers)
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(g))
