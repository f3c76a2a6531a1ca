"""Validation of arguments, shared by the public API.

The leniency rule of the whole package (also in the package docstring and the API page):

* a *number* argument accepts real numbers only: Python ``int`` and ``float``, NumPy real
  scalars (``np.float32``, ``np.int64``, ...) and zero-dimensional NumPy or JAX arrays of a
  real (integer or floating) dtype;
* ``bool`` (``True`` is not ``1.0``), strings (``"1e3"`` is not parsed), complex numbers,
  ``None`` and containers are rejected with :class:`ArgumentTypeError`, a ``TypeError`` that
  is also a ``ValueError`` (so ``except ValueError`` keeps working), naming the parameter;
* a value of the right type but out of range (negative, NaN, infinite where only finite
  values make sense) raises ``ValueError`` naming the parameter;
* a Python ``int`` is a real number at any size. A count (the step ``t``, a horizon, the
  rollouts ``n`` of an estimate, the sample size ``n`` of a learning curve) is used exactly,
  ``t = 2**70`` and ``n = 10**400`` included; any other argument is rounded to the nearest
  float, an int beyond the float range (about ``1.8e308``) to ``inf`` or ``-inf``, which then
  meets the same range check as a float infinity (accepted where the function gives infinity
  a meaning, a ``ValueError`` naming the parameter where only finite values make sense).

The command line parses its strings itself before calling the API.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = [
    "ArgumentTypeError",
    "number",
    "real",
    "integer",
    "integer_array",
    "real_array",
    "log_array",
    "show",
]

_BIG = 2**1024  # the first int that rounds beyond the largest float
_HUGE = 2**1024 - 2**970  # ints from here on round to inf (round-half-even)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError`` and a ``ValueError``)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)
    )


def _float(value: Any) -> float:
    """``float(value)``; an int beyond the float range rounds to ``inf`` or ``-inf``."""
    if _is_int(value) and abs(int(value)) >= _HUGE:
        return math.inf if value > 0 else -math.inf
    return float(value)


def show(value: Any) -> str:
    """``repr(value)`` for an error message, short for ints of hundreds of digits."""
    if _is_int(value) and abs(int(value)) >= _HUGE:
        exp = math.log10(abs(int(value)))
        sign = "-" if value < 0 else ""
        return f"{sign}{10 ** (exp % 1):.4g}e+{math.floor(exp)} (an int)"
    return repr(value)


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
        return _float(value)
    except (TypeError, ValueError, OverflowError):
        raise ArgumentTypeError(
            f"{name} must be a real number (int or float), got {show(value)}"
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
        raise ValueError(f"{name} must be a {kind} number, got {show(value)}")
    return v


def integer(name: str, value: Any, *, minimum: int = 0) -> int:
    """``int(value)`` if ``value`` is an integer (Python or NumPy integer, or an integral
    float) ``>= minimum``; ``bool`` and strings raise :class:`ArgumentTypeError`. A Python
    int is kept exact at any size."""
    if _is_int(value):
        if value < minimum:
            raise ValueError(
                f"{name} must be an integer >= {minimum}, got {show(value)}"
            )
        return int(value)
    v = real(name, value)
    if not math.isfinite(v) or v != math.floor(v) or v < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}, got {value!r}"
        )
    return int(value) if isinstance(value, numbers.Integral) else int(v)


def _int_objects(arr: np.ndarray) -> bool:
    """An object array of Python ints (NumPy's dtype for ints beyond int64/uint64)."""
    return arr.dtype == object and all(_is_int(v) for v in arr.ravel())


def real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array if its entries are real numbers (int or float dtype);
    booleans, strings and objects raise :class:`ArgumentTypeError` naming ``name``. Python
    ints beyond int64 round to the nearest float, beyond the float range to ``inf`` or
    ``-inf``."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ArgumentTypeError(
            f"{name} must be real numbers: {err}"
        ) from None
    if arr.size and _int_objects(arr):
        return np.array(
            [_float(v) for v in arr.ravel()], dtype=np.float64
        ).reshape(arr.shape)
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


def log_array(value: Any, arr: np.ndarray) -> np.ndarray:
    """``log(arr)`` (``arr`` is :func:`real_array` of ``value``), with the logarithm of a
    Python int beyond the float range taken of the exact int, not of its rounding ``inf``:
    a count used exactly at any size. Non-positive entries give ``-inf`` or NaN (check first).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(arr)
    if np.ndim(value) == 0 and not isinstance(value, (list, tuple)):
        items = [value]
    else:
        obj = np.asarray(value)
        items = list(obj.ravel()) if obj.dtype == object else []
    if any(_is_int(v) and v >= _HUGE for v in items):
        exact = [
            math.log(int(v)) if _is_int(v) and v >= _HUGE else math.nan
            for v in items
        ]
        flat = out.ravel().copy()
        for i, e in enumerate(exact):
            if not math.isnan(e):
                flat[i] = e
        out = flat.reshape(out.shape)
    return out


def integer_array(name: str, value: Any, *, minimum: int = 0) -> np.ndarray:
    """Integers ``>= minimum`` (a number or an array of them, integral floats allowed) as an
    int64 array, or an object array of exact Python ints where one lies beyond int64."""
    arr = np.asarray(value)
    if arr.size and _int_objects(arr):
        if any(v < minimum for v in arr.ravel()):
            raise ValueError(
                f"{name} must be integers >= {minimum}, got {value!r:.60}"
            )
        return arr
    real_array(name, value)  # the type rule: bool and strings raise
    if (
        arr.dtype.kind not in "iuf"
        or not np.all(np.isfinite(arr))
        or np.any(arr < minimum)
        or np.any(arr != np.round(arr))
    ):
        raise ValueError(
            f"{name} must be integers >= {minimum}, got {value!r:.60}"
        )
    if arr.dtype.kind == "f" and np.any(np.abs(arr) >= 2.0**63):
        return np.array([int(v) for v in arr.ravel()], dtype=object).reshape(
            arr.shape
        )
    return arr.astype(np.int64)
