r"""(B) Power-law data: the three ways to compute the dynamics, and [P1]'s predictions (docs/theory.md §3B).

Solvers of the same dynamics (each usable alone; tests check them against each other):

* :func:`exact` — the per-mode system, i.e. the :class:`~phasedyn.theory.blocks.BlockSystem` with one
  block per eigen-direction (:math:`B = d`); :func:`blocks` with :math:`B < d` log-spaced blocks;
* :func:`hierarchy` — :math:`u^{(k)}, s^{(k)}`, :math:`k \le K`, with a closure
  (:mod:`~phasedyn.theory.hierarchy`), returned up to where its state stops being a moment sequence
  (:mod:`~phasedyn.theory._validity`);
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
(:math:`a/(a-1)`, the large-d exponent, against [P1]'s upper bound :math:`2a/(a-1)`). The Phase-II/III
predictions live in :mod:`~phasedyn.theory._powerlaw_predictions` and are re-exported here.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from . import derive as D
from . import symbols as S
from .validate import check_choice, check_int, check_positive
from .blocks import OPTIMIZERS as BLOCK_OPTIMIZERS
from .blocks import BlockSystem, block_params, block_state, make_blocks
from .hierarchy import Closure, hierarchy_params, hierarchy_state, hierarchy_system
from .model import Model
from .problem import Problem
from ._powerlaw_predictions import (  # noqa: F401  (the namespace's predictions, re-exported)
    phase2_asymptotic, phase2_closeness, phase2_deficits, phase2_exponent, phase2_gaps, phase2_time,
    phase3_asymptotic, phase3_effective_age, phase3_prediction, phase3_survival, phase3_window, plateau_bound,
    t2_eps_floor, t2_exponent,
)
from ._solve import Solution
from ._verbs import check_kind, evolve, weights
from .expint import _phi1
from ._validity import RTOL as VALIDITY_RTOL
from ._validity import MomentValidity
from ._watch import StopWhen

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
    check_choice("optimizer", optimizer, BLOCK_OPTIMIZERS)
    bl = make_blocks(problem.lam, B)
    system = BlockSystem(bl.B, optimizer, model)
    if optimizer != "gf":
        eta = check_positive("eta", eta)
    params = block_params(problem, bl, eta or 0.0)
    y0 = block_state(problem, bl, weights(problem, w0))
    return evolve(system, y0, params, t1=t1, ts=ts, steps=steps, record_steps=record_steps, **solve_opts)


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
              record_steps=None, w0=None, model: ModelLike = None, validity: bool = True,
              validity_rtol: float = VALIDITY_RTOL, **solve_opts) -> Solution:
    r"""Solve the hierarchy truncated at depth ``K`` with ``closure`` (see :mod:`~phasedyn.theory.hierarchy`),
    up to where it stops being valid.

    The solution's ``"u_1"``/``"s_1"`` are :math:`u`, :math:`s`; ``"u_0"``, ``"s_0"`` give the MSE.

    ``validity`` (default): the run stops at the first state that is no moment sequence of any weights
    (:class:`~phasedyn.theory._validity.MomentValidity`: :math:`s_k \ge 0`, :math:`s_{k+1} \le \lambda_{\max}s_k`,
    :math:`s_k^2 \le s_{k-1}s_{k+1}`, :math:`u_k^2 \le s_ks^*_k`, relative tolerance ``validity_rtol``; docs/theory.md
    §3B "What the truncated hierarchy cannot see"): for GD at that exact step (a watch of
    :func:`~phasedyn.theory.iterate`), for flows at the end of that solver step (a diffrax event of
    :func:`~phasedyn.theory.solve`). The solution is then its valid part: NaN from there on,
    ``stop_reason == "validity"``, ``stop_time`` the first invalid time, ``stop_detail`` the condition that
    failed, and a :class:`UserWarning` names the cause and the remedy (the exact or block system). A blow-up
    after the loss of validity is never reached. ``validity=False``: the raw truncation (it raises
    :class:`~phasedyn.theory.SolveError` if it blows up).
    """
    system = hierarchy_system(check_int("K", K, 1), optimizer, model)
    params = hierarchy_params(problem, K, closure, eta, optimizer)
    y0 = hierarchy_state(problem, weights(problem, w0), K)
    cond = MomentValidity.of(system, float(problem.lam.max()), check_positive("validity_rtol", validity_rtol))
    stop = {} if not validity else ({"watches": {"validity": StopWhen(cond)}} if system.kind == "map"
                                    else {"stop_when": {"validity": cond}})
    sol = evolve(system, y0, params, t1=t1, ts=ts, steps=steps, record_steps=record_steps, **stop, **solve_opts)
    invalid = sol.stop_reason == "validity"
    if np.any(invalid):
        first = np.unravel_index(np.nanargmin(np.where(invalid, sol.stop_time, np.nan)), invalid.shape)
        who = f" ({invalid.sum()} of {invalid.size} batch members; the first)" if invalid.ndim else ""
        warnings.warn(f"the truncated hierarchy (K = {K}, {closure} closure, {optimizer}) loses validity at "
                      f"t = {sol.stop_time[first]:.6g}{who}: {sol.stop_detail[first]}, so its state is no moment "
                      "sequence of any weights; the solution is truncated there (NaN after). For later times use "
                      "the exact or block system (powerlaw.exact / powerlaw.blocks; phasedyn run powerlaw "
                      "--solver modes or blocks)", UserWarning, stacklevel=2)
    return sol


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
        x = problem.lam * a_bar * h
        # (1 - e^{-x})/x = phi_1(-x), the exponential integrator's phi-function (stable as a_bar -> 0)
        w = np.exp(-x) * w - b_bar * problem.lam * h * np.asarray(_phi1(-x)) * problem.w_star
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


# ----------------------------------------------------------------------------- the verbs (docs/theory.md §6)
SOLVER_NAMES = ("modes", "blocks", "hierarchy")


def system(problem: Problem, optimizer: Optimizer = "gf", model: ModelLike = None, *, solver: str = "modes",
           B: int | None = None, K: int = 16):
    r"""The system that ``solver`` solves for ``problem``: ``"modes"`` the exact per-mode
    :class:`~phasedyn.theory.BlockSystem` (:math:`B = d`), ``"blocks"`` ``B`` log-spaced blocks, ``"hierarchy"``
    the depth-``K`` hierarchy (:func:`~phasedyn.theory.hierarchy_system`)."""
    check_kind(problem, ("powerlaw", "isotropic", "spiked"), "powerlaw")
    check_choice("solver", solver, SOLVER_NAMES)
    check_choice("optimizer", optimizer, BLOCK_OPTIMIZERS if solver != "hierarchy" else ("gf", "sgd", "gd"))
    if solver == "hierarchy":
        return hierarchy_system(check_int("K", K, 1), optimizer, model)
    return BlockSystem(make_blocks(problem.lam, None if solver == "modes" else B).B, optimizer, model)


def params(problem: Problem, optimizer: Optimizer = "gf", eta: float | None = None, *, solver: str = "modes",
           B: int | None = None, K: int = 16, closure: Closure = "top") -> dict:
    r"""The parameters of :func:`system` for ``problem`` (block sums of :math:`\lambda^k`, :math:`(w^*)^2`,
    or the hierarchy's :math:`s^*_k`, :math:`\mathrm{tr}\,\Sigma^k`; ``eta`` for sgd / gd)."""
    check_kind(problem, ("powerlaw", "isotropic", "spiked"), "powerlaw")
    check_choice("solver", solver, SOLVER_NAMES)
    if solver == "hierarchy":
        return hierarchy_params(problem, check_int("K", K, 1), closure, eta, optimizer)
    if optimizer != "gf":
        eta = check_positive("eta", eta)
    return block_params(problem, make_blocks(problem.lam, None if solver == "modes" else B), eta or 0.0)


def state(problem: Problem, w0=None, *, solver: str = "modes", B: int | None = None, K: int = 16) -> dict:
    r"""The initial state of :func:`system` from ``w0`` (``(..., d)``; default ``problem.w0``): per-block
    :math:`u_b, s_b` or the moments :math:`u_k, s_k`, :math:`k \le K`."""
    check_kind(problem, ("powerlaw", "isotropic", "spiked"), "powerlaw")
    check_choice("solver", solver, SOLVER_NAMES)
    if solver == "hierarchy":
        return hierarchy_state(problem, weights(problem, w0), check_int("K", K, 1))
    return block_state(problem, make_blocks(problem.lam, None if solver == "modes" else B), weights(problem, w0))


def solve(problem: Problem, optimizer: Optimizer = "gf", *, solver: str = "modes", B: int | None = None,
          K: int = 16, closure: Closure = "top", **kwargs) -> Solution:
    r"""The dynamics of ``problem`` by ``solver``: :func:`exact` (``"modes"``), :func:`blocks` or :func:`hierarchy`
    (valid part only). Horizon and options as there: ``t1``/``ts`` for flows, ``steps``/``record_steps`` for GD,
    ``eta``, ``w0``, ``model``."""
    check_choice("solver", solver, SOLVER_NAMES)
    if solver == "hierarchy":
        return hierarchy(problem, K, closure, optimizer, **kwargs)
    if solver == "blocks":
        return blocks(problem, B, optimizer, **kwargs)
    return exact(problem, optimizer, **kwargs)


def predictions(problem: Problem, model: ModelLike = None, delta: float = 0.1, u0: float | None = None) -> dict:
    r"""[P1]'s predictions for ``problem`` (docs/theory.md §3B), derived from ``model`` where a derivation exists:

    ``rho`` (:func:`escape_rate`, secular equation, the growth rate at ``rho_at`` ``"origin"``
    :math:`w = 0`: a start with :math:`s(0) = \sum_i\lambda_i w_i^2 \approx 0`) and ``rho_eig``
    (:func:`escape_rate_eig`, an independent
    route), ``saddle_s`` (:func:`~phasedyn.theory.saddle_level`), ``T1`` (:func:`escape_time` from :math:`|u_0|`,
    default :math:`u^{(1)}` of ``problem.w0``; ``None`` when :math:`\rho \le 0`), and for :math:`a > 1`
    ``T2_exponent`` (:func:`t2_exponent`, [P1]'s bound) and ``T2_exponent_tail`` (:func:`phase2_exponent`).
    The Phase-II exponents are derived for the phase-retrieval loss only: ``None`` for another model, with
    ``notes`` saying so.
    """
    from .isotropic import saddle_level

    check_kind(problem, ("powerlaw", "isotropic", "spiked"), "powerlaw")
    model = Model.coerce(model)
    a = problem.meta.get("a")
    rho = escape_rate(problem, model)
    u0 = abs(problem.statistics(problem.w0)["u"] if u0 is None else float(u0))
    asymptotic = bool(model.is_phase_retrieval and a is not None and a > 1)
    out = {
        "rho": rho, "rho_at": "origin", "rho_eig": escape_rate_eig(problem, model),
        "saddle_s": saddle_level(problem.s_star, model, problem.sigma),
        "T1": escape_time(u0, rho, delta) if u0 > 0 and rho > 0 else None,
        "T2_exponent": t2_exponent(a) if asymptotic else None,
        "T2_exponent_tail": phase2_exponent(a) if asymptotic else None,
        "asymptotics_apply": asymptotic,
    }
    if not model.is_phase_retrieval:
        out["notes"] = {"T2_exponent": PHASE_RETRIEVAL_ONLY, "T2_exponent_tail": PHASE_RETRIEVAL_ONLY}
    return out


#: why a prediction is missing for a model other than phase retrieval
PHASE_RETRIEVAL_ONLY = "derived for the phase-retrieval loss only; not available for this model"
