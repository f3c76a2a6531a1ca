"""True environments as pure JAX functions (gymnax style).

Each environment is an :class:`Env`: a bundle of pure functions that take the environment's
parameters explicitly, with the same step signatures as a learned model
(``dynamics(params, s, a)``, ``reward(params, s, a)``), plus a start-state sampler. Environments
know nothing of learned models; :mod:`imagination.rollout` runs either.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks

__all__ = [
    "Env",
    "LinearParams",
    "PendulumParams",
    "linear_system",
    "pendulum",
    "angle_normalize",
]

Array = jax.Array


class Env(NamedTuple):
    """A true environment.

    Attributes
    ----------
    name:
        A short label for plots.
    params:
        The environment's parameters (a NamedTuple of arrays and floats).
    dynamics:
        ``dynamics(params, s, a) -> s_next``.
    reward:
        ``reward(params, s, a) -> r``.
    sample_start:
        ``sample_start(params, key, n) -> (n, state_dim)`` start states.
    state_dim, action_dim:
        Sizes of a state and an action.
    """

    name: str
    params: Any
    dynamics: Callable[[Any, Array, Array], Array]
    reward: Callable[[Any, Array, Array], Array]
    sample_start: Callable[[Any, Array, int], Array]
    state_dim: int
    action_dim: int


# ----------------------------------------------------------------------------- linear system
class LinearParams(NamedTuple):
    """``s' = A s + B a``, reward ``-(s^T Q s + a^T R a)``, starts uniform in ``[-scale, scale]``."""

    A: Array
    B: Array
    Q: Array
    R: Array
    start_scale: float


def _linear_dynamics(p: LinearParams, s: Array, a: Array) -> Array:
    return p.A @ s + p.B @ a


def _linear_reward(p: LinearParams, s: Array, a: Array) -> Array:
    return -(s @ p.Q @ s + a @ p.R @ a)


def _linear_start(p: LinearParams, key: Array, n: int) -> Array:
    ds = p.A.shape[0]
    return jax.random.uniform(
        key, (n, ds), p.A.dtype, -p.start_scale, p.start_scale
    )


def linear_system(
    A: Any,
    B: Any,
    Q: Any | None = None,
    R: Any | None = None,
    *,
    start_scale: float = 1.0,
) -> Env:
    """A linear system with quadratic reward.

    Parameters
    ----------
    A:
        ``(ds, ds)`` state matrix.
    B:
        ``(ds, da)`` input matrix.
    Q, R:
        Positive semidefinite cost matrices (identity by default); the reward is
        ``-(s^T Q s + a^T R a)``.
    start_scale:
        Start states are uniform on ``[-start_scale, start_scale]^ds``.

    Under a linear policy ``a = K s`` the discounted return from ``s_0`` is
    ``-s_0^T P s_0`` where ``P`` solves the discrete Lyapunov equation
    ``P = Q + K^T R K + gamma F^T P F`` with ``F = A + B K`` (chapter 1 derives it).
    """
    A = jnp.atleast_2d(_matrix("A", A))
    B = _matrix("B", B)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"A must be square, got shape {A.shape}")
    ds = A.shape[0]
    if (
        B.size == 0
        or B.size % ds
        or B.ndim > 2
        or (B.ndim == 2 and B.shape[0] != ds)
    ):
        raise ValueError(
            f"B must have shape ({ds}, action_dim) to match A, got shape {B.shape}"
        )
    B = B.reshape(ds, -1)
    da = B.shape[1]
    Q = (
        jnp.eye(ds, dtype=jnp.float32)
        if Q is None
        else jnp.atleast_2d(_matrix("Q", Q))
    )
    R = (
        jnp.eye(da, dtype=jnp.float32)
        if R is None
        else jnp.atleast_2d(_matrix("R", R))
    )
    if Q.shape != (ds, ds):
        raise ValueError(f"Q must have shape {(ds, ds)}, got {Q.shape}")
    if R.shape != (da, da):
        raise ValueError(f"R must have shape {(da, da)}, got {R.shape}")
    for name, M in (("Q", Q), ("R", R)):
        M64 = np.asarray(M, np.float64)
        if (
            not np.allclose(M64, M64.T)
            or np.linalg.eigvalsh(M64).min() < -1e-9
        ):
            raise ValueError(f"{name} must be symmetric positive semidefinite")
    start_scale = _checks.number("start_scale", start_scale, positive=True)
    params = LinearParams(A, B, Q, R, start_scale)
    return Env(
        "linear",
        params,
        _linear_dynamics,
        _linear_reward,
        _linear_start,
        ds,
        da,
    )


def _matrix(name: str, value: Any) -> Array:
    """``value`` as a float32 array with finite real entries, else an error naming ``name``."""
    try:
        m = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise _checks.ArgumentTypeError(
            f"{name} must be a real matrix: {err}"
        ) from None
    if m.dtype.kind not in "iuf":
        raise _checks.ArgumentTypeError(
            f"{name} must be a real matrix (int or float entries), got dtype {m.dtype}"
        )
    with np.errstate(over="ignore"):
        m32 = m.astype(np.float32)
    if not np.all(np.isfinite(m32)):
        raise ValueError(
            f"{name} must have finite entries (within float32 range), got {value!r}"
        )
    return jnp.asarray(m32)


# ----------------------------------------------------------------------------- pendulum
class PendulumParams(NamedTuple):
    """Gym's ``Pendulum-v1`` constants: gravity, mass, length, time step, limits."""

    g: float = 10.0
    m: float = 1.0
    l: float = 1.0  # noqa: E741  (the pendulum's length)
    dt: float = 0.05
    max_torque: float = 2.0
    max_speed: float = 8.0


def angle_normalize(theta: Array) -> Array:
    """Wrap an angle to ``[-pi, pi)``."""
    return (theta + jnp.pi) % (2 * jnp.pi) - jnp.pi


def _pendulum_dynamics(p: PendulumParams, s: Array, a: Array) -> Array:
    th, thdot = s[0], s[1]
    u = jnp.clip(a[0], -p.max_torque, p.max_torque)
    thdot_new = (
        thdot
        + (3 * p.g / (2 * p.l) * jnp.sin(th) + 3.0 / (p.m * p.l**2) * u) * p.dt
    )
    thdot_new = jnp.clip(thdot_new, -p.max_speed, p.max_speed)
    return jnp.stack([th + thdot_new * p.dt, thdot_new])


def _pendulum_reward(p: PendulumParams, s: Array, a: Array) -> Array:
    u = jnp.clip(a[0], -p.max_torque, p.max_torque)
    return -(angle_normalize(s[0]) ** 2 + 0.1 * s[1] ** 2 + 0.001 * u**2)


def _pendulum_start(p: PendulumParams, key: Array, n: int) -> Array:
    k1, k2 = jax.random.split(key)
    th = jax.random.uniform(k1, (n,), jnp.float32, -jnp.pi, jnp.pi)
    thdot = jax.random.uniform(k2, (n,), jnp.float32, -1.0, 1.0)
    return jnp.stack([th, thdot], axis=1)


def pendulum(params: PendulumParams | None = None) -> Env:
    """The inverted pendulum of Gym's ``Pendulum-v1`` as pure functions.

    State ``s = (theta, theta_dot)`` with ``theta = 0`` upright; action the torque, clipped to
    ``[-2, 2]``. Semi-implicit Euler with ``dt = 0.05``:
    ``theta_dot' = clip(theta_dot + (3 g / (2 l) sin theta + 3 / (m l^2) u) dt, -8, 8)``,
    ``theta' = theta + theta_dot' dt``. Reward ``-(wrap(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2)``
    with the angle wrapped to ``[-pi, pi)``. Starts: ``theta ~ U(-pi, pi)``,
    ``theta_dot ~ U(-1, 1)``.
    """
    params = PendulumParams() if params is None else params
    if not isinstance(params, PendulumParams):
        raise _checks.ArgumentTypeError(
            f"params must be a PendulumParams, got {type(params).__name__}"
        )
    # positive finite real numbers (bool and strings rejected), as floats
    params = PendulumParams(
        *(
            _checks.number(name, getattr(params, name), positive=True)
            for name in PendulumParams._fields
        )
    )
    f32 = float(np.finfo(np.float32).max)
    for name, v in zip(PendulumParams._fields, params):
        if v > f32:
            raise ValueError(
                f"{name} must fit in float32 (<= {f32:.3g}), got {v!r}"
            )
    g, m, l_ = params.g, params.m, params.l
    with np.errstate(all="ignore"):
        ml2 = np.float64(m) * l_ * l_
        coefs = (
            np.float32(np.float64(3 * g) / (2 * l_)),
            np.float32(3 / ml2) if ml2 > 0 else np.float32(np.inf),
        )
    if not all(np.isfinite(c) for c in coefs):
        raise ValueError(
            "g, m and l give non-finite coefficients 3 g / (2 l), 3 / (m l^2) in float32: "
            f"g={g!r}, m={m!r}, l={l_!r}"
        )
    return Env(
        "pendulum",
        params,
        _pendulum_dynamics,
        _pendulum_reward,
        _pendulum_start,
        2,
        1,
    )
