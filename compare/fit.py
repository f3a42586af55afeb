r"""Exponent and rate fits with a documented window rule and an uncertainty over seeds.

Phase-I growth rate: :math:`\log|u(t)| \approx \rho t + c`, fitted by least squares on the points
after :math:`|u|` first reaches ``start_factor`` × :math:`|u(0)|` (the transient where the top
eigen-direction takes over) and before it first reaches ``delta`` (still :math:`|u| \ll 1`).
The same rule is applied to every curve, theory and simulation alike; with several seeds the
estimate is the mean of per-seed fits with a 95% interval :math:`\pm 1.96\,\mathrm{sd}/\sqrt{n}`.
"""

from __future__ import annotations

import numpy as np


def growth_rate(t: np.ndarray, u: np.ndarray, delta: float = 0.1, start_factor: float = 3.0) -> float | None:
    """Slope of log|u| on the window [first |u| >= start_factor·|u(0)|, first |u| >= delta); ``None`` if < 3 points."""
    t, au = np.asarray(t, float), np.abs(np.asarray(u, float))
    if au[0] == 0:
        return None
    start = np.flatnonzero(au >= start_factor * au[0])
    stop = np.flatnonzero(au >= delta)
    if start.size == 0 or stop.size == 0 or stop[0] - start[0] < 3:
        return None
    sl = slice(start[0], stop[0])
    return float(np.polyfit(t[sl], np.log(au[sl]), 1)[0])


def growth_rate_seeds(t: np.ndarray, u: np.ndarray, delta: float = 0.1, start_factor: float = 3.0) -> dict | None:
    """Per-seed :func:`growth_rate` for ``u`` of shape ``(n_seeds, n_t)``: ``{"value", "ci95", "n"}`` or ``None``."""
    rates = [r for r in (growth_rate(t, ui, delta, start_factor) for ui in np.atleast_2d(u)) if r is not None]
    if not rates:
        return None
    rates = np.asarray(rates)
    half = 1.96 * rates.std(ddof=1) / np.sqrt(rates.size) if rates.size > 1 else float("nan")
    return {"value": float(rates.mean()), "ci95": [float(rates.mean() - half), float(rates.mean() + half)],
            "n": int(rates.size)}
