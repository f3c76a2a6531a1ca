"""Tests of imagination.bounds: symbolic forms, special values, validation, and a property test
that the return-error bound holds on random learned linear and nonlinear systems."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from imagination import bounds, models, policies, rollout

S = bounds.symbols
eps_d, eps_r, L_f, L_r, L_pi, L, gamma, t = (
    S[k] for k in ("eps_d", "eps_r", "L_f", "L_r", "L_pi", "L", "gamma", "t")
)


# ----------------------------------------------------------------------------- symbolic forms
def test_recursion_solution_satisfies_recursion():
    d = bounds.delta_recursion_solution
    assert sp.simplify(d.subs(t, t + 1) - (L * d + eps_d)) == 0
    assert sp.simplify(d.subs(t, 0)) == 0


def test_closed_form_and_limit():
    general = bounds.delta_closed_form.args[1][0]
    assert sp.simplify(general - eps_d * (L**t - 1) / (L - 1)) == 0
    assert sp.simplify(bounds.delta_closed_form.subs(L, 1) - t * eps_d) == 0


def test_infinite_form_matches_notes():
    stated = eps_r / (1 - gamma) + gamma * L_r * (1 + L_pi) * eps_d / (
        (1 - gamma) * (1 - gamma * L_f * (1 + L_pi))
    )
    assert sp.simplify(bounds.return_error_infinite - stated) == 0
    w_d, w_r = bounds.bound_weights_expr
    assert sp.simplify(w_r - 1 / (1 - gamma)) == 0
    assert sp.simplify(w_d * eps_d + w_r * eps_r - stated) == 0


def test_per_step_error_from_delta():
    dt = S["delta_t"]
    assert (
        sp.simplify(
            bounds.per_step_from_delta - (eps_r + L_r * (1 + L_pi) * dt)
        )
        == 0
    )


# ----------------------------------------------------------------------------- compounding bound
def test_compounding_special_values():
    assert bounds.compounding_error_bound(0.3, 2.0, 0) == 0.0
    assert bounds.compounding_error_bound(0.3, 2.0, 1) == pytest.approx(0.3)
    # 0.3 (2^4 - 1) / (2 - 1) = 4.5
    assert bounds.compounding_error_bound(0.3, 2.0, 4) == pytest.approx(4.5)
    # L = 0: only the last step's error survives
    assert bounds.compounding_error_bound(0.3, 0.0, 5) == pytest.approx(0.3)
    assert bounds.compounding_error_bound(0.0, 7.0, 500) == 0.0


def test_compounding_l_equals_one_and_its_limit():
    ts = np.arange(0, 50)
    at_one = bounds.compounding_error_bound(0.2, 1.0, ts)
    np.testing.assert_allclose(at_one, 0.2 * ts, rtol=1e-12, atol=0)
    for side in (1 - 1e-7, 1 + 1e-7):
        np.testing.assert_allclose(
            bounds.compounding_error_bound(0.2, side, ts),
            0.2 * ts,
            rtol=1e-4,
            atol=1e-12,
        )


def test_compounding_matches_iterated_recursion():
    for lip in (0.5, 1.0, 1.7):
        delta, out = 0.0, [0.0]
        for _ in range(30):
            delta = lip * delta + 0.05
            out.append(delta)
        np.testing.assert_allclose(
            bounds.compounding_error_bound(0.05, lip, np.arange(31)),
            out,
            rtol=1e-10,
        )


def test_compounding_arrays_keep_shape():
    ts = np.arange(12).reshape(3, 4)
    out = bounds.compounding_error_bound(0.1, 1.5, ts)
    assert out.shape == (3, 4)
    assert np.all(np.diff(out.ravel()) > 0)
    assert isinstance(bounds.compounding_error_bound(0.1, 1.5, 3), float)


def test_compounding_overflow_is_inf_not_nan():
    out = bounds.compounding_error_bound(0.1, 10.0, [0, 400])
    assert out[0] == 0.0 and out[1] == math.inf


# ----------------------------------------------------------------------------- return bound
def test_return_special_values():
    # no errors, no bound
    assert bounds.return_error_bound(0, 0, 3.0, 2.0, 1.0, 0.9) == 0.0
    # exact dynamics: eps_r / (1 - gamma), whatever L
    assert bounds.return_error_bound(
        0, 0.1, 30.0, 2.0, 1.0, 0.9
    ) == pytest.approx(1.0)
    # gamma = 0: only the first step, where delta_0 = 0
    assert bounds.return_error_bound(
        0.5, 0.1, 30.0, 2.0, 1.0, 0.0
    ) == pytest.approx(0.1)
    assert bounds.return_error_bound(
        0.5, 0.1, 30.0, 2.0, 1.0, 0.0, horizon=40
    ) == pytest.approx(0.1)
    # horizon 0 and 1
    assert (
        bounds.return_error_bound(0.5, 0.1, 3.0, 2.0, 1.0, 0.9, horizon=0)
        == 0.0
    )
    assert bounds.return_error_bound(
        0.5, 0.1, 3.0, 2.0, 1.0, 0.9, horizon=1
    ) == pytest.approx(0.1)
    # hand value: eps_r/(1-g) + g L_r (1+L_pi) eps_d / ((1-g)(1-g L)) with L = 0.5 * 1.5
    g, lf, lr, lp, ed, er = 0.9, 0.5, 1.0, 0.5, 0.1, 0.2
    hand = er / (1 - g) + g * lr * (1 + lp) * ed / (
        (1 - g) * (1 - g * lf * (1 + lp))
    )
    assert bounds.return_error_bound(ed, er, lf, lr, lp, g) == pytest.approx(
        hand, rel=1e-12
    )


def test_return_infinite_is_inf_when_gamma_l_at_least_one():
    assert (
        bounds.return_error_bound(0.1, 0.1, 1.0, 1.0, 1.0, 0.5) == math.inf
    )  # gamma L = 1
    assert bounds.return_error_bound(0.1, 0.1, 2.0, 1.0, 1.0, 0.9) == math.inf
    assert bounds.return_error_bound(
        0.1, 0.1, 2.0, 0.0, 1.0, 0.9
    ) == pytest.approx(1.0)


def test_finite_horizon_matches_direct_sum():
    ed, er, lf, lr, lp, g, H = 0.03, 0.02, 0.8, 1.5, 0.4, 0.95, 37
    lip = lf * (1 + lp)
    direct = sum(
        g**k * (er + lr * (1 + lp) * ed * (lip**k - 1) / (lip - 1))
        for k in range(H)
    )
    assert bounds.return_error_bound(
        ed, er, lf, lr, lp, g, horizon=H
    ) == pytest.approx(direct, rel=1e-12)
    # gamma = 1, L = 1: sum of eps_r + L_r (1 + L_pi) t eps_d
    direct1 = sum(er + lr * 2 * k * ed for k in range(H))
    assert bounds.return_error_bound(
        ed, er, 0.5, lr, 1.0, 1.0, horizon=H
    ) == pytest.approx(direct1)


@pytest.mark.parametrize(
    "g,lf,lp", [(0.9, 0.5, 0.5), (0.99, 1.0, 0.0), (0.5, 1.2, 0.3)]
)
def test_finite_horizon_increases_to_infinite(g, lf, lp):
    ed, er, lr = 0.05, 0.1, 2.0
    inf_bound = bounds.return_error_bound(ed, er, lf, lr, lp, g)
    assert math.isfinite(inf_bound)
    finite = [
        bounds.return_error_bound(ed, er, lf, lr, lp, g, horizon=H)
        for H in (1, 10, 100, 5000)
    ]
    assert all(a < b for a, b in zip(finite, finite[1:]))
    assert all(f <= inf_bound * (1 + 1e-12) for f in finite)
    assert finite[-1] == pytest.approx(inf_bound, rel=1e-9)


def test_lambdified_infinite_matches_sympy_at_random_points():
    rng = np.random.default_rng(0)
    for _ in range(20):
        lf, lp, g = (
            rng.uniform(0, 1.5),
            rng.uniform(0, 1),
            rng.uniform(0, 0.99),
        )
        if g * lf * (1 + lp) >= 0.99:
            continue
        vals = dict(
            zip(
                (eps_d, eps_r, L_f, L_r, L_pi, gamma),
                (
                    rng.uniform(0, 1),
                    rng.uniform(0, 1),
                    lf,
                    rng.uniform(0, 3),
                    lp,
                    g,
                ),
            )
        )
        expect = float(bounds.return_error_infinite.subs(vals))
        got = bounds.return_error_bound(
            *(vals[s] for s in (eps_d, eps_r, L_f, L_r, L_pi, gamma))
        )
        assert got == pytest.approx(expect, rel=1e-10)


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "name,args",
    [
        ("eps_dynamics", (-0.1, 1.0, 3)),
        ("lip", (0.1, -1.0, 3)),
        ("eps_dynamics", ("a", 1.0, 3)),
        ("lip", (0.1, float("nan"), 3)),
    ],
)
def test_compounding_bad_constants(name, args):
    with pytest.raises(ValueError, match=name):
        bounds.compounding_error_bound(*args)


@pytest.mark.parametrize("bad_t", [-1, 1.5, [0, 1, -2], ["a"]])
def test_compounding_bad_t(bad_t):
    with pytest.raises(ValueError, match="t must"):
        bounds.compounding_error_bound(0.1, 1.0, bad_t)


GOOD = dict(
    eps_dynamics=0.1,
    eps_reward=0.1,
    lip_dynamics=0.5,
    lip_reward=1.0,
    lip_policy=0.5,
    gamma=0.9,
)


@pytest.mark.parametrize(
    "name",
    [
        "eps_dynamics",
        "eps_reward",
        "lip_dynamics",
        "lip_reward",
        "lip_policy",
        "gamma",
    ],
)
def test_return_negative_parameter(name):
    with pytest.raises(ValueError, match=name):
        bounds.return_error_bound(**{**GOOD, name: -0.5})
    with pytest.raises(ValueError, match=name):
        bounds.return_error_bound(**{**GOOD, name: -0.5}, horizon=10)


def test_return_gamma_range():
    with pytest.raises(ValueError, match="gamma"):
        bounds.return_error_bound(
            **{**GOOD, "gamma": 1.0}
        )  # infinite horizon needs gamma < 1
    assert math.isfinite(
        bounds.return_error_bound(**{**GOOD, "gamma": 1.0}, horizon=10)
    )
    with pytest.raises(ValueError, match="gamma"):
        bounds.return_error_bound(**{**GOOD, "gamma": 1.5}, horizon=10)


@pytest.mark.parametrize("bad", [-1, 2.5, 3.0, "10", True])
def test_return_bad_horizon(bad):
    with pytest.raises(ValueError, match="horizon"):
        bounds.return_error_bound(**GOOD, horizon=bad)


# ----------------------------------------------------------------------------- property test
# Float32 rollouts: each of the H steps rounds with relative error ~6e-8, so the computed |J_hat - J|
# may exceed the exact one by about H * 6e-8 times the sum of the reward magnitudes. The tolerance
# below is 8 times that.
def _float_tol(horizon, *reward_arrays):
    mag = sum(
        np.abs(np.asarray(r, np.float64)).sum(axis=-1) for r in reward_arrays
    )
    return 8 * horizon * np.finfo(np.float32).eps * (1.0 + mag)


def _returns(rewards, gamma):
    # Discount outside the engine: its gamma is a static (compile-time) argument, and hypothesis
    # draws a new gamma every example.
    r = np.asarray(rewards, np.float64)
    return r @ (gamma ** np.arange(r.shape[-1]))


def _spec(M):
    return float(np.linalg.norm(np.atleast_2d(M), 2))


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    ds=st.sampled_from([1, 2, 3]),
    da=st.sampled_from([1, 2]),
    horizon=st.sampled_from([1, 6, 20]),
    gamma=st.floats(0.0, 1.0),
)
def test_bound_holds_on_random_linear_systems(seed, ds, da, horizon, gamma):
    rng = np.random.default_rng(seed)
    # True system s' = A s + B a under a = K s, built so the closed loop F = A + B K has spectral
    # norm rho <= 1: then ||s_t|| <= ||s_0|| <= R, the true trajectory stays in the ball of radius
    # R, and sups of the model errors over that ball are valid eps's (the proof only evaluates
    # model errors at true states).
    B = rng.normal(size=(ds, da))
    K = rng.normal(size=(da, ds)) * rng.uniform(0.1, 1.0)
    F = rng.normal(size=(ds, ds))
    F *= rng.uniform(0.2, 1.0) / _spec(F)
    A = F - B @ K
    w, v = rng.normal(size=ds), rng.normal(size=da)
    # Learned = true + perturbation + constant offset.
    scale = 10 ** rng.uniform(-3, -1)
    dA, dB = (
        scale * rng.normal(size=(ds, ds)),
        scale * rng.normal(size=(ds, da)),
    )
    c = scale * rng.normal(size=ds)
    dw, dv, c_r = (
        scale * rng.normal(size=ds),
        scale * rng.normal(size=da),
        scale * rng.normal(),
    )
    A_hat, B_hat, w_hat, v_hat = A + dA, B + dB, w + dw, v + dv

    s0 = rng.uniform(-1, 1, size=(64, ds))
    R = float(np.max(np.linalg.norm(s0, axis=1)))
    # sup over ||s|| <= R of ||(dA + dB K) s + c|| <= ||dA + dB K|| R + ||c|| (attained when c is
    # aligned with the top singular direction; an upper bound is all the theorem needs).
    e_d = _spec(dA + dB @ K) * R + float(np.linalg.norm(c))
    e_r = float(np.linalg.norm(dw + K.T @ dv)) * R + abs(c_r)
    # Exact Lipschitz constants for the norm ||s|| + ||a||: ||A x + B y|| <= max(||A||, ||B||)(||x|| + ||y||).
    lip_f = max(_spec(A_hat), _spec(B_hat))
    lip_r = max(float(np.linalg.norm(w_hat)), float(np.linalg.norm(v_hat)))
    lip_pi = _spec(K)

    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    W_true = f32(np.hstack([A, B, np.zeros((ds, 1))]))
    W_hat = f32(np.hstack([A_hat, B_hat, c[:, None]]))
    Wr_true = f32(np.concatenate([w, v, [0.0]])[None])
    Wr_hat = f32(np.concatenate([w_hat, v_hat, [c_r]])[None])
    key = jax.random.key(0)
    true = rollout.rollout(
        models.linear_model,
        models.linear_reward,
        policies.linear,
        (W_true, Wr_true, f32(K)),
        f32(s0),
        key,
        horizon=horizon,
    )
    imag = rollout.rollout(
        models.linear_model,
        models.linear_reward,
        policies.linear,
        (W_hat, Wr_hat, f32(K)),
        f32(s0),
        key,
        horizon=horizon,
    )
    # the region claim, checked
    assert np.all(
        np.linalg.norm(np.asarray(true.states), axis=-1) <= R * (1 + 1e-5)
    )

    gap = np.abs(_returns(imag.rewards, gamma) - _returns(true.rewards, gamma))
    bound = bounds.return_error_bound(
        e_d, e_r, lip_f, lip_r, lip_pi, gamma, horizon=horizon
    )
    assert np.all(
        gap <= bound + _float_tol(horizon, true.rewards, imag.rewards)
    )
    # and the state errors obey the compounding bound
    delta = np.linalg.norm(
        np.asarray(imag.states, np.float64) - np.asarray(true.states), axis=-1
    )
    comp = bounds.compounding_error_bound(
        e_d, lip_f * (1 + lip_pi), np.arange(horizon + 1)
    )
    scale_s = (
        np.abs(np.asarray(true.states)).max()
        + np.abs(np.asarray(imag.states)).max()
    )
    assert np.all(
        delta <= comp + 8 * horizon * np.finfo(np.float32).eps * (1 + scale_s)
    )


# A nonlinear true world and a learned model that differs from it by a bounded tanh term.
def _nl_dynamics(p, s, a):
    F, G, W, V, U, P, b = p
    return (
        F @ s
        + G @ jnp.tanh(W @ s + V @ a)
        + U @ jnp.tanh(P @ jnp.concatenate([s, a]) + b)
    )


def _nl_reward(p, s, a):
    q, z, alpha, y = p
    x = jnp.concatenate([s, a])
    return jnp.sin(q @ s + z @ a) + alpha * jnp.tanh(y @ x)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    ds=st.sampled_from([2, 3]),
    horizon=st.sampled_from([1, 5, 15]),
    gamma=st.floats(0.5, 1.0),
)
def test_bound_holds_on_random_nonlinear_systems(seed, ds, horizon, gamma):
    rng = np.random.default_rng(seed)
    da, m = 1, 4
    F = rng.normal(size=(ds, ds))
    F *= rng.uniform(0.3, 1.1) / _spec(F)
    G = 0.5 * rng.normal(size=(ds, m))
    W, V = rng.normal(size=(m, ds)), rng.normal(size=(m, da))
    K = 0.5 * rng.normal(size=(da, ds))
    q, z = rng.normal(size=ds), rng.normal(size=da)
    scale = 10 ** rng.uniform(-3, -1)
    # model perturbations: U tanh(P [s; a] + b) and alpha tanh(y . [s; a])
    U, P, b = (
        scale * rng.normal(size=(ds, m)),
        rng.normal(size=(m, ds + da)),
        rng.normal(size=m),
    )
    # (a steep y makes |tanh| close to 1 at most start states, so at horizon 1 the gap nearly
    # reaches eps_r: the test can tell a bound that is slightly too small)
    alpha, y = scale * rng.normal(), 5 * rng.normal(size=ds + da)
    # By construction, everywhere: ||U tanh(.)|| <= ||U||_2 ||tanh(.)||_2 <= ||U||_2 sqrt(m), and
    # |alpha tanh(.)| <= |alpha|. These are sups over the whole space, so no region is needed.
    e_d = _spec(U) * math.sqrt(m)
    e_r = abs(alpha)
    # Valid Lipschitz upper bounds (tanh and sin are 1-Lipschitz), per block s and a, then the max.
    Ps, Pa, ys, ya = P[:, :ds], P[:, ds:], y[:ds], y[ds:]
    lip_f = max(
        _spec(F) + _spec(G) * _spec(W) + _spec(U) * _spec(Ps),
        _spec(G) * _spec(V) + _spec(U) * _spec(Pa),
    )
    lip_r = max(
        float(np.linalg.norm(q)) + abs(alpha) * float(np.linalg.norm(ys)),
        float(np.linalg.norm(z)) + abs(alpha) * float(np.linalg.norm(ya)),
    )
    lip_pi = _spec(K)

    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    zeros = lambda *sh: np.zeros(sh)  # noqa: E731
    true_p = tuple(map(f32, (F, G, W, V, zeros(ds, m), P, b)))
    model_p = tuple(map(f32, (F, G, W, V, U, P, b)))
    true_r = tuple(map(f32, (q, z, 0.0, y)))
    model_r = tuple(map(f32, (q, z, alpha, y)))
    s0 = f32(rng.uniform(-1, 1, size=(64, ds)))
    key = jax.random.key(1)
    true = rollout.rollout(
        _nl_dynamics,
        _nl_reward,
        policies.linear,
        (true_p, true_r, f32(K)),
        s0,
        key,
        horizon=horizon,
    )
    imag = rollout.rollout(
        _nl_dynamics,
        _nl_reward,
        policies.linear,
        (model_p, model_r, f32(K)),
        s0,
        key,
        horizon=horizon,
    )
    gap = np.abs(_returns(imag.rewards, gamma) - _returns(true.rewards, gamma))
    bound = bounds.return_error_bound(
        e_d, e_r, lip_f, lip_r, lip_pi, gamma, horizon=horizon
    )
    assert np.all(
        gap <= bound + _float_tol(horizon, true.rewards, imag.rewards)
    )


# ----------------------------------------------------------------------------- weighted norms
def test_weighted_recursion_solution_and_limit():
    eP, LP = S["eps_P"], S["L_P"]
    d = bounds.weighted_delta_solution
    assert sp.simplify(d.subs(t, t + 1) - (LP * d + eP)) == 0
    assert sp.simplify(d.subs(t, 0)) == 0
    assert sp.simplify(bounds.weighted_delta_limit - eP / (1 - LP)) == 0


@pytest.mark.parametrize(
    "eps, lip, expected",
    [(0.1, 0.75, 0.4), (0.2, 0.0, 0.2), (0.0, 2.0, 0.0), (0.1, 1.0, math.inf)],
)
def test_contraction_limit_values(eps, lip, expected):
    assert bounds.contraction_limit(eps, lip) == pytest.approx(expected)


def test_contraction_limit_is_the_bound_for_large_t():
    b = bounds.compounding_error_bound(0.03, 0.9, 400)
    assert b == pytest.approx(bounds.contraction_limit(0.03, 0.9), rel=1e-12)


@pytest.mark.parametrize(
    "eps, lip, name", [(-0.1, 0.5, "eps_dynamics"), (0.1, -1.0, "lip")]
)
def test_contraction_limit_errors(eps, lip, name):
    with pytest.raises(ValueError, match=name):
        bounds.contraction_limit(eps, lip)
