r"""The power-law hierarchy :math:`u^{(k)} = w^\top\Sigma^k w^*`, :math:`s^{(k)} = w^\top\Sigma^k w`, truncated at depth K.

For the weight :math:`A = \Sigma^k` the :class:`~phasedyn.theory.derive.Family` shifts the order:
:math:`w^\top\Sigma^k\Sigma^j w = s^{(k+j)}` etc., so :mod:`~phasedyn.theory.derive` gives (gradient
flow, [P1] units, docs/theory.md §3)

.. math:: \dot u^{(k)} = 4(s^* - 3s)u^{(k+1)} + 8u\,s^{*(k+1)}, \qquad
          \dot s^{(k)} = 8(s^* - 3s)s^{(k+1)} + 16u\,u^{(k+1)},

with :math:`u = u^{(1)}`, :math:`s = s^{(1)}`, and online SGD adds terms of order :math:`k+2` and
:math:`\mathrm{tr}\,\Sigma^{k+1}`. The states are :math:`u^{(0..K)}, s^{(0..K)}` (order 0 gives the MSE).
The hierarchy never closes for a power law; orders beyond K are closed *linearly*,

.. math:: x^{(K+1)} \approx \sum_{j=0}^{K} c_j\, x^{(j)} \qquad (x = u, s),

applied twice for order K+2. The coefficients :math:`c_j` are *parameters* (changing the closure
never recompiles):

* ``"top"``: :math:`c_K = \lambda_1`, others 0 — exact as :math:`K\to\infty` (high orders are
  dominated by the top mode);
* ``"zero"``: all :math:`c_j = 0`;
* ``"quadrature"``: :math:`\lambda^{K+1} - \sum_j c_j\lambda^j = \pi_{K+1}(\lambda)`, the monic
  orthogonal polynomial of the discrete spectral measure :math:`\sum_i \nu_i\delta_{\lambda_i}`,
  :math:`\nu_i = (w^*_i)^2 + 1/d`; exact for any statistic whose spectral measure sits on the
  :math:`K+1` Gauss nodes. In the monomial basis it is ill-conditioned beyond K ≈ 10.

Target moments :math:`s^{*(k)}` (k ≤ K+2) and traces :math:`\mathrm{tr}\,\Sigma^k` are parameters.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import sympy as sp

from . import derive as D
from . import symbols as S
from .model import Model
from .validate import check_choice, check_int
from .problem import Problem
from .system import System

Closure = Literal["top", "zero", "quadrature"]
Optimizer = Literal["gf", "sgd", "gd"]


def _syms(prefix: str, n: int, **assumptions) -> tuple[sp.Symbol, ...]:
    return tuple(sp.Symbol(f"{prefix}_{k}", **assumptions) for k in range(n))


def hierarchy_system(K: int, optimizer: Optimizer = "gf", model: Model | str | sp.Expr | None = None) -> System:
    r"""The hierarchy truncated at depth ``K`` (>= 1) for ``optimizer`` (see module doc).

    States ``u_0..u_K, s_0..s_K``; parameters ``s_star_0..s_star_{K+2}``, ``tr_0..tr_{K+2}``
    (:math:`\mathrm{tr}\,\Sigma^k`; ``tr_0`` = d), ``c_0..c_K`` (closure), ``sigma`` and, for sgd/gd, ``eta``.
    Observables ``u`` :math:`= u^{(1)}` and ``s`` :math:`= s^{(1)}` (the names every system and the simulation give
    them, docs/theory.md §1), ``loss`` (from :math:`u, s`) and ``mse`` (from order 0).
    """
    return _hierarchy_system(check_int("K", K, 1), check_choice("optimizer", optimizer, ("gf", "sgd", "gd")),
                             Model.coerce(model))


@lru_cache(maxsize=64)
def _hierarchy_system(K: int, optimizer: Optimizer, model: Model) -> System:
    coef = D.derive_loss(model.expr)
    u_k, s_k = _syms("u", K + 1, real=True), _syms("s", K + 1, nonnegative=True)
    s_star_k, tr_k = _syms("s_star", K + 3, positive=True), _syms("tr", K + 3, positive=True)
    c_k = _syms("c", K + 1, real=True)

    def order(x: tuple[sp.Symbol, ...], j: int) -> sp.Expr:
        """x^{(j)} with the linear closure for j > K (applied recursively)."""
        if j <= K:
            return x[j]
        return sp.expand(sum(c_k[i] * order(x, j - K - 1 + i) for i in range(K + 1)))

    def family(k: int) -> D.Family:
        return D.Family(ww=lambda j: order(s_k, k + j), ws=lambda j: order(u_k, k + j),
                        ss=lambda j: s_star_k[k + j], tr=lambda j: tr_k[k + j])

    subs = D.fields(u_k[1], s_k[1], s_star_k[1])
    if optimizer == "gd":
        rhs_u = [D.linear_gd_map(coef, family(k), subs) for k in range(K + 1)]
        rhs_s = [D.quadratic_gd_map(coef, family(k), subs) for k in range(K + 1)]
    else:
        rhs_u = [D.linear_flow(coef, family(k), subs) for k in range(K + 1)]
        rhs_s = [D.quadratic_flow(coef, family(k), subs, sgd=optimizer == "sgd") for k in range(K + 1)]
    params = s_star_k + tr_k + c_k + (S.sigma,) + ((S.eta,) if optimizer != "gf" else ())
    mse = D.mse(D.Family(ww=lambda j: s_k[0], ws=lambda j: u_k[0], ss=lambda j: s_star_k[0], tr=lambda j: tr_k[0]))
    return System(
        name=f"hierarchy-{optimizer}-K{K}{model.tag}",
        states=u_k + s_k,
        params=params,
        rhs=tuple(rhs_u + rhs_s),
        observables=(("u", u_k[1]), ("s", s_k[1]), ("loss", D.population_loss(coef, subs)), ("mse", mse)),
        kind="map" if optimizer == "gd" else "flow",
        description=f"power-law hierarchy truncated at K = {K} ({optimizer})",
    )


def closure_coefficients(problem: Problem, K: int, closure: Closure = "top") -> np.ndarray:
    r"""Closure coefficients :math:`c_0..c_K` for ``closure`` on ``problem``'s spectrum (see module doc)."""
    K = check_int("K", K, 1)
    check_choice("closure", closure, ("top", "zero", "quadrature"))
    c = np.zeros(K + 1)
    if closure == "top":
        c[K] = problem.lam.max()
    elif closure == "quadrature":
        nodes = gauss_nodes(problem.lam, problem.w_star**2 + 1.0 / problem.d, K + 1)
        poly = np.poly(nodes)  # monic, highest power first: λ^{K+1} + a_1 λ^K + ... + a_{K+1}
        c = -poly[1:][::-1]  # λ^{K+1} ≡ -Σ a_{K+1-j} λ^j on the nodes
    return c


def gauss_nodes(lam: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    r"""The ``n`` Gauss nodes of the discrete measure :math:`\sum_i \nu_i\delta_{\lambda_i}` (Lanczos / Golub–Welsch).

    Lanczos with full re-orthogonalisation on :math:`\mathrm{diag}(\lambda)` from :math:`\sqrt{\nu}`; the
    nodes are the eigenvalues of the :math:`n\times n` Jacobi matrix. Needs ``n`` <= number of distinct
    eigenvalues with positive weight.
    """
    lam, weights = np.asarray(lam, float), np.asarray(weights, float)
    n = check_int("n", n, 1)
    if n > np.unique(lam[weights > 0]).size:
        raise ValueError(f"n = {n} Gauss nodes need at least n distinct weighted eigenvalues")
    Q = np.zeros((lam.size, n))
    alpha, beta = np.zeros(n), np.zeros(n)
    v = np.sqrt(weights)
    v /= np.linalg.norm(v)
    for j in range(n):
        Q[:, j] = v
        w = lam * v
        alpha[j] = v @ w
        w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)  # full re-orthogonalisation
        w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        if j + 1 < n:
            beta[j] = np.linalg.norm(w)
            v = w / beta[j]
    J = np.diag(alpha) + np.diag(beta[: n - 1], 1) + np.diag(beta[: n - 1], -1)
    return np.linalg.eigvalsh(J)


def hierarchy_params(problem: Problem, K: int, closure: Closure = "top", eta: float | None = None,
                     optimizer: Optimizer = "gf") -> dict[str, float]:
    """Parameter dict of :func:`hierarchy_system` for ``problem`` (moments, traces, closure, noise, eta)."""
    K = check_int("K", K, 1)
    out: dict[str, float] = {}
    for k in range(K + 3):
        out[f"s_star_{k}"] = float(np.sum(problem.lam**k * problem.w_star**2))
        out[f"tr_{k}"] = float(np.sum(problem.lam**k))
    for j, c in enumerate(closure_coefficients(problem, K, closure)):
        out[f"c_{j}"] = float(c)
    out["sigma"] = problem.sigma
    if optimizer != "gf":
        if eta is None or not eta > 0:
            raise ValueError(f"eta must be > 0 for optimizer {optimizer!r} (allowed range (0, inf)), got {eta}")
        out["eta"] = float(eta)
    return out


def hierarchy_state(problem: Problem, w: np.ndarray, K: int) -> dict[str, np.ndarray]:
    """The states ``u_0..u_K, s_0..s_K`` of weights ``w`` (shape ``(..., d)``)."""
    w = np.asarray(w, float)
    out = {}
    for k in range(K + 1):
        lk = problem.lam**k
        out[f"u_{k}"] = np.sum(lk * w * problem.w_star, axis=-1)
        out[f"s_{k}"] = np.sum(lk * w * w, axis=-1)
    return out
