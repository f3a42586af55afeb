r"""Phase detection, applied identically to theory and simulation curves (docs/theory.md §4).

* :math:`T_1`: first time :math:`|u| \ge \delta` (escape from the equator);
* :math:`T_1'`: the time from which :math:`s` stays at or above the saddle level (the :math:`s` of the
  saddles :math:`u = 0`, from :func:`phasedyn.theory.saddle_level`; :math:`s^*/3` for phase retrieval)
  for the rest of the curve (0 if it holds throughout, e.g. isotropic data from a unit-sphere start,
  where :math:`s` relaxes towards the saddle from above; ``None`` if the model has no such saddle);
* :math:`T_2`: first time :math:`|u|` and :math:`s` are both within :math:`\varepsilon s^*` of :math:`s^*`.

Crossing times are interpolated linearly between the two grid points that bracket them, so they
are not quantised to the save grid. ``None`` means the curve never gets there.
"""

from __future__ import annotations

import numpy as np

from phasedyn.theory import saddle_level
from phasedyn.theory.validate import check_open_interval, check_positive


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


def closeness(u: np.ndarray, s: np.ndarray, s_star: float = 1.0) -> np.ndarray:
    r""":math:`\max(||u| - s^*|, |s - s^*|)/s^*`: how far a curve is from the minimum (:math:`T_2` at :math:`\varepsilon`)."""
    u, s = np.abs(np.asarray(u, float)), np.asarray(s, float)
    return np.maximum(np.abs(u - s_star), np.abs(s - s_star)) / s_star


def detect_phases(
    t: np.ndarray, u: np.ndarray, s: np.ndarray, s_star: float = 1.0, delta: float = 0.1, eps: float = 0.05,
    s_level: float | None = ...,  # type: ignore[assignment]
) -> dict[str, float | None]:
    r"""``{"T1", "T1p", "T2"}`` for one curve (see module doc); ``delta``, ``eps`` in (0, 1).

    ``s_level``: the level of :math:`T_1'`; by default the phase-retrieval saddle level from theory
    (:func:`phasedyn.theory.saddle_level`); an overlay passes its model's (``None``: no saddle, no :math:`T_1'`).
    """
    if s_level is ...:
        s_level = saddle_level(s_star)
    s_star = check_positive("s_star", s_star)
    delta, eps = check_open_interval("delta", delta, 0.0, 1.0), check_open_interval("eps", eps, 0.0, 1.0)
    u, s = np.abs(np.asarray(u, float)), np.asarray(s, float)
    return {
        "T1": first_crossing(t, u, delta),
        "T1p": None if s_level is None else settles_above(t, s, s_level),
        "T2": first_crossing(t, -closeness(u, s, s_star), -eps),
    }
