"""Worst-case searches (imagination.worst_case): the family keeps its
constants, every search stays at or below its theorem's bound and refutes
wrong bounds, with small budgets (a CPU test)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import worst_case as wc
from imagination.device import enable_x64

SEARCHES = [
    wc.compounding_search,
    wc.return_error_search,
    wc.z_block_search,
    wc.noise_variance_search,
    wc.certificate_search,
]


def test_lipschitz_map_keeps_its_block_constants():
    with enable_x64():
        p = wc.init_lipschitz_map(jax.random.key(1), 3, (3, 2), hidden=8)
        lips = (0.7, 1.9)
        xs = jax.random.normal(jax.random.key(2), (200, 5)) * 3

        def norms(x):
            Js = jax.jacfwd(
                lambda s, a: wc.lipschitz_map(p, (s, a), lips), argnums=(0, 1)
            )(x[:3], x[3:])
            return jnp.stack([jnp.linalg.norm(J, 2) for J in Js])

        n = jax.vmap(norms)(xs)
    assert np.all(np.asarray(n) <= np.asarray(lips) * (1 + 1e-12))
    # and the constants are nearly used: not a trivially small map
    assert np.all(np.asarray(n).max(axis=0) > 0.3 * np.asarray(lips))


def test_ball_map_stays_in_its_ball_and_reaches_it():
    with enable_x64():
        p = wc.init_ball_map(jax.random.key(3), 3, 4)
        xs = jax.random.normal(jax.random.key(4), (100, 4))
        small = jax.vmap(lambda x: wc.ball_map(p, x, 0.25))(xs)
        big = jax.vmap(lambda x: wc.ball_map({**p, "gain": 8.0}, x, 0.25))(xs)
    assert np.all(np.linalg.norm(small, axis=1) <= 0.25 * (1 + 1e-12))
    assert np.allclose(np.linalg.norm(big, axis=1), 0.25, rtol=1e-12)


@pytest.mark.parametrize("search", SEARCHES, ids=lambda f: f.__name__)
def test_search_holds_and_refutes(search):
    s = search(jax.random.key(0), restarts=4, steps=30)
    assert s.ratio <= 1 + 1e-6, (s.ratio, s.where)
    assert s.ratio > 0.5  # the search found a system that comes close
    assert s.bound_names[0] == "theorem"
    assert set(s.wrong_bounds) == set(s.bound_names[1:])
    assert max(s.wrong_bounds.values()) > 1 + 1e-6
    for h in s.history.values():
        assert h.shape == (30,) and np.all(np.diff(h) >= 0)
    assert s.budget["evaluations"] == 4 * 30 * len(s.bound_names)
    assert s.where and s.where_text() and s.budget_text()
    assert all(len(line) <= 79 for line in s.summary().splitlines())


def test_ascend_finds_a_known_maximum():
    # max over x of -(x - 2)^2 / (1 + x^2) ... checked on a simple concave
    # objective with two "bounds": the maximum 1 and a wrong one, 0.5
    with enable_x64():
        res = wc.ascend(
            _toy_values,
            _toy_init,
            jax.random.key(0),
            restarts=3,
            steps=200,
            learning_rate=0.1,
        )
    assert res.best[0] == pytest.approx(1.0, abs=1e-6)
    assert res.best[1] == pytest.approx(2.0, abs=1e-6)
    assert res.history.shape == (2, 200)


def _toy_values(p, ctx):
    r = jnp.exp(-((p - 2.0) ** 2))
    return jnp.stack([r, 2 * r])


def _toy_init(key):
    return jax.random.normal(key, ()), jnp.zeros((), jnp.int32)


@pytest.mark.parametrize(
    "kwargs", [{"restarts": 0}, {"steps": 0}, {"learning_rate": 0.0}]
)
def test_ascend_rejects_bad_budgets(kwargs):
    args = {"restarts": 2, "steps": 2, "learning_rate": 0.1, **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        wc.ascend(_toy_values, _toy_init, jax.random.key(0), **args)
