r"""Finite-d fluctuations of the isotropic system (Σ = I) under online SGD: the noise of one step, the law of the
escape time :math:`T_1` and the seed-averaged curves (docs/theory.md §4(A); issue 14).

**Noise of one step.** With one fresh sample per step, :math:`\Delta u = -\eta\,\partial_g\ell\,h` exactly and
:math:`\Delta s = -2\eta\,\partial_g\ell\,g + \eta^2(\partial_g\ell)^2|x|^2`, so

.. math:: \mathrm{Cov}(\Delta u, \Delta s) = \eta^2 C(u, s) + O(\eta^3 d),\qquad
    C = \mathrm{Cov}\big[(-\partial_g\ell\,h,\; -2\partial_g\ell\,g)\big],

Gaussian expectations of polynomials in :math:`(g, h, \xi)`, derived by Isserlis (:func:`increment_covariance`;
:math:`C_{uu}` is exact). In the time :math:`t = \eta k` this is the diffusion
:math:`dm = F(m)\,dt + \sqrt{\eta}\,C^{1/2}\,dW`.

**Escape.** Near :math:`u = 0` the drift of :math:`u` is linear, :math:`\dot u = \lambda(s)u`, and :math:`s`
follows its own path :math:`s(t)` from :math:`s_0` whatever :math:`u` is (to :math:`O(u^2)`). So

.. math:: u(t) = G(t)\Big[u_0 + \sqrt\eta\int_0^t G(t')^{-1}\sqrt{C_{uu}(s(t'), 0)}\,dW_{t'}\Big],\qquad
    G(t) = e^{\int_0^t \lambda(s)},

and, once :math:`G` has grown, each seed moves on the mean-field path of an *effective start*
:math:`U = u_0 + N(0, V)`, :math:`V = \eta\int_0^\infty C_{uu}(s(t), 0)\,G(t)^{-2}\,dt` (solved with
:math:`s(t)` and :math:`\log G` as one ODE). From the unit sphere of radius :math:`r_0`,
:math:`u_0 \approx N(0, r_0^2 s^*/d)` (the exact marginal is a scaled Beta; Gaussian to :math:`O(1/d)`); from a
fixed warm start, :math:`u_0` is given. The sign-fixed curves are the mean-field paths from :math:`|U|`, a
folded normal: the escape time :math:`T_1 = T(|U|)` is decreasing in :math:`|U|`, so its quantile :math:`q` is
:math:`T` at the :math:`1-q` quantile of :math:`|U|`, and the seed average of any statistic is the average of the
paths over the law of :math:`|U|` (quantile midpoints, :data:`N_LAW` of them). Left out: the noise after the
escape (the linear-noise bands of issue 14, item 2).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.special import ndtr, ndtri

from . import symbols as S
from .gaussian import expectation
from .isotropic import escape_rate, isotropic_system
from .model import Model
from .system import System
from .validate import check_int, check_nonnegative, check_open_interval, check_positive

#: quantile points of the law of |U| (the seed average is their mean)
N_LAW = 256
_LOG_G, _I = sp.Symbol("log_G"), sp.Symbol("I_noise")


def increment_covariance(model: Model | str | None = None) -> sp.Matrix:
    r"""The exact covariance of one online-SGD step on :math:`\Sigma = I`, over :math:`\eta^2`: a 2×2 sympy matrix
    :math:`C` in :math:`(u, s, s^*, \sigma, \eta, d)` with :math:`\mathrm{Cov}(\Delta u, \Delta s) = \eta^2 C`.

    :math:`\Delta u/\eta = -\partial_g\ell\,h` and :math:`\Delta s/\eta = -2\partial_g\ell\,g + \eta\,\varphi|x|^2`,
    :math:`\varphi = (\partial_g\ell)^2`. The norm splits as :math:`|x|^2 = q + \chi^2_{d-2}`: :math:`q` the squared
    projection on :math:`\mathrm{span}(w, w^*)`, :math:`q = (s^*g^2 - 2ugh + sh^2)/(ss^* - u^2)`, and a chi-square
    independent of :math:`(g, h)`. So every moment is Isserlis of a polynomial times powers of :math:`q`. The
    :math:`\eta` terms are not small: at :math:`\eta d = 0.05` they shrink :math:`C_{ss}` by 4.6× (the cross term
    :math:`-4\eta\,E[\partial_g\ell\,g\,\varphi|x|^2]`); :math:`\eta \to 0` gives the leading
    :math:`\mathrm{Cov}[(-\partial_g\ell\,h, -2\partial_g\ell\,g)]`.
    """
    return _increment_covariance(Model.coerce(model))


def _with_norm(f: sp.Expr, power: int) -> sp.Expr:
    r""":math:`E[f\,|x|^{2\cdot power}]` for a polynomial ``f`` in :math:`(g, h, \xi)`, ``power`` in {0, 1, 2}."""
    gram = S.s * S.s_star - S.u**2
    q_num = S.s_star * S.g**2 - 2 * S.u * S.g * S.h + S.s * S.h**2
    E = lambda x: expectation(sp.expand(x))  # noqa: E731
    n = S.d - 2  # the chi-square's degrees of freedom
    if power == 0:
        return E(f)
    if power == 1:
        return sp.cancel(E(f * q_num) / gram) + n * E(f)
    return sp.cancel(E(f * q_num**2) / gram**2) + 2 * n * sp.cancel(E(f * q_num) / gram) + n * S.d * E(f)


@lru_cache(maxsize=16)
def _increment_covariance(model: Model) -> sp.Matrix:
    dg = sp.diff(model.expr, S.g)
    phi = sp.expand(dg**2)
    mean_u = _with_norm(-dg * S.h, 0)
    mean_s = _with_norm(-2 * dg * S.g, 0) + S.eta * _with_norm(phi, 1)
    uu = _with_norm(phi * S.h**2, 0) - mean_u**2
    us = _with_norm(2 * phi * S.g * S.h, 0) - S.eta * _with_norm(dg * S.h * phi, 1) - mean_u * mean_s
    ss = (_with_norm(4 * phi * S.g**2, 0) - 4 * S.eta * _with_norm(dg * S.g * phi, 1)
          + S.eta**2 * _with_norm(phi**2, 2) - mean_s**2)
    return sp.Matrix([[sp.expand(uu), sp.expand(us)], [sp.expand(us), sp.expand(ss)]])


@lru_cache(maxsize=16)
def _linear_system(model: Model) -> System:
    r""":math:`(s, \log G, I)` with :math:`\dot s = F_s(0, s)`, :math:`\dot{\log G} = \partial_u F_u(0, s)`,
    :math:`\dot I = C_{uu}(0, s)\,G^{-2}` from the online-SGD mean field of ``model``."""
    f_u, f_s = isotropic_system("sgd", model).rhs
    lam = sp.expand(sp.diff(f_u, S.u).xreplace({S.u: 0}))
    c_uu = _increment_covariance(model)[0, 0].xreplace({S.u: 0})  # exact: no eta or d in it
    return System(name=f"isotropic-sgd-escape{model.tag}", states=(S.s, _LOG_G, _I),
                  params=(S.s_star, S.sigma, S.d, S.eta),
                  rhs=(sp.expand(f_s.xreplace({S.u: 0})), lam, c_uu * sp.exp(-2 * _LOG_G)),
                  description="isotropic online SGD near u = 0: s(t), log G(t), accumulated noise")


def noise_variance(eta: float, d: float, s0: float = 1.0, s_star: float = 1.0, sigma: float = 0.0,
                   model: Model | str | None = None, t: np.ndarray | None = None) -> float | np.ndarray:
    r""":math:`V = \eta\int_0^\infty C_{uu}(s(t), 0)\,G(t)^{-2}dt`: the variance that online SGD adds to the
    effective start of :math:`u` (module docstring); with ``t``, :math:`V(t)` (the integral up to each time) on
    that grid instead. ``ValueError`` when :math:`u = 0` does not repel."""
    from ._solve import solve

    model = Model.coerce(model)
    rho = escape_rate(s_star, model, s0)
    if rho <= 0:
        raise ValueError(f"the escape rate at u = 0 is {rho:.4g} <= 0 for this model: u does not escape")
    t_end = 2.0 + 40.0 / rho  # G^-2 < e^-60 by then, up to the relaxation of s
    ts = np.array([0.0, t_end]) if t is None else np.asarray(t, float)
    sol = solve(_linear_system(model), {"s": s0, "log_G": 0.0, "I_noise": 0.0},
                {"s_star": s_star, "sigma": sigma, "d": d, "eta": eta}, ts=ts, rtol=1e-10, atol=1e-14)
    return float(eta * sol["I_noise"][-1]) if t is None else eta * np.asarray(sol["I_noise"])


@dataclasses.dataclass(frozen=True)
class EscapeLaw:
    r"""The law of the sign-fixed isotropic online-SGD curves from a random start (module docstring).

    The noise acts before the escape, not all at once: at time :math:`t` a seed is on the mean-field path of
    :math:`|U_t|`, :math:`U_t = u_0 + N(0, V(t))`, :math:`V(t) = \eta\int_0^t C_{uu}G^{-2}` (:math:`V(\infty) = V`).
    The paths are computed once from a fine family of starts (``starts``); every law is read off them by
    interpolation in :math:`\log|U|`, at which the paths are monotone at fixed time.

    Attributes:
        t: the time grid.
        starts: the starts of the path family, increasing.
        paths: ``{stat: (n_starts, n_t)}``: the mean-field path from each start (states and observables).
        t1_paths: :math:`T_1` of each path (NaN where it does not reach ``delta`` on the grid), decreasing.
        mean_u0, var_u0: :math:`E u_0`, :math:`\mathrm{Var}\,u_0`.
        var_noise: :math:`V(t)` on ``t``; ``var_noise_end``: :math:`V(\infty)`.
        delta: the escape level :math:`|u| \ge \delta`.
        n_law: quantile points of :math:`|U_t|` per time for the seed averages.
    """

    t: np.ndarray
    starts: np.ndarray
    paths: dict[str, np.ndarray]
    t1_paths: np.ndarray
    mean_u0: float
    var_u0: float
    var_noise: np.ndarray
    var_noise_end: float
    delta: float
    n_law: int = N_LAW

    def _scale(self, v: np.ndarray | float) -> np.ndarray:
        return np.sqrt(self.var_u0 + np.asarray(v, float))

    def _start_of_t1(self, t: np.ndarray) -> np.ndarray:
        """:math:`T^{-1}(t)`: the start whose path reaches ``delta`` at ``t`` (interpolated in log)."""
        ok = np.isfinite(self.t1_paths)
        tt, uu = self.t1_paths[ok][::-1], np.log(self.starts[ok][::-1])  # t1 increasing, starts decreasing
        return np.exp(np.interp(t, tt, uu, left=np.inf, right=-np.inf))

    def t1_cdf(self, t: np.ndarray) -> np.ndarray:
        r""":math:`P(T_1 \le t) = P(|U_t| \ge T^{-1}(t))`, :math:`T^{-1}` the start whose path escapes at ``t``."""
        t = np.asarray(t, float)
        v = np.interp(t, self.t, self.var_noise)
        return 1.0 - _folded_cdf(self._start_of_t1(t), self.mean_u0, self._scale(v))

    def t1_quantiles(self, q=(0.1, 0.5, 0.9)) -> np.ndarray:
        """Quantiles of :math:`T_1`, from :meth:`t1_cdf` on a fine grid (NaN beyond the grid)."""
        grid = np.linspace(self.t[0], self.t[-1], 20_001)
        cdf = np.maximum.accumulate(self.t1_cdf(grid))
        q = np.asarray(q, float)
        out = np.interp(q, cdf, grid, left=grid[0], right=np.nan)
        return np.where(q > cdf[-1], np.nan, out)

    def values(self, stat: str) -> np.ndarray:
        """``(n_law, n_t)``: ``stat`` on the paths of the quantile midpoints of :math:`|U_t|` at each time."""
        p = (np.arange(self.n_law) + 0.5) / self.n_law
        log_s = np.log(self.starts)
        out = np.empty((self.n_law, self.t.size))
        for i, v in enumerate(self.var_noise):
            x = _folded_quantile(p, self.mean_u0, float(self._scale(v)))
            out[:, i] = np.interp(np.log(np.maximum(x, self.starts[0])), log_s, self.paths[stat][:, i])
        return out

    def mean(self, stat: str) -> np.ndarray:
        """The seed-averaged curve of ``stat`` (``u`` sign-fixed)."""
        return self.values(stat).mean(0)

    def std(self, stat: str) -> np.ndarray:
        """The spread across seeds that the law of the start predicts (no noise after the escape)."""
        return self.values(stat).std(0)


def _folded_cdf(x: np.ndarray, mu: float, tau: np.ndarray) -> np.ndarray:
    r""":math:`P(|N(\mu, \tau^2)| \le x)`."""
    x, tau = np.broadcast_arrays(np.asarray(x, float), np.asarray(tau, float))
    point = tau == 0.0  # no spread yet (a warm start at t = 0): a point mass at |mu|
    safe = np.where(point, 1.0, tau)
    with np.errstate(invalid="ignore"):
        out = ndtr((x - mu) / safe) - ndtr((-x - mu) / safe)
    out = np.where(point, (x >= abs(mu)).astype(float), out)
    return np.clip(np.where(np.isinf(x), 1.0, out), 0.0, 1.0)


def _folded_quantile(p: np.ndarray, mu: float, tau: float) -> np.ndarray:
    r"""Quantiles of :math:`|N(\mu, \tau^2)|` (bisection on the CDF; closed form for :math:`\mu = 0`); a point
    mass at :math:`|\mu|` when :math:`\tau = 0`."""
    p = np.asarray(p, float)
    if tau == 0.0:
        return np.full_like(p, abs(mu))
    if mu == 0.0:
        return tau * ndtri((1.0 + p) / 2.0)
    lo, hi = np.zeros_like(p), np.full_like(p, abs(mu) + 12.0 * tau)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        below = ndtr((mid - mu) / tau) - ndtr((-mid - mu) / tau) < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def escape_law(d: int, eta: float, t: np.ndarray, *, u0: float | None = None, init_scale: float = 1.0,
               s_star: float = 1.0, sigma: float = 0.0, delta: float = 0.1, model: Model | str | None = None,
               n_starts: int = 400, n_law: int = N_LAW) -> EscapeLaw:
    r"""The :class:`EscapeLaw` of isotropic online SGD at dimension ``d`` and step ``eta`` on the time grid ``t``
    (increasing, from 0).

    ``u0=None``: :math:`w(0)` uniform on the sphere of radius ``init_scale`` (the default problem), so
    :math:`u_0 \approx N(0, r_0^2 s^*/d)`; a number: every seed starts at that overlap (a warm start), and only
    the SGD noise spreads them. :math:`s(0) = r_0^2` either way.
    """
    from ._solve import solve

    d = check_int("d", d, 2)
    eta = check_positive("eta", eta)
    init_scale = check_positive("init_scale", init_scale)
    check_open_interval("delta", delta, 0.0, 1.0)
    check_nonnegative("sigma", sigma)
    n_law = check_int("n_law", n_law, 8)
    n_starts = check_int("n_starts", n_starts, 16)
    t = np.asarray(t, float)
    if t.ndim != 1 or t.size < 2 or t[0] != 0.0 or np.any(np.diff(t) <= 0):
        raise ValueError("t must be an increasing 1-D grid of at least 2 times starting at 0")
    model = Model.coerce(model)
    s0 = init_scale**2
    mean_u0, var_u0 = (0.0, s0 * s_star / d) if u0 is None else (float(u0), 0.0)
    var_t = noise_variance(eta, d, s0, s_star, sigma, model, t)
    var_end = noise_variance(eta, d, s0, s_star, sigma, model)
    tau = float(np.sqrt(var_u0 + var_end))
    starts = np.geomspace(1e-5 * tau, abs(mean_u0) + 8.0 * tau, n_starts)
    sol = solve(isotropic_system("sgd", model), {"u": starts, "s": np.full(n_starts, s0)},
                {"s_star": s_star, "sigma": sigma, "d": float(d), "eta": eta}, ts=t, rtol=1e-10, atol=1e-12)
    paths = {k: np.asarray(v) for k, v in sol.items()}
    sign = np.sign(paths["u"][:, -1:])
    paths["u"] = paths["u"] * np.where(sign == 0, 1.0, sign)
    return EscapeLaw(t, starts, paths, _first_crossing(t, np.abs(paths["u"]), delta), mean_u0, var_u0,
                     np.asarray(var_t), var_end, float(delta), n_law)
def _first_crossing(t: np.ndarray, x: np.ndarray, level: float) -> np.ndarray:
    """Per row, the first time ``x >= level``, linearly interpolated between grid points (NaN if never)."""
    out = np.full(x.shape[0], np.nan)
    for i, row in enumerate(x):
        k = int(np.argmax(row >= level))
        if row[k] < level:
            continue
        if k == 0:
            out[i] = t[0]
            continue
        frac = (level - row[k - 1]) / (row[k] - row[k - 1])
        out[i] = t[k - 1] + frac * (t[k] - t[k - 1])
    return out
