"""Tests of imagination.latent: observations, curvature, windows, training, evaluation, bound."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import envs, latent, models
from imagination.device import enable_x64
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
    for lo, hi in (
        (met.lip_dynamics_lower, met.lip_dynamics_upper),
        (met.lip_dynamics_action_lower, met.lip_dynamics_action_upper),
        (met.lip_reward_lower, met.lip_reward_upper),
        (met.lip_reward_action_lower, met.lip_reward_action_upper),
    ):
        assert np.all(np.asarray(lo) <= np.asarray(hi) * (1 + 1e-4))
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
    assert np.all((met.linear_residual >= 0) & (met.linear_residual <= 1))


def test_z_block_upper_constant_matches_layer_norms(trained):
    params, _ = trained
    p = jax.tree_util.tree_map(lambda x: np.asarray(x[0], np.float64), params)
    (W0, _), rest = p.dynamics[0], p.dynamics[1:]
    dz = W0.shape[1] - 1
    prod = np.linalg.norm(W0[:, :dz], 2) * np.prod(
        [np.linalg.norm(W, 2) for W, _ in rest]
    )
    c = latent._constants(
        jax.tree_util.tree_map(lambda x: x[0], params),
        jnp.zeros((2, dz)),
        jnp.zeros((2, 1)),
    )
    np.testing.assert_allclose(c.dyn_z_upper, 1 + prod, rtol=1e-4)


def test_rescaling_keeps_predictions_and_bounds(setup, trained):
    env, P, _ = setup
    params, _ = trained
    gamma, H = 0.9, 8
    traj = latent.collect(env, jax.random.key(8), 16, H, gamma=gamma)
    ev = jax.jit(jax.vmap(lambda p: latent.evaluate(p, P, traj, gamma)))
    m1 = ev(params)
    for c in (2.0, 0.3):
        m2 = ev(latent.rescale_latent(params, c))
        np.testing.assert_allclose(
            m2.imagined_returns, m1.imagined_returns, rtol=1e-4, atol=1e-3
        )
        np.testing.assert_allclose(
            m2.eps_dynamics, c * m1.eps_dynamics, rtol=1e-4
        )
        np.testing.assert_allclose(
            m2.lip_dynamics_upper, m1.lip_dynamics_upper, rtol=1e-4
        )
        np.testing.assert_allclose(
            m2.lip_reward_upper, m1.lip_reward_upper / c, rtol=1e-4
        )
        np.testing.assert_allclose(
            m2.linear_residual, m1.linear_residual, rtol=1e-3, atol=1e-6
        )
        for b1, b2 in zip(
            latent.return_bounds(m1, gamma, H),
            latent.return_bounds(m2, gamma, H),
        ):
            np.testing.assert_allclose(b2, b1, rtol=1e-3)


def test_linear_fit_residual_zero_for_affine_and_invariant():
    key = jax.random.key(2)
    A = jnp.array([[0.9, 0.1], [-0.2, 0.95]])
    Bm = jnp.array([[0.5], [-1.0]])
    a = jax.random.normal(key, (4, 20, 1))
    z0 = jax.random.normal(jax.random.key(3), (4, 2))

    def run(z0, acts):
        def step(z, u):
            nz = A @ z + Bm @ u + 0.1
            return nz, nz

        _, zs = jax.lax.scan(step, z0, acts)
        return jnp.concatenate([z0[None], zs])

    z = jax.vmap(run)(z0, a)
    assert float(latent.linear_fit_residual(z, a)) < 1e-8
    # a nonlinear map leaves something unexplained, the same in any linear
    # coordinates
    zn = z + 0.3 * jnp.sin(3 * z)
    r = float(latent.linear_fit_residual(zn, a))
    assert 0.001 < r <= 1
    M = jnp.array([[2.0, 1.0], [0.0, -0.5]])
    assert float(latent.linear_fit_residual(zn @ M.T, a)) == pytest.approx(
        r, rel=1e-3
    )
    with pytest.raises(ValueError, match="z must be"):
        latent.linear_fit_residual(z[:, :-1], a)


def test_tight_return_gap_equals_bound_and_its_elasticities():
    from imagination import bounds

    p, l, k, ed, er, g, H = 0.7, 0.4, 0.3, 0.02, 0.01, 0.8, 12
    with enable_x64():
        x = jnp.log(jnp.array([p, l, k], jnp.float64))
        gap = float(latent.tight_return_gap(x, ed, er, g, H, start=-2.0))
        grad = np.asarray(
            jax.grad(
                lambda y: jnp.log(latent.tight_return_gap(y, ed, er, g, H))
            )(x)
        )
    want = bounds.return_error_bound(ed, er, p, l, k, g, horizon=H)
    assert gap == pytest.approx(want, rel=1e-10)
    # finite differences of the package's bound in log coordinates
    h = 1e-6
    for i, name in enumerate(("p", "l", "k")):
        up = dict(p=p, l=l, k=k)
        up[name] *= math.exp(h)
        b_up = bounds.return_error_bound(
            ed, er, up["p"], up["l"], up["k"], g, horizon=H
        )
        assert grad[i] == pytest.approx(
            (math.log(b_up) - math.log(want)) / h, rel=1e-4
        )
    with pytest.raises(ValueError, match="log_coeffs"):
        latent.tight_return_gap(jnp.zeros(2), ed, er, g, H)
    with pytest.raises(ValueError, match="eps_d"):
        latent.tight_return_gap(x, -1.0, er, g, H)


def test_closed_loop_bound_holds_and_gain_zero_is_open_loop(setup, trained):
    env, P, traj = setup
    params, _ = trained
    p0 = jax.tree_util.tree_map(lambda x: x[0], params)
    w, b = latent.velocity_readout(p0, P, traj.states.reshape(-1, 2))
    assert w.shape == (3,) and b.shape == ()
    starts = traj.states[:16, 0]
    gamma, H = 0.9, 8
    out = jax.jit(
        jax.vmap(
            lambda g: latent.evaluate_closed_loop(
                p0, P, env, (w, b, g), starts, gamma, H
            )
        )
    )(jnp.array([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(
        out.lip_policy, np.array([0, 1, 3]) * np.linalg.norm(w), rtol=1e-5
    )
    cert, est = out.bounds(gamma, H)
    err = np.abs(np.asarray(out.imagined_returns - out.true_returns)).max(-1)
    assert np.all(err <= cert) and np.all(est <= cert * (1 + 1e-6))
    # the bound grows with the gain (L_pi enters both factors)
    assert np.all(np.diff(cert) > 0)
    # gain 0: zero torque, so the true closed loop is the pendulum under a = 0
    from imagination import policies
    from imagination.rollout import rollout

    free = rollout(
        env.dynamics,
        env.reward,
        policies.linear,
        (env.params, env.params, jnp.zeros((1, 2))),
        starts,
        jax.random.key(0),
        horizon=H,
        gamma=gamma,
    )
    np.testing.assert_allclose(out.true_returns[0], free.returns, rtol=1e-5)
    with pytest.raises(ValueError, match="states"):
        latent.velocity_readout(p0, P, traj.states)


def test_seed_ratio_interval_and_verdict():
    rng = np.random.default_rng(0)
    a = np.exp(rng.normal(0.0, 0.1, 8))
    r = latent.seed_ratio(2 * a, a)
    assert r.low < 2 < r.high or r.ratio == pytest.approx(2, rel=1e-12)
    assert r.ratio == pytest.approx(2.0, rel=1e-12)
    assert r.verdict("below", "above", "unclear") == "above"
    same = latent.seed_ratio(a, a[::-1])
    assert same.verdict("below", "above", "unclear") == "unclear"
    with pytest.raises(ValueError, match="a must"):
        latent.seed_ratio([1.0], a)
    with pytest.raises(ValueError, match="level"):
        latent.seed_ratio(a, a, level=1.5)


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
