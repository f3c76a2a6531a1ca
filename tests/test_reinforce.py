"""Tests of imagination.reinforce against closed forms (scalar linear-quadratic-Gaussian problems).

Reference: the scalar system ``s' = A s + B u``, ``u ~ N(theta s, sd^2)``, reward
``-(q s^2 + rho u^2)``, ``s_0 ~ U(-1, 1)``. With ``m_t = E[s_t^2]``,
``m_{t+1} = (A + B theta)^2 m_t + B^2 sd^2`` and ``E[r_t] = -(q + rho theta^2) m_t - rho sd^2``, so
the exact expected return (and, by ``jax.grad``, the exact policy gradient) is a short recursion.
Monte-Carlo checks use confidence intervals of ``Z`` standard errors.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sympy as sp

from imagination import envs, policies
from imagination import reinforce as rf

A, B, Q, RHO, SD, GAMMA, H = 1.0, 0.5, 1.0, 0.1, 0.5, 0.9, 3
THETA = -0.5
Z = 4.5  # standard errors; with a few dozen checks in this file, a false failure is < 1e-3
M = 2**18

ENV = envs.linear_system([[A]], [[B]], Q=[[Q]], R=[[RHO]])
START = functools.partial(ENV.sample_start, ENV.params)
POLICY, LOG_PROB = rf.fixed_std_gaussian(np.log(SD))
K = jnp.array([[THETA]], jnp.float32)


def exact_moments(theta, horizon=H):
    m = jnp.asarray(1.0 / 3.0)
    ms = []
    for _ in range(horizon):
        ms.append(m)
        m = (A + B * theta) ** 2 * m + B**2 * SD**2
    return jnp.stack(ms)


def exact_return(theta, horizon=H, q=Q, rho=RHO):
    ms = exact_moments(theta, horizon)
    disc = GAMMA ** jnp.arange(horizon)
    return jnp.sum(disc * (-(q + rho * theta**2) * ms - rho * SD**2))


def exact_G(horizon=H):
    # E[Psi_t^2] = sum_{k<=t} E[psi_k^2] = sum_{k<=t} m_k / SD^2 (martingale differences)
    ms = np.asarray(exact_moments(THETA, horizon), np.float64)
    EPsi2 = np.cumsum(ms) / SD**2
    return float(np.sum(GAMMA ** (2 * np.arange(horizon)) * EPsi2))


@functools.lru_cache(maxsize=None)
def sampler(n=M, baseline=None, bias=None):
    label_bias = None
    if bias == "const":
        label_bias = lambda c, s, a: c  # noqa: E731
    elif bias == "state":
        label_bias = lambda c, s, a: c * s[0] ** 2  # noqa: E731
    return rf.make_gradient_sampler(
        ENV.dynamics,
        ENV.reward,
        POLICY,
        LOG_PROB,
        START,
        horizon=H,
        gamma=GAMMA,
        n_rollouts=n,
        baseline=baseline,
        label_bias=label_bias,
    )


def draw(key, sigma=0.0, **kw):
    label_params = kw.pop("label_params", None)
    out = sampler(**kw)(ENV.params, ENV.params, K, key, sigma, label_params)
    return np.asarray(out.grads[:, 0, 0], np.float64), out


# ----------------------------------------------------------------------------- basic pieces
def test_rewards_to_go_matches_numpy():
    r = jax.random.normal(jax.random.key(0), (3, 5))
    got = np.asarray(rf.rewards_to_go(r, 0.8))
    rn = np.asarray(r, np.float64) * 0.8 ** np.arange(5)
    want = np.array([[rn[b, t:].sum() for t in range(5)] for b in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_reward_to_go_form_equals_cumulative_score_form():
    traj = jax.random.normal(jax.random.key(1), (4, H + 1, 1))
    acts = jax.random.normal(jax.random.key(2), (4, H, 1))
    r = jax.random.normal(jax.random.key(3), (4, H))
    g = rf.reinforce_gradients(LOG_PROB, K, traj, acts, r, GAMMA)
    Psi = rf.cumulative_scores(rf.step_scores(LOG_PROB, K, traj, acts))
    alt = jnp.einsum("bt,bt...->b...", r * GAMMA ** jnp.arange(H), Psi)
    np.testing.assert_allclose(
        np.asarray(g), np.asarray(alt), rtol=1e-5, atol=1e-5
    )


def test_noise_variance_term_hand_example():
    scores = jnp.array([[[1.0], [2.0]], [[0.0], [-1.0]]])  # (batch 2, H 2, 1)
    # Psi: [[1, 3], [0, -1]] -> per rollout 1 + g^2 9, 0 + g^2 1 ; mean (1 + 10 g^2) / 2
    got = float(rf.noise_variance_term(scores, 0.5, sigma=2.0))
    assert got == pytest.approx(4.0 * (1 + 10 * 0.25) / 2)


def test_noisy_labels_state_action_bias_and_scale():
    r = jnp.zeros((2, 3))
    s = jnp.ones((2, 4, 1)) * 2.0
    a = jnp.ones((2, 3, 1)) * 3.0
    out = rf.noisy_labels(
        jax.random.key(0),
        r,
        s,
        sigma=0.0,
        bias=lambda s, a: s[0] * a[0],
        actions=a,
    )
    np.testing.assert_allclose(np.asarray(out), 6.0)
    out = rf.noisy_labels(
        jax.random.key(0), r, s, sigma=1.0, scale=lambda s: 0.0 * s[0]
    )
    np.testing.assert_allclose(np.asarray(out), 0.0)


def test_loo_baseline():
    G = jnp.arange(6.0).reshape(3, 2)
    b = np.asarray(rf.loo_baseline(G))
    np.testing.assert_allclose(b[0], (np.asarray(G)[1] + np.asarray(G)[2]) / 2)
    np.testing.assert_allclose(np.asarray(rf.loo_baseline(G[:1])), 0.0)


def test_symbolic_helpers():
    x, y, t = sp.symbols("x y t")
    P = sp.Poly((t * x + y) ** 2 * x**2, x, y)
    got = rf.expect_polynomial(
        P, {x: rf.normal_moment, y: lambda k: rf.uniform_moment(k, 2)}
    )
    assert sp.simplify(got - (3 * t**2 + sp.Rational(4, 3))) == 0
    assert rf.normal_moment(6) == 15 and rf.uniform_moment(3) == 0


# ----------------------------------------------------------------------------- closed forms
def test_sympy_and_recursion_agree_on_the_gradient():
    th = sp.Symbol("theta")
    s0 = sp.Symbol("s0")
    eps = sp.symbols(f"e0:{H}")
    gens = (s0, *eps)
    P = lambda e: sp.Poly(e, *gens, domain=sp.QQ[th])  # noqa: E731
    s, Psi, g, J = P(s0), P(0), P(0), P(0)
    R = sp.Rational
    for t in range(H):
        u = th * s + P(R(1, 2) * eps[t])
        r = -(s**2 + R(1, 10) * u**2)
        Psi = Psi + s * P(2 * eps[t])
        g, J = g + r * Psi * R(9, 10) ** t, J + r * R(9, 10) ** t
        s = s + R(1, 2) * u
    mom = {s0: rf.uniform_moment, **{e: rf.normal_moment for e in eps}}
    EJ, Eg = rf.expect_polynomial(J, mom), rf.expect_polynomial(g, mom)
    assert sp.simplify(Eg - sp.diff(EJ, th)) == 0
    assert float(EJ.subs(th, THETA)) == pytest.approx(
        float(exact_return(THETA)), rel=1e-5
    )
    assert float(Eg.subs(th, THETA)) == pytest.approx(
        float(jax.grad(exact_return)(THETA)), rel=1e-5
    )


def test_unbiased_against_exact_gradient():
    exact = float(jax.grad(exact_return)(THETA))
    ses = []
    for i, sigma in enumerate([0.0, 2.0]):
        g, _ = draw(jax.random.key(10 + i), sigma)
        se = g.std() / np.sqrt(g.size)
        assert abs(g.mean() - exact) < Z * se, (sigma, g.mean(), exact, se)
        ses.append(se)
    # and the check has power: a 10% (clean labels) or 15% (noisy) error would be caught
    assert 0.10 * abs(exact) > Z * ses[0] and 0.15 * abs(exact) > Z * ses[1]


def test_variance_scales_as_one_over_n():
    g, _ = draw(jax.random.key(20), 1.0)
    v1 = g.var()
    for n in (4, 32):
        means = g.reshape(-1, n).mean(axis=1)
        vn, R = means.var(ddof=1), means.size
        m4 = np.mean((means - means.mean()) ** 4)
        se = np.sqrt((m4 - vn**2) / R)  # standard error of a sample variance
        # v1 / n has its own (smaller, relative) error; combine both
        se_tot = np.hypot(
            se,
            (v1 / n)
            * np.sqrt((np.mean((g - g.mean()) ** 4) / v1**2 - 1) / g.size),
        )
        assert abs(vn - v1 / n) < Z * se_tot, (n, vn, v1 / n, se_tot)


def test_added_variance_is_sigma2_G():
    sigma = 1.5
    key = jax.random.key(30)
    g0, out0 = draw(key, 0.0)
    gs, outs = draw(
        key, sigma
    )  # same rollouts (same key), only the labels differ
    d = (gs - gs.mean()) ** 2 - (g0 - g0.mean()) ** 2
    added, se = d.mean(), d.std() / np.sqrt(d.size)
    G = exact_G()
    assert abs(added - sigma**2 * G) < Z * se, (added, sigma**2 * G, se)
    # the sampled estimate of G (noise_variance_term) agrees with the exact one
    assert float(out0.noise_factor) == pytest.approx(G, rel=0.02)
    assert float(outs.noise_factor) == pytest.approx(
        float(out0.noise_factor), rel=1e-6
    )


@pytest.mark.parametrize("baseline", [3.0, "loo"])
def test_baseline_leaves_the_mean_unchanged(baseline):
    key = jax.random.key(40)
    g0, _ = draw(key, 1.0)
    gb, _ = draw(key, 1.0, baseline=baseline)
    d = gb - g0  # paired: same rollouts and labels, only the baseline differs
    assert abs(d.mean()) < Z * d.std() / np.sqrt(d.size)
    if baseline == "loo":
        assert gb.var() < g0.var()  # and it does what a baseline is for


def test_constant_bias_adds_no_gradient_bias_but_state_bias_does():
    key = jax.random.key(50)
    g0, _ = draw(key, 0.0)
    gc, _ = draw(key, 0.0, bias="const", label_params=jnp.float32(2.0))
    d = gc - g0
    assert abs(d.mean()) < Z * d.std() / np.sqrt(d.size)
    c = 0.5
    gs, _ = draw(key, 0.0, bias="state", label_params=jnp.float32(c))
    d = gs - g0
    want = float(
        jax.grad(
            lambda th: c * jnp.sum(GAMMA ** jnp.arange(H) * exact_moments(th))
        )(THETA)
    )
    se = d.std() / np.sqrt(d.size)
    assert abs(d.mean() - want) < Z * se, (d.mean(), want, se)
    assert abs(want) > 10 * se  # a real, detectable bias


# ----------------------------------------------------------------------------- training
def test_train_policy_reaches_the_exact_optimum():
    horizon = 2
    th = np.linspace(-2.0, 1.0, 30001)
    J = np.asarray(
        jax.vmap(lambda t: exact_return(t, horizon))(jnp.asarray(th))
    )
    theta_star = th[np.argmax(J)]
    steps = 400
    train = rf.make_train_policy(
        ENV.dynamics,
        ENV.reward,
        policies.gaussian_linear,
        policies.gaussian_linear_log_prob,
        START,
        horizon=horizon,
        gamma=GAMMA,
        n_rollouts=256,
        steps=steps,
        optimizer=optax.adam(optax.linear_schedule(0.05, 0.002, steps)),
        mask=(True, False),
    )
    p0 = (jnp.zeros((1, 1)), jnp.full((1,), np.log(SD), jnp.float32))
    out = jax.vmap(train, in_axes=(None, None, None, 0, None))(
        ENV.params,
        ENV.params,
        p0,
        jax.random.split(jax.random.key(60), 4),
        0.5,
    )
    final = np.asarray(out.params[0][:, -1, 0, 0])
    assert out.params[0].shape == (4, steps + 1, 1, 1)
    np.testing.assert_allclose(
        np.asarray(out.params[1]), np.log(SD), rtol=1e-6
    )  # masked
    assert abs(final.mean() - theta_star) < 0.05, (final, theta_star)
    assert np.all(
        np.diff(np.asarray(out.returns).mean(0)[[0, -1]]) > 0
    )  # it improved


# ----------------------------------------------------------------------------- bias check
def test_bias_check_false_alarm_rate_and_power():
    n, reps, alpha = 40, 4000, 0.05
    key = jax.random.key(70)
    ks, kn = jax.random.split(key)
    s = jax.random.uniform(ks, (reps, n))
    feats = jnp.stack([s**2, s], axis=-1)
    noise = jax.random.normal(kn, (reps, n))
    check = jax.vmap(lambda d, f: rf.bias_check(d, f).p_value)
    check_all = jax.vmap(lambda d, f: rf.bias_check(d, f, test="all").p_value)
    se = np.sqrt(alpha * (1 - alpha) / reps)
    # null: zero-mean noise, and a constant bias (harmless for the gradient) for the slopes test
    for d in (noise, noise + 0.7):
        rate = float(jnp.mean(check(d, feats) < alpha))
        assert abs(rate - alpha) < Z * se, rate
    assert (
        abs(float(jnp.mean(check_all(noise, feats) < alpha)) - alpha) < Z * se
    )
    # the "all" test flags the constant bias; the slopes test flags a state-dependent one
    assert float(jnp.mean(check_all(noise + 0.7, feats) < alpha)) > 0.9
    assert float(jnp.mean(check(noise + 3.0 * s**2, feats) < alpha)) > 0.9


# ----------------------------------------------------------------------------- bad input
def test_value_errors():
    s = jnp.zeros((2, H + 1, 1))
    a = jnp.zeros((2, H, 1))
    r = jnp.zeros((2, H))
    with pytest.raises(ValueError, match="gamma"):
        rf.reinforce_gradients(LOG_PROB, K, s, a, r, 1.5)
    with pytest.raises(ValueError, match="rewards"):
        rf.reinforce_gradients(LOG_PROB, K, s, a, r[:, :2], 0.9)
    with pytest.raises(ValueError, match="baseline"):
        rf.reinforce_gradients(LOG_PROB, K, s, a, r, 0.9, baseline="mean")
    with pytest.raises(ValueError, match="sigma"):
        rf.noisy_labels(jax.random.key(0), r, sigma=-1.0)
    with pytest.raises(ValueError, match="states"):
        rf.noisy_labels(jax.random.key(0), r, bias=lambda s: s[0])
    with pytest.raises(ValueError, match="actions"):
        rf.noisy_labels(
            jax.random.key(0), r, s, bias=lambda s, a: 0.0, actions=a[:, :2]
        )
    with pytest.raises(ValueError, match="sigma"):
        rf.noise_variance_term(
            rf.step_scores(LOG_PROB, K, s, a), 0.9, sigma=-0.1
        )
    with pytest.raises(ValueError, match="gamma"):
        rf.noise_variance_term(rf.step_scores(LOG_PROB, K, s, a), -0.1)
    common = (ENV.dynamics, ENV.reward, POLICY, LOG_PROB, START)
    with pytest.raises(ValueError, match="n_rollouts"):
        rf.make_gradient_sampler(*common, horizon=H, n_rollouts=0)
    with pytest.raises(ValueError, match="baseline"):
        rf.make_gradient_sampler(
            *common, horizon=H, n_rollouts=4, baseline="avg"
        )
    with pytest.raises(ValueError, match="steps"):
        rf.make_train_policy(*common, horizon=H, n_rollouts=4, steps=0)
    with pytest.raises(ValueError, match="optimizer"):
        rf.make_train_policy(
            *common, horizon=H, n_rollouts=4, steps=3, optimizer=-1.0
        )
    with pytest.raises(ValueError, match="optimizer"):
        rf.make_train_policy(
            *common, horizon=H, n_rollouts=4, steps=3, optimizer="adam"
        )
    d, f = jnp.zeros(10), jnp.zeros((10, 2))
    with pytest.raises(ValueError, match="test"):
        rf.bias_check(d, f, test="both")
    with pytest.raises(ValueError, match="features"):
        rf.bias_check(d, f[:5])
    with pytest.raises(ValueError, match="differences"):
        rf.bias_check(f, f)
    with pytest.raises(ValueError, match="samples"):
        rf.bias_check(d[:3], f[:3])
    with pytest.raises(ValueError, match="moments"):
        x = sp.Symbol("x")
        rf.expect_polynomial(sp.Poly(x**2, x), {})
    with pytest.raises(ValueError, match="k"):
        rf.normal_moment(-1)


def test_bias_check_n_valid_equals_truncation():
    k1, k2 = jax.random.split(jax.random.key(80))
    d = jax.random.normal(k1, (50,)) + 0.5
    f = jax.random.normal(k2, (50, 3))
    for test in ("slopes", "all"):
        full = rf.bias_check(d[:30], f[:30], test=test)
        masked = jax.jit(
            lambda d, f, m: rf.bias_check(d, f, test=test, n_valid=m)
        )(d, f, 30)
        assert float(masked.p_value) == pytest.approx(
            float(full.p_value), rel=1e-4, abs=1e-6
        )
        assert float(masked.statistic) == pytest.approx(
            float(full.statistic), rel=1e-4
        )
    with pytest.raises(ValueError, match="n_valid"):
        rf.bias_check(d, f, n_valid=60)


# ----------------------------------------------------------------------------- noise factor samples
def test_noise_factor_samples_hand_example_and_weights():
    scores = jnp.array(
        [[[1.0], [2.0]], [[0.0], [-1.0]]]
    )  # Psi: [1, 3], [0, -1]
    got = np.asarray(rf.noise_factor_samples(scores, 0.5))
    np.testing.assert_allclose(got, [1 + 0.25 * 9, 0.25 * 1])
    w = jnp.array([[2.0, 0.0], [1.0, 4.0]])
    got = np.asarray(rf.noise_factor_samples(scores, 0.5, w))
    np.testing.assert_allclose(got, [2.0, 0.25 * 4])
    with pytest.raises(ValueError, match="weights"):
        rf.noise_factor_samples(scores, 0.5, w[:, :1])
    with pytest.raises(ValueError, match="gamma"):
        rf.noise_factor_samples(scores, 2.0)


def test_heteroscedastic_added_variance_matches_noise_factors():
    scale = lambda p, s, a: p * jnp.abs(s[0])  # noqa: E731
    samp = rf.make_gradient_sampler(
        ENV.dynamics,
        ENV.reward,
        POLICY,
        LOG_PROB,
        START,
        horizon=H,
        gamma=GAMMA,
        n_rollouts=M,
        noise_scale=scale,
    )
    key, sigma, p = jax.random.key(31), 1.5, jnp.float32(2.0)
    o0 = samp(ENV.params, ENV.params, K, key, 0.0, p)
    o1 = samp(ENV.params, ENV.params, K, key, sigma, p)
    g0 = np.asarray(o0.grads[:, 0, 0], np.float64)
    g1 = np.asarray(o1.grads[:, 0, 0], np.float64)
    w = np.asarray(o0.noise_factors, np.float64)
    # paired: (g1 - m)^2 - (g0 - m)^2 has mean sigma^2 E[w]
    m = g0.mean()
    d = (g1 - m) ** 2 - (g0 - m) ** 2 - sigma**2 * w
    assert abs(d.mean()) < Z * d.std() / np.sqrt(d.size)
    # without a scale the per-rollout factors average to the scalar one
    out = draw(jax.random.key(32))[1]
    assert float(np.mean(out.noise_factors)) == pytest.approx(
        float(out.noise_factor), rel=1e-5
    )


def test_robust_bias_check_holds_its_level_under_heteroscedastic_noise():
    n, reps, alpha = 160, 4000, 0.05
    k1, k2 = jax.random.split(jax.random.key(90))
    s = jax.random.uniform(k1, (reps, n), minval=-1.0, maxval=1.0)
    feats = jnp.stack([s**2, s], axis=-1)
    noise = jax.random.normal(k2, (reps, n)) * (0.2 + 2 * s**2)

    def rate(d, robust):
        pv = jax.vmap(lambda d, f: rf.bias_check(d, f, robust=robust).p_value)(
            d, feats
        )
        return float(jnp.mean(pv < alpha))

    assert rate(noise, False) > 0.15  # the F-test's size is broken
    assert abs(rate(noise, True) - alpha) < 0.03  # HC3 is close to alpha
    assert rate(noise + 1.5 * s**2, True) > 0.9  # and still has power
    full = rf.bias_check(noise[0, :80], feats[0, :80], robust=True)
    masked = rf.bias_check(noise[0], feats[0], robust=True, n_valid=80)
    assert float(masked.p_value) == pytest.approx(
        float(full.p_value), rel=1e-3, abs=1e-6
    )


def test_symbolic_lq_matches_a_hand_rollout_and_its_identities():
    lq = rf.symbolic_lq(2)
    S = lq.symbols
    s0, e0, e1, x0, x1 = lq.gens
    th, A, B, sd = S["theta"], S["A"], S["B"], S["sigma_pi"]
    u0 = th * s0 + sd * e0
    s1 = A * s0 + B * u0
    assert sp.expand(lq.states[1].as_expr() - s1) == 0
    psi1 = e1 * s1 * S["w"]
    assert (
        sp.expand(lq.cum_scores[1].as_expr() - (e0 * s0 * S["w"] + psi1)) == 0
    )
    # E[g] = dJ/dtheta and E[e] = 0 (the theorem's part 1)
    J = lq.expect(
        sum(
            (S["gamma"] ** t * r for t, r in enumerate(lq.rewards)), lq.poly(0)
        )
    )
    assert sp.expand(lq.expect(lq.g) - sp.diff(J, th)) == 0
    assert lq.expect(lq.e) == 0
    # w is put back as 1 / sigma_pi: E[psi_0^2] = E[s0^2] / sigma_pi^2 = 1 / (3 sigma_pi^2)
    assert sp.simplify(lq.expect(lq.scores[0] ** 2) - 1 / (3 * sd**2)) == 0
    b = sp.Symbol("b")
    assert lq.poly(b * s0, b).degree(s0) == 1
    with pytest.raises(ValueError, match="horizon"):
        rf.symbolic_lq(0)
