"""Hostile input to the public API, property-based (hypothesis).

Every public function of ``bounds``, ``allocation`` and ``budget`` is called with arguments drawn
from the whole float range (0, subnormals, 1e308, inf, nan, negatives) and from wrong types
(``bool``, strings, ``None``, complex, lists). The property: either a ``ValueError`` or
``TypeError`` whose message names one of the function's parameters, or a value that is not NaN,
agrees with an independent high-precision reference (mpmath, summed term by term where the code
uses a closed form), and is ``inf`` only where the reference is beyond the float range.
Infinite inputs are checked as limits: the reference replaces ``inf`` by ``1e4000``.

Run with ``--hypothesis-show-statistics`` to see how many cases each property ran.
"""

from __future__ import annotations

import math
import time

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagination import allocation, bounds, budget
from imagination._checks import ArgumentTypeError

SPECIAL = [
    0.0,
    -0.0,
    5e-324,
    2.2250738585072014e-308,
    1e-300,
    1e-16,
    0.5,
    1.0,
    1.0 + 2**-52,
    1.0 - 2**-53,
    2.0,
    1e16,
    1e300,
    1e308,
    1.7976931348623157e308,
    math.inf,
    -math.inf,
    math.nan,
    -1.0,
    -5e-324,
]
floats = st.one_of(st.sampled_from(SPECIAL), st.floats())
nonneg = st.one_of(
    st.sampled_from([x for x in SPECIAL if not x < 0 and x == x]),
    st.floats(min_value=0.0),
)
wrong_type = st.one_of(
    st.booleans(),
    st.sampled_from(["1", "0.5", "nan", "", "1e3", None, 1j, [1.0], (0.5,)]),
    st.builds(np.bool_, st.booleans()),
)
hostile = st.one_of(floats, floats, floats, wrong_type, st.integers(-5, 5))

SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
BIG = mpmath.mpf("1e4000")  # stands in for inf in the references (a limit)


def _mp(x):
    return BIG if x == math.inf else mpmath.mpf(x)


def _to_float(x) -> float:
    return float(x) if x < mpmath.mpf("1e3000") else math.inf


def _close(got: float, ref: float) -> bool:
    if math.isinf(ref) or math.isinf(got):
        return got == ref
    return math.isclose(got, ref, rel_tol=1e-11, abs_tol=1e-320)


def _is_real(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _call(fn, names, *args, **kwargs):
    """Run ``fn``; an exception must be ValueError/TypeError naming a parameter. Returns
    (ok, value)."""
    try:
        return True, fn(*args, **kwargs)
    except (ValueError, TypeError) as err:
        msg = str(err)
        assert any(n in msg for n in names), (
            f"{fn.__name__}: message names no parameter: {msg!r}"
        )
        return False, err


def _expect_rejected_types(values, names, ok):
    """Wrong types (bool, str, None, ...) are never accepted."""
    if any(not _is_real(v) and not isinstance(v, np.floating) for v in values):
        assert not ok, f"accepted a non-real argument: {values!r}"


# ============================================================================ bounds
def _ref_delta(eps, lip, t):
    with mpmath.workprec(4000):
        e, L = _mp(eps), _mp(lip)
        if t <= 60:
            return _to_float(e * mpmath.fsum(L**k for k in range(t)))
        if L == 1:
            return _to_float(e * t)
        return _to_float(e * (L**t - 1) / (L - 1))


@settings(max_examples=400, **SETTINGS)
@given(
    eps=hostile,
    lip=hostile,
    t=st.one_of(
        st.integers(0, 60),
        st.integers(0, 10**12),
        st.sampled_from([-1, 2.5, math.nan, math.inf, "3", True, None]),
    ),
)
def test_compounding_error_bound(eps, lip, t):
    ok, out = _call(
        bounds.compounding_error_bound,
        ("eps_dynamics", "lip", "t"),
        eps,
        lip,
        t,
    )
    _expect_rejected_types((eps, lip), ("eps", "lip"), ok)
    if not ok:
        return
    assert not math.isnan(out)
    assert _close(out, _ref_delta(eps, lip, int(t))), (out, eps, lip, t)


def _ref_return(eps_d, eps_r, lf, lr, lp, g, horizon):
    """Term-by-term sum (finite horizon) or the textbook closed form (infinite)."""
    with mpmath.workprec(4000):
        ed, er, Lf, Lr, Lp, G = map(_mp, (eps_d, eps_r, lf, lr, lp, g))
        L = Lf * (1 + Lp)
        if horizon is not None:
            total, delta = mpmath.mpf(0), mpmath.mpf(0)
            for t in range(horizon):
                total += G**t * (er + Lr * (1 + Lp) * delta)
                delta = L * delta + ed
            return _to_float(total)
        rew = er / (1 - G)
        if ed == 0 or Lr == 0 or G == 0:
            return _to_float(rew)
        if G * L >= 1:
            return math.inf
        return _to_float(
            rew + G * Lr * (1 + Lp) * ed / ((1 - G) * (1 - G * L))
        )


@settings(max_examples=600, **SETTINGS)
@given(
    args=st.tuples(nonneg, nonneg, nonneg, nonneg, nonneg),
    gamma=st.one_of(
        st.floats(0.0, 1.0),
        st.sampled_from([0.0, 1.0, 0.5, 1.0 - 2**-53, 5e-324, 0.9]),
    ),
    horizon=st.one_of(st.none(), st.integers(0, 40)),
)
def test_return_error_bound_against_reference(args, gamma, horizon):
    if horizon is None and gamma == 1.0:
        gamma = 0.5
    out = bounds.return_error_bound(*args, gamma, horizon=horizon)
    assert not math.isnan(out)
    ref = _ref_return(*args, gamma, horizon)
    assert _close(out, ref), (out, ref, args, gamma, horizon)


@settings(max_examples=300, **SETTINGS)
@given(
    args=st.tuples(hostile, hostile, hostile, hostile, hostile, hostile),
    horizon=st.one_of(
        st.none(),
        st.integers(-3, 40),
        st.sampled_from([2.5, True, "10", 10**9, np.int64(7)]),
    ),
)
def test_return_error_bound_hostile(args, horizon):
    names = (
        "eps_dynamics",
        "eps_reward",
        "lip_dynamics",
        "lip_reward",
        "lip_policy",
        "gamma",
        "horizon",
    )
    ok, out = _call(bounds.return_error_bound, names, *args, horizon=horizon)
    _expect_rejected_types(args, names, ok)
    if ok:
        assert isinstance(out, float) and not math.isnan(out)
        assert out >= 0


@settings(max_examples=200, **SETTINGS)
@given(
    args=st.tuples(
        st.floats(0, 10), st.floats(0, 10), st.floats(0, 2), st.floats(0, 5)
    ),
    lp=st.floats(0, 2),
    gamma=st.floats(0.0, 0.999),
    horizon=st.sampled_from([10**6, 10**8, 10**9, 10**15]),
)
def test_long_horizon_is_o1_and_tends_to_the_infinite_bound(
    args, lp, gamma, horizon
):
    """O(1) in the horizon; where gamma^H underflows the sum equals the infinite one."""
    eps_d, eps_r, lf, lr = args
    t0 = time.perf_counter()
    out = bounds.return_error_bound(eps_d, eps_r, lf, lr, lp, gamma, horizon)
    assert time.perf_counter() - t0 < 2.0
    inf_bound = bounds.return_error_bound(eps_d, eps_r, lf, lr, lp, gamma)
    if gamma**horizon == 0 and math.isfinite(inf_bound):
        # the tail is gamma^H times something finite: far below rounding
        assert math.isclose(out, inf_bound, rel_tol=1e-9, abs_tol=1e-300)
    assert out <= inf_bound * (1 + 1e-12) or math.isinf(inf_bound)


def test_issue_examples_bounds():
    assert bounds.return_error_bound(1, 0, 2, 1, 9e307, 0) == 0.0
    assert bounds.compounding_error_bound(0.1, math.inf, 1) == 0.1
    assert bounds.compounding_error_bound(1e-300, 1e200, 2) == pytest.approx(
        1e-100
    )
    t0 = time.perf_counter()
    big = bounds.return_error_bound(0.1, 0.2, 0.5, 1.0, 0.5, 0.9, 10**9)
    assert time.perf_counter() - t0 < 1.0
    assert big == pytest.approx(
        bounds.return_error_bound(0.1, 0.2, 0.5, 1.0, 0.5, 0.9), rel=1e-12
    )


@settings(max_examples=300, **SETTINGS)
@given(eps=hostile, lip=hostile)
def test_contraction_limit(eps, lip):
    ok, out = _call(
        bounds.contraction_limit, ("eps_dynamics", "lip"), eps, lip
    )
    _expect_rejected_types((eps, lip), ("eps", "lip"), ok)
    if ok:
        assert not math.isnan(out) and out >= 0


# ============================================================================ allocation
@settings(max_examples=400, **SETTINGS)
@given(args=st.tuples(hostile, hostile, hostile, hostile))
def test_bound_weights(args):
    names = ("lip_dynamics", "lip_reward", "lip_policy", "gamma")
    ok, out = _call(allocation.bound_weights, names, *args)
    _expect_rejected_types(args, names, ok)
    if not ok:
        return
    w_d, w_r = out
    lf, lr, lp, g = args
    with mpmath.workprec(4000):
        G, L = mpmath.mpf(g), mpmath.mpf(lf) * (1 + mpmath.mpf(lp))
        ref_r = _to_float(1 / (1 - G))
        if G == 0 or lr == 0:
            ref_d = 0.0
        elif G * L >= 1:
            ref_d = math.inf
        else:
            ref_d = _to_float(
                G * lr * (1 + mpmath.mpf(lp)) / ((1 - G) * (1 - G * L))
            )
    assert _close(w_d, ref_d) and _close(w_r, ref_r), (out, ref_d, ref_r)


@settings(max_examples=300, **SETTINGS)
@given(coef=hostile, exponent=hostile, n=hostile)
def test_power_law(coef, exponent, n):
    ok, law = _call(allocation.PowerLaw, ("coef", "exponent"), coef, exponent)
    _expect_rejected_types((coef, exponent), ("coef", "exponent"), ok)
    if not ok:
        return
    ok, out = _call(law, ("n",), n)
    if isinstance(n, (list, tuple)):  # an array of sizes
        if ok:
            assert isinstance(out, np.ndarray) and not np.any(np.isnan(out))
        return
    _expect_rejected_types((n,), ("n",), ok)
    if not ok:
        return
    assert isinstance(out, float) and not isinstance(out, complex)
    assert not math.isnan(out)
    with mpmath.workprec(4000):
        N = _mp(n)
        if N == 0:
            ref = (
                math.inf
                if law.exponent > 0
                else (law.coef if law.exponent == 0 else 0.0)
            )
        elif n == math.inf:  # the limit n -> inf of n^-exponent
            ref = (
                0.0
                if law.exponent > 0
                else (law.coef if law.exponent == 0 else math.inf)
            )
        else:
            ref = _to_float(law.coef * N ** (-mpmath.mpf(law.exponent)))
    assert _close(out, ref) or math.isclose(out, ref, rel_tol=1e-9), (
        out,
        ref,
    )


pos = st.one_of(
    st.floats(min_value=5e-324, max_value=1.7976931348623157e308),
    st.sampled_from([5e-324, 1e-320, 1e-300, 1.0, 1e300, 1e308]),
)


@settings(max_examples=300, **SETTINGS)
@given(
    budget_=pos,
    laws=st.tuples(pos, pos, pos, pos),
    prices=st.tuples(pos, pos, pos, pos),
    same=st.booleans(),
)
def test_optimal_allocation(budget_, laws, prices, same):
    ad, al, ar, be = laws
    al, be = min(al, 50.0), min(be, 50.0)
    if same:
        be = al
    cd, cr, wd, wr = prices
    names = (
        "budget",
        "cost_dynamics",
        "cost_reward",
        "weight_dynamics",
        "weight_reward",
        "dynamics",
        "reward",
        "coef",
    )
    ok, law_d = _call(allocation.PowerLaw, names, ad, al)
    ok2, law_r = _call(allocation.PowerLaw, names, ar, be)
    if not (ok and ok2):
        return
    ok, out = _call(
        allocation.optimal_allocation,
        names,
        budget_,
        law_d,
        law_r,
        cost_dynamics=cd,
        cost_reward=cr,
        weight_dynamics=wd,
        weight_reward=wr,
    )
    if not ok:
        return
    nd, nr = out.n_dynamics, out.n_reward
    assert 0 < nd < math.inf and 0 < nr < math.inf
    assert not math.isnan(out.bound) and not math.isnan(out.ratio)
    with mpmath.workprec(4000):
        spent = mpmath.mpf(cd) * nd + mpmath.mpf(cr) * nr
        # the whole budget is spent, up to rounding (subnormal counts have fewer bits)
        slack = 1e-9 * mpmath.mpf(budget_) + (cd + cr) * mpmath.mpf(5e-324)
        assert abs(spent - budget_) <= slack

        m = mpmath.mpf

        def value(Nd, Nr):
            return m(wd) * m(ad) * Nd ** (-m(al)) + m(wr) * m(ar) * Nr ** (
                -m(be)
            )

        here = value(m(nd), m(nr))
        # a subnormal count carries fewer bits: allow its rounding
        sub = 4 * 5e-324 / min(nd, nr) * max(al, be, 1.0)
        assert _close(out.bound, _to_float(here)) or math.isclose(
            out.bound, _to_float(here), rel_tol=1e-9 + sub
        )
        # no better split nearby: move 1% of either side's money to the other
        C = m(budget_)
        xd, xr = m(cd) * nd / C, m(cr) * nr / C
        for yd, yr in ((xd * 0.99, 1 - xd * 0.99), (1 - xr * 0.99, xr * 0.99)):
            other = value(yd * C / m(cd), yr * C / m(cr))
            assert here <= other * (1 + m(1e-9) + m(sub)), (here, other)


def test_issue_examples_allocation():
    assert allocation.bound_weights(2, 1, 0, 0.5) == (math.inf, 2.0)
    with pytest.raises(ValueError, match="n"):
        allocation.PowerLaw(1, 0.5)(-4)
    for bad in (True, "2", None):
        with pytest.raises(TypeError, match="budget"):
            allocation.optimal_allocation(
                bad, allocation.PowerLaw(1, 0.5), allocation.PowerLaw(1, 0.5)
            )


def test_python_ints_beyond_the_float_range():
    """Issue 23: one rule for Python ints (``imagination._checks``). Counts are exact at
    any size; other arguments round to the nearest float, beyond the float range to inf."""
    with mpmath.workprec(200):
        ref = lambda e, L, t: float(e * (1 - L**t) / (1 - L))  # noqa: E731
        assert bounds.compounding_error_bound(0.1, 0.5, 2**70) == ref(
            mpmath.mpf(0.1), mpmath.mpf(0.5), 2**70
        )
    assert bounds.compounding_error_bound(0.1, 1.0, 2**70) == 0.1 * 2.0**70
    assert bounds.compounding_error_bound(0.1, 2.0, 10**400) == math.inf
    np.testing.assert_array_equal(
        bounds.compounding_error_bound(0.1, 1.0, [0, 3, 2**70]),
        [0.0, 0.1 * 3, 0.1 * 2.0**70],
    )
    law = allocation.PowerLaw(2.0, 0.1)  # 2 * (10**400)**-0.1 = 2e-40
    assert law(10**400) == pytest.approx(2e-40, rel=1e-12)
    np.testing.assert_allclose(
        law([10, 10**400]), [law(10), 2e-40], rtol=1e-12
    )
    fit = allocation.fit_power_law([10, 10**400], [law(10), 2e-40])
    assert fit.exponent == pytest.approx(0.1, rel=1e-9)
    loo = budget.loo_variance(10**400, 1.0, 1e300, 2.0, 3.0)
    assert loo == pytest.approx(1e-100, rel=1e-12)
    # not a count: rounded to the float it is, inf, then the usual range rule
    assert bounds.compounding_error_bound(10**400, 0.5, 2) == math.inf
    assert bounds.contraction_limit(0.1, 10**400) == bounds.contraction_limit(
        0.1, math.inf
    )
    with pytest.raises(
        ValueError, match="budget must be a positive finite"
    ) as info:
        allocation.optimal_allocation(10**400, law, law)
    assert not isinstance(info.value, TypeError)
    assert "1e+400 (an int)" in str(info.value)


# ============================================================================ budget
@settings(max_examples=300, **SETTINGS)
@given(v=hostile, b=hostile, cost=hostile, v0=hostile, g=hostile)
def test_gradient_variance(v, b, cost, v0, g):
    names = ("v", "budget", "cost", "v0", "g")
    ok, out = _call(budget.gradient_variance, names, v, b, cost, v0, g)
    if isinstance(v, (list, tuple)) and ok:  # an array of variances
        v = v[0]
        out = float(np.asarray(out).ravel()[0])
    _expect_rejected_types((v, b, cost, v0, g), names, ok)
    if ok:
        assert not math.isnan(out) and out >= 0
        with mpmath.workprec(4000):
            ref = (_mp(v0) + _mp(v) * _mp(g)) * _mp(cost) / _mp(b)
        assert _close(out, _to_float(ref)) or math.isclose(
            out, _to_float(ref), rel_tol=1e-10
        )


@settings(max_examples=60, **SETTINGS)
@given(
    v0=hostile,
    g=hostile,
    lo=hostile,
    hi=hostile,
    p=st.floats(0.0, 3.0),
    kind=st.sampled_from(["power", "const", "hostile"]),
)
def test_optimal_noise_variance(v0, g, lo, hi, p, kind):
    cost = {"power": lambda v: v**-p, "const": 2.0, "hostile": lo}[kind]
    names = ("v0", "g", "v_min", "v_max", "cost", "grid_per_decade")
    ok, out = _call(budget.optimal_noise_variance, names, v0, g, cost, lo, hi)
    _expect_rejected_types((v0, g, lo, hi), names, ok)
    if not ok:
        return
    assert lo <= out <= hi
    if kind == "power" and math.isfinite(out):
        # a power cost's objective (v0 + v g) v^-p: compare with both ends, in log space
        def logobj(v):
            with mpmath.workprec(200):
                return mpmath.log(v0 + mpmath.mpf(v) * g) - p * mpmath.log(v)

        best = min(logobj(lo), logobj(hi))
        assert logobj(out) <= best + 1e-9


@settings(max_examples=300, **SETTINGS)
@given(v0=hostile, g=hostile, p=hostile)
def test_optimal_noise_variance_power(v0, g, p):
    ok, out = _call(
        budget.optimal_noise_variance_power, ("v0", "g", "p"), v0, g, p
    )
    _expect_rejected_types((v0, g, p), ("v0", "g", "p"), ok)
    if ok:
        assert not math.isnan(out) and out >= 0


@settings(max_examples=300, **SETTINGS)
@given(args=st.tuples(hostile, hostile, hostile, hostile, hostile))
def test_optimal_label_repeats(args):
    names = ("v0", "g", "label_noise_var", "cost_rollout", "cost_label")
    ok, out = _call(budget.optimal_label_repeats, names, *args)
    _expect_rejected_types(args, names, ok)
    if ok:
        assert not math.isnan(out) and out >= 1


@settings(max_examples=300, **SETTINGS)
@given(n=hostile, v=hostile, v0=hostile, g=hostile, v_loo=hostile)
def test_loo_variance(n, v, v0, g, v_loo):
    names = ("n", "v", "v0", "g", "v_loo")
    ok, out = _call(budget.loo_variance, names, n, v, v0, g, v_loo)
    _expect_rejected_types(
        [x for x in (n, v, v0, g, v_loo) if not isinstance(x, (list, tuple))],
        names,
        ok,
    )
    if ok:
        assert not np.any(np.isnan(out)) and np.all(np.asarray(out) >= 0)


# ============================================================================ the rule
@pytest.mark.parametrize("bad", [True, False, np.bool_(True), "1.0", "0.5"])
def test_bool_and_strings_are_type_errors(bad):
    """The leniency rule: real numbers only; the error is a TypeError (and a ValueError)
    naming the parameter."""
    calls = [
        (
            lambda: bounds.return_error_bound(bad, 0, 0, 0, 0, 0.5),
            "eps_dynamics",
        ),
        (lambda: allocation.bound_weights(0, 0, 0, bad), "gamma"),
        (lambda: budget.optimal_noise_variance_power(1.0, bad, 0.5), "g"),
        (lambda: allocation.PowerLaw(bad, 0.5), "coef"),
    ]
    for fn, name in calls:
        with pytest.raises(ArgumentTypeError, match=name) as info:
            fn()
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, ValueError)


def test_numpy_and_jax_scalars_are_accepted():
    import jax.numpy as jnp

    a = bounds.return_error_bound(0.1, 0.2, 0.5, 1.0, 0.5, 0.9)
    b = bounds.return_error_bound(
        np.float32(0.1),
        np.float64(0.2),
        jnp.float32(0.5),
        np.int64(1),
        jnp.asarray(0.5),
        0.9,
    )
    assert b == pytest.approx(a, rel=1e-6)


@settings(max_examples=300, **SETTINGS)
@given(
    n=st.one_of(st.lists(hostile, max_size=5), wrong_type, floats),
    err=st.one_of(st.lists(hostile, max_size=5), wrong_type, floats),
)
def test_fit_power_law(n, err):
    ok, law = _call(allocation.fit_power_law, ("n", "err"), n, err)
    if not ok:
        return
    assert isinstance(law, allocation.PowerLaw)
    assert 0 < law.coef < math.inf and math.isfinite(law.exponent)
    assert all(_is_real(v) for v in n) and all(_is_real(v) for v in err)
