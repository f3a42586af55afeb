r"""Phase detection, applied identically to theory and simulation curves (docs/theory.md §4).

* :math:`T_1`: first time :math:`|u| \ge \delta` (escape from the equator);
* :math:`T_1'`: the time from which :math:`s \ge s^*/3` holds for the rest of the curve
  (0 if it holds throughout, e.g. isotropic data from a unit-sphere start, where :math:`s`
  relaxes towards :math:`s^*/3` from above);
* :math:`T_2`: first time :math:`|u|` and :math:`s` are both within :math:`\varepsilon s^*` of :math:`s^*`.

Crossing times are interpolated linearly between the two grid points that bracket them, so they
are not quantised to the save grid. ``None`` means the curve never gets there.
"""

from __future__ import annotations

import numpy as np

from phasedyn.theory.validate import check_positive


def first_crossing(t: np.ndarray, f: np.ndarray, level: float) -> float | None:
    """First time ``f(t) >= level``, interpolated between save points; ``None`` if never."""
    t, f = np.asarray(t, float), np.asarray(f, float)
    above = f >= level
    if not above.any():
        return None
    j = int(np.argmax(above))
    if j == 0:
        return float(t[0])
    f0, f1 = f[j - 1], f[j]
    frac = (level - f0) / (f1 - f0) if f1 != f0 else 1.0
    return float(t[j - 1] + frac * (t[j] - t[j - 1]))


def settles_above(t: np.ndarray, f: np.ndarray, level: float) -> float | None:
    """The time from which ``f >= level`` for the rest of the curve (interpolated); ``None`` if not at the end."""
    t, f = np.asarray(t, float), np.asarray(f, float)
    above = f >= level
    if not above[-1]:
        return None
    below = np.flatnonzero(~above)
    if below.size == 0:
        return float(t[0])
    j = int(below[-1]) + 1
    f0, f1 = f[j - 1], f[j]
    frac = (level - f0) / (f1 - f0) if f1 != f0 else 1.0
    return float(t[j - 1] + frac * (t[j] - t[j - 1]))


def detect_phases(
    t: np.ndarray, u: np.ndarray, s: np.ndarray, s_star: float = 1.0, delta: float = 0.1, eps: float = 0.05
) -> dict[str, float | None]:
    r"""``{"T1", "T1p", "T2"}`` for one curve (see module doc); ``delta``, ``eps`` in (0, 1)."""
    s_star = check_positive("s_star", s_star)
    delta, eps = check_positive("delta", delta), check_positive("eps", eps)
    if delta >= 1 or eps >= 1:
        raise ValueError(f"delta and eps must be in (0, 1), got delta={delta}, eps={eps}")
    u, s = np.abs(np.asarray(u, float)), np.asarray(s, float)
    closeness = np.maximum(np.abs(u - s_star), np.abs(s - s_star)) / s_star
    return {
        "T1": first_crossing(t, u, delta),
        "T1p": settles_above(t, s, s_star / 3),
        "T2": first_crossing(t, -closeness, -eps),
    }
