"""The few places where JAX or NumPy changed an API within the supported versions.

The package supports JAX from 0.4.30 and NumPy from 1.26 (``pyproject.toml``; the weekly
``make test-lowest`` job runs the tests and every page with exactly those). Colab keeps its
own JAX, which lags the releases, so where an older version costs a few lines the package
carries them here, in one place, instead of raising its floor:

* :func:`enable_x64`: ``jax.enable_x64`` (newer JAX) or ``jax.experimental.enable_x64``
  (older JAX, removed from newer);
* :func:`batched_map`: ``jax.lax.map(f, xs, batch_size=b)`` (JAX >= 0.4.31) or the same
  chunked ``vmap`` written out;
* random numbers: JAX 0.5 made ``jax_threefry_partitionable`` the default, which changed the
  numbers a key draws. Importing the package turns it on for an older JAX, so that the same
  key gives the same numbers (and the chapters the same results) on every supported JAX.

Each older branch is tested on the newest versions too (``tests/test_compat.py``). NumPy 1.26
has no ``numpy.trapezoid`` (NumPy 2 deprecates ``numpy.trapz``): pages integrate with
``scipy.integrate.trapezoid``, which every supported SciPy has.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable

import jax

__all__ = ["enable_x64", "batched_map"]


def enable_x64(new_val: bool = True) -> contextlib.AbstractContextManager:
    """A context in which JAX computes in float64 (``new_val=True``) or float32.

    ``jax.enable_x64`` where it exists, else ``jax.experimental.enable_x64``.
    """
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(new_val)
    from jax.experimental import enable_x64 as _old

    return _old(new_val)


if not getattr(jax.config, "jax_threefry_partitionable", True):
    jax.config.update("jax_threefry_partitionable", True)


_MAP_HAS_BATCH = "batch_size" in inspect.signature(jax.lax.map).parameters


def _chunked_map(f: Callable, xs: Any, batch_size: int) -> Any:
    """``jax.lax.map(f, xs, batch_size=batch_size)`` for a JAX without ``batch_size``:
    ``vmap`` over chunks of ``batch_size``, ``lax.map`` over the chunks, the remainder in one
    more ``vmap``."""
    leaves = jax.tree_util.tree_leaves(xs)
    n = leaves[0].shape[0]
    b = min(int(batch_size), n)
    full = n - n % b
    tm = jax.tree_util.tree_map
    head = tm(lambda x: x[:full].reshape(full // b, b, *x.shape[1:]), xs)
    out = tm(
        lambda y: y.reshape(full, *y.shape[2:]),
        jax.lax.map(jax.vmap(f), head),
    )
    if full < n:
        tail = jax.vmap(f)(tm(lambda x: x[full:], xs))
        out = tm(lambda y, z: jax.numpy.concatenate([y, z]), out, tail)
    return out


def batched_map(f: Callable, xs: Any, batch_size: int) -> Any:
    """``jax.lax.map`` over the leading axis of ``xs``, ``batch_size`` items at a time
    (``vmap`` within a batch): bounded memory, results as ``jax.vmap(f)(xs)``."""
    if _MAP_HAS_BATCH:
        return jax.lax.map(f, xs, batch_size=int(batch_size))
    return _chunked_map(f, xs, batch_size)
