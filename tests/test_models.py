"""Tests of imagination.models: spectral norms, Lipschitz brackets, training, vmaps, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import data, envs, models


def plain_mlp(layers, s, a):
    """An MLP of the pair ``[s; a]`` with the engine signature (no residual)."""
    return models.mlp_apply(layers, jnp.concatenate([s, a]))


# ----------------------------------------------------------------------------- spectral norms
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 2), (16, 16), (32, 9)])
def test_power_iteration_matches_svd(shape):
    W = jax.random.normal(jax.random.key(sum(shape)), shape)
    exact = np.linalg.svd(np.asarray(W, np.float64), compute_uv=False)[0]
    est = float(models.power_iteration(W, iters=200))
    assert est == pytest.approx(exact, rel=1e-4)
    # ||W v|| for a unit v never exceeds the spectral norm, even after few iterations
    assert float(models.power_iteration(W, iters=1)) <= exact * (1 + 1e-5)


def test_power_iteration_start_not_orthogonal_to_top_vector():
    # all-ones start would give 0 here: the top right singular vector is (1, -1)/sqrt(2)
    W = jnp.array([[1.0, -1.0]])
    assert float(models.power_iteration(W)) == pytest.approx(
        math.sqrt(2), rel=1e-5
    )


def test_spectral_normalize_caps_every_layer():
    layers = models.mlp_init(jax.random.key(0), (4, 32, 32, 2))
    layers = [
        (3.0 * W / jnp.linalg.norm(W, 2), b) for W, b in layers
    ]  # every norm 3 > cap
    capped = models.spectral_normalize(layers, 0.7)
    for (W, b), (W0, b0) in zip(capped, layers):
        norm = np.linalg.norm(np.asarray(W), 2)
        assert norm == pytest.approx(0.7, rel=1e-4)
        np.testing.assert_array_equal(b, b0)
        # a rescaling: same direction as the original
        np.testing.assert_allclose(
            W / norm, W0 / np.linalg.norm(np.asarray(W0), 2), atol=1e-5
        )
    assert float(models.lipschitz_upper(capped, iters=200)) <= 0.7**3 * (
        1 + 1e-4
    )


def test_spectral_normalize_leaves_small_layers_and_accepts_traced_inf_cap():
    layers = models.mlp_init(jax.random.key(1), (3, 8, 1))
    big = float(max(np.linalg.norm(np.asarray(W), 2) for W, _ in layers)) * 2
    same = models.spectral_normalize(layers, big)
    for (W, _), (W0, _) in zip(same, layers):
        np.testing.assert_allclose(W, W0, rtol=1e-6)
    caps = jnp.array([jnp.inf, 0.1])
    out = jax.vmap(models.spectral_normalize, in_axes=(None, 0))(layers, caps)
    np.testing.assert_allclose(out[0][0][0], layers[0][0], rtol=1e-6)
    assert np.linalg.norm(np.asarray(out[0][0][1]), 2) == pytest.approx(
        0.1, rel=1e-4
    )


# ----------------------------------------------------------------------------- Lipschitz
@pytest.mark.parametrize(
    "scale_s, scale_a", [(3.0, 0.5), (0.5, 3.0), (1.0, 1.0)]
)
def test_linear_map_both_estimates_equal_exact_constant(scale_s, scale_a):
    """For f(s, a) = Ws s + Wa a the constant in ||s|| + ||a|| is max(||Ws||, ||Wa||)."""
    ds, da, k = 3, 2, 4
    k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
    Ws = scale_s * jax.random.normal(k1, (k, ds))
    Wa = scale_a * jax.random.normal(k2, (k, da))
    layers = [(jnp.concatenate([Ws, Wa], axis=1), jnp.ones((k,)))]
    exact = max(
        np.linalg.norm(np.asarray(Ws, np.float64), 2),
        np.linalg.norm(np.asarray(Wa, np.float64), 2),
    )
    S = jax.random.normal(k3, (10, ds))
    A = jnp.ones((10, da))
    lower = float(models.lipschitz_lower(plain_mlp, layers, S, A))
    upper = float(models.lipschitz_upper(layers, iters=300, split=ds))
    assert lower == pytest.approx(exact, rel=1e-4)
    assert upper == pytest.approx(exact, rel=1e-4)
    # without the split the bound is the (valid, looser) Euclidean one, ||[Ws Wa]||
    loose = float(models.lipschitz_upper(layers, iters=300))
    full = np.linalg.norm(
        np.concatenate([np.asarray(Ws), np.asarray(Wa)], 1), 2
    )
    assert loose == pytest.approx(full, rel=1e-4)
    assert loose >= exact * (1 - 1e-5)


def test_one_hidden_unit_known_constant():
    """f(x) = w2 tanh(w1 x) has constant |w1 w2|, attained at x = 0: both estimates hit it."""
    w1, w2 = 1.7, -2.3
    layers = [
        (jnp.array([[w1, 0.0]]), jnp.zeros(1)),
        (jnp.array([[w2]]), jnp.zeros(1)),
    ]
    # input [s; a] with a weight 0 on a, so the constant is |w1 w2| in s
    S = jnp.linspace(-2.0, 2.0, 401)[:, None]  # contains 0
    A = jnp.zeros((401, 1))
    lower = float(models.lipschitz_lower(plain_mlp, layers, S, A))
    upper = float(models.lipschitz_upper(layers, iters=50, split=1))
    assert lower == pytest.approx(abs(w1 * w2), rel=1e-5)
    assert upper == pytest.approx(abs(w1 * w2), rel=1e-5)
    # a sample that misses the steepest point gives a strictly smaller lower estimate
    far = float(
        models.lipschitz_lower(
            plain_mlp, layers, S[S[:, 0] > 0.5], A[S[:, 0] > 0.5]
        )
    )
    assert far < 0.9 * abs(w1 * w2)


def test_bracket_on_random_mlp_with_difference_quotients():
    ds, da = 2, 1
    layers = models.mlp_init(jax.random.key(3), (ds + da, 16, 16, 2))
    layers = [(3.0 * W, b + 0.1) for W, b in layers]
    k1, k2, k3, k4 = jax.random.split(jax.random.key(4), 4)
    S1, S2 = (
        jax.random.normal(k1, (2000, ds)),
        jax.random.normal(k2, (2000, ds)),
    )
    A1, A2 = (
        jax.random.normal(k3, (2000, da)),
        jax.random.normal(k4, (2000, da)),
    )
    f1 = jax.vmap(plain_mlp, in_axes=(None, 0, 0))(layers, S1, A1)
    f2 = jax.vmap(plain_mlp, in_axes=(None, 0, 0))(layers, S2, A2)
    dist = jnp.linalg.norm(S1 - S2, axis=1) + jnp.linalg.norm(A1 - A2, axis=1)
    quotient = float(jnp.max(jnp.linalg.norm(f1 - f2, axis=1) / dist))
    lower = float(models.lipschitz_lower(plain_mlp, layers, S1, A1))
    upper = float(models.lipschitz_upper(layers, iters=200, split=ds))
    assert quotient <= upper * (1 + 1e-4)
    assert lower <= upper * (1 + 1e-4)
    assert quotient > 0 and lower > 0


def test_local_lipschitz_uses_max_of_blocks():
    Ws = jnp.array([[2.0, 0.0], [0.0, 1.0]])
    Wa = jnp.array([[0.0], [3.0]])
    layers = [(jnp.concatenate([Ws, Wa], axis=1), jnp.zeros(2))]
    val = float(
        models.local_lipschitz(plain_mlp, layers, jnp.zeros(2), jnp.zeros(1))
    )
    assert val == pytest.approx(3.0, rel=1e-6)


def test_sup_error_matches_numpy():
    env = envs.linear_system(
        jnp.array([[0.9, 0.1], [0.0, 0.8]]), jnp.array([[0.0], [1.0]])
    )
    tr = data.sample_transitions(env, jax.random.key(5), 64)
    W = jnp.zeros((2, 4)).at[0, 0].set(1.0)
    err = float(
        models.sup_error(
            models.linear_model,
            W,
            env.dynamics,
            env.params,
            tr.states,
            tr.actions,
        )
    )
    pred = np.concatenate(
        [np.asarray(tr.states[:, :1]), np.zeros((64, 1))], axis=1
    )
    expected = np.max(
        np.linalg.norm(pred - np.asarray(tr.next_states), axis=1)
    )
    assert err == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------- training
A_TRUE = jnp.array([[1.0, 0.1], [-0.2, 0.95]])
B_TRUE = jnp.array([[0.0], [0.1]])


def _linear_data(n=512, seed=6):
    env = envs.linear_system(A_TRUE, B_TRUE)
    return env, data.sample_transitions(
        env, jax.random.key(seed), n, action_scale=1.0
    )


def test_fit_linear_model_recovers_A_B():
    env, tr = _linear_data()
    W = models.fit_linear_model(tr.states, tr.actions, tr.next_states)
    np.testing.assert_allclose(W[:, :2], A_TRUE, atol=1e-4)
    np.testing.assert_allclose(W[:, 2:3], B_TRUE, atol=1e-4)
    np.testing.assert_allclose(W[:, 3], 0.0, atol=1e-4)
    # a scalar linear target gives a one-row W; linear_reward reads it as a scalar, linear_model
    # as a 1-D state
    y = tr.states @ jnp.array([1.0, -2.0]) + 0.5 * tr.actions[:, 0] + 3.0
    w = models.fit_linear_model(tr.states, tr.actions, y)
    np.testing.assert_allclose(w, [[1.0, -2.0, 0.5, 3.0]], atol=1e-4)
    assert models.linear_reward(w, tr.states[0], tr.actions[0]).shape == ()
    assert models.linear_model(w, tr.states[0], tr.actions[0]).shape == (1,)


def test_train_dynamics_reduces_loss_and_fits_linear_system():
    env, tr = _linear_data()
    layers, losses = models.train_dynamics(
        jax.random.key(7),
        tr.states,
        tr.actions,
        tr.next_states,
        hidden=(32,),
        steps=800,
        learning_rate=1e-2,
    )
    assert float(jnp.mean(losses[-50:])) < 0.05 * float(jnp.mean(losses[:10]))
    _, test = _linear_data(256, seed=8)
    err = float(
        models.sup_error(
            models.dynamics_model,
            layers,
            env.dynamics,
            env.params,
            test.states,
            test.actions,
        )
    )
    scale = float(
        jnp.max(jnp.linalg.norm(test.next_states - test.states, axis=1))
    )
    assert err < 0.1 * scale
    # the residual model's constant is bracketed: lower <= 1 + upper(mlp)
    lower = float(
        models.lipschitz_lower(
            models.dynamics_model, layers, test.states, test.actions
        )
    )
    upper = 1.0 + float(models.lipschitz_upper(layers, split=2))
    true_const = max(
        np.linalg.norm(np.asarray(A_TRUE), 2),
        np.linalg.norm(np.asarray(B_TRUE), 2),
    )
    assert lower <= upper
    assert lower == pytest.approx(true_const, rel=0.1)


def test_train_reward_fits_quadratic_reward():
    env, tr = _linear_data()
    layers, losses = models.train_reward(
        jax.random.key(9),
        tr.states,
        tr.actions,
        tr.rewards,
        hidden=(32, 32),
        steps=1000,
        learning_rate=1e-2,
    )
    assert float(jnp.mean(losses[-50:])) < 0.05 * float(jnp.var(tr.rewards))
    assert models.reward_model(layers, tr.states[0], tr.actions[0]).shape == ()


def test_vmap_over_seeds_gives_distinct_valid_models():
    env, tr = _linear_data()
    keys = jax.random.split(jax.random.key(10), 3)
    train = jax.jit(
        jax.vmap(
            lambda k: models.train_dynamics(
                k,
                tr.states,
                tr.actions,
                tr.next_states,
                hidden=(32,),
                steps=600,
                learning_rate=1e-2,
            )
        )
    )
    layers, losses = train(keys)
    assert losses.shape == (3, 600)
    W0 = layers[0][0]
    assert W0.shape[0] == 3
    assert not np.allclose(W0[0], W0[1]) and not np.allclose(W0[1], W0[2])
    for i in range(3):
        one = jax.tree_util.tree_map(lambda x: x[i], layers)
        err = float(
            models.sup_error(
                models.dynamics_model,
                one,
                env.dynamics,
                env.params,
                tr.states,
                tr.actions,
            )
        )
        assert err < 0.1
    # the same seed trained alone gives the same model (vmap changes nothing)
    alone, _ = models.train_dynamics(
        keys[1],
        tr.states,
        tr.actions,
        tr.next_states,
        hidden=(32,),
        steps=600,
        learning_rate=1e-2,
    )
    np.testing.assert_allclose(alone[0][0], W0[1], atol=1e-4)


def test_vmap_over_dataset_sizes_matches_truncated_data():
    env, tr = _linear_data(512)
    sizes = jnp.array([32, 128, 512])
    key = jax.random.key(11)
    train = jax.jit(
        jax.vmap(
            lambda n: models.train_reward(
                key,
                tr.states,
                tr.actions,
                tr.rewards,
                hidden=(16,),
                steps=300,
                n_valid=n,
                batch_size=64,
            )
        )
    )
    layers, _ = train(sizes)
    for i, n in enumerate([32, 128, 512]):
        alone, _ = models.train_reward(
            key,
            tr.states[:n],
            tr.actions[:n],
            tr.rewards[:n],
            hidden=(16,),
            steps=300,
            batch_size=64,
        )
        np.testing.assert_allclose(layers[0][0][i], alone[0][0], atol=1e-4)


# ----------------------------------------------------------------------------- bad input
def test_value_errors():
    key = jax.random.key(0)
    layers = models.mlp_init(key, (3, 4, 2))
    S, A = jnp.zeros((5, 2)), jnp.zeros((5, 1))
    with pytest.raises(ValueError, match="sizes"):
        models.mlp_init(key, (3,))
    with pytest.raises(ValueError, match="sizes"):
        models.mlp_init(key, (3, 0, 1))
    with pytest.raises(ValueError, match="cap"):
        models.spectral_normalize(layers, 0.0)
    with pytest.raises(ValueError, match="W"):
        models.power_iteration(jnp.ones(3))
    with pytest.raises(ValueError, match="iters"):
        models.power_iteration(jnp.ones((3, 3)), iters=0)
    with pytest.raises(ValueError, match="layers"):
        models.lipschitz_upper([])
    with pytest.raises(ValueError, match="split"):
        models.lipschitz_upper(layers, split=3)
    with pytest.raises(ValueError, match="ridge"):
        models.fit_linear_model(S, A, S, ridge=-1.0)
    with pytest.raises(ValueError, match="rows"):
        models.fit_linear_model(S, A, S[:3])
    with pytest.raises(ValueError, match="rows"):
        models.lipschitz_lower(plain_mlp, layers, S, A[:2])
    with pytest.raises(ValueError, match="rows"):
        models.sup_error(plain_mlp, layers, plain_mlp, layers, S, A[:2])
    with pytest.raises(ValueError, match="rows"):
        models.train_dynamics(key, S, A[:2], S)
    loss = lambda p, b: jnp.sum(p**2)  # noqa: E731
    with pytest.raises(ValueError, match="steps"):
        models.fit(loss, jnp.ones(2), jnp.ones((4, 1)), key, steps=0)
    with pytest.raises(ValueError, match="learning_rate"):
        models.fit(
            loss, jnp.ones(2), jnp.ones((4, 1)), key, learning_rate=-1.0
        )
    with pytest.raises(ValueError, match="batch_size"):
        models.fit(loss, jnp.ones(2), jnp.ones((4, 1)), key, batch_size=0)
    with pytest.raises(ValueError, match="n_valid"):
        models.fit(
            loss,
            jnp.ones(2),
            jnp.ones((4, 1)),
            key,
            batch_size=None,
            n_valid=2,
        )
    with pytest.raises(ValueError, match="n_valid"):
        models.fit(loss, jnp.ones(2), jnp.ones((4, 1)), key, n_valid=0)
