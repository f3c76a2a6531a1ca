"""The rollout engine against a plain NumPy reference, determinism, ensembles and sharding."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import envs, models, policies
from imagination.rollout import (
    discounted_returns,
    make_rollout,
    rollout,
    shard_batch,
)


def numpy_pendulum_rollout(p, K, s0, horizon, gamma):
    """Per-rollout Python reference of the pendulum under a linear policy, in float64."""
    out = []
    for s in np.asarray(s0, np.float64):
        th, thd = s
        ret = 0.0
        for t in range(horizon):
            u = float(
                np.clip(K @ np.array([th, thd]), -p.max_torque, p.max_torque)[
                    0
                ]
            )
            wrapped = (th + np.pi) % (2 * np.pi) - np.pi
            r = -(wrapped**2 + 0.1 * thd**2 + 0.001 * u**2)
            ret += gamma**t * r
            thd = np.clip(
                thd
                + (3 * p.g / (2 * p.l) * np.sin(th) + 3.0 / (p.m * p.l**2) * u)
                * p.dt,
                -p.max_speed,
                p.max_speed,
            )
            th = th + thd * p.dt
        out.append((ret, th, thd))
    return np.array(out)


def test_pendulum_matches_numpy_reference():
    env = envs.pendulum()
    K = jnp.array([[-6.0, -1.5]])
    s0 = env.sample_start(env.params, jax.random.key(0), 64)
    traj = rollout(
        env.dynamics,
        env.reward,
        policies.linear,
        (env.params, env.params, K),
        s0,
        jax.random.key(1),
        horizon=40,
        gamma=0.97,
    )
    ref = numpy_pendulum_rollout(
        env.params, np.asarray(K, np.float64), s0, 40, 0.97
    )
    np.testing.assert_allclose(traj.returns, ref[:, 0], rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(
        traj.states[:, -1], ref[:, 1:], rtol=2e-4, atol=2e-4
    )


def test_shapes_and_return_consistency():
    lin = envs.linear_system([[0.9, 0.2], [0.0, 0.7]], [[0.0], [1.0]])
    pol = (jnp.array([[0.1, -0.3]]), jnp.log(jnp.array([0.4])))
    s0 = lin.sample_start(lin.params, jax.random.key(0), 16)
    tr = rollout(
        lin.dynamics,
        lin.reward,
        policies.gaussian_linear,
        (lin.params, lin.params, pol),
        s0,
        jax.random.key(2),
        horizon=7,
        gamma=0.9,
    )
    assert tr.states.shape == (16, 8, 2)
    assert tr.actions.shape == (16, 7, 1)
    assert tr.rewards.shape == (16, 7)
    assert tr.returns.shape == (16,)
    np.testing.assert_allclose(
        tr.returns, discounted_returns(tr.rewards, 0.9), rtol=1e-5
    )
    # the states really follow the dynamics with the sampled actions
    nxt = jax.vmap(
        jax.vmap(lin.dynamics, in_axes=(None, 0, 0)), in_axes=(None, 0, 0)
    )(lin.params, tr.states[:, :-1], tr.actions)
    np.testing.assert_allclose(nxt, tr.states[:, 1:], rtol=1e-5, atol=1e-6)


def test_deterministic_by_seed_and_different_across_seeds():
    lin = envs.linear_system([[1.0]], [[1.0]])
    pol = (jnp.array([[-0.5]]), jnp.array([0.0]))
    s0 = jnp.ones((32, 1))
    args = (
        lin.dynamics,
        lin.reward,
        policies.gaussian_linear,
        (lin.params, lin.params, pol),
        s0,
    )
    a = rollout(*args, jax.random.key(7), horizon=5)
    b = rollout(*args, jax.random.key(7), horizon=5)
    c = rollout(*args, jax.random.key(8), horizon=5)
    np.testing.assert_array_equal(a.returns, b.returns)
    assert not np.allclose(a.returns, c.returns)


def test_make_rollout_matches_rollout_and_vmaps_over_ensembles():
    env = envs.pendulum()
    keys = jax.random.split(jax.random.key(0), 3)
    ensemble = jax.vmap(lambda k: models.mlp_init(k, (3, 16, 2)))(keys)
    run = make_rollout(
        models.dynamics_model,
        env.reward,
        policies.linear,
        horizon=12,
        gamma=0.95,
    )
    K = jnp.array([[-4.0, -1.0]])
    s0 = env.sample_start(env.params, jax.random.key(1), 10)
    out = jax.vmap(run, in_axes=(0, None, None, None, None))(
        ensemble, env.params, K, s0, jax.random.key(2)
    )
    assert out.returns.shape == (3, 10)
    first = jax.tree_util.tree_map(lambda x: x[0], ensemble)
    single = rollout(
        models.dynamics_model,
        env.reward,
        policies.linear,
        (first, env.params, K),
        s0,
        jax.random.key(2),
        horizon=12,
        gamma=0.95,
    )
    np.testing.assert_allclose(
        out.returns[0], single.returns, rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(out.returns[0], out.returns[1])


def test_gradient_flows_through_the_rollout():
    lin = envs.linear_system([[0.9]], [[1.0]])
    run = make_rollout(
        lin.dynamics, lin.reward, policies.linear, horizon=20, gamma=0.9
    )
    s0 = jnp.ones((4, 1))

    def J(k):
        return run(
            lin.params, lin.params, k, s0, jax.random.key(0)
        ).returns.mean()

    g = jax.grad(J)(jnp.array([[-0.2]]))
    eps = 1e-2
    fd = (J(jnp.array([[-0.2 + eps]])) - J(jnp.array([[-0.2 - eps]]))) / (
        2 * eps
    )
    np.testing.assert_allclose(g[0, 0], fd, rtol=1e-2)


@pytest.mark.parametrize(
    "bad",
    [dict(horizon=0), dict(horizon=2.5), dict(gamma=1.5), dict(gamma=-0.1)],
)
def test_bad_arguments_raise(bad):
    lin = envs.linear_system([[1.0]], [[1.0]])
    kwargs = dict(horizon=3, gamma=0.9) | bad
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        rollout(
            lin.dynamics,
            lin.reward,
            policies.linear,
            (lin.params, lin.params, jnp.zeros((1, 1))),
            jnp.ones((2, 1)),
            jax.random.key(0),
            **kwargs,
        )
    with pytest.raises(ValueError, match=name):
        make_rollout(lin.dynamics, lin.reward, policies.linear, **kwargs)


def test_start_states_must_be_a_batch():
    lin = envs.linear_system([[1.0]], [[1.0]])
    with pytest.raises(ValueError, match="start_states"):
        rollout(
            lin.dynamics,
            lin.reward,
            policies.linear,
            (lin.params, lin.params, jnp.zeros((1, 1))),
            jnp.ones((1,)),
            jax.random.key(0),
            horizon=3,
        )


def test_shard_batch_rejects_uneven_batches():
    if jax.device_count() == 1:
        pytest.skip(
            "needs several devices; covered by test_sharded_rollout_matches_single_device"
        )
    with pytest.raises(ValueError, match="multiple"):
        shard_batch(jnp.ones((jax.device_count() + 1, 2)))


SHARDED = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from imagination import envs, policies
    from imagination.rollout import rollout
    assert jax.device_count() == 4, jax.devices()
    env = envs.pendulum()
    K = jnp.array([[-6.0, -1.5]])
    s0 = env.sample_start(env.params, jax.random.key(0), 64)
    args = (env.dynamics, env.reward, policies.linear, (env.params, env.params, K), s0, jax.random.key(1))
    a = rollout(*args, horizon=30, gamma=0.99)
    b = rollout(*args, horizon=30, gamma=0.99, shard=True)
    assert len(b.returns.sharding.device_set) == 4, b.returns.sharding
    np.testing.assert_array_equal(np.asarray(a.returns), np.asarray(b.returns))
    np.testing.assert_array_equal(np.asarray(a.states), np.asarray(b.states))
    print("sharded ok")
    """
)


def test_sharded_rollout_matches_single_device():
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
        JAX_PLATFORMS="cpu",
    )
    res = subprocess.run(
        [sys.executable, "-c", SHARDED],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "sharded ok" in res.stdout
