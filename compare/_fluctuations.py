r"""The escape law against the seeds: theory curves from the law of the start, and summary.json ``fluctuations``.

Unaligned isotropic online SGD is compared through :func:`phasedyn.theory.escape_law` (docs/theory.md §4(A)):
the theory curves are the mean-field paths of the quantiles of the effective start :math:`|U_t|` (so their mean is
the predicted seed average and their spread the predicted band), and :func:`fluctuations` sets the predicted
escape-time law beside the seeds' own: :math:`T_1` quantiles (10, 50, 90 %), a one-sample Kolmogorov–Smirnov test
of the seeds' :math:`T_1` against the predicted CDF, the predicted and measured sd of :math:`u` and :math:`s` at a
few times, and the sampling error a seed mean of this many seeds has (the gap it cannot beat).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _stats

from phasedyn.theory import EscapeLaw

from .phases import first_crossing

QUANTILES = (0.1, 0.5, 0.9)


def law_curves(law: EscapeLaw, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``{stat: (n_law, n_t)}``: each statistic on the paths of the quantile midpoints of :math:`|U_t|`."""
    return {k: law.values(k) for k in names}


def first_times(t: np.ndarray, u: np.ndarray, delta: float) -> np.ndarray:
    """Per seed, the phase detector's :math:`T_1` (:func:`~.phases.first_crossing` of :math:`|u|`; NaN if never)."""
    times = (first_crossing(t, np.abs(row), delta) for row in u)
    return np.array([np.nan if x is None else x for x in times], dtype=float)


def fluctuations(law: EscapeLaw, t: np.ndarray, sim: dict[str, np.ndarray]) -> dict:
    """summary.json's ``fluctuations`` (module docstring); ``None`` where a value is undefined."""
    t1 = first_times(t, sim["u"], law.delta)
    ok = np.isfinite(t1)
    measured = np.quantile(t1[ok], QUANTILES).tolist() if ok.sum() >= 2 else [None] * len(QUANTILES)
    ks = _stats.kstest(t1[ok], law.t1_cdf) if ok.sum() >= 2 else None
    n = sim["u"].shape[0]
    picks = sorted({int(np.argmin(np.abs(t - x))) for x in law.t1_quantiles(QUANTILES) if np.isfinite(x)}
                   | {t.size - 1})
    law_sd = {k: law.std(k) for k in ("u", "s")}
    return {
        "delta": law.delta,
        "escaped": {"theory": float(law.t1_cdf(t[-1:])[0]),
                    "simulation": float(ok.mean())},
        "T1_quantiles": {"q": list(QUANTILES), "theory": law.t1_quantiles(QUANTILES).tolist(), "simulation": measured},
        "T1_ks": None if ks is None else {"statistic": float(ks.statistic), "pvalue": float(ks.pvalue)},
        "start": {"mean_u0": law.mean_u0, "var_u0": law.var_u0, "var_noise": law.var_noise_end},
        "sd": {"t": t[picks].tolist(),
               **{k: {"theory": law_sd[k][picks].tolist(), "simulation": sim[k].std(0)[picks].tolist()}
                  for k in ("u", "s")}},
        "u_mean_sampling_error": float(np.max(law_sd["u"]) / np.sqrt(n)),
        "seeds": int(n),
    }
