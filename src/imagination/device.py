"""Which backend JAX runs on, and Monte-Carlo sizes that scale with it.

Every chapter asks this module how many rollouts to draw, so that the same notebook runs in
seconds on a laptop CPU and uses a Colab GPU fully, without edits.
"""

from __future__ import annotations

import os

import jax

from ._compat import enable_x64

__all__ = [
    "backend",
    "on_accelerator",
    "mc_size",
    "describe",
    "device_count",
    "enable_x64",
]


def backend() -> str:
    """Return JAX's default backend name: ``"cpu"``, ``"gpu"`` or ``"tpu"``."""
    return jax.default_backend()


def on_accelerator() -> bool:
    """True when JAX runs on a GPU or TPU.

    The environment variable ``IMAGINATION_FORCE_SCALE`` (``"cpu"`` or ``"gpu"``) overrides the
    detection; tests use it to check both branches on one machine.
    """
    forced = os.environ.get("IMAGINATION_FORCE_SCALE", "").lower()
    if forced in ("cpu", "gpu"):
        return forced == "gpu"
    return backend() in ("gpu", "tpu")


def device_count() -> int:
    """Number of devices JAX can shard a batch over."""
    return jax.device_count()


def mc_size(cpu: int, gpu: int | None = None, *, factor: int = 64) -> int:
    """A Monte-Carlo size for the current backend.

    Parameters
    ----------
    cpu:
        The size used on a CPU (small enough for a chapter to run in seconds on two cores).
    gpu:
        The size used on an accelerator; defaults to ``cpu * factor``.
    factor:
        Scale-up used when ``gpu`` is not given.

    Returns
    -------
    int
        ``cpu`` on a CPU backend, otherwise ``gpu``, rounded up to a multiple of
        :func:`device_count` so a sharded batch splits evenly.
    """
    if int(cpu) != cpu or cpu < 1:
        raise ValueError(f"cpu must be a positive integer, got {cpu!r}")
    if gpu is not None and (int(gpu) != gpu or gpu < 1):
        raise ValueError(f"gpu must be a positive integer, got {gpu!r}")
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor!r}")
    n = (
        int(gpu if gpu is not None else cpu * factor)
        if on_accelerator()
        else int(cpu)
    )
    k = device_count()
    return -(-n // k) * k


def describe() -> str:
    """One line naming the backend and its devices, printed by every chapter's first cell."""
    devs = jax.devices()
    kinds = sorted({d.device_kind for d in devs})
    scale = "accelerator sizes" if on_accelerator() else "CPU sizes"
    return f"JAX {jax.__version__} on {backend()} ({len(devs)} x {', '.join(kinds)}); using {scale}"
