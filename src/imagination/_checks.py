"""Validation of arguments, shared by the public API.

The leniency rule of the whole package (also in the package docstring and the API page):

* a *number* argument accepts real numbers only: Python ``int`` and ``float``, NumPy real
  scalars (``np.float32``, ``np.int64``, ...) and zero-dimensional NumPy or JAX arrays of a
  real (integer or floating) dtype;
* ``bool`` (``True`` is not ``1.0``), strings (``"1e3"`` is not parsed), complex numbers,
  ``None`` and containers are rejected with :class:`ArgumentTypeError`, a ``TypeError`` that
  is also a ``ValueError`` (so ``except ValueError`` keeps working), naming the parameter;
* a value of the right type but out of range (negative, NaN, infinite where only finite
  values make sense) raises ``ValueError`` naming the parameter.

The command line parses its strings itself before calling the API.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["ArgumentTypeError", "number", "real", "integer", "real_array"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError`` and a ``ValueError``)."""


def real(name: str, value: Any) -> float:
    """``float(value)`` if ``value`` is a real number by the package's rule, else
    :class:`ArgumentTypeError` naming ``name``. NaN and infinities pass (check them
    separately)."""
    ok = False
    if isinstance(value, (bool, np.bool_)):
        ok = False
    elif isinstance(value, numbers.Real):
        ok = True
    else:
        dtype = getattr(value, "dtype", None)
        ndim = getattr(value, "ndim", None)
        ok = (
            dtype is not None
            and ndim == 0
            and getattr(dtype, "kind", "") in "iuf"
            and getattr(dtype, "kind", "") != ""
        )
    if not ok:
        raise ArgumentTypeError(
            f"{name} must be a real number (int or float), got "
            f"{type(value).__name__} {value!r}"
        )
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise ArgumentTypeError(
            f"{name} must be a real number (int or float), got {value!r}"
        ) from None


def number(
    name: str, value: Any, *, positive: bool = False, finite: bool = True
) -> float:
    """``float(value)`` if it is a real number (:func:`real`), non-negative (``positive``:
    > 0), not NaN and, with ``finite``, not infinite; otherwise a ``ValueError`` (or, for a
    wrong type, :class:`ArgumentTypeError`) that names ``name``."""
    kind = ("positive" if positive else "non-negative") + (
        " finite" if finite else ""
    )
    v = real(name, value)
    in_range = v > 0 if positive else v >= 0
    if not in_range or math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{name} must be a {kind} number, got {value!r}")
    return v


def integer(name: str, value: Any, *, minimum: int = 0) -> int:
    """``int(value)`` if ``value`` is an integer (Python or NumPy integer, or an integral
    float) ``>= minimum``; ``bool`` and strings raise :class:`ArgumentTypeError`."""
    v = real(name, value)
    if not math.isfinite(v) or v != math.floor(v) or v < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}, got {value!r}"
        )
    return int(value) if isinstance(value, numbers.Integral) else int(v)


def real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array if its entries are real numbers (int or float dtype);
    booleans, strings and objects raise :class:`ArgumentTypeError` naming ``name``."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ArgumentTypeError(
            f"{name} must be real numbers: {err}"
        ) from None
    if isinstance(value, (list, tuple)) and arr.dtype.kind in "iuf":
        # a Python list mixing True with numbers would silently become 1.0
        for v in np.asarray(value, dtype=object).ravel():
            if isinstance(v, (bool, np.bool_)):
                raise ArgumentTypeError(
                    f"{name} must be real numbers, got a bool ({v!r}) in {value!r:.60}"
                )
    if arr.dtype.kind not in "iuf":
        raise ArgumentTypeError(
            f"{name} must be real numbers (int or float), got {arr.dtype} {value!r:.60}"
        )
    return arr.astype(np.float64)
