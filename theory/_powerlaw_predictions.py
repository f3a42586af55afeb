r"""(B) Power law: [P1]'s Phase-II/III predictions and the Phase-II tail relaxation beyond [P1] (docs/theory.md §3B).

Phase II: [P1]'s exponent bound :func:`t2_exponent`, its range :func:`t2_eps_floor` and :func:`plateau_bound`;
beyond [P1], Phase II as the
linear relaxation of the spectral tail seen through :math:`(u, s)` while the learned head follows it
adiabatically (docs/theory.md §3B "Phase II beyond [P1]"): :func:`phase2_deficits`, :func:`phase2_gaps`,
:func:`phase2_closeness`, :func:`phase2_time`, :func:`phase2_asymptotic`, :func:`phase2_exponent`. Phase III:
:func:`phase3_survival` (:math:`S_d`), :func:`phase3_effective_age`, :func:`phase3_prediction`,
:func:`phase3_asymptotic`, :func:`phase3_window`. Re-exported by :mod:`phasedyn.theory.powerlaw`, where they
are used.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import gamma

from .problem import harmonic
from .validate import check_greater, check_int, check_positive


def t2_exponent(a: float) -> float:
    r"""Phase-II exponent: :math:`T_2 - T_1' = O(\varepsilon^{-2a/(a-1)}\log(1/\varepsilon))`, returns :math:`2a/(a-1)` (a > 1)."""
    a = check_greater("a", a, 1.0)
    return 2 * a / (a - 1)


def t2_eps_floor(d: int, a: float) -> float:
    r"""The smallest closeness :math:`\varepsilon` for which [P1]'s Phase-II law holds at dimension :math:`d`:
    :math:`\varepsilon \gtrsim d^{-(a-1)/2}` (docs/theory.md §3B; below it the spectral tail beyond mode :math:`d`,
    absent at finite :math:`d`, would be needed). The lower end of the Phase-II fit window (a > 1)."""
    a = check_greater("a", a, 1.0)
    return float(check_int("d", d, 2) ** (-(a - 1) / 2))


def phase2_deficits(lam: np.ndarray, w_star: np.ndarray, w0: np.ndarray, tau: np.ndarray | float
                    ) -> tuple[np.ndarray, np.ndarray]:
    r"""Phase-II deficits :math:`(A, B)(\tau)` of :math:`u` and :math:`s` left by the spectral tail, relative to :math:`s^*`.

    Near :math:`u = s = s^*` each mode relaxes linearly, :math:`\dot e_i = -8s^*\lambda_i e_i` for
    :math:`e_i = w^*_i - w_i`; a tail mode has not moved before the escape (:math:`\lambda_i T_1 \ll 1`), so
    :math:`e_i(\tau) = (w^*_i - w_i(0))\,e^{-8s^*\lambda_i\tau}` with :math:`\tau = t - T_1'`, and

    .. math:: A = \frac{1}{s^*}\sum_i \lambda_i w^*_i e_i, \qquad B = \frac{1}{s^*}\sum_i \lambda_i (2w^*_i e_i - e_i^2)

    (:math:`1 - u/s^*` and :math:`1 - s/s^*` if no other mode moved). ``tau``: scalar or 1-D array.
    """
    lam, w_star, w0 = (np.asarray(x, float) for x in (lam, w_star, w0))
    s_star = float(np.sum(lam * w_star**2))
    tau = np.atleast_1d(np.asarray(tau, float))
    A, B = np.empty(tau.shape), np.empty(tau.shape)
    e0 = w_star - w0
    for j, t in enumerate(tau):  # one tau at a time: O(d) memory at any d
        e = e0 * np.exp(-8.0 * s_star * lam * t)
        A[j] = np.sum(lam * w_star * e) / s_star
        B[j] = np.sum(lam * (2.0 * w_star * e - e * e)) / s_star
    return A, B


def phase2_gaps(lam: np.ndarray, w_star: np.ndarray, w0: np.ndarray, tau: np.ndarray | float
                ) -> tuple[np.ndarray, np.ndarray]:
    r"""Predicted Phase-II gaps :math:`(1 - u/s^*,\ 1 - s/s^*)` at :math:`\tau = t - T_1'` (gradient flow).

    The tail relaxes linearly (:func:`phase2_deficits`: :math:`A, B`) while the learned head follows it
    adiabatically: its modes sit at their fixed point given :math:`(u, s)`, :math:`w_i = c\,w^*_i` with
    :math:`c = 2u/(3s - s^*)` (from :math:`\dot w_i = 4\lambda_i(s^* - 3s)w_i + 8\lambda_i u w^*_i = 0`). With
    :math:`u/s^* = c - A`, :math:`s/s^* = c^2 - B` this gives :math:`c = 1 + B/2 - A/3` and, to first order,

    .. math:: 1 - u/s^* = \tfrac43 A - \tfrac12 B, \qquad 1 - s/s^* = \tfrac23 A.

    The head overshoots (:math:`c > 1`) and hides part of the tail's deficit: without it (:math:`\max(A, B)`)
    :math:`T_2` comes out 1.5-3x too late. ``w0``: the start, sign-flipped if the run converges to :math:`-w^*`.
    """
    A, B = phase2_deficits(lam, w_star, w0, tau)
    return 4.0 * A / 3.0 - B / 2.0, 2.0 * A / 3.0


def phase2_closeness(lam: np.ndarray, w_star: np.ndarray, w0: np.ndarray, tau: np.ndarray | float) -> np.ndarray:
    r"""Predicted Phase-II closeness :math:`\max(|1 - u/s^*|, |1 - s/s^*|)` (the phase detector's) from :func:`phase2_gaps`."""
    gu, gs = phase2_gaps(lam, w_star, w0, tau)
    return np.maximum(np.abs(gu), np.abs(gs))


def phase2_time(lam: np.ndarray, w_star: np.ndarray, w0: np.ndarray, eps: np.ndarray | float) -> np.ndarray:
    r"""Predicted :math:`T_2(\varepsilon) - T_1'`: the root :math:`\tau` of :func:`phase2_closeness` :math:`= \varepsilon`.

    :math:`\varepsilon \in (0, 1)`; ``0`` where the closeness is already below :math:`\varepsilon` at :math:`\tau = 0`.
    Accurate to a few percent once :math:`\varepsilon \lesssim 0.02` (first order in :math:`A, B`).
    """
    eps = np.atleast_1d(np.asarray(eps, float))
    if not np.all((eps > 0) & (eps < 1)):
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    lam = np.asarray(lam, float)
    f = lambda t, e: float(phase2_closeness(lam, w_star, w0, t)[0]) - e  # noqa: E731
    out = np.zeros(eps.shape)
    for j, e in enumerate(eps):
        if f(0.0, e) <= 0:
            continue
        hi = 1.0 / float(np.max(lam))
        while f(hi, e) > 0:
            hi *= 4.0
            if hi > 1e300:
                raise ValueError(f"eps = {e:g} is not reached by the tail relaxation of this problem")
        out[j] = brentq(f, 0.0, hi, args=(e,), xtol=1e-12 * hi, rtol=1e-10)
    return out


def phase2_asymptotic(eps: np.ndarray | float, d: int, a: float, kappa: float = 1.0) -> np.ndarray:
    r"""Mesoscopic asymptotic of :func:`phase2_time`:
    :math:`T_2 - T_1' \simeq H_{d,a}\,\big(\kappa C_a/(H_{d,a}\varepsilon)\big)^{a/(a-1)}`.

    For :math:`\lambda_i = i^{-a}/H_{d,a}`, :math:`s^* = 1` and tail coefficients :math:`w^{*2}_i` of mean
    :math:`\kappa` (``kappa``; :math:`|w^*|^2/d` for an isotropic random :math:`w^*`: the normalisation
    :math:`s^* = 1` is set by the few head modes, so :math:`\kappa` is random, not 1), the sums of
    :func:`phase2_deficits` become integrals, with :math:`q = (a-1)/a`, :math:`g = \Gamma(1 - 1/a)/a`:

    .. math:: A \simeq \frac{\kappa g}{H}\Big(\frac{8\tau}{H}\Big)^{-q}, \qquad
              B \simeq \frac{\kappa g}{H}\Big(\frac{\tau}{H}\Big)^{-q}\big(2\cdot 8^{-q} - 16^{-q}\big),

    so :func:`phase2_closeness` :math:`\simeq (\kappa C_a/H)(\tau/H)^{-q}`,
    :math:`C_a = g\max(8^{-q}/3 + 16^{-q}/2,\ \tfrac23 8^{-q})`. Valid where the modes being learned,
    :math:`x = (8\tau/H_{d,a})^{1/a}`, satisfy :math:`1 \ll x \ll d`. Exponent :math:`a/(a-1)`
    (:func:`phase2_exponent`), half of [P1]'s bound :math:`2a/(a-1)`.
    """
    a = check_greater("a", a, 1.0)
    d = check_int("d", d, 2)
    kappa = check_positive("kappa", kappa)
    q = (a - 1.0) / a
    g = gamma(1.0 - 1.0 / a) / a
    C = g * max(8.0 ** -q / 3.0 + 16.0 ** -q / 2.0, 2.0 * 8.0 ** -q / 3.0)
    H = harmonic(d, a)
    return H * (kappa * C / (H * np.asarray(eps, float))) ** (1.0 / q)


def phase2_exponent(a: float) -> float:
    r"""Asymptotic Phase-II exponent of the exact flow, :math:`T_2 - T_1' \propto \varepsilon^{-a/(a-1)}`
    (:func:`phase2_asymptotic`); [P1]'s :func:`t2_exponent` :math:`2a/(a-1)` is an upper bound."""
    a = check_greater("a", a, 1.0)
    return a / (a - 1)


def plateau_bound(eps: float, d: int, a: float) -> float:
    r"""[P1]'s plateau bound (up to constants): :math:`\mathrm{MSE}(T_2) - \sigma^{*2} \lesssim (\varepsilon^{-a}/d)^{1/3} + (\log d/d)^{1/3}`."""
    eps, d, a = check_positive("eps", eps), check_int("d", d, 2), check_positive("a", a)
    return (eps ** (-a) / d) ** (1 / 3) + (math.log(d) / d) ** (1 / 3)


def phase3_survival(lam: np.ndarray, tau: np.ndarray) -> np.ndarray:
    r"""Phase-III MSE ratio :math:`S_d(\tau) = \frac1d\sum_i e^{-16\lambda_i\tau}` (exact sum).

    With :math:`u = s = 1`, :math:`\dot w = -8\Sigma(w - w^*)`: each error mode decays as
    :math:`e^{-8\lambda_i\tau}`, so :math:`\mathrm{MSE}(T_2 + \tau) \approx \mathrm{MSE}(T_2)\,S_d(\tau)`.
    """
    lam = np.asarray(lam, float)
    tau = np.asarray(tau, float)
    return np.mean(np.exp(-16.0 * np.multiply.outer(tau, lam)), axis=-1)


def phase3_effective_age(lam: np.ndarray, mse_ratio: float) -> float:
    r"""Effective Phase-III age :math:`\tau_0`: the root of :math:`S_d(\tau_0) = \mathrm{MSE}(T_2)/\mathrm{MSE}(0)`.

    :math:`\mathrm{MSE}(T_2)\,S_d(\tau)` (:func:`phase3_survival`) treats the error at :math:`T_2` as spread
    evenly over the modes, but the head modes (:math:`i \lesssim x(T_2)`) are already learned by then; the
    error is :math:`O(x(T_2)/d)`. Anchoring :math:`S_d` at the age :math:`\tau_0` at which pure Phase-III decay
    from the start would have left the same MSE gives the form that holds at finite d
    (:func:`phase3_prediction`). ``mse_ratio`` in (0, 1].
    """
    r = float(mse_ratio)
    if not (0.0 < r <= 1.0):
        raise ValueError(f"mse_ratio must be in (0, 1] (MSE(T2)/MSE(0)), got {mse_ratio}")
    if r == 1.0:
        return 0.0
    lam = np.asarray(lam, float)
    hi = 1.0
    while phase3_survival(lam, hi) > r:
        hi *= 10.0
        if hi > 1e300:
            raise ValueError(f"mse_ratio {r:g} is below the survival floor of this spectrum")
    return float(brentq(lambda t: float(phase3_survival(lam, t)) - r, 0.0, hi, xtol=1e-12 * hi, rtol=1e-12))


def phase3_prediction(lam: np.ndarray, tau: np.ndarray, mse_T2: float, mse_0: float | None = None) -> np.ndarray:
    r"""Phase-III MSE :math:`\mathrm{MSE}(T_2 + \tau)`.

    ``mse_0 is None``: [P1]'s form :math:`\mathrm{MSE}(T_2)\,S_d(\tau)`; otherwise the effective-age form
    :math:`\mathrm{MSE}(T_2)\,S_d(\tau_0 + \tau)/S_d(\tau_0)` with :math:`\tau_0` from
    :func:`phase3_effective_age` (:math:`S_d(\tau_0) = \mathrm{MSE}(T_2)/\mathrm{MSE}(0)`).
    """
    tau = np.asarray(tau, float)
    if mse_0 is None:
        return mse_T2 * phase3_survival(lam, tau)
    tau0 = phase3_effective_age(lam, mse_T2 / mse_0)
    return mse_T2 * phase3_survival(lam, tau0 + tau) / phase3_survival(lam, tau0)


def phase3_asymptotic(tau: np.ndarray, d: int, a: float) -> np.ndarray:
    r"""Mesoscopic asymptotic of :math:`S_d`: :math:`1 - \Gamma(1 - 1/a)\,x/d`, :math:`x = (16\tau/H_{d,a})^{1/a}`,
    valid for :math:`1 \ll x \ll d` (a > 1)."""
    a = check_greater("a", a, 1.0)
    d = check_int("d", d, 2)
    x = (16.0 * np.asarray(tau, float) / harmonic(d, a)) ** (1.0 / a)
    return 1.0 - gamma(1.0 - 1.0 / a) * x / d


def phase3_window(d: int, a: float) -> tuple[float, float]:
    r"""The :math:`\tau` range where :math:`10 \le x \le d/10` (:math:`x = (16\tau/H_{d,a})^{1/a}`), the asymptotic's regime."""
    H = harmonic(check_int("d", d, 2), check_greater("a", a, 1.0))
    return H * 10.0**a / 16.0, H * (d / 10.0) ** a / 16.0
