"""The version shims of ``imagination._compat``: each older branch runs here too."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagination import _compat, device


def test_enable_x64_gives_float64_and_restores():
    before = jnp.asarray(1.0).dtype
    with device.enable_x64():
        assert jnp.asarray(1.0).dtype == jnp.float64
    assert jnp.asarray(1.0).dtype == before


@pytest.mark.parametrize("n, b", [(10, 3), (9, 3), (4, 8), (1, 1)])
def test_chunked_map_equals_vmap(n, b):
    xs = (jnp.arange(n * 2.0).reshape(n, 2), jnp.arange(n))
    f = lambda x: (jnp.sum(x[0] ** 2) + x[1], x[0] * x[1])  # noqa: E731
    want = jax.vmap(f)(xs)
    for got in (_compat._chunked_map(f, xs, b), _compat.batched_map(f, xs, b)):
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(np.asarray(g), np.asarray(w))


def test_one_random_stream_on_every_supported_jax():
    """The numbers of JAX >= 0.5 (partitionable threefry), on an older JAX too."""
    assert jax.config.jax_threefry_partitionable
    a, b = jax.random.split(jax.random.key(3))
    np.testing.assert_allclose(
        np.asarray(jax.random.normal(b, (3,))),
        [-1.9432216, 0.1048161, -0.04758957],
        rtol=1e-6,
    )
