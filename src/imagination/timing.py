"""Timing jitted functions honestly: compile time apart from run time, results blocked on."""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax

__all__ = ["Timing", "time_call"]


class Timing(NamedTuple):
    """Seconds for the first call (trace + compile + run) and the best of the later calls."""

    first_s: float
    best_s: float

    @property
    def compile_s(self) -> float:
        """Approximate compile time: the first call minus a warm call."""
        return max(self.first_s - self.best_s, 0.0)


def time_call(fn: Callable[..., Any], *args: Any, repeats: int = 5) -> Timing:
    """Time ``fn(*args)``, waiting for JAX's asynchronous results with ``block_until_ready``.

    Parameters
    ----------
    fn:
        Any callable; for a jitted function the first call includes compilation.
    repeats:
        Number of warm calls; the best (smallest) is reported, the usual guard against noise.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return Timing(first, best)
