"""Tests of imagination.training: per-level estimates, the multi-level trainer, pilot statistics."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import envs, policies, reinforce, training

ENV = envs.linear_system([[1.0, 0.2], [0.0, 1.0]], [[0.02], [0.2]], R=[[0.1]])
START = functools.partial(ENV.sample_start, ENV.params)
POL0 = (jnp.array([[-0.3, -0.5]]), jnp.log(0.5) * jnp.ones(1))
KW = dict(
    dynamics=ENV.dynamics,
    reward=ENV.reward,
    policy=policies.gaussian_linear,
    log_prob=policies.gaussian_linear_log_prob,
    sample_start=START,
    horizon=8,
    gamma=0.9,
)


def _stack(p, n):
    return jax.tree_util.tree_map(
        lambda x: jnp.broadcast_to(x, (n,) + x.shape), p
    )


def test_level_estimates_are_per_level_loo_reinforce():
    sizes = (3, 5, 8)
    est = training.make_level_estimator(**KW, sizes=sizes)
    pol = (
        jnp.array([[[-0.3, -0.5]], [[0.1, 0.2]], [[-1.0, 0.0]]]),
        jnp.log(0.5) * jnp.ones((3, 1)),
    )
    out = est(
        ENV.params,
        ENV.params,
        pol,
        jax.random.key(0),
        jnp.array([0.0, 1.0, 3.0]),
    )
    lo = 0
    for lvl, n in enumerate(sizes):
        sl = slice(lo, lo + n)
        p_l = jax.tree_util.tree_map(lambda x: x[lvl], pol)
        ref = reinforce.reinforce_gradients(
            policies.gaussian_linear_log_prob,
            p_l,
            out.trajectory.states[sl],
            out.trajectory.actions[sl],
            out.labels[sl],
            0.9,
            baseline="loo",
        )
        for a, b in zip(
            jax.tree_util.tree_leaves(ref),
            jax.tree_util.tree_leaves(out.grads),
        ):
            np.testing.assert_allclose(
                np.mean(a, 0), b[lvl], rtol=2e-4, atol=2e-4
            )
        lo += n
    # level 0 has clean labels, the others do not
    np.testing.assert_allclose(out.labels[:3], out.trajectory.rewards[:3])
    assert not np.allclose(out.labels[3:], out.trajectory.rewards[3:])


def test_noise_part_of_variance_is_vG_over_N_minus_1():
    """With the leave-one-out baseline the label noise adds exactly v G / (N - 1)."""
    n, v, reps = 4, 2.0, 2000
    est = training.make_level_estimator(**KW, sizes=(n,))
    pol = _stack(POL0, 1)
    keys = jax.random.split(jax.random.key(1), reps)

    def flat(k, s):
        g = est(ENV.params, ENV.params, pol, k, s).grads
        return jnp.concatenate(
            [x.reshape(-1) for x in jax.tree_util.tree_leaves(g)]
        )

    f = jax.jit(jax.vmap(flat, in_axes=(0, None)))
    noise = f(keys, jnp.array([np.sqrt(v)])) - f(
        keys, jnp.array([0.0])
    )  # same rollouts, same xi
    pilot = training.make_pilot(**KW, n_rollouts=8000)(
        ENV.params, ENV.params, POL0, jax.random.key(2)
    )
    measured = float(jnp.mean(jnp.sum(noise**2, axis=1)))
    predicted = v * float(pilot.g) / (n - 1)
    se = float(jnp.std(jnp.sum(noise**2, axis=1))) / np.sqrt(reps)
    assert abs(measured - predicted) < 4 * se + 4 * v * float(pilot.g_se) / (
        n - 1
    )


def test_pilot_matches_reinforce_helpers():
    pilot = training.make_pilot(**KW, n_rollouts=64, select=lambda p: p[0])
    st = pilot(ENV.params, ENV.params, POL0, jax.random.key(3))
    k_start, k_roll = jax.random.split(jax.random.key(3))
    from imagination.rollout import make_rollout

    run = make_rollout(
        ENV.dynamics,
        ENV.reward,
        policies.gaussian_linear,
        horizon=8,
        gamma=0.9,
    )
    traj = run(ENV.params, ENV.params, POL0, START(k_start, 64), k_roll)
    scores = reinforce.step_scores(
        policies.gaussian_linear_log_prob, POL0, traj.states, traj.actions
    )
    g_ref = reinforce.noise_variance_term(scores[0], 0.9)
    np.testing.assert_allclose(st.g, g_ref, rtol=1e-4)
    grads = reinforce.reinforce_gradients(
        policies.gaussian_linear_log_prob,
        POL0,
        traj.states,
        traj.actions,
        traj.rewards,
        0.9,
        baseline="loo",
    )[0]
    grads = np.asarray(grads).reshape(64, -1)
    np.testing.assert_allclose(
        st.v0, np.sum(np.var(grads, axis=0, ddof=1)), rtol=1e-3
    )
    np.testing.assert_allclose(
        st.mean_grad, grads.mean(0), rtol=1e-4, atol=1e-4
    )


def test_train_levels_improves_and_freezes_masked_leaves():
    train = training.make_train_levels(
        **KW, sizes=(16, 64), steps=25, optimizer=0.05, mask=(True, False)
    )
    pol = (jnp.zeros((1, 2)), jnp.log(0.5) * jnp.ones(1))
    path = train(
        ENV.params, ENV.params, pol, jax.random.key(4), jnp.array([0.0, 0.0])
    )
    assert path[0].shape == (26, 2, 1, 2)
    np.testing.assert_array_equal(
        path[1], jnp.broadcast_to(pol[1], (26, 2, 1))
    )
    from imagination.rollout import make_rollout

    ev = make_rollout(
        ENV.dynamics, ENV.reward, policies.linear, horizon=8, gamma=0.9
    )
    s0 = START(jax.random.key(5), 512)
    ret = lambda K: float(
        ev(ENV.params, ENV.params, K, s0, jax.random.key(6)).returns.mean()
    )  # noqa: E731
    for lvl in range(2):
        assert ret(path[0][-1, lvl]) > ret(pol[0]) + 0.1


@pytest.mark.parametrize("sizes", [(), (1, 4), (2.5,), "ab"])
def test_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        training.make_level_estimator(**KW, sizes=sizes)


def test_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        training.make_train_levels(**KW, sizes=(4,), steps=0)
    with pytest.raises(ValueError, match="optimizer"):
        training.make_train_levels(**KW, sizes=(4,), steps=3, optimizer=-1.0)
    with pytest.raises(ValueError, match="n_rollouts"):
        training.make_pilot(**KW, n_rollouts=1)
    with pytest.raises(ValueError, match="gamma"):
        training.make_level_estimator(**{**KW, "gamma": 1.5}, sizes=(4,))


# ----------------------------------------------------------------------------- pools
POOL_KW = {**KW, "n_rollouts": 2048}


def test_pool_statistics_match_the_pilot():
    """Same key, same rollouts: one block reproduces make_pilot's numbers."""
    pool = training.make_pool(**POOL_KW, select=lambda p: p[0])(
        ENV.params, ENV.params, POL0, jax.random.key(2)
    )
    assert pool.scores.shape == (2048, 8, 2)
    assert pool.rewards.shape == (2048, 8)
    st = training.make_pilot(**POOL_KW, select=lambda p: p[0])(
        ENV.params, ENV.params, POL0, jax.random.key(2)
    )
    ps = training.pool_statistics(pool, 0.9, 1)
    np.testing.assert_allclose(ps.v0[0], st.v0, rtol=1e-3)
    np.testing.assert_allclose(ps.g[0], st.g, rtol=1e-4)
    np.testing.assert_allclose(ps.v_loo[0], st.v_loo, rtol=1e-3)
    assert training.pool_statistics(pool, 0.9, 8).v0.shape == (8,)


def test_group_variance_clean_is_variance_of_group_estimates():
    pool = training.make_pool(**POOL_KW)(
        ENV.params, ENV.params, POL0, jax.random.key(3)
    )
    got = training.group_variance(
        pool, 0.9, jax.random.key(0), size=8, sigma=0.0, blocks=2
    )
    s = np.asarray(pool.scores, np.float64)
    r = np.asarray(pool.rewards, np.float64)
    disc = 0.9 ** np.arange(8)
    for b in range(2):
        ests = []
        for g in range(128):
            sl = slice(b * 1024 + 8 * g, b * 1024 + 8 * g + 8)
            G = np.cumsum((r[sl] * disc)[:, ::-1], 1)[:, ::-1]
            adv = G - (G.sum(0) - G) / 7
            ests.append(np.einsum("nt,ntd->d", adv, s[sl]) / 8)
        ref = np.sum(np.var(np.array(ests), axis=0, ddof=1))
        np.testing.assert_allclose(got[b], ref, rtol=1e-3)


@pytest.mark.parametrize("noise, repeats", [("normal", 1), ("rademacher", 3)])
def test_group_variance_matches_the_exact_loo_formula(noise, repeats):
    """Measured variance of the 4-rollout estimate with label noise against
    V0/N + V_loo/(N(N-1)) + v G/(N-1) (v = sigma^2/repeats), 4 s.e."""
    pool = training.make_pool(**{**KW, "n_rollouts": 2**15})(
        ENV.params, ENV.params, POL0, jax.random.key(4)
    )
    st = training.pool_statistics(pool, 0.9, 16)
    sigma, n = 3.0, 4
    meas = training.group_variance(
        pool, 0.9, jax.random.key(5), size=n, sigma=sigma, blocks=16,
        repeats=repeats, draws=4, noise=noise,
    )  # fmt: skip
    from imagination import budget

    pred = np.array(
        [
            budget.loo_variance(n, sigma**2 / repeats, *c)
            for c in zip(st.v0, st.g, st.v_loo)
        ]
    )
    d = meas - pred
    assert abs(d.mean()) < 4 * d.std(ddof=1) / 4
    # the plain model misses the factor N/(N-1) on the noise term
    plain = (st.v0 + sigma**2 / repeats * st.g) / n
    assert abs((meas - plain).mean()) > 8 * d.std(ddof=1) / 4


def test_rademacher_average_has_variance_one_over_m():
    x = training._average_noise(jax.random.key(0), (200_000,), 5, "rademacher")
    assert set(np.unique(np.asarray(x) * 5).astype(int)) <= {
        -5,
        -3,
        -1,
        1,
        3,
        5,
    }
    np.testing.assert_allclose(np.var(x), 1 / 5, rtol=0.02)
    assert abs(float(np.mean(x))) < 0.01


def test_near_optimal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)) + np.array([3.0, 1.0, 1.01, 5.0])
    best, ok = training.near_optimal(x)
    assert best in (1, 2) and ok.tolist() == [False, True, True, False]
    best, ok = training.near_optimal(-x, lower_is_better=False)
    assert best in (1, 2) and ok[1] and ok[2] and not ok[0]
    with pytest.raises(ValueError, match="samples"):
        training.near_optimal(np.ones(3))
    with pytest.raises(ValueError, match="z"):
        training.near_optimal(x, z=-1.0)


def test_pool_bad_arguments():
    pool = training.make_pool(**{**KW, "n_rollouts": 64})(
        ENV.params, ENV.params, POL0, jax.random.key(0)
    )
    with pytest.raises(ValueError, match="n_rollouts"):
        training.make_pool(**{**KW, "n_rollouts": 1})
    with pytest.raises(ValueError, match="blocks"):
        training.pool_statistics(pool, 0.9, 0)
    with pytest.raises(ValueError, match="pool"):
        training.pool_statistics((1, 2), 0.9, 1)
    key = jax.random.key(1)
    for kw, name in [
        ({"size": 1}, "size"),
        ({"size": 40}, "size"),
        ({"sigma": -1.0}, "sigma"),
        ({"repeats": 0}, "repeats"),
        ({"draws": 0}, "draws"),
        ({"noise": "cauchy"}, "noise"),
        ({"noise": "rademacher", "repeats": 33}, "repeats"),
    ]:
        args = {"size": 4, "sigma": 1.0, "blocks": 1, **kw}
        with pytest.raises(ValueError, match=name):
            training.group_variance(pool, 0.9, key, **args)


def test_budget_problem_fits_a_close_model_and_is_deterministic():
    a = training.budget_problem(jax.random.key(7))
    b = training.budget_problem(jax.random.key(7))
    np.testing.assert_array_equal(a.model, b.model)
    assert a.model.shape == (2, 4)
    assert 0 < a.model_error < 0.05  # good, not exact
    assert a.imagined["horizon"] == 20 and a.imagined["gamma"] == 0.95
    pool = training.make_pool(**a.imagined, n_rollouts=8)(
        a.model, a.env.params, a.policy0, jax.random.key(0)
    )
    assert pool.rewards.shape == (8, 20)
    exact = training.budget_problem(jax.random.key(7), measurement_noise=0.0)
    assert exact.model_error < 1e-4  # noiseless data: the true linear map


@pytest.mark.parametrize(
    "kw",
    [
        {"n_transitions": 2},
        {"measurement_noise": -1.0},
        {"horizon": 0},
        {"gamma": 1.5},
        {"policy_std": 0.0},
    ],
)
def test_budget_problem_bad_arguments(kw):
    with pytest.raises(ValueError):
        training.budget_problem(jax.random.key(0), **kw)
