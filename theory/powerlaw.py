r"""(B) Power-law data: the three ways to compute the dynamics, and [P1]'s predictions (docs/theory.md §3B).

Solvers of the same dynamics (each usable alone; tests check them against each other):

* :func:`exact` — the per-mode system, i.e. the :class:`~phasedyn.theory.blocks.BlockSystem` with one
  block per eigen-direction (:math:`B = d`); :func:`blocks` with :math:`B < d` log-spaced blocks;
* :func:`hierarchy` — :math:`u^{(k)}, s^{(k)}`, :math:`k \le K`, with a closure
  (:mod:`~phasedyn.theory.hierarchy`);
* :func:`drive_modes` — the remedy for Phase III: the per-mode linear equations
  :math:`\dot w_i = -\lambda_i(\alpha(t) w_i + \beta(t) w^*_i)` driven by a low-dimensional solution's
  :math:`u(t), s(t)` (the hierarchy alone cannot resolve the spectral tail).

Predictions of [P1] (arXiv:2511.18661), each a function with its formula in the docstring:
:func:`escape_rate` (secular equation) and :func:`escape_rate_eig`, :func:`escape_time`,
:func:`t2_exponent`, :func:`plateau_bound`, :func:`phase3_survival`, :func:`phase3_asymptotic`, and
:func:`phase3_prediction` with its finite-d correction :func:`phase3_effective_age`.

Beyond [P1]: Phase II is the same linear relaxation of the spectral tail as Phase III, seen through
:math:`(u, s)` while the learned head follows it adiabatically: :func:`phase2_gaps`, :func:`phase2_closeness`,
:func:`phase2_time` (finite d, a few percent), :func:`phase2_asymptotic` and :func:`phase2_exponent`
(:math:`a/(a-1)`, the large-d exponent, against [P1]'s upper bound :math:`2a/(a-1)`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.optimize import brentq
from scipy.special import gamma

from . import derive as D
from . import symbols as S
from .validate import check_choice, check_greater, check_int, check_positive
from .blocks import BlockSystem, block_params, block_state, make_blocks
from .hierarchy import Closure, hierarchy_params, hierarchy_state, hierarchy_system
from .model import Model
from .problem import Problem, harmonic
from ._solve import Solution, iterate, solve

Optimizer = str
ModelLike = Model | str | sp.Expr | None


# ----------------------------------------------------------------------------- solvers
def blocks(problem: Problem, B: int | None = None, optimizer: Optimizer = "gf", *, eta: float | None = None,
           t1: float | None = None, steps: int | None = None, ts=None, record_steps=None, w0=None,
           model: ModelLike = None, **solve_opts) -> Solution:
    r"""Solve the spectral-block system with ``B`` log-spaced blocks (``None``: :math:`B = d`, exact).

    Gradient flow and online SGD are flows (give ``t1`` or ``ts``; ``eta`` is required for sgd);
    population GD is the exact map (give ``steps``). ``w0`` (``(..., d)``) defaults to ``problem.w0``;
    its leading axes are a batch. ``model``: the per-sample loss (default phase retrieval). Extra keyword
    arguments go to :func:`~phasedyn.theory.solve` / :func:`~phasedyn.theory.iterate`.
    """
    check_choice("optimizer", optimizer, ("gf", "sgd", "gd"))
    bl = make_blocks(problem.lam, B)
    system = BlockSystem(bl.B, optimizer, model)
    if optimizer != "gf":
        eta = check_positive("eta", eta)
    params = block_params(problem, bl, eta or 0.0)
    y0 = block_state(problem, bl, problem.w0 if w0 is None else w0)
    if system.kind == "map":
        if steps is None:
            raise ValueError("population GD (optimizer='gd') needs steps")
        return iterate(system, y0, params, steps, record_steps=record_steps, **solve_opts)
    return solve(system, y0, params, t1, ts=ts, **solve_opts)


def exact(problem: Problem, optimizer: Optimizer = "gf", *, method: str = "auto", **kwargs) -> Solution:
    """The exact per-mode system (one block per eigen-direction).

    ``method="auto"``: gradient flow uses the stiffness-free exponential integrator
    (:func:`~phasedyn.theory.expint.solve_modes`; give ``ts``, optional ``w0``, ``rtol``, ``atol``,
    ``max_steps``), fast at d = 10⁴ up to t ~ d^a; online SGD and GD use :func:`blocks` with
    :math:`B = d`. ``method="blocks"`` forces the latter (diffrax; ``solver="kvaerno5"`` for stiff runs).
    """
    check_choice("method", method, ("auto", "blocks"))
    if method == "auto" and optimizer == "gf":
        from .expint import solve_modes

        ts = kwargs.pop("ts", None)
        t1 = kwargs.pop("t1", None)
        if ts is None:
            if t1 is None:
                raise ValueError("give t1 (final time) or ts (save times)")
            from ._solve import log_grid

            ts = log_grid(t1, kwargs.pop("n_save", 200))
        kwargs.pop("eta", None)
        unknown = sorted(set(kwargs) - {"w0", "rtol", "atol", "max_steps", "devices", "model"})
        if unknown:
            raise ValueError(f"exact(method='auto') for gradient flow takes ts or t1 (+ n_save), w0, rtol, atol, "
                             f"max_steps, devices, model; got {', '.join(unknown)} (method='blocks' takes diffrax "
                             "options)")
        return solve_modes(problem, ts, **kwargs)[0]
    return blocks(problem, None, optimizer, **kwargs)


def hierarchy(problem: Problem, K: int, closure: Closure = "top", optimizer: Optimizer = "gf", *,
              eta: float | None = None, t1: float | None = None, steps: int | None = None, ts=None,
              record_steps=None, w0=None, model: ModelLike = None, **solve_opts) -> Solution:
    """Solve the hierarchy truncated at depth ``K`` with ``closure`` (see :mod:`~phasedyn.theory.hierarchy`).

    The solution's ``"u_1"``/``"s_1"`` are :math:`u`, :math:`s`; ``"u_0"``, ``"s_0"`` give the MSE.
    """
    system = hierarchy_system(check_int("K", K, 1), optimizer, model)
    params = hierarchy_params(problem, K, closure, eta, optimizer)
    y0 = hierarchy_state(problem, problem.w0 if w0 is None else w0, K)
    if system.kind == "map":
        if steps is None:
            raise ValueError("population GD (optimizer='gd') needs steps")
        return iterate(system, y0, params, steps, record_steps=record_steps, **solve_opts)
    return solve(system, y0, params, t1, ts=ts, **solve_opts)


def drive_modes(problem: Problem, t: np.ndarray, u: np.ndarray, s: np.ndarray,
                w0: np.ndarray | None = None, model: ModelLike = None) -> np.ndarray:
    r"""Per-mode weights :math:`w_i(t)` from the linear equations driven by given :math:`u(t), s(t)`.

    Gradient flow per mode: :math:`\dot w_i = -\lambda_i(\alpha(t)w_i + \beta(t)w^*_i)` with
    :math:`\nabla L = \alpha\Sigma w + \beta\Sigma w^*` from :func:`~phasedyn.theory.derive_loss` of
    ``model`` (phase retrieval: :math:`\alpha = 12s - 4s^*`, :math:`\beta = -8u`). On each grid interval :math:`\alpha, \beta` are
    frozen at the interval mean (exponential midpoint rule, second order) and the linear equation is
    solved exactly:
    :math:`w_i \leftarrow e^{-\lambda_i\bar\alpha h}w_i - \frac{\bar\beta}{\bar\alpha}(1 - e^{-\lambda_i\bar\alpha h})w^*_i`.
    Unconditionally stable, so the stiff tail (:math:`\lambda_d = d^{-a}/H`) costs nothing extra.
    Returns ``(len(t), d)``.
    """
    t, u, s = (np.asarray(x, float) for x in (t, u, s))
    if not (t.shape == u.shape == s.shape) or t.ndim != 1 or np.any(np.diff(t) <= 0):
        raise ValueError("t, u, s must be 1-D arrays of one length with t strictly increasing")
    coef = D.derive_loss(Model.coerce(model).expr)
    f_alpha = sp.lambdify((S.s, S.u, S.s_star, S.sigma), coef.alpha, "numpy")
    f_beta = sp.lambdify((S.s, S.u, S.s_star, S.sigma), coef.beta, "numpy")
    alpha = np.broadcast_to(f_alpha(s, u, problem.s_star, problem.sigma), t.shape)
    beta = np.broadcast_to(f_beta(s, u, problem.s_star, problem.sigma), t.shape)
    w = np.array(problem.w0 if w0 is None else w0, float)
    out = np.empty((t.size, problem.d))
    out[0] = w
    for j in range(1, t.size):
        h = t[j] - t[j - 1]
        a_bar, b_bar = 0.5 * (alpha[j] + alpha[j - 1]), 0.5 * (beta[j] + beta[j - 1])
        decay = np.exp(-problem.lam * a_bar * h)
        # (1 - e^{-x})/x written with expm1 so that a_bar -> 0 stays accurate
        x = problem.lam * a_bar * h
        phi = np.where(np.abs(x) > 1e-12, -np.expm1(-x) / np.where(x == 0, 1, x), 1.0)
        w = decay * w - b_bar * problem.lam * h * phi * problem.w_star
        out[j] = w
    return out


# ----------------------------------------------------------------------------- predictions
@lru_cache(maxsize=16)
def _phase1_coefficients(model: Model) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    r""":math:`(\alpha_0, \beta_0, \beta_u)`: :math:`\alpha`, :math:`\beta` and :math:`\partial_u\beta` at
    :math:`s = u = 0`, from the model's derived gradient :math:`\nabla L = \alpha\Sigma w + \beta\Sigma w^*`."""
    coef = D.derive_loss(model.expr)
    at0 = {S.s: 0, S.u: 0}
    return (sp.expand(coef.alpha.xreplace(at0)), sp.expand(coef.beta.xreplace(at0)),
            sp.expand(sp.diff(coef.beta, S.u).xreplace(at0)))


def phase1_operator(problem: Problem, model: ModelLike = None) -> tuple[np.ndarray, float, np.ndarray]:
    r"""The gradient flow linearised at :math:`w = 0`: :math:`\dot w = Mw`,
    :math:`M = \mathrm{diag}(a\lambda) + c\,vv^\top`, returned as ``(a * lam, c, v)``.

    With :math:`\alpha_0, \beta_u` the model's :math:`\alpha` and :math:`\partial_u\beta` at :math:`w = 0`
    (docs/theory.md §2): :math:`a = -\alpha_0`, :math:`c = -\beta_u`, :math:`v = \Sigma w^*`. Phase retrieval:
    :math:`a = 4s^*`, :math:`c = 8`, i.e. [P1]'s :math:`4s^*\Sigma + 8(\Sigma w^*)(\Sigma w^*)^\top`.
    ``ValueError`` if :math:`w = 0` is not a fixed point of the model's flow (:math:`\beta_0 \ne 0`).
    """
    model = Model.coerce(model)
    vals = {S.s_star: problem.s_star, S.sigma: problem.sigma}
    alpha0, beta0, beta_u = (float(e.xreplace(vals)) for e in _phase1_coefficients(model))
    if beta0 != 0:
        raise ValueError(f"with the loss {model.loss}, w = 0 is not a fixed point of the flow (beta = {beta0:.6g} "
                         "at w = 0): there is no Phase-I escape from it")
    return -alpha0 * problem.lam, -beta_u, problem.lam * problem.w_star


def escape_rate(problem: Problem, model: ModelLike = None) -> float:
    r"""Phase-I escape rate :math:`\rho` ([P1]): the top eigenvalue of the linearisation
    :math:`M = \mathrm{diag}(a\lambda) + c\,vv^\top` at :math:`w = 0` (:func:`phase1_operator`); for
    :math:`c > 0` the unique root above :math:`\max_i a\lambda_i` of the secular equation

    .. math:: 1 = c\sum_i \frac{v_i^2}{\rho - a\lambda_i},\qquad v = \Sigma w^*,

    for phase retrieval :math:`1 = 8\sum_i (w^*_i)^2\lambda_i^2/(\rho - 4 s^*\lambda_i)`, i.e. the top eigenvalue
    of :math:`4s^*\Sigma + 8(\Sigma w^*)(\Sigma w^*)^\top`: :math:`u \propto e^{\rho t}` in Phase I. Other
    signs of :math:`c` use :func:`escape_rate_eig`. :math:`\rho \le 0`: :math:`w = 0` is locally stable.
    """
    diag, c, v = phase1_operator(problem, model)
    if c <= 0:
        return escape_rate_eig(problem, model)
    c2 = v**2
    lo = diag.max()
    f = lambda r: c * np.sum(c2 / (r - diag)) - 1  # noqa: E731  decreasing on (lo, inf)
    hi = lo + c * np.sum(c2) + 1.0  # f(hi) < 0: each term is at most c2/(hi - lo)
    eps = 1e-15 * max(abs(lo), 1.0)
    if f(lo + eps) < 0:  # the target has (numerically) no weight on the top mode: the root hugs lo
        return float(lo)
    return float(brentq(f, lo + eps, hi, xtol=1e-15, rtol=1e-15, maxiter=500))


def escape_rate_eig(problem: Problem, model: ModelLike = None) -> float:
    r"""The same :math:`\rho` as the top eigenvalue of :math:`M` (:func:`phase1_operator`; phase retrieval:
    :math:`4s^*\Sigma + 8(\Sigma w^*)(\Sigma w^*)^\top`).

    Matrix-free (Lanczos, ``scipy.sparse.linalg.eigsh`` on the O(d) product diagonal + rank one) for
    d > 500; dense ``eigvalsh`` below. An independent route to :func:`escape_rate` (no secular equation).
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    diag, c, v = phase1_operator(problem, model)
    if problem.d <= 500:
        return float(np.linalg.eigvalsh(np.diag(diag) + c * np.outer(v, v))[-1])
    op = LinearOperator((problem.d, problem.d), matvec=lambda x: diag * x.ravel() + c * v * (v @ x.ravel()),
                        dtype=float)
    return float(eigsh(op, k=1, which="LA", tol=1e-14, return_eigenvectors=False)[0])


def escape_time(u0: float, rho: float, delta: float = 0.1) -> float:
    r"""Phase-I time to reach :math:`|u| = \delta` from :math:`|u(0)| = u_0` at rate :math:`\rho`:
    :math:`T_1 \approx \log(\delta/|u_0|)/\rho` (= :math:`\Theta(\log d)` for :math:`u_0 \sim d^{-1/2}`)."""
    u0 = abs(float(u0))
    if u0 == 0:
        raise ValueError("u0 must be non-zero")
    return max(math.log(check_positive("delta", delta) / u0), 0.0) / check_positive("rho", rho)


def t2_exponent(a: float) -> float:
    r"""Phase-II exponent: :math:`T_2 - T_1' = O(\varepsilon^{-2a/(a-1)}\log(1/\varepsilon))`, returns :math:`2a/(a-1)` (a > 1)."""
    a = check_greater("a", a, 1.0)
    return 2 * a / (a - 1)


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
