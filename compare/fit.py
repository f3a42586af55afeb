r"""Exponent and rate fits with a documented window rule and an uncertainty over seeds.

Phase-I growth rate: :math:`\log|u(t)| \approx \rho t + c`, fitted by least squares on the points
after :math:`|u|` first reaches ``start_factor`` × :math:`|u(0)|` (the transient where the top
eigen-direction takes over) and before it first reaches ``delta`` (still :math:`|u| \ll 1`).
The same rule is applied to every curve, theory and simulation alike; with several seeds the
estimate is the mean of per-seed fits with a 95% interval :math:`\pm 1.96\,\mathrm{sd}/\sqrt{n}`.

Phase-II exponent ([P1]: :math:`T_2(\varepsilon) - T_1' = O(\varepsilon^{-2a/(a-1)}\log(1/\varepsilon))`):
:func:`t2_exponent_fit` reads :math:`T_2(\varepsilon)` off each curve with the phase detector for
:data:`N_EPS` log-spaced :math:`\varepsilon` in the window rule of :func:`t2_window`
(:math:`\varepsilon` from ``eps_hi`` = 0.1, past the escape transient, down to
:math:`\max(d^{-(a-1)/2}, \varepsilon_{\min})`, [P1]'s range of validity, and never below what every
curve reaches), and fits the slope of :math:`\log(T_2 - T_1')` against :math:`\log(1/\varepsilon)` on the
seeds' geometric mean. 95% interval: percentile bootstrap over seeds (``n >= 2``), else a pairs bootstrap
over the window's points. Both the raw slope and the slope with [P1]'s :math:`\log(1/\varepsilon)` factor
divided out are reported; [P1]'s exponent is an upper bound (an :math:`O(\cdot)`), not an asymptotic equality.
"""

from __future__ import annotations

import math

import numpy as np

from phasedyn.theory import powerlaw as PL
from phasedyn.theory import saddle_level

from .phases import closeness, first_crossing, settles_above

N_EPS = 12
"""Number of log-spaced tolerances in the Phase-II fit window."""


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


def t2_window(d: int, a: float, eps_hi: float = 0.1, eps_min: float = 1e-3, n: int = N_EPS) -> np.ndarray | None:
    r"""The Phase-II fit window: ``n`` log-spaced :math:`\varepsilon` from ``eps_hi`` down to
    :math:`\max(d^{-(a-1)/2}, \varepsilon_{\min})` ([P1]'s range, :func:`phasedyn.theory.powerlaw.t2_eps_floor`);
    ``None`` when that is empty (a <= 1, or d too small)."""
    if a <= 1:
        return None
    lo = max(PL.t2_eps_floor(d, a), eps_min)
    if lo >= eps_hi / 1.5:
        return None
    return np.geomspace(eps_hi, lo, n)


def t2_times(t: np.ndarray, u: np.ndarray, s: np.ndarray, eps: np.ndarray, s_star: float = 1.0,
             s_level: float | None = None) -> np.ndarray:
    r""":math:`T_2(\varepsilon) - T_1'` for one curve (phase detector of :mod:`.phases`; ``s_level`` defaults to
    theory's phase-retrieval saddle level), ``nan`` where not reached."""
    s = np.asarray(s, float)
    t1p = settles_above(t, s, saddle_level(s_star) if s_level is None else s_level)
    close = closeness(u, s, s_star)
    out = np.full(len(eps), np.nan)
    if t1p is None:
        return out
    for j, e in enumerate(eps):
        t2 = first_crossing(t, -close, -float(e))
        if t2 is not None and t2 > t1p:
            out[j] = t2 - t1p
    return out


def _slope(log_inv_eps: np.ndarray, log_x: np.ndarray) -> float:
    return float(np.polyfit(log_inv_eps, log_x, 1)[0])


def t2_exponent_fit(t: np.ndarray, u: np.ndarray, s: np.ndarray, d: int, a: float, s_star: float = 1.0,
                    eps_hi: float = 0.1, eps_min: float = 1e-3, n_boot: int = 2000, seed: int = 0) -> dict | None:
    r"""Fit the Phase-II exponent :math:`p` in :math:`T_2(\varepsilon) - T_1' \propto \varepsilon^{-p}` (module doc).

    ``u``, ``s``: shape ``(n_seeds, n_t)`` (or ``(n_t,)``). Returns ``{"value", "ci95", "value_log_corrected",
    "ci95_log_corrected", "eps": [hi, lo], "n_points", "n_seeds", "ci_method", "predicted"}`` or ``None`` when the
    window is empty or fewer than 4 of its points are reached by every curve.
    """
    eps = t2_window(d, a, eps_hi, eps_min)
    if eps is None:
        return None
    u2, s2 = np.atleast_2d(u), np.atleast_2d(s)
    x = np.stack([t2_times(t, ui, si, eps, s_star) for ui, si in zip(u2, s2)])
    keep = np.all(np.isfinite(x) & (x > 0), axis=0)
    if keep.sum() < 4:
        return None
    eps, logx = eps[keep], np.log(x[:, keep])
    L = np.log(1.0 / eps)
    corr = np.log(L)  # [P1]'s log(1/eps) factor, divided out for the corrected slope
    rng = np.random.default_rng(seed)
    n = logx.shape[0]

    def fits(lx, Lv, c):
        return _slope(Lv, lx), _slope(Lv, lx - c)

    raw, cor = fits(logx.mean(0), L, corr)
    boots = []
    for _ in range(n_boot):
        if n >= 2:
            idx = rng.integers(0, n, n)
            boots.append(fits(logx[idx].mean(0), L, corr))
        else:
            idx = np.sort(rng.integers(0, L.size, L.size))
            if np.unique(idx).size < 2:
                continue
            boots.append(fits(logx[0, idx], L[idx], corr[idx]))
    b = np.asarray(boots)
    ci = lambda k: [float(np.percentile(b[:, k], 2.5)), float(np.percentile(b[:, k], 97.5))]  # noqa: E731
    return {"value": raw, "ci95": ci(0), "value_log_corrected": cor, "ci95_log_corrected": ci(1),
            "eps": [float(eps[0]), float(eps[-1])], "n_points": int(L.size), "n_seeds": int(n),
            "ci_method": "bootstrap over seeds" if n >= 2 else "pairs bootstrap over the window",
            "predicted": PL.t2_exponent(a)}


TAIL_EPS = (0.02, 1e-3)
"""Tolerance range of :func:`t2_tail_comparison`: where the first-order tail prediction holds to a few percent."""


def t2_tail_comparison(t: np.ndarray, u: np.ndarray, s: np.ndarray, lam: np.ndarray, w_star: np.ndarray,
                       w0: np.ndarray, a: float, s_star: float = 1.0, n: int = N_EPS) -> dict | None:
    r"""Measured :math:`T_2(\varepsilon) - T_1'` against the tail-relaxation prediction
    :func:`phasedyn.theory.powerlaw.phase2_time` (Phase II as linear relaxation of the spectral tail with the
    head following adiabatically).

    ``u``, ``s``: ``(n_seeds, n_t)`` curves; ``w0``: ``(n_seeds, d)`` starts, each multiplied by the sign of
    the basin its theory curve ends in (:math:`\pm w^*`). Tolerances: ``n`` log-spaced in :data:`TAIL_EPS` (below 0.02
    the head has relaxed, which the prediction assumes; at [P1]'s :math:`\varepsilon = 0.1` it has not), kept where every
    curve reaches them. Both sides are geometric means over seeds; the slopes of :math:`\log(T_2 - T_1')` against
    :math:`\log(1/\varepsilon)` over these tolerances are reported for both, beside the large-d exponent
    :math:`a/(a-1)`. ``None`` for a <= 1 or when fewer than 3 tolerances are reached.
    """
    if a is None or a <= 1:
        return None
    u2, s2, w02 = np.atleast_2d(u), np.atleast_2d(s), np.atleast_2d(w0)
    eps = np.geomspace(*TAIL_EPS, n)
    meas = np.stack([t2_times(t, ui, si, eps, s_star) for ui, si in zip(u2, s2)])
    keep = np.all(np.isfinite(meas) & (meas > 0), axis=0)
    if keep.sum() < 3:
        return None
    eps, meas = eps[keep], np.exp(np.log(meas[:, keep]).mean(0))
    pred = np.exp(np.mean([np.log(PL.phase2_time(lam, w_star, w, eps)) for w in w02], axis=0))
    rel = pred / meas - 1.0
    L = np.log(1.0 / eps)
    return {"eps": eps.tolist(), "measured": meas.tolist(), "predicted": pred.tolist(), "rel_err": rel.tolist(),
            "max_abs_rel_err": float(np.max(np.abs(rel))), "n_seeds": int(u2.shape[0]),
            "exponent": {"measured": _slope(L, np.log(meas)), "predicted": _slope(L, np.log(pred))},
            "exponent_asymptotic": PL.phase2_exponent(a)}
