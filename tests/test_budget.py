"""Tests of imagination.budget: sympy derivations, closed forms, brute force, edge cases, errors."""

import math

import numpy as np
import pytest
import sympy as sp

from imagination import budget

S = budget.symbols
V0, G, p, v, k = S["V0"], S["G"], S["p"], S["v"], S["k"]


# ----------------------------------------------------------------------------- brute force
def objective(x, v0, g, cost):
    return (v0 + x * g) * cost(x)


def brute_force_min(v0, g, cost, lo, hi, n=1_000_001, extra=()):
    """Minimum of the objective over a very dense log grid plus given points (and their float
    neighbours, so that a price tier starting exactly at a threshold is found)."""
    x = np.geomspace(lo, hi, n)
    extra = np.asarray(extra, dtype=np.float64)
    extra = np.concatenate(
        [extra, np.nextafter(extra, np.inf), np.nextafter(extra, -np.inf)]
    )
    extra = extra[(extra >= lo) & (extra <= hi)]
    x = np.concatenate([x, extra, [lo, hi]])
    return float(np.min(objective(x, v0, g, cost)))


def check_against_brute_force(v0, g, cost, lo, hi, extra=()):
    vs = budget.optimal_noise_variance(v0, g, cost, lo, hi)
    assert lo <= vs <= hi
    ours = float(objective(np.array([vs]), v0, g, cost)[0])
    bf = brute_force_min(v0, g, cost, lo, hi, extra=extra)
    assert ours <= bf * (1 + 1e-6), (ours, bf, vs)
    return vs, ours, bf


def tiers(thresholds, prices, closed_left=True):
    """Step cost: ``prices[0]`` below the first threshold, ``prices[i+1]`` from ``thresholds[i]``."""
    t = np.asarray(thresholds, float)
    pr = np.asarray(prices, float)
    side = "right" if closed_left else "left"
    return lambda x: pr[np.searchsorted(t, np.asarray(x, float), side=side)]


# ----------------------------------------------------------------------------- sympy
def test_power_closed_form_is_derived():
    stated = p * V0 / ((1 - p) * G)
    assert sp.simplify(budget.power_optimum_expr - stated) == 0
    # it solves the elasticity condition for c = k v^(-p) (elasticity p)
    lhs = budget.noise_share_expr.subs(v, budget.power_optimum_expr)
    assert sp.simplify(lhs - p) == 0
    # and it is a minimum for 0 < p < 1
    d2 = sp.diff(budget.power_objective_expr, v, 2).subs(
        v, budget.power_optimum_expr
    )
    val = d2.subs({V0: 1.3, G: 0.7, k: 2.0, p: sp.Rational(3, 10)})
    assert float(val) > 0


def test_elasticity_condition_is_the_log_derivative():
    c = S["c"]
    cond = budget.elasticity_condition
    assert sp.simplify(budget.log_derivative_expr - (cond.lhs - cond.rhs)) == 0
    # for a power cost the elasticity is the exponent
    el = budget.cost_elasticity_expr.subs(c(v), k * v ** (-p)).doit()
    assert sp.simplify(el - p) == 0


def test_label_repeats_closed_form():
    s2, cr, cl, m = S["sigma0_sq"], S["c_roll"], S["c_label"], S["m"]
    assert (
        sp.simplify(
            budget.label_repeats_expr - sp.sqrt(s2 * G * cr / (V0 * cl))
        )
        == 0
    )
    d2 = sp.diff(budget.label_objective_expr, m, 2)
    assert sp.simplify(d2 - 2 * s2 * G * cr / m**3) == 0  # convex in m


# ----------------------------------------------------------------------------- gradient_variance
def test_gradient_variance_formula_and_shape():
    x = np.array([0.0, 0.5, 2.0])
    out = budget.gradient_variance(
        x, 10.0, lambda u: 1.0 / (1.0 + u), 2.0, 3.0
    )
    np.testing.assert_allclose(
        out, (2.0 + 3.0 * x) / (1.0 + x) / 10.0, rtol=1e-12
    )
    assert isinstance(
        budget.gradient_variance(0.5, 10.0, 2.0, 2.0, 3.0), float
    )
    assert budget.gradient_variance(0.5, 10.0, 2.0, 2.0, 3.0) == pytest.approx(
        3.5 * 2 / 10
    )


# ----------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("pp", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("v0,g", [(1.0, 1.0), (3.0, 0.02), (0.05, 40.0)])
def test_power_cost_numeric_matches_closed_form(pp, v0, g):
    vstar = budget.optimal_noise_variance_power(v0, g, pp)
    assert vstar == pytest.approx(pp * v0 / ((1 - pp) * g), rel=1e-12)
    lo, hi = vstar / 1e3, vstar * 1e3
    vs, _, _ = check_against_brute_force(
        v0, g, lambda x: 2.5 * x ** (-pp), lo, hi
    )
    assert vs == pytest.approx(vstar, rel=1e-5)


def test_power_cost_edges():
    assert budget.optimal_noise_variance_power(1.0, 2.0, 0.0) == 0.0
    assert budget.optimal_noise_variance_power(1.0, 2.0, 1.0) == math.inf
    assert budget.optimal_noise_variance_power(1.0, 2.0, 3.0) == math.inf
    # the numerical search agrees: p = 0 -> cleanest on offer, p >= 1 -> noisiest on offer
    lo, hi = 1e-3, 1e2
    assert (
        budget.optimal_noise_variance(
            1.0, 2.0, lambda x: np.ones_like(x), lo, hi
        )
        == lo
    )
    assert budget.optimal_noise_variance(1.0, 2.0, 4.0, lo, hi) == lo
    for pp in (1.0, 1.5):
        assert budget.optimal_noise_variance(
            1.0, 2.0, lambda x: x ** (-pp), lo, hi
        ) == pytest.approx(hi)
    # a one-point interval
    assert (
        budget.optimal_noise_variance(1.0, 2.0, lambda x: x**-0.5, 0.3, 0.3)
        == 0.3
    )


def test_label_repeats_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        v0, g, s2, cr, cl = np.exp(rng.uniform(-3, 3, size=5))
        mstar = budget.optimal_label_repeats(v0, g, s2, cr, cl)
        m = np.geomspace(1.0, 1e4, 400_001)
        f = (v0 + s2 * g / m) * (cr + m * cl)
        m_bf = m[np.argmin(f)]
        assert mstar == pytest.approx(max(1.0, m_bf), rel=1e-3)
        assert mstar == pytest.approx(
            max(1.0, math.sqrt(s2 * g * cr / (v0 * cl))), rel=1e-12
        )
    assert budget.optimal_label_repeats(1.0, 1.0, 0.0, 1.0, 1.0) == 1.0
    assert (
        budget.optimal_label_repeats(1.0, 1.0, 1e-4, 1.0, 1.0) == 1.0
    )  # clamped at one label


# ----------------------------------------------------------------------------- brute force
def test_step_cost_simple():
    cost = tiers([0.1, 1.0, 10.0], [8.0, 4.0, 2.0, 1.0])
    vs, ours, bf = check_against_brute_force(
        1.0, 1.0, cost, 1e-3, 1e2, extra=[0.1, 1.0, 10.0]
    )
    # objective at the tier starts: 8*1.001 (v_min), 4*1.1, 2*2, 1*11 -> the tier starting at 1
    assert vs == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("closed_left", [True, False])
def test_random_step_costs(closed_left):
    rng = np.random.default_rng(1 if closed_left else 2)
    for _ in range(15):
        n_t = rng.integers(1, 8)
        thr = np.sort(np.exp(rng.uniform(np.log(1e-2), np.log(1e2), n_t)))
        prices = np.sort(np.exp(rng.uniform(-2, 3, n_t + 1)))[
            ::-1
        ]  # noisier is cheaper
        v0, g = np.exp(rng.uniform(-2, 2, 2))
        check_against_brute_force(
            v0, g, tiers(thr, prices, closed_left), 1e-3, 1e3, extra=thr
        )


def test_non_monotone_step_cost():
    """Tiers need not be monotone: a promotional price in the middle."""
    cost = tiers([0.5, 0.6, 3.0], [5.0, 1.5, 4.0, 2.0])
    vs, _, _ = check_against_brute_force(
        2.0, 1.0, cost, 1e-2, 1e2, extra=[0.5, 0.6, 3.0]
    )
    assert vs == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize(
    "amp,freq,pp", [(0.3, 8.0, 0.6), (0.5, 3.0, 0.4), (0.9, 15.0, 0.8)]
)
def test_multimodal_smooth_costs(amp, freq, pp):
    cost = lambda x: x ** (-pp) * (1.0 + amp * np.sin(freq * np.log(x)))  # noqa: E731
    check_against_brute_force(1.0, 0.5, cost, 1e-3, 1e3)


def test_smooth_cost_with_price_breaks():
    def cost(x):
        x = np.asarray(x, float)
        return (
            x ** (-0.3)
            * np.where(x >= 2.0, 0.6, 1.0)
            * np.where(x > 20.0, 0.5, 1.0)
            + 0.05
        )

    check_against_brute_force(1.0, 0.2, cost, 1e-3, 1e3, extra=[2.0, 20.0])


def test_minimum_at_an_endpoint_of_the_interval():
    cost = lambda x: x ** (-0.5)  # noqa: E731  interior optimum v0/g = 1
    assert budget.optimal_noise_variance(1.0, 1.0, cost, 5.0, 50.0) == 5.0
    assert budget.optimal_noise_variance(
        1.0, 1.0, cost, 1e-3, 0.2
    ) == pytest.approx(0.2)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: budget.gradient_variance(1.0, 0.0, 1.0, 1.0, 1.0), "budget"),
        (lambda: budget.gradient_variance(1.0, 1.0, 1.0, 0.0, 1.0), "v0"),
        (lambda: budget.gradient_variance(1.0, 1.0, 1.0, 1.0, -1.0), "g"),
        (lambda: budget.gradient_variance(-1.0, 1.0, 1.0, 1.0, 1.0), "v"),
        (lambda: budget.gradient_variance(1.0, 1.0, -2.0, 1.0, 1.0), "cost"),
        (
            lambda: budget.gradient_variance(1.0, 1.0, lambda x: -x, 1.0, 1.0),
            "cost",
        ),
        (lambda: budget.optimal_noise_variance(0.0, 1.0, 1.0, 0.1, 1.0), "v0"),
        (lambda: budget.optimal_noise_variance(1.0, 0.0, 1.0, 0.1, 1.0), "g"),
        (
            lambda: budget.optimal_noise_variance(
                1.0, 1.0, lambda x: x**-0.5, 0.0, 1.0
            ),
            "v_min",
        ),
        (
            lambda: budget.optimal_noise_variance(
                1.0, 1.0, lambda x: x**-0.5, -1.0, 1.0
            ),
            "v_min",
        ),
        (
            lambda: budget.optimal_noise_variance(
                1.0, 1.0, lambda x: x**-0.5, 2.0, 1.0
            ),
            "v_max",
        ),
        (
            lambda: budget.optimal_noise_variance(
                1.0, 1.0, lambda x: x**-0.5, 1.0, math.inf
            ),
            "v_max",
        ),
        (
            lambda: budget.optimal_noise_variance(
                1.0, 1.0, lambda x: 1.0 - x, 0.1, 10.0
            ),
            "cost",
        ),
        (
            lambda: budget.optimal_noise_variance(
                1.0, 1.0, lambda x: np.log(x - 1), 0.1, 10.0
            ),
            "cost",
        ),
        (lambda: budget.optimal_noise_variance_power(1.0, 1.0, -0.1), "p"),
        (lambda: budget.optimal_noise_variance_power(-1.0, 1.0, 0.5), "v0"),
        (lambda: budget.optimal_noise_variance_power(1.0, 0.0, 0.5), "g"),
        (lambda: budget.optimal_label_repeats(0.0, 1.0, 1.0, 1.0, 1.0), "v0"),
        (lambda: budget.optimal_label_repeats(1.0, 0.0, 1.0, 1.0, 1.0), "g"),
        (
            lambda: budget.optimal_label_repeats(1.0, 1.0, -1.0, 1.0, 1.0),
            "label_noise_var",
        ),
        (
            lambda: budget.optimal_label_repeats(1.0, 1.0, 1.0, 0.0, 1.0),
            "cost_rollout",
        ),
        (
            lambda: budget.optimal_label_repeats(1.0, 1.0, 1.0, 1.0, -1.0),
            "cost_label",
        ),
    ],
)
def test_value_errors_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name), np.errstate(all="ignore"):
        call()


# ----------------------------------------------------------------------------- leave-one-out
def test_loo_variance_against_simulation():
    """A one-step model with known moments: a, e ~ N(0, 1), d = rho a + s e,
    returns mu + d. Then V0 = 1 + rho^2, V_loo = 1 + rho^2, G = 1; the
    simulated N-rollout leave-one-out estimator must match (4 s.e.)."""
    rng = np.random.default_rng(0)
    rho, mu, v, n, reps = 0.6, 3.0, 0.5, 4, 400_000
    a = rng.standard_normal((reps, n))
    d = rho * a + np.sqrt(1 - rho**2) * rng.standard_normal((reps, n))
    y = mu + d + np.sqrt(v) * rng.standard_normal((reps, n))
    base = (y.sum(1, keepdims=True) - y) / (n - 1)
    est = np.mean(a * (y - base), axis=1)
    sq = (est - rho) ** 2
    pred = budget.loo_variance(n, v, 1 + rho**2, 1.0, 1 + rho**2)
    assert abs(sq.mean() - pred) < 4 * sq.std() / np.sqrt(reps)
    # the plain 1/N model is far off at N = 4
    assert abs(sq.mean() - (1 + rho**2 + v) / n) > 0.1 * pred


def test_loo_variance_shapes_and_limit():
    n = np.array([2, 10, 10_000])
    out = budget.loo_variance(n, 0.3, 2.0, 1.5, 4.0)
    assert out.shape == (3,)
    np.testing.assert_allclose(out[-1], (2.0 + 0.3 * 1.5) / 10_000, rtol=1e-3)
    assert isinstance(budget.loo_variance(5, 0.0, 1.0, 1.0, 0.0), float)


@pytest.mark.parametrize(
    "args, name",
    [
        ((1, 0.1, 1.0, 1.0, 1.0), "n"),
        ((2.5, 0.1, 1.0, 1.0, 1.0), "n"),
        ((4, -0.1, 1.0, 1.0, 1.0), "v"),
        ((4, 0.1, 0.0, 1.0, 1.0), "v0"),
        ((4, 0.1, 1.0, 0.0, 1.0), "g"),
        ((4, 0.1, 1.0, 1.0, -1.0), "v_loo"),
    ],
)
def test_loo_variance_errors(args, name):
    with pytest.raises(ValueError, match=name):
        budget.loo_variance(*args)
