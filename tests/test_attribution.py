"""Tests of imagination.attribution: the tight system, partial returns, state errors, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import attribution as at
from imagination import bounds, models, policies, rollout


def _tight_gap(ts, horizon, gamma):
    true = rollout.rollout(
        models.affine_dynamics,
        models.affine_reward,
        policies.linear,
        (ts.true_dynamics, ts.true_reward, ts.policy),
        jnp.asarray([[0.3], [-1.0]]),
        jax.random.key(0),
        horizon=horizon,
    )
    imag = rollout.rollout(
        models.affine_dynamics,
        models.affine_reward,
        policies.linear,
        (ts.model_dynamics, ts.model_reward, ts.policy),
        jnp.asarray([[0.3], [-1.0]]),
        jax.random.key(0),
        horizon=horizon,
    )
    disc = gamma ** np.arange(horizon)
    gap = (
        np.asarray(imag.rewards, np.float64)
        - np.asarray(true.rewards, np.float64)
    ) @ disc
    return gap, true, imag


@pytest.mark.parametrize(
    "p,k,l,gamma,horizon",
    [
        (0.9, 0.2, 0.5, 0.9, 60),
        (0.5, 1.0, 2.0, 0.7, 30),
        (1.0, 0.0001, 1.0, 1.0, 20),
    ],
)
def test_tight_system_attains_the_bound(p, k, l, gamma, horizon):
    ts = at.tight_system(p, k, l, eps_d=0.01, eps_r=0.02)
    gap, true, imag = _tight_gap(ts, horizon, gamma)
    bound = bounds.return_error_bound(
        ts.eps_dynamics,
        ts.eps_reward,
        ts.lip_dynamics,
        ts.lip_reward,
        ts.lip_policy,
        gamma,
        horizon=horizon,
    )
    # equality, up to float32 rounding of the rollouts (relative 1e-5 over <= 60 steps)
    np.testing.assert_allclose(gap, bound, rtol=1e-4)
    delta = np.abs(np.asarray(imag.states - true.states))[..., 0]
    comp = bounds.compounding_error_bound(
        ts.eps_dynamics,
        ts.lip_dynamics * (1 + ts.lip_policy),
        np.arange(horizon + 1),
    )
    np.testing.assert_allclose(
        delta, np.broadcast_to(comp, delta.shape), rtol=1e-4, atol=1e-7
    )


def test_tight_system_validation():
    with pytest.raises(ValueError, match="p"):
        at.tight_system(0.0, 1.0, 1.0, 0.1, 0.1)
    with pytest.raises(ValueError, match="k"):
        at.tight_system(1.0, -1.0, 1.0, 0.1, 0.1)
    with pytest.raises(ValueError, match="eps_r"):
        at.tight_system(1.0, 1.0, 1.0, 0.1, -0.1)


def test_partial_returns_against_numpy():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(5, 12)).astype(np.float32)
    gammas, hs = np.array([0.0, 0.5, 1.0]), np.array([1, 4, 12])
    out = np.asarray(
        at.partial_returns(
            jnp.asarray(r), jnp.asarray(gammas), jnp.asarray(hs)
        )
    )
    assert out.shape == (3, 3, 5)
    for i, g in enumerate(gammas):
        for j, h in enumerate(hs):
            np.testing.assert_allclose(
                out[i, j], r[:, :h] @ (g ** np.arange(h)), rtol=1e-5, atol=1e-6
            )


def test_clipped_linear_saturates():
    K = jnp.asarray([[-7.0, -1.5]])
    a = at.clipped_linear((K, jnp.float32(2.0)), jnp.asarray([1.0, 0.0]))
    assert float(a[0]) == -2.0
    a = at.clipped_linear((K, jnp.float32(2.0)), jnp.asarray([0.1, 0.0]))
    assert float(a[0]) == pytest.approx(-0.7)


def test_state_errors_zero_for_the_truth_and_positive_for_a_model():
    setup = at.pendulum_setup()
    s0 = at.sample_box(
        jax.random.key(0), 16, setup.start_low, setup.start_high
    )
    env = setup.env
    same = at.state_errors(
        env.dynamics,
        env.params,
        env.dynamics,
        env.params,
        at.clipped_linear,
        setup.policy_params,
        s0,
        jax.random.key(1),
        horizon=5,
    )
    assert same.errors.shape == (16, 6)
    assert float(jnp.max(same.errors)) == 0.0
    shifted = at.state_errors(
        env.dynamics,
        env.params,
        models.affine_dynamics,
        (jnp.float32(1.0), jnp.float32(0.01)),
        at.clipped_linear,
        setup.policy_params,
        s0,
        jax.random.key(1),
        horizon=5,
    )
    assert float(jnp.min(shifted.errors[:, 1:])) > 0
    assert np.all(np.asarray(shifted.errors[:, 0]) == 0)


def test_pendulum_setup_stabilises_from_the_start_box():
    setup = at.pendulum_setup()
    env = setup.env
    s0 = at.sample_box(
        jax.random.key(0), 512, setup.start_low, setup.start_high
    )
    traj = rollout.rollout(
        env.dynamics,
        env.reward,
        at.clipped_linear,
        (env.params, env.params, setup.policy_params),
        s0,
        jax.random.key(1),
        horizon=100,
    )
    states = np.asarray(traj.states)
    assert np.all(
        np.abs(states) <= np.asarray(setup.data_high)
    )  # stays in the data box
    assert np.max(np.abs(states[:, -1])) < 1e-2  # and converges upright
    assert setup.lip_policy == pytest.approx(np.hypot(7.0, 1.5), rel=1e-6)


def test_pendulum_setup_validation():
    with pytest.raises(ValueError, match="gain"):
        at.pendulum_setup(gain=(1.0,))
    with pytest.raises(ValueError, match="start_box"):
        at.pendulum_setup(start_box=(0.1, -1.0))
    with pytest.raises(ValueError, match="n"):
        at.sample_box(jax.random.key(0), 0, jnp.zeros(2), jnp.ones(2))


def test_closed_loop_lipschitz_not_above_crude_constant():
    """For a linear model the closed-loop constant is ||A + B K|| <= max(||A||,||B||)(1 + ||K||)."""
    A = jnp.asarray([[1.0, 0.05], [0.75, 1.0]])
    B = jnp.asarray([[0.0], [0.15]])
    W = jnp.concatenate([A, B, jnp.zeros((2, 1))], axis=1)
    K = jnp.asarray([[-7.0, -1.5]])
    states = jax.random.normal(jax.random.key(0), (8, 2))
    got = float(
        at.closed_loop_lipschitz_lower(
            models.linear_model, W, policies.linear, K, states
        )
    )
    assert got == pytest.approx(
        float(np.linalg.norm(np.asarray(A + B @ K), 2)), rel=1e-5
    )
    crude = max(np.linalg.norm(A, 2), np.linalg.norm(B, 2)) * (
        1 + np.linalg.norm(K, 2)
    )
    assert got < crude


def test_attribution_rollouts_shapes_and_identities():
    setup = at.pendulum_setup()
    env = setup.env
    s0 = at.sample_box(jax.random.key(0), 8, setup.start_low, setup.start_high)
    # with the true functions as "models" every combination must agree exactly
    out = at.attribution_rollouts(
        env.dynamics,
        env.params,
        env.reward,
        env.params,
        env.dynamics,
        env.params,
        env.reward,
        env.params,
        at.clipped_linear,
        setup.policy_params,
        s0,
        jax.random.key(1),
        horizon=7,
    )
    assert set(out) == {"true", "reward", "dynamics", "both"}
    for v in out.values():
        assert v.rewards.shape == (8, 7) and v.states.shape == (8, 8, 2)
        np.testing.assert_array_equal(
            np.asarray(v.rewards), np.asarray(out["true"].rewards)
        )


# ----------------------------------------------------------------------------- chapter 3 helpers
def test_return_error_bound_grid_matches_the_scalar_bound():
    args = (0.03, 0.02, 0.6, 1.5, 0.4)
    gammas, hs = np.array([0.5, 0.95, 1.0]), np.array([0, 1, 7, 50])
    grid = at.return_error_bound_grid(*args, gammas, hs)
    assert grid.shape == (3, 4)
    for i, g in enumerate(gammas):
        for j, h in enumerate(hs):
            assert grid[i, j] == bounds.return_error_bound(
                *args, float(g), horizon=int(h)
            )
    with pytest.raises(ValueError, match="horizons"):
        at.return_error_bound_grid(*args, gammas, np.array([1.5]))
    with pytest.raises(ValueError, match="gammas"):
        at.return_error_bound_grid(*args, np.array([]), hs)


def _tight_runs(ts, horizon):
    s0 = jnp.asarray([[0.3], [-1.0], [2.0]])
    combos = {
        "true": (ts.true_dynamics, ts.true_reward),
        "reward": (ts.true_dynamics, ts.model_reward),
        "both": (ts.model_dynamics, ts.model_reward),
    }
    return {
        name: rollout.rollout(
            models.affine_dynamics,
            models.affine_reward,
            policies.linear,
            (dyn, rew, ts.policy),
            s0,
            jax.random.key(0),
            horizon=horizon,
        )
        for name, (dyn, rew) in combos.items()
    }


def test_slack_ladder_has_no_slack_on_the_tight_system():
    """On the aligned system every rung equals the theorem's bound: the local
    constant is the certified one, the action error is exactly L_pi times
    the state error, and the reward error is eps_r at every step."""
    ts = at.tight_system(0.9, 0.2, 0.5, eps_d=0.01, eps_r=0.02)
    runs = _tight_runs(ts, 40)
    consts = at.MeasuredConstants(
        ts.eps_dynamics,
        ts.eps_reward,
        ts.lip_dynamics,
        ts.lip_reward,
        ts.lip_reward,
        ts.lip_policy,
        ts.lip_dynamics * (1 + ts.lip_policy),
    )
    ladder = at.slack_ladder(runs, consts, gamma=0.9, horizon=30)
    bound = bounds.return_error_bound(
        ts.eps_dynamics,
        ts.eps_reward,
        ts.lip_dynamics,
        ts.lip_reward,
        ts.lip_policy,
        0.9,
        horizon=30,
    )
    assert set(ladder) == {
        "per_rollout",
        "local_lr",
        "action_error",
        "typical_eps",
        "gap",
    }
    for name, value in ladder.items():
        assert value.shape == (3,)
        np.testing.assert_allclose(value, bound, rtol=1e-4, err_msg=name)
    # a local constant half the certified one halves the dynamics term only
    half = consts._replace(lip_reward_local=ts.lip_reward / 2)
    lad2 = at.slack_ladder(runs, half, gamma=0.9, horizon=30)
    reward_term = ts.eps_reward * (1 - 0.9**30) / (1 - 0.9)
    np.testing.assert_allclose(
        lad2["local_lr"] - reward_term,
        (bound - reward_term) / 2,
        rtol=1e-4,
    )


def test_slack_ladder_validation():
    ts = at.tight_system(0.9, 0.2, 0.5, eps_d=0.01, eps_r=0.02)
    runs = _tight_runs(ts, 5)
    consts = at.MeasuredConstants(0.01, 0.02, 0.9, 0.5, 0.5, 0.2, 1.08)
    with pytest.raises(ValueError, match="horizon"):
        at.slack_ladder(runs, consts, gamma=0.9, horizon=6)
    with pytest.raises(ValueError, match="gamma"):
        at.slack_ladder(runs, consts, gamma=1.5, horizon=5)
    with pytest.raises(ValueError, match="runs"):
        at.slack_ladder({"true": runs["true"]}, consts, gamma=0.9, horizon=5)


@pytest.fixture(scope="module")
def small_models():
    setup = at.pendulum_setup()
    trained = at.train_pendulum_models(
        setup, jax.random.key(0), 256, hidden=(8,), steps=50
    )
    return setup, trained


def test_paired_returns_match_direct_rollouts(small_models):
    setup, trained = small_models
    env = setup.env
    s0 = at.sample_box(jax.random.key(1), 6, setup.start_low, setup.start_high)
    J, J_hat = at.paired_returns(
        env,
        trained,
        setup.policy_params,
        s0,
        jax.random.key(2),
        gamma=0.9,
        horizon=12,
    )
    for (dyn, dp, rew, rp), got in (
        ((env.dynamics, env.params, env.reward, env.params), J),
        (
            (
                models.dynamics_model,
                trained.dynamics,
                models.reward_model,
                trained.reward,
            ),
            J_hat,
        ),
    ):
        ref = rollout.rollout(
            dyn,
            rew,
            at.clipped_linear,
            (dp, rp, setup.policy_params),
            s0,
            jax.random.key(2),
            horizon=12,
            gamma=0.9,
        ).returns
        assert got.shape == (6,)
        np.testing.assert_allclose(got, np.asarray(ref), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="horizon"):
        at.paired_returns(
            env,
            trained,
            setup.policy_params,
            s0,
            jax.random.key(2),
            gamma=0.9,
            horizon=0,
        )


def test_measure_constants_brackets(small_models):
    setup, trained = small_models
    env = setup.env
    s0 = at.sample_box(
        jax.random.key(1), 16, setup.start_low, setup.start_high
    )
    true_run = rollout.rollout(
        env.dynamics,
        env.reward,
        at.clipped_linear,
        (env.params, env.params, setup.policy_params),
        s0,
        jax.random.key(2),
        horizon=20,
    )
    c = at.measure_constants(
        setup, trained, true_run, jax.random.key(3), 2000, n_local=500
    )
    assert c.eps_dynamics > 0 and c.eps_reward > 0
    # a local constant never exceeds a certified one
    assert 0 < c.lip_reward_local <= c.lip_reward * (1 + 1e-6)
    assert c.lip_dynamics >= 1.0  # residual model: 1 + product of norms
    assert c.loop == pytest.approx(c.lip_dynamics * (1 + c.lip_policy))
    # the sup error is at least the error at any visited pair
    pred = jax.vmap(models.reward_model, in_axes=(None, 0, 0))(
        trained.reward,
        true_run.states[:, 0],
        true_run.actions[:, 0],
    )
    assert np.max(np.abs(np.asarray(pred - true_run.rewards[:, 0]))) <= (
        c.eps_reward * (1 + 1e-6)
    )
    no_reward = trained._replace(reward=None)
    with pytest.raises(ValueError, match="trained"):
        at.measure_constants(setup, no_reward, true_run, jax.random.key(3), 10)


def test_pendulum_experiment_rejects_bad_input():
    keys = [jax.random.key(i) for i in range(4)]
    with pytest.raises(ValueError, match="n_rollouts"):
        at.pendulum_experiment(keys, n_rollouts=0)
    with pytest.raises(ValueError, match="keys"):
        at.pendulum_experiment(keys[:3])
