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
from ._solve import Solution
from ._verbs import check_kind, evolve, weights
from .model import Model
from .problem import Problem
from .system import System
from .validate import check_choice, check_finite, check_nonnegative, check_positive

Optimizer = Literal["gf", "sgd", "gd", "spherical-sgd"]
OPTIMIZERS = ("gf", "sgd", "gd", "spherical-sgd")
ModelLike = Model | str | sp.Expr | None

#: the identity-weight family for Σ = I: every shift collapses to (u, s, s*), tr Σᵏ = d
IDENTITY = D.Family(ww=lambda k: S.s, ws=lambda k: S.u, ss=lambda k: S.s_star, tr=lambda k: S.d)


def isotropic_system(optimizer: Optimizer = "gf", model: Model | str | sp.Expr | None = None) -> System:
    r"""The isotropic (u, s) system for ``optimizer`` in {``"gf"``, ``"sgd"``, ``"gd"``, ``"spherical-sgd"``} (cached).

    ``"gf"``: gradient flow :math:`\dot w = -\nabla L`. ``"sgd"``: online SGD mean field in
    :math:`t = \eta k` (the :math:`O(\eta)` term included). ``"spherical-sgd"``: online SGD renormalised to
    :math:`|w| = 1` every step (:func:`~phasedyn.theory.derive.spherical_linear_flow`, its :math:`O(\eta)` terms
    included; on :math:`\Sigma = I` the :math:`\Sigma`-norm is the same). ``"gd"``: population GD as an exact map
    (one application = one step = time :math:`\eta`). States ``(u, s)``; parameters
    ``(s_star, sigma, d)`` plus ``eta`` for ``"sgd"``/``"gd"``. Observables: ``loss``, ``mse``.
    ``model`` is a :class:`~phasedyn.theory.model.Model` (or its loss: text or a sympy polynomial in
    ``(g, h, xi)``); default phase retrieval :math:`(g^2 - h^2 - \xi)^2`.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    return _isotropic_system(optimizer, Model.coerce(model))


@lru_cache(maxsize=32)
def _isotropic_system(optimizer: Optimizer, model: Model) -> System:
    coef = D.derive_loss(model.expr)
    subs = D.fields(S.u, S.s, S.s_star)
    if optimizer == "gd":
        rhs = (D.linear_gd_map(coef, IDENTITY, subs), D.quadratic_gd_map(coef, IDENTITY, subs))
    elif optimizer == "spherical-sgd":
        rhs = (D.spherical_linear_flow(coef, IDENTITY, IDENTITY, subs),
               D.spherical_quadratic_flow(coef, IDENTITY, IDENTITY, subs))
    else:
        sgd = optimizer == "sgd"
        rhs = (D.linear_flow(coef, IDENTITY, subs), D.quadratic_flow(coef, IDENTITY, subs, sgd=sgd))
    params = (S.s_star, S.sigma, S.d) + ((S.eta,) if optimizer != "gf" else ())
    return System(
        name=f"isotropic-{optimizer}{model.tag}",
        states=(S.u, S.s),
        params=params,
        rhs=rhs,
        observables=(("loss", D.population_loss(coef, subs)), ("mse", D.mse(IDENTITY))),
        kind="map" if optimizer == "gd" else "flow",
        description={"gf": "isotropic, gradient flow", "sgd": "isotropic, online SGD (mean field)",
                     "spherical-sgd": "isotropic, spherical online SGD (mean field)",
                     "gd": "isotropic, population GD (exact map)"}[optimizer],
    )


def isotropic_params(
    optimizer: Optimizer = "gf", s_star: float = 1.0, sigma: float = 0.0, d: float = 1000, eta: float | None = None
) -> dict[str, float]:
    """Parameter dict for :func:`isotropic_system` with validation (``eta`` required for sgd/gd)."""
    check_choice("optimizer", optimizer, OPTIMIZERS)
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


@lru_cache(maxsize=16)
def _linearisation(model: Model) -> tuple[sp.Expr, sp.Expr]:
    r"""The gradient flow near :math:`u = 0`, read off the model's derived system:
    :math:`\dot u = \lambda_u(s)\,u + O(u^3)` and :math:`\dot s = f_0(s) + O(u^2)`; returns
    :math:`(\lambda_u, f_0)` as polynomials in :math:`(s, s^*)`."""
    f_u, f_s = isotropic_system("gf", model).rhs
    return sp.expand(sp.diff(f_u, S.u).xreplace({S.u: 0})), sp.expand(f_s.xreplace({S.u: 0}))


@lru_cache(maxsize=16)
def _escape_constants(model: Model = Model()) -> dict[str, sp.Expr] | None:
    r"""Closed form of the linearisation when it has phase retrieval's shape, else ``None``.

    At :math:`u = 0`: :math:`\dot u = (A - B s)u` and :math:`\dot s = r s (1 - s/K)` (logistic),
    with ``A``, ``B``, ``r``, ``K`` read off the derived right-hand side; the escape rate is the
    unstable eigenvalue at the saddle :math:`(0, K)`: :math:`\rho = A - BK` (:math:`8s^*` for phase retrieval).
    """
    lin_u, f_s0 = _linearisation(model)
    A = lin_u.xreplace({S.s: 0})
    B = -sp.diff(lin_u, S.s)
    r = sp.diff(f_s0, S.s).xreplace({S.s: 0})
    quad = sp.diff(f_s0, S.s, 2) / 2
    if sp.expand(f_s0 - (r * S.s + quad * S.s**2)) != 0 or sp.expand(sp.diff(lin_u, S.s, 2)) != 0 or quad == 0:
        return None
    K = sp.simplify(-r / quad)
    return {"A": A, "B": B, "r": r, "K": K, "rho": sp.simplify(A - B * K)}


def saddle(s_star: float = 1.0, model: Model | str | sp.Expr | None = None, s0: float = 1.0) -> dict[str, float]:
    r"""The point :math:`(u, s) = (0, K)` that :math:`s` relaxes to at :math:`u = 0` from :math:`s(0) = s_0`.

    :math:`K` is the root of :math:`f_0(s) = \dot s|_{u=0}` that the scalar flow reaches from :math:`s_0`,
    read off the model's derived system (phase retrieval: :math:`K = s^*/3`, the saddle of docs/theory.md
    §3A; the phase detector's :math:`T_1'` is the time from which :math:`s \ge K`). ``ValueError`` when
    :math:`s` grows without bound at :math:`u = 0`.
    """
    model = Model.coerce(model)
    s_star, s0 = check_positive("s_star", s_star), check_nonnegative("s0", s0)
    f0 = sp.Poly(_linearisation(model)[1].xreplace({S.s_star: s_star}), S.s)
    roots = sorted(float(sp.re(z)) for z in f0.nroots(n=30) if abs(sp.im(z)) < 1e-12 and sp.re(z) >= -1e-14)
    value = float(f0.eval(s0))
    if value == 0:
        K = s0
    elif value > 0:
        above = [z for z in roots if z > s0]
        if not above:
            raise ValueError(f"with the loss {model.loss}, s grows without bound at u = 0 from s0 = {s0}")
        K = above[0]
    else:
        K = max([0.0] + [z for z in roots if z < s0])
    return {"u": 0.0, "s": max(K, 0.0)}


def saddle_level(s_star: float = 1.0, model: Model | str | sp.Expr | None = None, sigma: float = 0.0) -> float | None:
    r"""The :math:`s` of the saddles :math:`\{u = 0,\ \alpha(s, 0) = 0\}` of the population loss, for any spectrum.

    Critical points with :math:`u = 0`, :math:`w \ne 0` need :math:`\nabla L = \alpha\Sigma w = 0`, i.e.
    :math:`\alpha(s, u = 0) = 0` (docs/theory.md §1–2); returns the smallest positive root, read off the
    model's derived :math:`\alpha` (phase retrieval: :math:`\alpha = 12s - 4s^*`, so :math:`s^*/3`), or ``None``
    if there is none. The phase detector's :math:`T_1'` is the time from which :math:`s` stays above it.
    """
    model = Model.coerce(model)
    s_star, sigma = check_positive("s_star", s_star), check_nonnegative("sigma", sigma)
    alpha = D.derive_loss(model.expr).alpha.xreplace({S.u: 0, S.s_star: s_star, S.sigma: sigma})
    if not model.is_polynomial:
        return _first_positive_root(alpha, s_star)
    poly = sp.Poly(sp.expand(alpha), S.s)
    if poly.degree() < 1:
        return None
    roots = sorted(float(sp.re(z)) for z in poly.nroots(n=30) if abs(sp.im(z)) < 1e-12 and sp.re(z) > 0)
    return roots[0] if roots else None


def _first_positive_root(alpha: sp.Expr, s_star: float) -> float | None:
    """The smallest root of a numeric (quadrature) :math:`\alpha(s)` in :math:`(0, 100 s^*]`: the first sign change
    on a log grid of 400 points, then bisection to round-off (``None`` if :math:`\alpha` keeps one sign)."""
    from scipy.optimize import brentq

    f = sp.lambdify(S.s, alpha, modules="jax")
    grid = np.geomspace(1e-4 * s_star, 100 * s_star, 400)
    vals = np.asarray(f(grid), float)
    change = np.flatnonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)
    if not change.size:
        return None
    i = int(change[0])
    return float(brentq(lambda x: float(f(x)), grid[i], grid[i + 1], xtol=1e-14, rtol=1e-14))


def escape_rate(s_star: float = 1.0, model: Model | str | sp.Expr | None = None, s0: float = 1.0) -> float:
    r"""Escape rate :math:`\rho = \lambda_u(K)`: the eigenvalue of the :math:`u` direction at the point
    :math:`(0, K)` of :func:`saddle`, read off the model's derived system (phase retrieval:
    :math:`\rho = 8s^*` at :math:`(0, s^*/3)`).

    :math:`\rho \le 0` means :math:`u` decays near :math:`u = 0`: from a random start the flow does not
    escape (for the loss :math:`(g^2 - h^2)^2(1 + g^2)`, :math:`s \to 0` and :math:`\rho = -18` at
    :math:`s^* = 1`: :math:`w = 0` is a local minimum).
    """
    model = Model.coerce(model)
    K = saddle(s_star, model, s0)["s"]
    return float(_linearisation(model)[0].xreplace({S.s_star: s_star, S.s: K}))


def escape_time(u0: float, s0: float = 1.0, s_star: float = 1.0, delta: float = 0.1,
                model: Model | str | sp.Expr | None = None) -> float:
    r"""Predicted first time :math:`|u| \ge \delta` from :math:`(u_0, s_0)`, gradient flow, small :math:`u`.

    Linearised in :math:`u` (valid for :math:`|u_0| \ll \delta \ll 1`):
    :math:`\log|u(t)/u_0| = \int_0^t \lambda_u(s(\tau))\,d\tau` with :math:`\dot s = f_0(s)`
    (:func:`saddle`). For phase retrieval's shape (:math:`\lambda_u = A - Bs`, :math:`s` logistic,
    :math:`s(t) = K/(1 + c\,e^{-rt})`, :math:`c = K/s_0 - 1`) this is

    .. math:: \log\frac{|u(t)|}{|u_0|} = A t - \frac{BK}{r}\log\frac{e^{rt} + c}{1 + c},

    solved for :math:`|u(t)| = \delta` by a scalar root find; for :math:`t \gg 1/r`,
    :math:`T_1 \approx [\log(\delta/|u_0|) + \tfrac{BK}{r}\log(s_0/K)]/\rho`. Other losses integrate the
    two scalar equations (scipy LSODA, rtol 1e-11). ``ValueError`` if :math:`\rho \le 0` (no escape).
    """
    from scipy.optimize import brentq

    model = Model.coerce(model)
    u0 = abs(check_finite("u0", u0))
    if u0 == 0:
        raise ValueError("u0 must be non-zero: from u0 = 0 the flow never escapes")
    s0 = check_positive("s0", s0)
    delta = check_positive("delta", delta)
    s_star = check_positive("s_star", s_star)
    if delta <= u0:
        return 0.0
    rho = escape_rate(s_star, model, s0)
    if rho <= 0:
        raise ValueError(f"with the loss {model.loss}, u decays near u = 0 (rate {rho:.6g} <= 0): no escape")
    target = np.log(delta / u0)
    consts = _escape_constants(model)
    if consts is None:
        return _escape_time_numeric(model, s0, s_star, target)
    c = {k: float(v.xreplace({S.s_star: s_star})) for k, v in consts.items()}
    A, B, r, K = c["A"], c["B"], c["r"], c["K"]
    cc = K / s0 - 1.0

    def log_growth(t: float) -> float:
        # log((e^{rt} + c)/(1 + c)) written to stay finite for large rt
        return A * t - (B * K / r) * (r * t + np.log1p(cc * np.exp(-r * t)) - np.log1p(cc))

    hi = 1.0
    while log_growth(hi) < target:
        hi *= 2
        if hi > 1e12:
            raise ValueError("escape_time: u does not reach delta (no growth from this start)")
    return float(brentq(lambda t: log_growth(t) - target, 0.0, hi, xtol=1e-14, rtol=1e-13))


def _escape_time_numeric(model: Model, s0: float, s_star: float, target: float) -> float:
    """First t with log|u(t)/u0| = target for the linearised flow (log u, s), by LSODA with an event."""
    from scipy.integrate import solve_ivp

    lin_u, f_s0 = (sp.lambdify(S.s, e.xreplace({S.s_star: s_star}), "math") for e in _linearisation(model))

    def event(t, y):
        return y[0] - target

    event.terminal, event.direction = True, 1
    res = solve_ivp(lambda t, y: [lin_u(y[1]), f_s0(y[1])], (0.0, 1e6), [0.0, s0], method="LSODA",
                    rtol=1e-11, atol=1e-13, events=event)
    if not res.t_events[0].size:
        raise ValueError("escape_time: u does not reach delta (no growth from this start)")
    return float(res.t_events[0][0])


def escape_time_d(d: float, s0: float = 1.0, s_star: float = 1.0, delta: float = 0.1,
                  model: Model | str | sp.Expr | None = None) -> float:
    r"""Predicted escape time as a function of :math:`d` for a uniform start on the sphere.

    Uses the typical overlap :math:`|u_0| = \sqrt{s_0 s^*/d}` (rms of :math:`w\cdot w^*` for
    :math:`w` uniform on the sphere of radius :math:`\sqrt{s_0}` and :math:`|w^*|^2 = s^*`), so
    :math:`T_1 = \log d/(2\rho) + O(1)`: the escape time grows like :math:`\log d`.
    """
    d = check_positive("d", d)
    return escape_time(np.sqrt(s0 * s_star / d), s0, s_star, delta, model)


# --------------------------------------------------------------------------- the verbs (docs/theory.md §6)
def system(problem: Problem | None = None, optimizer: Optimizer = "gf", model: ModelLike = None) -> System:
    r"""The (u, s) system of ``problem`` (any isotropic problem; it carries no :math:`d`-dependence but through
    ``params``) for ``optimizer`` and ``model``: :func:`isotropic_system`."""
    if problem is not None:
        check_kind(problem, ("isotropic",), "isotropic")
        _check_identity(problem)
    return isotropic_system(optimizer, model)


def params(problem: Problem, optimizer: Optimizer = "gf", eta: float | None = None) -> dict[str, float]:
    r"""Parameters ``s_star``, ``sigma``, ``d`` (+ ``eta``) of ``problem``: :func:`isotropic_params`."""
    check_kind(problem, ("isotropic",), "isotropic")
    return isotropic_params(optimizer, problem.s_star, problem.sigma, problem.d, eta)


def state(problem: Problem, w0=None) -> dict[str, float | np.ndarray]:
    r"""Initial state :math:`u = w\cdot w^*`, :math:`s = |w|^2` of ``w0`` (``(..., d)``; default ``problem.w0``)."""
    check_kind(problem, ("isotropic",), "isotropic")
    return problem.statistics(weights(problem, w0))


def solve(problem: Problem, optimizer: Optimizer = "gf", *, eta: float | None = None, t1: float | None = None,
          ts=None, steps: int | None = None, record_steps=None, w0=None, model: ModelLike = None,
          **opts) -> Solution:
    r"""The (u, s) dynamics of ``problem`` from ``w0`` (default ``problem.w0``; leading axes a batch).

    Gradient flow and online SGD are flows (``t1`` or ``ts``; ``eta`` for SGD), population GD the exact map
    (``steps``, ``record_steps``); see :func:`~phasedyn.theory._verbs.evolve`. Other options go to
    :func:`~phasedyn.theory.solve` / :func:`~phasedyn.theory.iterate`.
    """
    sys_ = system(problem, optimizer, model)
    return evolve(sys_, state(problem, w0), params(problem, optimizer, eta), t1=t1, ts=ts, steps=steps,
                  record_steps=record_steps, **opts)


def predictions(problem: Problem, model: ModelLike = None, delta: float = 0.1, w0=None) -> dict[str, float | None]:
    r"""The isotropic predictions for ``problem``'s start (docs/theory.md §3A), derived from ``model``:

    ``rho`` (:func:`escape_rate` at the point :func:`saddle` that :math:`s` relaxes to from :math:`s_0`; ``rho_at``
    ``"saddle"``: the isotropic start :math:`|w| = 1` reaches it before :math:`u` grows, unlike power-law data,
    whose ``rho`` is taken at ``"origin"``),
    ``saddle_s`` (:func:`saddle_level`, :math:`s^*/3` for phase retrieval), ``T1`` (:func:`escape_time` of
    :math:`|u_0|` to ``delta``; ``None`` when :math:`\rho \le 0`: no escape) and ``T1_d`` (:func:`escape_time_d`,
    the typical start on the sphere). ``w0`` (one ``(d,)`` start) defaults to ``problem.w0``.
    """
    check_kind(problem, ("isotropic",), "isotropic")
    model = Model.coerce(model)
    st = problem.statistics(weights(problem, w0).reshape(problem.d))
    rho = escape_rate(problem.s_star, model, st["s"])
    escapes = rho > 0 and st["u"] != 0
    return {
        "rho": rho, "rho_at": "saddle", "saddle_s": saddle_level(problem.s_star, model, problem.sigma),
        "T1": escape_time(st["u"], st["s"], problem.s_star, delta, model) if escapes else None,
        "T1_d": escape_time_d(problem.d, st["s"], problem.s_star, delta, model) if rho > 0 else None,
    }


def _check_identity(problem: Problem) -> None:
    if not np.allclose(problem.lam, 1.0, rtol=0, atol=1e-12):
        raise ValueError("phasedyn.theory.isotropic needs Sigma = I (every eigenvalue 1); for other spectra use "
                         "phasedyn.theory.powerlaw (any diagonal spectrum) or phasedyn.theory.spiked")
