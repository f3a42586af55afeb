"""Input validation shared by every layer.

Each check raises ``ValueError`` naming the parameter, the value it got and the allowed range, so
that bad input never reaches a solver or a plot as a silent NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def check_finite(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number."""
    if not _is_number(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """Require a finite ``value > 0``."""
    value = check_finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0 (allowed range (0, inf)), got {value!r}")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    """Require a finite ``value >= 0``."""
    value = check_finite(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (allowed range [0, inf)), got {value!r}")
    return value


def check_greater(name: str, value: Any, bound: float) -> float:
    """Require a finite ``value > bound``."""
    value = check_finite(name, value)
    if value <= bound:
        raise ValueError(f"{name} must be > {bound} (allowed range ({bound}, inf)), got {value!r}")
    return value


def check_open_interval(name: str, value: Any, lo: float, hi: float) -> float:
    """Require a finite ``lo < value < hi``."""
    value = check_finite(name, value)
    if not lo < value < hi:
        raise ValueError(f"{name} must be in ({lo:g}, {hi:g}), got {value!r}")
    return value


INT64_MAX = 2**63 - 1
"""The largest integer a step count, seed or size may take: every one ends up in an ``int64`` array."""


def check_int(name: str, value: Any, minimum: int, maximum: int = INT64_MAX) -> int:
    """Require an integer ``minimum <= value <= maximum`` (default maximum :data:`INT64_MAX`: steps, seeds and sizes
    become ``int64`` arrays, and a larger value would overflow there instead of being refused here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer >= {minimum} and <= {maximum}, got {value!r}")
    value = int(value)
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer >= {minimum} and <= {maximum}, got {value!r}")
    return value


def check_vector(name: str, value: Any, d: int | None = None) -> np.ndarray:
    """Require a finite 1-D float array (of length ``d`` when given)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if d is not None and arr.shape[0] != d:
        raise ValueError(f"{name} must have length d = {d}, got length {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def check_spectrum(lam: Any, d: int | None = None) -> np.ndarray:
    """Require a finite, strictly positive 1-D spectrum (of length ``d`` when given)."""
    arr = check_vector("spectrum", lam, d)
    if arr.shape[0] < 2:
        raise ValueError(f"spectrum must have length d >= 2, got length {arr.shape[0]}")
    if np.any(arr <= 0):
        raise ValueError("spectrum must be strictly positive (eigenvalues of a covariance, range (0, inf))")
    return arr


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Require ``value`` to be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
