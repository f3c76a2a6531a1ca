"""Hostile input to the rollout engine and the environments, property-based (hypothesis).

The property: a ``ValueError``/``TypeError`` naming the argument, or a trajectory whose
``finite`` flag says exactly whether its arrays are finite. Shapes are drawn from a few sizes
so that the number of compilations stays small.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagination import envs, policies
from imagination.rollout import (
    Trajectory,
    discounted_returns,
    make_rollout,
    rollout,
    shard_batch,
)

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))
ENTRY = st.one_of(
    st.sampled_from(
        [
            0.0,
            1.0,
            -1.0,
            5e-324,
            1e30,
            3e38,
            1e308,
            math.inf,
            -math.inf,
            math.nan,
        ]
    ),
    st.floats(-10, 10),
)
LIN = envs.linear_system([[0.9, 0.1], [0.0, 0.8]], [[0.0], [1.0]])
K = jnp.array([[-0.1, -0.2]])


def _bad_dynamics(p, s, a):  # overflows: squares the state every step
    return s * s * 1e30 + p.A @ s


def _names_in(err, names):
    msg = str(err)
    assert any(n in msg for n in names), f"message names no argument: {msg!r}"


@settings(max_examples=150, **SETTINGS)
@given(
    batch=st.sampled_from([1, 3, 0]),
    dim=st.sampled_from([2, 2, 2, 1, 3]),
    ndim=st.sampled_from([2, 2, 2, 1, 3]),
    dtype=st.sampled_from(["float32", "float32", "int32", "bool", "float64"]),
    entries=st.lists(ENTRY, min_size=1, max_size=6),
    horizon=st.one_of(
        st.sampled_from([1, 5, 5, 5]),
        st.sampled_from([0, -1, 2.5, True, "5", None]),
    ),
    gamma=st.one_of(
        st.sampled_from([0.0, 0.5, 0.9, 1.0]),
        st.sampled_from([1.5, -0.1, math.nan, math.inf, True, "0.9", None]),
    ),
    overflow=st.booleans(),
)
def test_rollout_hostile(
    batch, dim, ndim, dtype, entries, horizon, gamma, overflow
):
    shape = {1: (dim,), 2: (batch, dim), 3: (batch, dim, 1)}[ndim]
    vals = np.resize(np.array(entries, np.float64), shape)
    with np.errstate(all="ignore"):
        s0 = vals.astype(dtype)
    dyn = _bad_dynamics if overflow else LIN.dynamics
    try:
        traj = rollout(
            dyn,
            LIN.reward,
            policies.linear,
            (LIN.params, LIN.params, K),
            s0,
            jax.random.key(0),
            horizon=horizon,
            gamma=gamma,
        )
    except (ValueError, TypeError) as err:
        _names_in(err, ("start_states", "horizon", "gamma", "dynamics"))
        return
    # accepted: only legal input gets here
    assert dtype.startswith("float") and ndim == 2 and batch > 0 and dim == 2
    assert np.all(np.isfinite(s0))
    assert traj.finite.shape == (batch,) and traj.finite.dtype == jnp.bool_
    arrays_ok = (
        np.isfinite(np.asarray(traj.states)).all(axis=(1, 2))
        & np.isfinite(np.asarray(traj.actions)).all(axis=(1, 2))
        & np.isfinite(np.asarray(traj.returns))
    )
    np.testing.assert_array_equal(np.asarray(traj.finite), arrays_ok)


def test_non_finite_batch_is_flagged_and_jitted_path_keeps_working():
    run = make_rollout(
        _bad_dynamics, LIN.reward, policies.linear, horizon=8, gamma=0.9
    )
    s0 = jnp.array([[1.0, 1.0], [0.0, 0.0]])
    traj = run(LIN.params, LIN.params, K, s0, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(traj.finite), [False, True])
    # jit over a traced start state: the finiteness check is the flag, not an exception
    nan_traj = jax.jit(
        lambda s: run(LIN.params, LIN.params, K, s, jax.random.key(0))
    )(jnp.full((2, 2), jnp.nan))
    assert not np.asarray(nan_traj.finite).any()


@pytest.mark.parametrize(
    "s0, match",
    [
        (jnp.ones((2, 3)), "state"),  # wrong state dimension
        (jnp.ones((2, 2), jnp.int32), "start_states"),
        (jnp.array([[jnp.nan, 0.0]]), "start_states"),
        (jnp.ones((2,)), "start_states"),
        ("abc", "start_states"),
    ],
)
def test_start_state_errors_name_the_argument(s0, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rollout(
            LIN.dynamics,
            LIN.reward,
            policies.linear,
            (LIN.params, LIN.params, K),
            s0,
            jax.random.key(0),
            horizon=3,
        )


def test_trajectory_built_by_hand_has_no_flag():
    t = Trajectory(*(jnp.zeros(1) for _ in range(4)))
    assert t.finite is None


@settings(max_examples=120, **SETTINGS)
@given(
    A=st.one_of(
        st.lists(ENTRY, min_size=1, max_size=4),
        st.sampled_from(["A", None, [[True]], [[1j]], [[1.0, 2.0]]]),
    ),
    B=st.one_of(
        st.lists(ENTRY, min_size=1, max_size=3),
        st.sampled_from(["B", [[True]], []]),
    ),
    scale=st.one_of(ENTRY, st.sampled_from([True, "1", None])),
)
def test_linear_system_hostile(A, B, scale):
    if isinstance(A, list) and A and not isinstance(A[0], list):
        A = np.resize(np.array(A), (2, 2)) if len(A) > 1 else [A]
    try:
        env = envs.linear_system(A, B, start_scale=scale)
    except (ValueError, TypeError) as err:
        _names_in(err, ("A", "B", "Q", "R", "start_scale"))
        return
    a32 = np.asarray(env.params.A)
    assert np.all(np.isfinite(a32)) and np.all(np.isfinite(env.params.B))
    assert isinstance(env.params.start_scale, float)
    assert math.isfinite(env.params.start_scale) and env.params.start_scale > 0
    s = jnp.ones(env.state_dim)
    a = jnp.ones(env.action_dim)
    assert env.dynamics(env.params, s, a).shape == (env.state_dim,)


@settings(max_examples=120, **SETTINGS)
@given(
    name=st.sampled_from(envs.PendulumParams._fields),
    value=st.one_of(ENTRY, st.sampled_from([True, "1.0", None, 2])),
)
def test_pendulum_hostile(name, value):
    try:
        env = envs.pendulum(envs.PendulumParams(**{name: value}))
    except (ValueError, TypeError) as err:
        _names_in(err, (name,))
        return
    assert all(
        isinstance(v, float) and math.isfinite(v) and v > 0 for v in env.params
    )
    out = env.dynamics(env.params, jnp.array([0.5, 0.1]), jnp.array([1.0]))
    assert out.shape == (2,) and out.dtype == jnp.float32


@settings(max_examples=100, **SETTINGS)
@given(
    horizon=st.one_of(
        st.sampled_from([1, 4]), st.sampled_from([0, 2.5, True, "3", None])
    ),
    gamma=st.one_of(ENTRY, st.sampled_from([0.5, 1.0, True, "0.5", None, 1j])),
)
def test_make_rollout_and_discounted_returns_hostile(horizon, gamma):
    try:
        make_rollout(
            LIN.dynamics,
            LIN.reward,
            policies.linear,
            horizon=horizon,
            gamma=gamma,
        )
    except (ValueError, TypeError) as err:
        _names_in(err, ("horizon", "gamma"))
    else:
        assert isinstance(gamma, float) and 0 <= gamma <= 1
    try:
        out = discounted_returns(jnp.ones((2, 3)), gamma)
    except (ValueError, TypeError) as err:
        _names_in(err, ("gamma", "rewards"))
    else:
        assert np.all(np.isfinite(np.asarray(out)))
    with pytest.raises(ValueError, match="rewards"):
        discounted_returns(jnp.float32(1.0), 0.5)


def test_shard_batch_and_angle_normalize_hostile():
    with pytest.raises(ValueError, match="batch axis"):
        shard_batch(jnp.float32(1.0))
    out = envs.angle_normalize(jnp.array([0.0, 10.0, -10.0, jnp.inf]))
    assert np.all(np.abs(np.asarray(out[:3])) <= np.pi)


@pytest.mark.parametrize("horizon", [2**31, 2**70, 10**400])
def test_horizon_beyond_one_scan_is_refused_naming_it(horizon):
    """A Python int is exact at any size (the package's rule), but one scan runs at most
    2**31 - 1 steps: a longer horizon is a ValueError at construction, not a crash later."""
    with pytest.raises(ValueError, match="horizon must be at most") as info:
        make_rollout(
            LIN.dynamics, LIN.reward, policies.linear, horizon=horizon
        )
    assert not isinstance(info.value, TypeError)
