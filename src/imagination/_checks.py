"""Validation of scalar arguments, shared by the public API: bad input raises ``ValueError``
naming the parameter."""

from __future__ import annotations

import math
from typing import Any


def number(
    name: str, value: Any, *, positive: bool = False, finite: bool = True
) -> float:
    """``float(value)`` if it is non-negative (``positive``: > 0), not NaN and, with ``finite``,
    not infinite; otherwise a ``ValueError`` that names ``name``."""
    kind = ("positive" if positive else "non-negative") + (
        " finite" if finite else ""
    )
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a {kind} number, got {value!r}"
        ) from None
    in_range = v > 0 if positive else v >= 0
    if not in_range or math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{name} must be a {kind} number, got {value!r}")
    return v
