"""Tests of imagination.learning_curves: nested-subset training, certified
closed-loop constants, and the tight-system allocation experiment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import attribution, bounds, models
from imagination import learning_curves as lc
from imagination.allocation import PowerLaw, optimal_allocation
from imagination.rollout import rollout


# ----------------------------------------------------------------------------- nested subsets
def test_train_on_subsets_uses_only_the_first_n_rows():
    key = jax.random.key(0)
    s = jax.random.normal(key, (64, 2))
    a = jax.random.normal(jax.random.key(1), (64, 1))
    y = jnp.sum(s, axis=1) + a[:, 0]
    # rows beyond n = 8 must never be seen by that model
    y_poisoned = y.at[8:].set(100.0)
    layers = lc.train_on_subsets(
        models.reward_model,
        key,
        s,
        a,
        y_poisoned,
        jnp.array([8, 64]),
        hidden=(8,),
        steps=400,
        batch_size=8,
        learning_rate=1e-2,
    )
    assert layers[0][0].shape == (2, 8, 3)
    small = jax.tree_util.tree_map(lambda x: x[0], layers)
    big = jax.tree_util.tree_map(lambda x: x[1], layers)
    apply = jax.vmap(models.reward_model, in_axes=(None, 0, 0))
    assert float(jnp.max(jnp.abs(apply(small, s[:8], a[:8]) - y[:8]))) < 1.0
    # the full-pool model did see the poisoned labels
    assert float(jnp.mean(apply(big, s[:8], a[:8]))) > 10.0
    with pytest.raises(ValueError, match="pad"):
        lc.train_on_subsets(
            models.reward_model, key, s, a, y, jnp.array([8]), pad=65
        )


@pytest.fixture(scope="module")
def tiny():
    setup = attribution.pendulum_setup()
    dyn, rew = lc.pendulum_learning_curves(
        setup, jax.random.key(0), [4, 8], 2, hidden=(4,), steps=3
    )
    return setup, dyn, rew


def _pick(tree, s, i):
    return jax.tree_util.tree_map(lambda x: x[s, i], tree)


def test_pendulum_learning_curves_shapes_and_bad_input(tiny):
    setup, dyn, rew = tiny
    assert dyn[0][0].shape == (2, 2, 4, 3)
    assert rew[-1][0].shape == (2, 2, 1, 4)
    with pytest.raises(ValueError, match="n_seeds"):
        lc.pendulum_learning_curves(setup, jax.random.key(0), [4], 0)
    with pytest.raises(ValueError, match="sizes"):
        lc.pendulum_learning_curves(setup, jax.random.key(0), [0, 4], 1)


def test_per_model_measurements_match_direct_calls(tiny):
    setup, dyn, rew = tiny
    env = setup.env
    box = attribution.sample_box(
        jax.random.key(5), 64, setup.data_low, setup.data_high
    )
    acts = jnp.zeros((64, 1))
    sd, sr = lc.sup_errors(setup, dyn, rew, box, acts)
    assert sd.shape == sr.shape == (2, 2)
    want = models.sup_error(
        models.reward_model,
        _pick(rew, 1, 0),
        env.reward,
        env.params,
        box,
        acts,
    )
    assert sr[1, 0] == pytest.approx(float(want), rel=1e-6)
    lip = lc.closed_loop_constants(setup, dyn, rew, box)
    for m in ("dyn", "rew"):
        assert lip[f"{m}_lower"].shape == (2, 2)
        assert np.all(lip[f"{m}_upper"] >= lip[f"{m}_lower"] * (1 - 1e-6))
    starts = attribution.sample_box(
        jax.random.key(6), 8, setup.start_low, setup.start_high
    )
    mean, worst = lc.imagined_return_gaps(
        setup, dyn, rew, [0, 1], [1, 0], starts, horizon=5, gamma=0.9
    )
    assert mean.shape == worst.shape == (2, 2)
    args = (setup.policy_params, starts, jax.random.key(4))
    true = rollout(
        env.dynamics,
        env.reward,
        attribution.clipped_linear,
        (env.params, env.params, setup.policy_params),
        starts,
        jax.random.key(4),
        horizon=5,
        gamma=0.9,
    )
    imag = rollout(
        models.dynamics_model,
        models.reward_model,
        attribution.clipped_linear,
        (_pick(dyn, 1, 1), _pick(rew, 1, 0), args[0]),
        starts,
        jax.random.key(4),
        horizon=5,
        gamma=0.9,
    )
    gap = np.abs(np.asarray(imag.returns - true.returns))
    assert mean[1, 1] == pytest.approx(gap.mean(), rel=1e-5)
    assert worst[1, 1] == pytest.approx(gap.max(), rel=1e-5)
    with pytest.raises(ValueError, match="i_dynamics"):
        lc.imagined_return_gaps(
            setup, dyn, rew, [0], [0, 1], starts, horizon=5, gamma=0.9
        )


# ----------------------------------------------------------------------------- constants
def test_closed_loop_upper_is_exact_for_one_affine_layer():
    # m(s, a) = W [s; a] + b with a = clip(K s): slopes W_s and W_s + W_a K
    W = jnp.array([[0.5, -1.0, 2.0], [0.3, 0.2, -0.7]])
    K = jnp.array([[-3.0, -1.0]])
    layers = [(W, jnp.zeros(2))]
    up = lc.closed_loop_lipschitz_upper(layers, K, residual=False)
    Wn = np.asarray(W, np.float64)
    want = max(
        np.linalg.norm(Wn[:, :2], 2),
        np.linalg.norm(Wn[:, :2] + Wn[:, 2:] @ np.asarray(K), 2),
    )
    assert up == pytest.approx(want, rel=1e-12)
    assert lc.closed_loop_lipschitz_upper(
        layers, K, residual=True
    ) == pytest.approx(want + 1, rel=1e-12)


def test_closed_loop_upper_brackets_the_lower_estimate():
    setup = attribution.pendulum_setup()
    layers = models.mlp_init(jax.random.key(3), (3, 16, 16, 1))
    box = attribution.sample_box(
        jax.random.key(1), 4096, setup.data_low, setup.data_high
    )
    low = float(
        attribution.closed_loop_lipschitz_lower(
            lambda p, s, a: models.reward_model(p, s, a)[None],
            layers,
            attribution.clipped_linear,
            setup.policy_params,
            box,
        )
    )
    up = lc.closed_loop_lipschitz_upper(
        layers, setup.policy_params[0], residual=False
    )
    crude = float(models.lipschitz_upper(layers, split=2)) * (
        1 + setup.lip_policy
    )
    assert low <= up <= crude * (1 + 1e-6)


def test_closed_loop_upper_bad_input():
    layers = [(jnp.ones((2, 3)), jnp.zeros(2))]
    with pytest.raises(ValueError, match="gain"):
        lc.closed_loop_lipschitz_upper(layers, jnp.ones(2), residual=False)
    with pytest.raises(ValueError, match="inputs"):
        lc.closed_loop_lipschitz_upper(
            layers, jnp.ones((1, 3)), residual=False
        )


# ----------------------------------------------------------------------------- tight system
def test_tight_gaps_equal_the_bound():
    p, k, l, g, H = 0.9, 0.2, 0.5, 0.9, 60  # noqa: E741
    n_d, n_r = np.array([10.0, 300.0]), np.array([50.0, 7.0])
    laws = (2.0, 0.4, 0.5, 0.8)
    gaps = lc.tight_budget_gaps(
        n_d, n_r, laws, p=p, k=k, l=l, gamma=g, horizon=H
    )
    assert gaps.shape == (2, 3)
    for i in range(2):
        want = bounds.return_error_bound(
            2.0 * n_d[i] ** -0.4, 0.5 * n_r[i] ** -0.8, p, l, k, g, horizon=H
        )
        np.testing.assert_allclose(gaps[i], want, rtol=1e-12)


def test_tight_argmin_matches_optimal_allocation():
    p, k, l, g, H = 0.8, 0.3, 0.7, 0.95, 80  # noqa: E741
    w_d = bounds.return_error_bound(1.0, 0.0, p, l, k, g, horizon=H)
    w_r = bounds.return_error_bound(0.0, 1.0, p, l, k, g, horizon=H)
    C, laws = np.array([1e3, 1e7]), (1.5, 0.6, 0.4, 0.3)
    n_d, n_r, gap = lc.tight_argmin(
        C, laws, cost_reward=3.0, p=p, k=k, l=l, gamma=g, horizon=H
    )
    for i in range(2):
        best = optimal_allocation(
            C[i],
            PowerLaw(1.5, 0.6),
            PowerLaw(0.4, 0.3),
            cost_reward=3.0,
            weight_dynamics=w_d,
            weight_reward=w_r,
        )
        assert n_d[i] == pytest.approx(best.n_dynamics, rel=1e-5)
        assert n_r[i] == pytest.approx(best.n_reward, rel=1e-5)
        assert gap[i] == pytest.approx(best.bound, rel=1e-10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p=0.0), "p"),
        (dict(gamma=1.5), "gamma"),
        (dict(horizon=0), "horizon"),
    ],
)
def test_tight_gaps_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lc.tight_budget_gaps(1.0, 1.0, (1.0, 0.5, 1.0, 0.5), **kwargs)
    with pytest.raises(ValueError, match="n_dynamics"):
        lc.tight_budget_gaps(0.0, 1.0, (1.0, 0.5, 1.0, 0.5))
    with pytest.raises(ValueError, match="budget"):
        lc.tight_argmin(-1.0, (1.0, 0.5, 1.0, 0.5))
    with pytest.raises(ValueError, match="grid"):
        lc.tight_argmin(1.0, (1.0, 0.5, 1.0, 0.5), grid=2)
