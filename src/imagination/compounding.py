"""Compounding model error (chapter 2): closed-loop Jacobians, multi-step
constants and Lyapunov (weighted) norms.

The compounding bound of :mod:`imagination.bounds` multiplies the state
error by one constant per step. Which constant, and in which norm, decides
whether the bound says anything. This module measures the pieces:

* :func:`closed_loop_jacobians`: ``Dg(s)`` for the closed-loop map
  ``g(s) = f_hat(s, pi(s))`` of a model and a policy, at many states;
* :func:`product_norms`: ``||J_k ... J_1||_2`` along trajectories, the
  multi-step constants a one-step constant ignores;
* :func:`lyapunov_matrix`, :func:`weighted_norm`,
  :func:`weighted_operator_norm`, :func:`sample_ellipse`: the norm
  ``||x||_P = sqrt(x^T P x)`` in which a stable linearisation contracts;
* :func:`tight_state_errors`: the state error of the aligned linear system
  (:func:`imagination.attribution.tight_system`) from the rollout engine, on
  which the compounding bound holds with equality.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import attribution, models, policies
from ._checks import integer, number
from ._compat import batched_map
from .rollout import rollout

__all__ = [
    "closed_loop_jacobians",
    "product_norms",
    "spectral_radius",
    "lyapunov_matrix",
    "weighted_norm",
    "weighted_operator_norm",
    "sample_ellipse",
    "tight_state_errors",
]

Array = jax.Array


def _square(name: str, M: Any) -> np.ndarray:
    arr = np.asarray(M, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty square matrix, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _positive_definite(P: Any) -> np.ndarray:
    arr = _square("P", P)
    if not np.allclose(arr, arr.T, rtol=1e-10, atol=1e-12):
        raise ValueError("P must be symmetric")
    if np.linalg.eigvalsh(arr).min() <= 0:
        raise ValueError("P must be positive definite")
    return arr


# ------------------------------------------------------------- Jacobians
def closed_loop_jacobians(
    model: Callable,
    model_params: Any,
    policy: Callable,
    policy_params: Any,
    states: Array,
    *,
    batch_size: int = 65536,
) -> Array:
    """Jacobians ``Dg(s)`` of the closed loop ``g(s) = model(s, pi(s))``.

    Parameters
    ----------
    model:
        Step function ``model(params, s, a)`` (engine signature).
    model_params:
        Its parameters.
    policy:
        Deterministic policy ``policy(params, s, key)``.
    policy_params:
        Its parameters.
    states:
        States of shape ``(..., ds)``; any leading shape.
    batch_size:
        Above this many states the Jacobians are computed in batches of
        this size (``jax.lax.map``), to bound the memory of large samples.

    Returns
    -------
    jax.Array
        Shape ``(..., ds, ds)``; ``[..., i, j] = d g_i / d s_j``.

    Raises
    ------
    ValueError
        If ``states`` has no state axis, or ``batch_size`` is not a positive
        integer.
    """
    states = jnp.asarray(states)
    if states.ndim < 1 or states.shape[-1] == 0:
        raise ValueError(
            f"states must have shape (..., ds), got {states.shape}"
        )
    if (
        isinstance(batch_size, bool)
        or int(batch_size) != batch_size
        or (batch_size < 1)
    ):
        raise ValueError(
            f"batch_size must be a positive integer, got {batch_size!r}"
        )
    key = jax.random.key(0)

    def g(s):
        return model(model_params, s, policy(policy_params, s, key))

    flat = states.reshape(-1, states.shape[-1])
    if flat.shape[0] > batch_size:
        jac = batched_map(jax.jacfwd(g), flat, int(batch_size))
    else:
        jac = jax.vmap(jax.jacfwd(g))(flat)
    return jac.reshape(*states.shape, states.shape[-1])


@jax.jit
def _product_norms(jacobians: Array) -> Array:
    d = jacobians.shape[-1]

    def one(js):
        def step(M, J):
            M = J @ M
            return M, jnp.linalg.norm(M, ord=2)

        _, norms = jax.lax.scan(step, jnp.eye(d, dtype=js.dtype), js)
        return jnp.concatenate([jnp.ones((1,), js.dtype), norms])

    return jax.vmap(one)(jacobians)


def product_norms(jacobians: Array) -> Array:
    """Norms of the products ``||J_k J_{k-1} ... J_1||_2`` along trajectories.

    For Jacobians of the closed loop along a trajectory, the product is the
    derivative of the state after ``k`` steps with respect to the start
    state: how much a small error made at the start has grown after ``k``
    steps. A one-step constant ``L`` bounds it by ``L^k``; the product can be
    far smaller when the steps rotate and shrink the error in turn.

    Parameters
    ----------
    jacobians:
        Shape ``(B, T, d, d)``: ``jacobians[b, k]`` is the Jacobian of step
        ``k + 1`` of trajectory ``b``.

    Returns
    -------
    jax.Array
        Shape ``(B, T + 1)``; column ``0`` is ``1`` (the empty product).

    Raises
    ------
    ValueError
        If ``jacobians`` is not of shape ``(B, T, d, d)``.
    """
    jacobians = jnp.asarray(jacobians)
    if jacobians.ndim != 4 or jacobians.shape[-1] != jacobians.shape[-2]:
        raise ValueError(
            f"jacobians must have shape (B, T, d, d), got {jacobians.shape}"
        )
    return _product_norms(jacobians)


def spectral_radius(A: Any) -> float:
    """Largest modulus of the eigenvalues of the square matrix ``A``.

    Raises
    ------
    ValueError
        If ``A`` is not a finite square matrix.
    """
    return float(np.max(np.abs(np.linalg.eigvals(_square("A", A)))))


# ------------------------------------------------------------- Lyapunov norms
def lyapunov_matrix(A: Any, Q: Any = None) -> np.ndarray:
    """Solve the discrete Lyapunov equation ``A^T P A - P + Q = 0`` for ``P``.

    When the spectral radius of ``A`` is below one the solution
    ``P = sum_k (A^T)^k Q A^k`` is symmetric positive definite, and ``A``
    contracts in the norm ``||x||_P = sqrt(x^T P x)``: with ``Q = I``,
    ``||A||_P^2 = 1 - 1/lambda_max(P)`` at most (see
    :func:`weighted_operator_norm`).

    Parameters
    ----------
    A:
        Square matrix (the closed-loop Jacobian at an equilibrium).
    Q:
        Symmetric positive-definite matrix; default the identity.

    Returns
    -------
    numpy.ndarray
        ``P`` in float64, symmetrised.

    Raises
    ------
    ValueError
        If ``A`` or ``Q`` is not a finite square matrix of matching size,
        ``Q`` is not positive definite, or ``A`` has spectral radius >= 1
        (no positive-definite solution then).
    """
    A = _square("A", A)
    n = A.shape[0]
    Q = np.eye(n) if Q is None else _square("Q", Q)
    if Q.shape != A.shape:
        raise ValueError(f"Q must have shape {A.shape}, got {Q.shape}")
    if not np.allclose(Q, Q.T) or np.linalg.eigvalsh(Q).min() <= 0:
        raise ValueError("Q must be symmetric positive definite")
    rho = spectral_radius(A)
    if not rho < 1:
        raise ValueError(
            f"A must have spectral radius < 1 (a stable linearisation), "
            f"got {rho:.6g}"
        )
    # vec(A^T P A) = (A^T kron A^T) vec(P), row-major vec
    lhs = np.eye(n * n) - np.kron(A.T, A.T)
    P = np.linalg.solve(lhs, Q.reshape(-1)).reshape(n, n)
    return (P + P.T) / 2


def _sqrt_and_inverse(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, V = np.linalg.eigh(P)
    return (V * np.sqrt(w)) @ V.T, (V / np.sqrt(w)) @ V.T


def weighted_norm(x: Array, P: Any) -> Array:
    """``||x||_P = sqrt(x^T P x)`` over the last axis of ``x``.

    Raises
    ------
    ValueError
        If ``P`` is not symmetric positive definite, or its size does not
        match the last axis of ``x``.
    """
    P = _positive_definite(P)
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[-1] != P.shape[0]:
        raise ValueError(
            f"x must have last axis of size {P.shape[0]}, got {x.shape}"
        )
    half, _ = _sqrt_and_inverse(P)
    return jnp.linalg.norm(x @ jnp.asarray(half.T, x.dtype), axis=-1)


def weighted_operator_norm(jacobians: Array, P: Any) -> Array:
    """Operator norms ``||P^{1/2} J P^{-1/2}||_2`` of matrices ``J``.

    This is the norm of ``J`` as a map from ``||.||_P`` to ``||.||_P``;
    its supremum over a convex region is the Lipschitz constant of a map
    with Jacobians ``J`` there, measured in the ``P``-norm.

    Parameters
    ----------
    jacobians:
        Shape ``(..., d, d)``.
    P:
        Symmetric positive-definite ``(d, d)``.

    Raises
    ------
    ValueError
        If the shapes do not match or ``P`` is not positive definite.
    """
    P = _positive_definite(P)
    J = jnp.asarray(jacobians)
    d = P.shape[0]
    if J.ndim < 2 or J.shape[-2:] != (d, d):
        raise ValueError(
            f"jacobians must have shape (..., {d}, {d}), got {J.shape}"
        )
    half, inv_half = _sqrt_and_inverse(P)
    M = jnp.asarray(half, J.dtype) @ J @ jnp.asarray(inv_half, J.dtype)
    return jnp.linalg.norm(M, ord=2, axis=(-2, -1))


def sample_ellipse(key: Array, n: int, P: Any, radius: float) -> Array:
    """``n`` points uniform on the ellipse ``{x : x^T P x <= radius^2}``.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer, ``radius`` is not positive, or
        ``P`` is not symmetric positive definite.
    """
    n = integer("n", n, minimum=1)
    radius = number("radius", radius, positive=True)
    P = _positive_definite(P)
    d = P.shape[0]
    k_dir, k_rad = jax.random.split(key)
    u = jax.random.normal(k_dir, (n, d), jnp.float32)
    u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
    r = jax.random.uniform(k_rad, (n, 1), jnp.float32) ** (1.0 / d)
    _, inv_half = _sqrt_and_inverse(P)
    return radius * (r * u) @ jnp.asarray(inv_half.T, jnp.float32)


# ------------------------------------------------------------- tight system
def tight_state_errors(
    p: float,
    k: float,
    eps_d: float,
    start_states: Array,
    key: Array,
    *,
    horizon: int,
) -> Array:
    """State error ``|s_hat_t - s_t|`` of the aligned linear system.

    True ``f(s, a) = p (s + a)``, model ``f_hat = f + eps_d``, policy
    ``pi(s) = k s`` (:func:`imagination.attribution.tight_system`), both
    rolled by :func:`imagination.rollout.rollout` from the same starts.

    Parameters
    ----------
    p, k:
        Positive dynamics and policy coefficients.
    eps_d:
        Non-negative model offset (the one-step error everywhere).
    start_states:
        Shape ``(B, 1)``.
    key:
        PRNG key (the system is deterministic; the engine wants one).
    horizon:
        Number of steps.

    Returns
    -------
    jax.Array
        Shape ``(B, horizon + 1)``.

    Raises
    ------
    ValueError
        If ``p`` or ``k`` is not positive, ``eps_d`` is negative, or
        ``start_states`` is not of shape ``(B, 1)``.
    """
    start_states = jnp.asarray(start_states, jnp.float32)
    if start_states.ndim != 2 or start_states.shape[1] != 1:
        raise ValueError(
            f"start_states must have shape (B, 1), got {start_states.shape}"
        )
    system = attribution.tight_system(p, k, 1.0, eps_d=eps_d, eps_r=0.0)
    runs = [
        rollout(
            models.affine_dynamics,
            attribution.zero_reward,
            policies.linear,
            (dyn, None, system.policy),
            start_states,
            key,
            horizon=horizon,
        )
        for dyn in (system.true_dynamics, system.model_dynamics)
    ]
    return jnp.abs(runs[1].states - runs[0].states)[..., 0]
