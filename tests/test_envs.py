"""True environments: shapes, physics, start states, validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import data, envs


def test_pendulum_constants_and_step():
    env = envs.pendulum()
    p = env.params
    assert (p.g, p.m, p.l, p.dt, p.max_torque) == (10.0, 1.0, 1.0, 0.05, 2.0)
    s = jnp.array([0.5, 0.1])
    s2 = env.dynamics(p, s, jnp.array([1.0]))
    thdot = 0.1 + (15.0 * np.sin(0.5) + 3.0 * 1.0) * 0.05
    np.testing.assert_allclose(s2, [0.5 + thdot * 0.05, thdot], rtol=1e-6)
    # torque is clipped at 2
    np.testing.assert_allclose(
        env.dynamics(p, s, jnp.array([5.0])),
        env.dynamics(p, s, jnp.array([2.0])),
    )


def test_pendulum_reward_wraps_angle():
    env = envs.pendulum()
    a = jnp.array([0.0])
    r1 = env.reward(env.params, jnp.array([0.3, 0.0]), a)
    r2 = env.reward(env.params, jnp.array([0.3 + 2 * np.pi, 0.0]), a)
    np.testing.assert_allclose(r1, r2, rtol=1e-5)
    np.testing.assert_allclose(r1, -(0.09), rtol=1e-5)
    full = env.reward(env.params, jnp.array([1.0, 2.0]), jnp.array([1.5]))
    np.testing.assert_allclose(
        full, -(1.0 + 0.1 * 4.0 + 0.001 * 2.25), rtol=1e-6
    )


def test_pendulum_start_distribution():
    env = envs.pendulum()
    s = env.sample_start(env.params, jax.random.key(0), 4096)
    assert s.shape == (4096, 2)
    assert np.all(np.abs(s[:, 0]) <= np.pi) and np.all(np.abs(s[:, 1]) <= 1.0)
    assert abs(float(s[:, 0].mean())) < 0.1


def test_linear_system_and_validation():
    lin = envs.linear_system(
        [[1.0, 0.1], [0.0, 1.0]],
        [[0.0], [0.1]],
        Q=np.diag([1.0, 0.5]),
        R=[[0.2]],
    )
    s, a = jnp.array([1.0, -1.0]), jnp.array([2.0])
    np.testing.assert_allclose(
        lin.dynamics(lin.params, s, a), [0.9, -0.8], rtol=1e-6
    )
    np.testing.assert_allclose(
        lin.reward(lin.params, s, a), -(1.0 + 0.5 + 0.8), rtol=1e-6
    )
    with pytest.raises(ValueError, match="A"):
        envs.linear_system([[1.0, 2.0]], [[1.0]])
    with pytest.raises(ValueError, match="Q"):
        envs.linear_system([[1.0]], [[1.0]], Q=[[-1.0]])
    with pytest.raises(ValueError, match="start_scale"):
        envs.linear_system([[1.0]], [[1.0]], start_scale=0.0)
    with pytest.raises(ValueError, match="dt"):
        envs.pendulum(envs.PendulumParams(dt=0.0))


def test_sample_transitions_are_consistent():
    env = envs.pendulum()
    tr = data.sample_transitions(
        env, jax.random.key(0), 100, state_low=[-1, -1], state_high=[1, 1]
    )
    assert tr.states.shape == (100, 2) and tr.actions.shape == (100, 1)
    assert np.all(np.abs(tr.states) <= 1) and np.all(np.abs(tr.actions) <= 2)
    np.testing.assert_allclose(
        tr.next_states[3],
        env.dynamics(env.params, tr.states[3], tr.actions[3]),
    )
    np.testing.assert_allclose(
        tr.rewards[3], env.reward(env.params, tr.states[3], tr.actions[3])
    )
    with pytest.raises(ValueError, match="n"):
        data.sample_transitions(env, jax.random.key(0), 0)
    with pytest.raises(ValueError, match="state_low"):
        data.sample_transitions(env, jax.random.key(0), 5, state_low=[0, 0])
