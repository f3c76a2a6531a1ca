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
