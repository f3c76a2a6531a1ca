"""Tests of imagination.compounding against NumPy/SciPy references and
closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from imagination import bounds, compounding, models, policies

A = np.array([[0.98, 0.034], [-0.27, 0.78]])
B = np.array([[0.01], [0.15]])
K = np.array([[-7.0, -1.5]])


def _linear_closed_loop(A, B, K):
    W = jnp.asarray(np.hstack([A, B, np.zeros((A.shape[0], 1))]), jnp.float32)
    return W, jnp.asarray(K, jnp.float32)


def test_closed_loop_jacobians_of_a_linear_model():
    W, Kj = _linear_closed_loop(A, B, K)
    states = jax.random.normal(jax.random.key(0), (3, 4, 2))
    jac = compounding.closed_loop_jacobians(
        models.linear_model, W, policies.linear, Kj, states
    )
    assert jac.shape == (3, 4, 2, 2)
    np.testing.assert_allclose(
        np.asarray(jac), np.broadcast_to(A + B @ K, (3, 4, 2, 2)), atol=1e-6
    )


def test_closed_loop_jacobians_rejects_scalar_states():
    W, Kj = _linear_closed_loop(A, B, K)
    with pytest.raises(ValueError, match="states"):
        compounding.closed_loop_jacobians(
            models.linear_model, W, policies.linear, Kj, jnp.float32(1.0)
        )


def test_product_norms_against_a_loop():
    rng = np.random.default_rng(0)
    J = rng.normal(size=(5, 7, 3, 3)).astype(np.float32) / 2
    got = np.asarray(compounding.product_norms(J))
    assert got.shape == (5, 8)
    for b in range(5):
        M = np.eye(3)
        assert got[b, 0] == 1.0
        for k in range(7):
            M = J[b, k].astype(np.float64) @ M
            np.testing.assert_allclose(
                got[b, k + 1], np.linalg.norm(M, 2), rtol=1e-4
            )


def test_product_norms_shape_error():
    with pytest.raises(ValueError, match="jacobians"):
        compounding.product_norms(np.zeros((2, 3, 3)))


def test_spectral_radius():
    assert compounding.spectral_radius([[0.0, 1.0], [-0.25, 0.0]]) == (
        pytest.approx(0.5)
    )
    with pytest.raises(ValueError, match="A"):
        compounding.spectral_radius(np.zeros((2, 3)))


def test_lyapunov_matrix_against_scipy():
    M = A + B @ K
    P = compounding.lyapunov_matrix(M)
    ref = scipy.linalg.solve_discrete_lyapunov(M.T, np.eye(2))
    np.testing.assert_allclose(P, ref, rtol=1e-10)
    np.testing.assert_allclose(M.T @ P @ M - P + np.eye(2), 0, atol=1e-10)
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])
    PQ = compounding.lyapunov_matrix(M, Q)
    np.testing.assert_allclose(M.T @ PQ @ M - PQ + Q, 0, atol=1e-10)


def test_lyapunov_norm_contracts():
    M = A + B @ K
    P = compounding.lyapunov_matrix(M)
    got = float(compounding.weighted_operator_norm(M, P))
    assert got == pytest.approx(
        np.sqrt(1 - 1 / np.linalg.eigvalsh(P).max()), rel=1e-5
    )
    assert got < 1 < np.linalg.norm(M, 2)


@pytest.mark.parametrize(
    "A_bad, Q, match",
    [
        (np.diag([1.0, 0.5]), None, "spectral radius"),
        (np.zeros((2, 3)), None, "A"),
        (np.eye(2) / 2, -np.eye(2), "Q"),
        (np.eye(2) / 2, np.eye(3), "Q"),
    ],
)
def test_lyapunov_matrix_errors(A_bad, Q, match):
    with pytest.raises(ValueError, match=match):
        compounding.lyapunov_matrix(A_bad, Q)


def test_weighted_norms_against_numpy():
    P = np.array([[3.0, 0.5], [0.5, 1.0]])
    x = np.random.default_rng(1).normal(size=(6, 2))
    got = np.asarray(compounding.weighted_norm(x, P))
    np.testing.assert_allclose(
        got, np.sqrt(np.einsum("bi,ij,bj->b", x, P, x)), rtol=1e-5
    )
    J = np.random.default_rng(2).normal(size=(4, 2, 2))
    w, V = np.linalg.eigh(P)
    half, inv = (V * np.sqrt(w)) @ V.T, (V / np.sqrt(w)) @ V.T
    ref = [np.linalg.norm(half @ j @ inv, 2) for j in J]
    np.testing.assert_allclose(
        np.asarray(compounding.weighted_operator_norm(J, P)), ref, rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(compounding.weighted_operator_norm(J, np.eye(2))),
        [np.linalg.norm(j, 2) for j in J],
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "P, match",
    [
        (np.array([[1.0, 0.0], [0.0, -1.0]]), "positive definite"),
        (np.array([[1.0, 0.2], [0.0, 1.0]]), "symmetric"),
        (np.eye(3), "last axis"),
    ],
)
def test_weighted_norm_errors(P, match):
    with pytest.raises(ValueError, match=match):
        compounding.weighted_norm(np.ones((4, 2)), P)


def test_sample_ellipse_inside_and_uniform():
    P = np.array([[20.0, 1.0], [1.0, 3.0]])
    n = 40_000
    x = compounding.sample_ellipse(jax.random.key(0), n, P, 0.7)
    assert x.shape == (n, 2)
    v = np.asarray(compounding.weighted_norm(x, P))
    assert v.max() <= 0.7 * (1 + 1e-5)
    # uniform on a 2-d ellipse: P(v <= r/2) = 1/4
    frac = np.mean(v <= 0.35)
    assert abs(frac - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": 0}, "n"), ({"radius": -1.0}, "radius"), ({"n": 2.5}, "n")],
)
def test_sample_ellipse_errors(kwargs, match):
    args = {"n": 10, "radius": 1.0} | kwargs
    with pytest.raises(ValueError, match=match):
        compounding.sample_ellipse(
            jax.random.key(0), args["n"], np.eye(2), args["radius"]
        )


@pytest.mark.parametrize("p, k", [(0.5, 0.6), (0.95, 0.1), (0.9, 0.3)])
def test_tight_state_errors_attain_the_bound(p, k):
    s0 = jnp.linspace(-1.0, 1.0, 3)[:, None]
    got = np.asarray(
        compounding.tight_state_errors(
            p, k, 0.01, s0, jax.random.key(0), horizon=20
        )
    )
    ref = bounds.compounding_error_bound(0.01, p * (1 + k), np.arange(21))
    np.testing.assert_allclose(
        got, np.broadcast_to(ref, got.shape), rtol=1e-4, atol=1e-7
    )


def test_tight_state_errors_errors():
    with pytest.raises(ValueError, match="start_states"):
        compounding.tight_state_errors(
            0.5, 0.5, 0.01, jnp.zeros((3,)), jax.random.key(0), horizon=5
        )
    with pytest.raises(ValueError, match="k"):
        compounding.tight_state_errors(
            0.5, -0.5, 0.01, jnp.zeros((3, 1)), jax.random.key(0), horizon=5
        )


def test_closed_loop_jacobians_in_batches_match():
    W, Kj = _linear_closed_loop(A, B, K)
    states = jax.random.normal(jax.random.key(1), (10, 2))
    args = (models.linear_model, W, policies.linear, Kj, states)
    np.testing.assert_allclose(
        np.asarray(compounding.closed_loop_jacobians(*args, batch_size=3)),
        np.asarray(compounding.closed_loop_jacobians(*args)),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="batch_size"):
        compounding.closed_loop_jacobians(*args, batch_size=0)
