"""Tests of imagination.allocation: sympy derivation, fits, weights, and the optimal split."""

import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from imagination import allocation as al
from imagination import bounds
from imagination.allocation import (
    Allocation,
    PowerLaw,
    bound_weights,
    fit_power_law,
    optimal_allocation,
)


# ----------------------------------------------------------------------------- sympy
def test_derivation_matches_notes():
    s = al.symbols
    a_d, a_r, alpha, beta = s["a_d"], s["a_r"], s["alpha"], s["beta"]
    w_d, w_r, c_d, c_r = s["w_d"], s["w_r"], s["c_d"], s["c_r"]
    N_d, N_r = s["N_d"], s["N_r"]
    stated_d = alpha * w_d * a_d * N_d ** (-alpha - 1) / c_d
    stated_r = beta * w_r * a_r * N_r ** (-beta - 1) / c_r
    assert sp.simplify(al.multiplier_dynamics - stated_d) == 0
    assert sp.simplify(al.multiplier_reward - stated_r) == 0
    ratio = (w_d * a_d * c_r / (w_r * a_r * c_d)) ** (1 / (1 + alpha))
    assert sp.simplify(al.equal_exponent_ratio - ratio) == 0
    # the ratio satisfies the optimality condition with beta = alpha
    cond = (al.multiplier_dynamics - al.multiplier_reward).subs(beta, alpha)
    assert sp.simplify(cond.subs(N_d, al.equal_exponent_ratio * N_r)) == 0


# ----------------------------------------------------------------------------- PowerLaw / fit
def test_power_law_call_and_validation():
    law = PowerLaw(2.0, 0.5)
    assert law(4.0) == pytest.approx(1.0)
    np.testing.assert_allclose(law(np.array([1.0, 100.0])), [2.0, 0.2])
    with pytest.raises(ValueError, match="coef"):
        PowerLaw(0.0, 0.5)
    with pytest.raises(ValueError, match="exponent"):
        PowerLaw(1.0, float("nan"))
    with pytest.raises(Exception):
        law.coef = 3.0  # frozen


def test_power_law_prints_the_sign_it_applies():
    """Issue 23: ``PowerLaw(1, -0.5)`` read ``N^(--0.5)``."""
    assert str(PowerLaw(3.0, 0.35)) == "3 * N^(-0.35)"
    assert str(PowerLaw(1.0, -0.5)) == "1 * N^(0.5)"
    assert str(PowerLaw(1.0, 0.0)) == "1 * N^(0)"


def test_fit_power_law_close_sizes_that_still_resolve_the_exponent():
    n = np.array([1.0, 1.0 + 1e-6])
    law = fit_power_law(n, 2.0 * n**-0.5)
    assert law.exponent == pytest.approx(0.5, rel=1e-6)


def test_fit_power_law_recovers_exact_law():
    n = np.array([10.0, 30.0, 100.0, 1000.0])
    law = fit_power_law(n, 3.0 * n**-0.4)
    assert law.coef == pytest.approx(3.0, rel=1e-10)
    assert law.exponent == pytest.approx(0.4, rel=1e-10)


def test_fit_power_law_least_squares_in_log_space():
    rng = np.random.default_rng(1)
    n = np.geomspace(10, 1e4, 12)
    err = 2.0 * n**-0.7 * np.exp(0.1 * rng.standard_normal(n.size))
    law = fit_power_law(n, err)
    slope, icpt = np.linalg.lstsq(
        np.c_[np.log(n), np.ones(n.size)], np.log(err), rcond=None
    )[0]
    assert law.exponent == pytest.approx(-slope, rel=1e-10)
    assert law.coef == pytest.approx(math.exp(icpt), rel=1e-10)


@pytest.mark.parametrize(
    "n, err, match",
    [
        ([10.0], [1.0], "two points"),
        ([1, 2, 3], [1, 2], "same length"),
        ([1, -2], [1, 2], "n must"),
        ([1, 2], [0, 2], "err must"),
        ([5, 5], [1, 2], "different"),
        # issue 23: sizes within rounding of each other gave an exponent of 7.8e14
        ([1, 1 + 1e-15], [1, 2], "too close together"),
        ([1e300, 1e300 * (1 + 1e-12)], [1, 2], "too close together"),
    ],
)
def test_fit_power_law_bad_input(n, err, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(n, err)


# ----------------------------------------------------------------------------- weights
def test_bound_weights_match_bounds_module():
    lf, lr, lp, g = 0.8, 1.7, 0.2, 0.9
    w_d, w_r = bound_weights(lf, lr, lp, g)
    assert w_r == pytest.approx(1 / (1 - g))
    # the bound is linear in the two errors: its values at unit errors are the weights
    assert w_d == pytest.approx(
        bounds.return_error_bound(1.0, 0.0, lf, lr, lp, g), rel=1e-12
    )
    assert w_r == pytest.approx(
        bounds.return_error_bound(0.0, 1.0, lf, lr, lp, g), rel=1e-12
    )


def test_bound_weights_infinite_and_bad_input():
    w_d, w_r = bound_weights(2.0, 1.0, 1.0, 0.5)  # gamma L = 2
    assert w_d == math.inf and w_r == pytest.approx(2.0)
    with pytest.raises(ValueError, match="gamma"):
        bound_weights(0.5, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="lip_reward"):
        bound_weights(0.5, -1.0, 0.0, 0.5)


# ----------------------------------------------------------------------------- allocation
def _brute(C, d, r, cd, cr, wd, wr):
    """Independent minimiser: dense float64 grid in the log-odds of the fraction of money spent
    on transitions, then golden-section refinement at 40 digits (mpmath).

    The objective is flat at its minimum, so a float64 grid alone locates ``N`` only to about the
    square root of machine precision; the extended-precision refinement removes that limit.
    """
    u = np.linspace(-300, 300, 6001)
    x, y = 1 / (1 + np.exp(-u)), 1 / (1 + np.exp(u))
    with np.errstate(over="ignore"):
        f = wd * d(C * x / cd) + wr * r(C * y / cr)
    i = int(np.argmin(f))
    mp.mp.dps = 40
    Cm, cdm, crm, wdm, wrm = map(mp.mpf, (C, cd, cr, wd, wr))

    def F(v):
        xx, yy = 1 / (1 + mp.exp(-v)), 1 / (1 + mp.exp(v))
        return wdm * d.coef * (Cm * xx / cdm) ** -mp.mpf(
            d.exponent
        ) + wrm * r.coef * (Cm * yy / crm) ** -mp.mpf(r.exponent)

    lo, hi = mp.mpf(u[max(i - 1, 0)]), mp.mpf(u[min(i + 1, u.size - 1)])
    g = (mp.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = F(a), F(b)
    for _ in range(200):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = F(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = F(b)
    v = (lo + hi) / 2
    return (
        float(Cm / cdm / (1 + mp.exp(-v))),
        float(Cm / crm / (1 + mp.exp(v))),
        float(F(v)),
    )


def _random_case(rng, equal=False):
    C = 10 ** rng.uniform(1, 8)
    cd, cr = 10 ** rng.uniform(-4, 4, 2)
    al_, be_ = rng.uniform(0.05, 2, 2)
    if equal:
        be_ = al_
    d = PowerLaw(10 ** rng.uniform(-2, 2), al_)
    r = PowerLaw(10 ** rng.uniform(-2, 2), be_)
    wd, wr = 10 ** rng.uniform(-2, 3, 2)
    return C, d, r, cd, cr, wd, wr


@pytest.mark.parametrize("seed", range(12))
def test_optimal_allocation_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    C, d, r, cd, cr, wd, wr = _random_case(rng, equal=(seed % 4 == 0))
    got = optimal_allocation(
        C,
        d,
        r,
        cost_dynamics=cd,
        cost_reward=cr,
        weight_dynamics=wd,
        weight_reward=wr,
    )
    nd, nr, fb = _brute(C, d, r, cd, cr, wd, wr)
    assert got.n_dynamics == pytest.approx(nd, rel=1e-6)
    assert got.n_reward == pytest.approx(nr, rel=1e-6)
    assert got.bound == pytest.approx(fb, rel=1e-9)
    assert cd * got.n_dynamics + cr * got.n_reward == pytest.approx(
        C, rel=1e-12
    )


@pytest.mark.parametrize(
    "corner",
    [
        (1e1, 1e-4, 1e4, 0.05, 2.0),
        (1e8, 1e4, 1e-4, 2.0, 0.05),
        (1e8, 1e-4, 1e-4, 0.05, 0.05),
        (1e1, 1e4, 1e4, 2.0, 2.0),
        (1e1, 1e4, 1e-4, 0.05, 2.0),
        (1e8, 1e-4, 1e4, 2.0, 0.05),
    ],
)
def test_optimal_allocation_extreme_corners(corner):
    C, cd, cr, al_, be_ = corner
    d, r = PowerLaw(1.0, al_), PowerLaw(1.0, be_)
    got = optimal_allocation(C, d, r, cost_dynamics=cd, cost_reward=cr)
    nd, nr, fb = _brute(C, d, r, cd, cr, 1.0, 1.0)
    assert got.n_dynamics == pytest.approx(nd, rel=1e-6)
    assert got.n_reward == pytest.approx(nr, rel=1e-6)


def test_equal_exponent_closed_form_agrees_with_root_finding():
    d, r = PowerLaw(2.0, 0.5), PowerLaw(0.7, 0.5)
    closed = optimal_allocation(
        1e4, d, r, cost_reward=3.0, weight_dynamics=5.0
    )
    nearly = optimal_allocation(
        1e4,
        d,
        PowerLaw(0.7, 0.5 * (1 + 1e-12)),
        cost_reward=3.0,
        weight_dynamics=5.0,
    )
    assert closed.n_dynamics == pytest.approx(nearly.n_dynamics, rel=1e-8)
    assert closed.ratio == pytest.approx(
        (5 * 2.0 * 3.0 / 0.7) ** (1 / 1.5), rel=1e-12
    )


def test_allocation_is_a_minimum_along_the_budget_line():
    d, r = PowerLaw(3.0, 0.35), PowerLaw(5.0, 0.6)
    best = optimal_allocation(1e5, d, r, cost_reward=2.0)
    assert isinstance(best, Allocation)
    x = np.linspace(0.001, 0.999, 999)
    values = d(1e5 * x) + r(1e5 * (1 - x) / 2.0)
    assert np.all(values >= best.bound * (1 - 1e-12))


def test_comparative_statics():
    d, r = PowerLaw(1.0, 0.5), PowerLaw(1.0, 0.5)
    base = optimal_allocation(1e4, d, r).ratio
    assert base == pytest.approx(1.0)
    assert optimal_allocation(1e4, d, r, weight_dynamics=4.0).ratio > base
    assert optimal_allocation(1e4, d, r, cost_dynamics=4.0).ratio < base
    assert (
        optimal_allocation(1e4, PowerLaw(1.0, 0.8), r).ratio < base
    )  # faster dynamics learner


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(budget=0.0), "budget"),
        (dict(budget=-1.0), "budget"),
        (dict(cost_dynamics=0.0), "cost_dynamics"),
        (dict(cost_reward=-2.0), "cost_reward"),
        (dict(weight_dynamics=0.0), "weight_dynamics"),
        (dict(weight_reward=math.inf), "weight_reward"),
        (dict(dynamics=PowerLaw(1.0, -0.2)), "dynamics exponent"),
        (dict(reward=PowerLaw(1.0, 0.0)), "reward exponent"),
        (dict(reward=(1.0, 0.5)), "reward"),
    ],
)
def test_optimal_allocation_bad_input(kwargs, match):
    args = dict(
        budget=100.0, dynamics=PowerLaw(1.0, 0.5), reward=PowerLaw(1.0, 0.5)
    )
    args.update(kwargs)
    budget = args.pop("budget")
    with pytest.raises(ValueError, match=match):
        optimal_allocation(
            budget, args.pop("dynamics"), args.pop("reward"), **args
        )


# ----------------------------------------------------------------------------- architecture
def test_allocation_imports_no_learned_model():
    import subprocess
    import sys

    code = (
        "import sys, imagination.allocation; "
        "print(any(m in ('imagination.models', 'imagination.learning_curves')"
        " for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
