"""Tests of imagination.pipeline: the end-to-end pieces, on tiny sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import bounds, envs, models, pipeline

TINY_M = pipeline.ModelConfig(
    hidden=(16,), steps=300, learning_rate=1e-2, batch_size=32, pool=64
)
TINY_P = pipeline.PolicyConfig(
    steps=40, n_rollouts=8, learning_rate=0.5, n_eval=16
)


@pytest.fixture(scope="module")
def pipe():
    return pipeline.make_pipeline(
        pipeline.pendulum_stabilisation(horizon=15), TINY_M, TINY_P, rows=2
    )


def test_task_validation():
    with pytest.raises(ValueError, match="gamma"):
        pipeline.pendulum_stabilisation(gamma=1.0)
    with pytest.raises(ValueError, match="data_angle"):
        pipeline.pendulum_stabilisation(start_angle=0.5, data_angle=0.4)
    with pytest.raises(ValueError, match="horizon"):
        pipeline.pendulum_stabilisation(horizon=0)
    task = pipeline.pendulum_stabilisation()
    hash(task)  # static-argument friendly
    with pytest.raises(ValueError, match="n_rollouts"):
        pipeline.make_pipeline(
            task, policy_config=pipeline.PolicyConfig(n_rollouts=1)
        )
    with pytest.raises(ValueError, match="rows"):
        pipeline.make_pipeline(task, rows=0)
    with pytest.raises(ValueError, match="task"):
        pipeline.make_pipeline("pendulum")


def test_learned_models_clip_like_the_env():
    """Torques beyond the limit act like the limit, in the learned models and in the true world."""
    layers = models.mlp_init(jax.random.key(0), (3, 8, 2))
    s = jnp.array([0.1, -0.2])
    big, lim = jnp.array([7.0]), jnp.array([pipeline.TORQUE_LIMIT])
    np.testing.assert_allclose(
        pipeline.learned_dynamics(layers, s, big),
        pipeline.learned_dynamics(layers, s, lim),
    )
    env = envs.pendulum()
    np.testing.assert_allclose(
        env.dynamics(env.params, s, big), env.dynamics(env.params, s, lim)
    )


def test_models_improve_with_data_and_batching_is_consistent(pipe):
    keys = jax.random.split(jax.random.key(1), 4)
    n = np.array([8, 8, 64, 64])
    dyn, rew = pipe.fit_models(keys, n, n)
    eps_d, eps_r = (np.asarray(e) for e in pipe.model_errors(keys, dyn, rew))
    assert eps_d[2:].mean() < eps_d[:2].mean()
    assert eps_r[2:].mean() < eps_r[:2].mean()
    # chunking: three runs (a padded chunk) give the same as the first three of four
    dyn3, _ = pipe.fit_models(keys[:3], n[:3], n[:3])
    np.testing.assert_allclose(dyn3[0][0], dyn[0][0][:3], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="leading axis"):
        pipe.fit_models(keys, n[:3], n)


def test_evaluate_orders_gains_and_constants(pipe):
    """A stabilising gain beats K = 0 in the true world; closed-loop constants <= products."""
    keys = jax.random.split(jax.random.key(2), 2)
    dyn, rew = pipe.fit_models(keys, np.array([64, 64]), np.array([64, 64]))
    K = jnp.array([[[-8.0, -3.0]], [[0.0, 0.0]]])
    ev = pipe.evaluate(keys, K, dyn, rew)
    assert ev.true_return.shape == (2, TINY_P.n_eval)
    # stabilising gain beats the zero gain in the true world
    assert ev.true_return[0].mean() > ev.true_return[1].mean()
    # the separate constants dominate the closed-loop ones (exercise 1 of the chapter)
    assert np.all(
        np.asarray(ev.lip_closed_loop)
        <= np.asarray(ev.lip_dynamics)
        * (1 + np.asarray(ev.lip_policy))
        * (1 + 1e-5)
    )
    assert np.all(
        np.asarray(ev.lip_reward_closed_loop)
        <= np.asarray(ev.lip_reward)
        * (1 + np.asarray(ev.lip_policy))
        * (1 + 1e-5)
    )


def test_end_to_end_certificate_holds(pipe):
    """The theorem's certificate J >= J_hat - B holds run by run with the measured constants."""
    keys = jax.random.split(jax.random.key(3), 2)
    res = pipe.end_to_end(keys, [64, 48], [64, 32])
    for ev in (res.reinforce, res.reparam):
        err = np.abs(
            np.asarray(ev.imagined_return) - np.asarray(ev.true_return)
        ).max(axis=1)
        for i in range(2):
            B = bounds.return_error_bound(
                float(ev.eps_dynamics[i]),
                float(ev.eps_reward[i]),
                float(ev.lip_closed_loop[i]),
                float(ev.lip_reward_closed_loop[i]),
                0.0,
                pipe.task.gamma,
                pipe.task.horizon,
            )
            assert err[i] <= B
    # the pathwise gradient improves the imagined return from K = 0
    curve = np.asarray(res.reparam_curve)
    assert np.all(curve[:, -5:].mean(axis=1) > curve[:, :5].mean(axis=1))
    assert res.reinforce_gain.shape == (2, 1, 2)


def test_state_error_starts_at_zero(pipe):
    keys = jax.random.split(jax.random.key(4), 2)
    dyn, rew = pipe.fit_models(keys, np.array([32, 32]), np.array([32, 32]))
    ev = pipe.evaluate(keys, jnp.zeros((2, 1, 2)), dyn, rew)
    delta = np.asarray(ev.state_error)
    assert delta.shape == (2, pipe.task.horizon + 1)
    assert np.all(delta[:, 0] == 0) and np.all(delta[:, 1:] >= 0)
    with pytest.raises(ValueError, match="segment_points"):
        pipeline.make_pipeline(pipe.task, segment_points=0)


def test_tight_system_attains_the_bound():
    """The aligned linear system's return gap is the closed-loop bound."""
    rng = np.random.default_rng(0)
    e_d, e_r = rng.uniform(0.01, 0.2, (2, 5))
    L, l_ = rng.uniform(0.5, 1.3, (2, 5))
    L[0] = 1.0  # the t * eps_d branch
    gap = pipeline.tight_system_gap(e_d, e_r, L, l_, 0.9, 12)
    ref = [
        bounds.return_error_bound(a, b, c, d, 0.0, 0.9, 12)
        for a, b, c, d in zip(e_d, e_r, L, l_)
    ]
    np.testing.assert_allclose(gap, ref, rtol=1e-5)
    # a plain NumPy recursion, independent of the library bound
    delta, total = 0.0, 0.0
    for t in range(12):
        total += 0.9**t * (e_r[1] + l_[1] * delta)
        delta = L[1] * delta + e_d[1]
    np.testing.assert_allclose(gap[1], total, rtol=1e-5)
    with pytest.raises(ValueError, match="eps_reward"):
        pipeline.tight_system_gap([0.1], [-1.0], [1.0], [1.0], 0.9, 3)
    with pytest.raises(ValueError, match="horizon"):
        pipeline.tight_system_gap([0.1], [0.1], [1.0], [1.0], 0.9, 0)


def test_aligned_system_with_a_policy_attains_the_separate_bound():
    """With L_pi > 0 the engine's gap is chapter 3's bound, (1 + L_pi) included."""
    rng = np.random.default_rng(1)
    e_d, e_r, lf, lr, lp = rng.uniform(0.05, 0.6, (5, 4))
    gap = pipeline.aligned_return_gap(
        e_d, e_r, lf, lr, lp, 0.9, 10, starts=[-0.3, 0.0, 0.2]
    )
    assert gap.shape == (4, 3)
    ref = np.array(
        [
            bounds.return_error_bound(*c, 0.9, 10)
            for c in zip(e_d, e_r, lf, lr, lp)
        ]
    )
    np.testing.assert_allclose(gap, ref[:, None] * np.ones(3), rtol=1e-5)
    dropped = [
        bounds.return_error_bound(a, b, c, d, 0.0, 0.9, 10)
        for a, b, c, d in zip(e_d, e_r, lf, lr)
    ]
    assert np.all(gap[:, 0] > 1.01 * np.array(dropped))
    with pytest.raises(ValueError, match="lip_policy"):
        pipeline.aligned_return_gap(0.1, 0.1, 1.0, 1.0, -1.0, 0.9, 3)
    with pytest.raises(ValueError, match="starts"):
        pipeline.aligned_return_gap(0.1, 0.1, 1.0, 1.0, 1.0, 0.9, 3, [])


def test_certificates_and_plan_validation(pipe):
    keys = jax.random.split(jax.random.key(5), 2)
    dyn, rew = pipe.fit_models(keys, np.array([32, 32]), np.array([32, 32]))
    ev = pipe.evaluate(keys, jnp.zeros((2, 1, 2)), dyn, rew)
    cert = pipeline.certificates(ev, pipe.task)
    sep = pipeline.certificates(ev, pipe.task, separate=True)
    assert cert.shape == sep.shape == (2,)
    first = bounds.return_error_bound(
        float(ev.eps_dynamics[0]),
        float(ev.eps_reward[0]),
        float(ev.lip_closed_loop[0]),
        float(ev.lip_reward_closed_loop[0]),
        0.0,
        pipe.task.gamma,
        pipe.task.horizon,
    )
    assert cert[0] == first
    with pytest.raises(ValueError, match="evaluation"):
        pipeline.certificates((1, 2), pipe.task)
    for bad in ([16], [32, 16], [16, 128]):
        with pytest.raises(ValueError, match="sizes"):
            pipeline.plan_budget(pipe, 64, bad, 2, jax.random.key(0))
    with pytest.raises(ValueError, match="budget"):
        pipeline.plan_budget(pipe, 65, [16, 32], 2, jax.random.key(0))
    with pytest.raises(ValueError, match="seeds"):
        pipeline.plan_budget(pipe, 64, [16, 32], 0, jax.random.key(0))


def test_label_noise_probe_matches_g_over_n_minus_1():
    """E||g_noisy - g_clean||^2 = sigma^2 G / (N - 1) with the LOO baseline."""
    from imagination import policies, training

    task = pipeline.pendulum_stabilisation(horizon=6)
    dyn = models.mlp_init(jax.random.key(0), (3, 8, 2))
    rew = models.mlp_init(jax.random.key(1), (3, 8, 1))
    pol = (jnp.array([[-1.0, -0.5]]), jnp.log(jnp.full((1,), 0.5)))
    n = 4
    probe = pipeline.make_label_noise_probe(
        task, n_rollouts=n, n_batches=4000, n_draws=4
    )
    sq = np.asarray(probe(dyn, rew, pol, jax.random.key(2), 1.0), np.float64)
    assert sq.shape == (4000, 4)
    per = sq.mean(axis=1)
    start = lambda k, m: pipeline.sample_box(  # noqa: E731
        task.start_low, task.start_high, k, m
    )
    pilot = training.make_pilot(
        pipeline.learned_dynamics,
        pipeline.learned_reward,
        policies.gaussian_linear,
        policies.gaussian_linear_log_prob,
        start,
        horizon=task.horizon,
        gamma=task.gamma,
        n_rollouts=20000,
        select=lambda p: p[0],
    )(dyn, rew, pol, jax.random.key(3))
    pred = float(pilot.g) / (n - 1)
    se = np.hypot(per.std(ddof=1) / np.sqrt(per.size), pilot.g_se / (n - 1))
    assert abs(per.mean() - pred) < 5 * se
    assert abs(per.mean() - float(pilot.g) / n) > 5 * se  # the 1/N form
    # the noise enters squared: sigma = 2 gives four times sigma = 1
    sq2 = np.asarray(probe(dyn, rew, pol, jax.random.key(2), 2.0))
    np.testing.assert_allclose(sq2, 4 * sq, rtol=1e-4)
    with pytest.raises(ValueError, match="n_rollouts"):
        pipeline.make_label_noise_probe(task, n_rollouts=1, n_batches=2)


def test_compare_paired_wording_follows_the_interval():
    a = np.array([1.0, 1.2, 0.9, 1.1])
    win = pipeline.compare_paired(a, a - 1, ("new", "old"))
    assert win.verdict.startswith("new did better than old by 1.000")
    lose = pipeline.compare_paired(a - 1, a, ("new", "old"))
    assert lose.verdict.startswith("old did better than new")
    tie = pipeline.compare_paired(a, a[::-1], ("new", "old"))
    assert tie.verdict.startswith("the seeds cannot tell new from old")
    assert tie.mean - tie.half_width < 0 < tie.mean + tie.half_width
    with pytest.raises(ValueError, match="at least 2"):
        pipeline.compare_paired([1.0], [0.0])
    with pytest.raises(ValueError, match="level"):
        pipeline.compare_paired(a, a, level=1.5)


def test_a_comparison_prints_its_verdict_within_the_column():
    c = pipeline.compare_paired(
        [1.0, 1.1, 0.9, 1.0],
        [1.0, 1.2, 0.8, 1.05],
        ("cheap labels", "precise labels"),
    )
    assert len(c.verdict) > 79
    lines = str(c).splitlines()
    assert len(lines) > 1 and all(len(ln) <= 79 for ln in lines)
    assert " ".join(lines) == c.verdict
