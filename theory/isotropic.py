r"""(A) Isotropic data, :math:`\Sigma = I`: the closed 2D system in :math:`(u, s) = (w\cdot w^*, |w|^2)`.

With :math:`\Sigma = I` every :math:`\Sigma`-shift of a statistic is the statistic itself, so the
identity family (:math:`A = I`) closes on :math:`(u, s)`; :math:`\mathrm{tr}\,\Sigma = d`.
Derived by :mod:`phasedyn.theory.derive`, for the phase-retrieval loss this gives (docs/theory.md §3A)

.. math:: \dot u = 12(s^* - s)u, \qquad \dot s = 8(s^* - 3s)s + 16u^2,

online SGD adds :math:`\eta\,\mathbb E|\nabla\ell|^2` (with its :math:`d\,\mathbb E[(\partial_g\ell)^2]`
term) to :math:`\dot s`, and population GD is the exact 2D map of :func:`derive.quadratic_gd_map`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import sympy as sp

from . import derive as D
from . import symbols as S
from .validate import check_choice, check_finite, check_positive
from .system import System

Optimizer = Literal["gf", "sgd", "gd"]

#: the identity-weight family for Σ = I: every shift collapses to (u, s, s*), tr Σᵏ = d
IDENTITY = D.Family(ww=lambda k: S.s, ws=lambda k: S.u, ss=lambda k: S.s_star, tr=lambda k: S.d)


def isotropic_system(optimizer: Optimizer = "gf", sample_loss: sp.Expr = S.phase_retrieval_loss) -> System:
    r"""The isotropic (u, s) system for ``optimizer`` in {``"gf"``, ``"sgd"``, ``"gd"``} (cached).

    ``"gf"``: gradient flow :math:`\dot w = -\nabla L`. ``"sgd"``: online SGD mean field in
    :math:`t = \eta k` (the :math:`O(\eta)` term included). ``"gd"``: population GD as an exact map
    (one application = one step = time :math:`\eta`). States ``(u, s)``; parameters
    ``(s_star, sigma, d)`` plus ``eta`` for ``"sgd"``/``"gd"``. Observables: ``loss``, ``mse``.
    ``sample_loss`` is any polynomial in ``(g, h, xi)`` (default ``((g² − h² − ξ)²``).
    """
    check_choice("optimizer", optimizer, ("gf", "sgd", "gd"))
    return _isotropic_system(optimizer, sp.sympify(sample_loss))


@lru_cache(maxsize=32)
def _isotropic_system(optimizer: Optimizer, sample_loss: sp.Expr) -> System:
    coef = D.derive_loss(sample_loss)
    subs = D.fields(S.u, S.s, S.s_star)
    if optimizer == "gd":
        rhs = (D.linear_gd_map(coef, IDENTITY, subs), D.quadratic_gd_map(coef, IDENTITY, subs))
    else:
        sgd = optimizer == "sgd"
        rhs = (D.linear_flow(coef, IDENTITY, subs), D.quadratic_flow(coef, IDENTITY, subs, sgd=sgd))
    params = (S.s_star, S.sigma, S.d) + ((S.eta,) if optimizer != "gf" else ())
    loss_tag = "" if sample_loss == S.phase_retrieval_loss else f"[loss={sp.sstr(sample_loss)}]"
    return System(
        name=f"isotropic-{optimizer}{loss_tag}",
        states=(S.u, S.s),
        params=params,
        rhs=rhs,
        observables=(("loss", D.population_loss(coef, subs)), ("mse", D.mse(IDENTITY))),
        kind="map" if optimizer == "gd" else "flow",
        description={"gf": "isotropic, gradient flow", "sgd": "isotropic, online SGD (mean field)",
                     "gd": "isotropic, population GD (exact map)"}[optimizer],
    )


def isotropic_params(
    optimizer: Optimizer = "gf", s_star: float = 1.0, sigma: float = 0.0, d: float = 1000, eta: float | None = None
) -> dict[str, float]:
    """Parameter dict for :func:`isotropic_system` with validation (``eta`` required for sgd/gd)."""
    check_choice("optimizer", optimizer, ("gf", "sgd", "gd"))
    out = {"s_star": check_positive("s_star", s_star), "sigma": check_finite("sigma", sigma),
           "d": check_positive("d", d)}
    if optimizer != "gf":
        if eta is None:
            raise ValueError(f"eta is required for optimizer {optimizer!r} (allowed range (0, inf))")
        out["eta"] = check_positive("eta", eta)
    return out


# --------------------------------------------------------------------------- analysis
def fixed_points(system: System | None = None) -> list[dict[sp.Symbol, sp.Expr]]:
    r"""All fixed points of the gradient-flow system, solved symbolically.

    For phase retrieval: :math:`(0, 0)` (the origin :math:`w = 0`, a local maximum of :math:`L`), :math:`(\pm s^*, s^*)`
    (the global minima :math:`w = \pm w^*`) and the saddle :math:`(0, s^*/3)`.
    """
    system = system or isotropic_system("gf")
    if system.kind != "flow":
        raise ValueError("fixed_points needs a flow system (kind='flow')")
    return sp.solve(list(system.rhs), list(system.states), dict=True)


def stability(system: System | None = None) -> list[tuple[dict, dict[sp.Expr, int]]]:
    """Each fixed point with the eigenvalues (and multiplicities) of the Jacobian there."""
    system = system or isotropic_system("gf")
    J = system.jacobian()
    return [(fp, J.xreplace(fp).eigenvals()) for fp in fixed_points(system)]


@lru_cache(maxsize=8)
def _escape_constants(sample_loss: sp.Expr = S.phase_retrieval_loss) -> dict[str, sp.Expr]:
    r"""Linearisation of the gradient flow around :math:`u = 0`, derived from the system.

    At :math:`u = 0`: :math:`\dot u = (A - B s)u` and :math:`\dot s = r s (1 - s/K)` (logistic),
    with ``A``, ``B``, ``r``, ``K`` read off the derived right-hand side. The escape rate is the
    unstable eigenvalue at the saddle :math:`(0, K)`: :math:`\rho = A - BK` (:math:`8s^*` for phase retrieval).
    """
    system = isotropic_system("gf", sample_loss)
    f_u, f_s = system.rhs
    lin_u = sp.expand(sp.diff(f_u, S.u).xreplace({S.u: 0}))
    A = lin_u.xreplace({S.s: 0})
    B = -sp.diff(lin_u, S.s)
    f_s0 = sp.expand(f_s.xreplace({S.u: 0}))
    r = sp.diff(f_s0, S.s).xreplace({S.s: 0})
    quad = sp.diff(f_s0, S.s, 2) / 2
    if sp.simplify(f_s0 - (r * S.s + quad * S.s**2)) != 0 or sp.simplify(sp.diff(lin_u, S.s, 2)) != 0:
        raise ValueError("escape_time needs u̇ linear in s and ṡ logistic in s at u = 0")
    K = sp.simplify(-r / quad)
    return {"A": A, "B": B, "r": r, "K": K, "rho": sp.simplify(A - B * K)}


def escape_rate(s_star: float = 1.0) -> float:
    r"""Escape rate :math:`\rho = 8 s^*` (unstable eigenvalue at the saddle :math:`(0, s^*/3)`), from the derived system."""
    return float(_escape_constants()["rho"].xreplace({S.s_star: check_positive("s_star", s_star)}))


def escape_time(u0: float, s0: float = 1.0, s_star: float = 1.0, delta: float = 0.1) -> float:
    r"""Predicted first time :math:`|u| \ge \delta` from :math:`(u_0, s_0)`, gradient flow, small :math:`u`.

    Linearised in :math:`u` (valid for :math:`|u_0| \ll \delta \ll 1`), :math:`s` is logistic,
    :math:`s(t) = K/(1 + c\,e^{-rt})`, :math:`c = K/s_0 - 1`, and

    .. math:: \log\frac{|u(t)|}{|u_0|} = A t - \frac{BK}{r}\log\frac{e^{rt} + c}{1 + c},

    solved for :math:`|u(t)| = \delta` by a scalar root find. For :math:`t \gg 1/r` this is
    :math:`T_1 \approx [\log(\delta/|u_0|) + \tfrac{BK}{r}\log(s_0/K)]/\rho`.
    """
    from scipy.optimize import brentq

    u0 = abs(check_finite("u0", u0))
    if u0 == 0:
        raise ValueError("u0 must be non-zero: from u0 = 0 the flow never escapes")
    s0 = check_positive("s0", s0)
    delta = check_positive("delta", delta)
    if delta <= u0:
        return 0.0
    c = {k: float(v.xreplace({S.s_star: check_positive("s_star", s_star)})) for k, v in _escape_constants().items()}
    A, B, r, K = c["A"], c["B"], c["r"], c["K"]
    cc = K / s0 - 1.0

    def log_growth(t: float) -> float:
        # log((e^{rt} + c)/(1 + c)) written to stay finite for large rt
        return A * t - (B * K / r) * (r * t + np.log1p(cc * np.exp(-r * t)) - np.log1p(cc))

    target = np.log(delta / u0)
    hi = 1.0
    while log_growth(hi) < target:
        hi *= 2
        if hi > 1e12:
            raise ValueError("escape_time: u does not reach delta (no growth from this start)")
    return float(brentq(lambda t: log_growth(t) - target, 0.0, hi, xtol=1e-14, rtol=1e-13))


def escape_time_d(d: float, s0: float = 1.0, s_star: float = 1.0, delta: float = 0.1) -> float:
    r"""Predicted escape time as a function of :math:`d` for a uniform start on the sphere.

    Uses the typical overlap :math:`|u_0| = \sqrt{s_0 s^*/d}` (rms of :math:`w\cdot w^*` for
    :math:`w` uniform on the sphere of radius :math:`\sqrt{s_0}` and :math:`|w^*|^2 = s^*`), so
    :math:`T_1 = \log d/(2\rho) + O(1)`: the escape time grows like :math:`\log d`.
    """
    d = check_positive("d", d)
    return escape_time(np.sqrt(s0 * s_star / d), s0, s_star, delta)
