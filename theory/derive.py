r"""From a per-sample loss to population loss, drift and the online-SGD second-order term.

Given a per-sample loss :math:`\ell(g, h, \xi)`, polynomial in the local fields
:math:`g = x\cdot w`, :math:`h = x\cdot w^*` and the label noise :math:`\xi` (docs/theory.md §2):

* population loss :math:`L = \mathbb E[\ell]`;
* gradient, by Stein's lemma :math:`\mathbb E[\varphi\,x] = \Sigma w\,\mathbb E[\partial_g\varphi]
  + \Sigma w^*\,\mathbb E[\partial_h\varphi]` applied to :math:`\varphi = \partial_g\ell`:

  .. math:: \nabla L = \alpha\,\Sigma w + \beta\,\Sigma w^*,\qquad
            \alpha = \mathbb E[\partial_g^2\ell],\quad \beta = \mathbb E[\partial_g\partial_h\ell];

* online-SGD noise, Stein twice with :math:`\varphi = (\partial_g\ell)^2`:

  .. math:: \mathbb E[\varphi\, x^\top A x] = \mathrm{tr}(A\Sigma)\,\mathbb E[\varphi]
      + (\Sigma w)^\top A(\Sigma w)\,\mathbb E[\varphi_{gg}]
      + 2(\Sigma w)^\top A(\Sigma w^*)\,\mathbb E[\varphi_{gh}]
      + (\Sigma w^*)^\top A(\Sigma w^*)\,\mathbb E[\varphi_{hh}].

A statistic is a :class:`Family` member: :math:`w^\top A w^*` (linear) or :math:`w^\top A w`
(quadratic) for a weight :math:`A` that commutes with :math:`\Sigma`. The family says how the shifted
statistics :math:`w^\top A\Sigma^k w` etc. are named in a given system (Σ = I collapses them all;
the power-law hierarchy shifts the order; spectral blocks multiply by the block's eigenvalue).
Gradient flow, online SGD (time :math:`t = \eta k`) and the exact population-GD map then read

.. math::
    \tfrac{d}{dt}\, w^\top A w^* &= -\alpha\, w^\top A\Sigma w^* - \beta\, w^{*\top} A\Sigma w^*, \\
    \tfrac{d}{dt}\, w^\top A w &= -2\alpha\, w^\top A\Sigma w - 2\beta\, w^\top A\Sigma w^*
        \;[+\;\eta\,\mathbb E|\nabla\ell|_A^2 \text{ for online SGD}],\\
    (w^\top A w)' &= w^\top A w - 2\eta(\alpha\, w^\top A\Sigma w + \beta\, w^\top A\Sigma w^*)
        + \eta^2(\alpha^2 w^\top A\Sigma^2 w + 2\alpha\beta\, w^\top A\Sigma^2 w^* + \beta^2 w^{*\top}A\Sigma^2 w^*).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Callable

import sympy as sp

from . import symbols as S
from .gaussian import expectation


@dataclasses.dataclass(frozen=True)
class LossCoefficients:
    r"""Everything the statistic dynamics need from a loss, as polynomials in :math:`(s, u, s^*, \sigma)`.

    Attributes:
        sample_loss: :math:`\ell(g, h, \xi)`.
        loss: population loss :math:`L = \mathbb E\,\ell`.
        alpha, beta: :math:`\nabla L = \alpha\Sigma w + \beta\Sigma w^*`.
        noise: :math:`(\mathbb E\varphi, \mathbb E\varphi_{gg}, \mathbb E\varphi_{gh}, \mathbb E\varphi_{hh})`,
            :math:`\varphi = (\partial_g\ell)^2`.
    """

    sample_loss: sp.Expr
    loss: sp.Expr
    alpha: sp.Expr
    beta: sp.Expr
    noise: tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr]


@lru_cache(maxsize=64)
def derive_loss(sample_loss: sp.Expr = S.phase_retrieval_loss) -> LossCoefficients:
    """Derive :class:`LossCoefficients` for a per-sample loss in ``(g, h, xi)`` (cached): exactly by Isserlis for a
    polynomial, else as Gaussian-quadrature functions of :math:`(s, u, s^*)` through first derivatives only
    (:mod:`phasedyn.theory._derive_numeric`)."""
    ell = sp.sympify(sample_loss)
    extra = ell.free_symbols - {S.g, S.h, S.xi}
    if extra:
        raise ValueError(
            f"sample_loss must be an expression in g, h, xi only; it also depends on {sorted(map(str, extra))}"
        )
    if not ell.is_polynomial(S.g, S.h, S.xi):
        from ._derive_numeric import numeric_coefficients

        return numeric_coefficients(ell)
    dg = sp.diff(ell, S.g)
    phi = sp.expand(dg**2)
    return LossCoefficients(
        sample_loss=ell,
        loss=expectation(ell),
        alpha=expectation(sp.diff(dg, S.g)),
        beta=expectation(sp.diff(dg, S.h)),
        noise=(
            expectation(phi),
            expectation(sp.diff(phi, S.g, 2)),
            expectation(sp.diff(phi, S.g, S.h)),
            expectation(sp.diff(phi, S.h, 2)),
        ),
    )


@dataclasses.dataclass(frozen=True)
class Family:
    r"""How one weight :math:`A` (commuting with :math:`\Sigma`) and its :math:`\Sigma`-shifts are named.

    ``ww(k)`` is :math:`w^\top A\Sigma^k w`, ``ws(k)`` is :math:`w^\top A\Sigma^k w^*`, ``ss(k)`` is
    :math:`w^{*\top}A\Sigma^k w^*` and ``tr(k)`` is :math:`\mathrm{tr}(A\Sigma^k)`, each a sympy
    expression in the system's states and parameters.
    """

    ww: Callable[[int], sp.Expr]
    ws: Callable[[int], sp.Expr]
    ss: Callable[[int], sp.Expr]
    tr: Callable[[int], sp.Expr]


def fields(u: sp.Expr, s: sp.Expr, s_star: sp.Expr) -> dict[sp.Symbol, sp.Expr]:
    r"""Substitution of the local-field covariance :math:`(u, s, s^*)` (the Σ¹ statistics) by system expressions."""
    return {S.u: u, S.s: s, S.s_star: s_star}


def _coefs(coef: LossCoefficients, subs: dict) -> tuple[sp.Expr, sp.Expr, tuple[sp.Expr, ...]]:
    return (
        coef.alpha.xreplace(subs),
        coef.beta.xreplace(subs),
        tuple(n.xreplace(subs) for n in coef.noise),
    )


def linear_flow(coef: LossCoefficients, A: Family, subs: dict) -> sp.Expr:
    r""":math:`\frac{d}{dt} w^\top A w^* = -\alpha\,w^\top A\Sigma w^* - \beta\,w^{*\top}A\Sigma w^*` (GF and online SGD)."""
    alpha, beta, _ = _coefs(coef, subs)
    return sp.expand(-alpha * A.ws(1) - beta * A.ss(1))


def noise(coef: LossCoefficients, A: Family, subs: dict) -> sp.Expr:
    r"""The online-SGD noise :math:`\mathbb E|\nabla\ell|_A^2 = \mathrm{tr}(A\Sigma)\mathbb E\varphi + w^\top A\Sigma^2w\,
    \mathbb E\varphi_{gg} + 2w^\top A\Sigma^2w^*\,\mathbb E\varphi_{gh} + w^{*\top}A\Sigma^2w^*\,\mathbb E\varphi_{hh}`."""
    _, _, (n0, ngg, ngh, nhh) = _coefs(coef, subs)
    return A.tr(1) * n0 + A.ww(2) * ngg + 2 * A.ws(2) * ngh + A.ss(2) * nhh


def _radial(coef: LossCoefficients, Bn: Family, subs: dict) -> tuple[sp.Expr, sp.Expr]:
    alpha, beta, _ = _coefs(coef, subs)
    return alpha * Bn.ww(1) + beta * Bn.ws(1), noise(coef, Bn, subs)


def spherical_linear_flow(coef: LossCoefficients, A: Family, Bn: Family, subs: dict) -> sp.Expr:
    r"""Spherical online SGD, :math:`w \leftarrow \tilde w/|\tilde w|_B`, :math:`\tilde w = w - \eta\nabla\ell`, on
    :math:`w^\top Bw = 1` (``Bn`` the family of the norm's weight :math:`B`), in :math:`t = \eta k`:

    .. math:: \tfrac{d}{dt}\, w^\top Aw^* = -(\alpha\, w^\top A\Sigma w^* + \beta\, w^{*\top}A\Sigma w^*)
        + w^\top Aw^*\,\big(\alpha\, w^\top B\Sigma w + \beta\, w^\top B\Sigma w^*
        - \tfrac{\eta}{2}\mathbb E|\nabla\ell|_B^2\big).

    From :math:`1/|\tilde w|_B = 1 + \eta\,w^\top B\nabla\ell - \tfrac{\eta^2}2|\nabla\ell|_B^2 + O(\eta^2)`, where the
    kept :math:`\eta^2|\nabla\ell|_B^2` is :math:`O(\eta)` because :math:`|\nabla\ell|_B^2 \propto \mathrm{tr}(B\Sigma)`
    (the normalisation's own Itô term; docs/theory.md §5)."""
    radial, noise_b = _radial(coef, Bn, subs)
    return sp.expand(linear_flow(coef, A, subs) + A.ws(0) * (radial - S.eta * noise_b / 2))


def spherical_quadratic_flow(coef: LossCoefficients, A: Family, Bn: Family, subs: dict) -> sp.Expr:
    r"""Spherical online SGD (see :func:`spherical_linear_flow`):
    :math:`\tfrac{d}{dt}\, w^\top Aw = \mathrm{vanilla\ SGD} + 2w^\top Aw\,(\alpha\, w^\top B\Sigma w + \beta\, w^\top B\Sigma w^*
    - \tfrac{\eta}{2}\mathbb E|\nabla\ell|_B^2)`, from :math:`1/|\tilde w|_B^2 = 1 + 2\eta\, w^\top B\nabla\ell
    - \eta^2|\nabla\ell|_B^2 + O(\eta^2)`; with :math:`A = B` it vanishes on the sphere."""
    radial, noise_b = _radial(coef, Bn, subs)
    return sp.expand(quadratic_flow(coef, A, subs, sgd=True) + 2 * A.ww(0) * (radial - S.eta * noise_b / 2))


def quadratic_flow(coef: LossCoefficients, A: Family, subs: dict, sgd: bool = False) -> sp.Expr:
    r""":math:`\frac{d}{dt} w^\top A w = -2\alpha\,w^\top A\Sigma w - 2\beta\,w^\top A\Sigma w^*`, plus for
    online SGD :math:`\eta\,(\mathrm{tr}(A\Sigma)\mathbb E\varphi + w^\top A\Sigma^2w\,\mathbb E\varphi_{gg}
    + 2w^\top A\Sigma^2w^*\,\mathbb E\varphi_{gh} + w^{*\top}A\Sigma^2w^*\,\mathbb E\varphi_{hh})`."""
    alpha, beta, _ = _coefs(coef, subs)
    drift = -2 * alpha * A.ww(1) - 2 * beta * A.ws(1)
    if sgd:
        drift += S.eta * noise(coef, A, subs)
    return sp.expand(drift)


def linear_gd_map(coef: LossCoefficients, A: Family, subs: dict) -> sp.Expr:
    r"""Population GD, exact: :math:`(w^\top A w^*)' = w^\top A w^* - \eta(\alpha\,w^\top A\Sigma w^* + \beta\,w^{*\top}A\Sigma w^*)`."""
    alpha, beta, _ = _coefs(coef, subs)
    return sp.expand(A.ws(0) - S.eta * (alpha * A.ws(1) + beta * A.ss(1)))


def quadratic_gd_map(coef: LossCoefficients, A: Family, subs: dict) -> sp.Expr:
    r"""Population GD, exact: :math:`(w^\top A w)' = w^\top Aw - 2\eta(\alpha\,w^\top A\Sigma w + \beta\,w^\top A\Sigma w^*)
    + \eta^2(\alpha^2 w^\top A\Sigma^2 w + 2\alpha\beta\,w^\top A\Sigma^2 w^* + \beta^2 w^{*\top}A\Sigma^2 w^*)`."""
    alpha, beta, _ = _coefs(coef, subs)
    return sp.expand(
        A.ww(0)
        - 2 * S.eta * (alpha * A.ww(1) + beta * A.ws(1))
        + S.eta**2 * (alpha**2 * A.ww(2) + 2 * alpha * beta * A.ws(2) + beta**2 * A.ss(2))
    )


def population_loss(coef: LossCoefficients, subs: dict) -> sp.Expr:
    """The population loss :math:`L(s, u, s^*, \\sigma)` in a system's variables."""
    return coef.loss.xreplace(subs)


def mse(A0: Family) -> sp.Expr:
    r""":math:`\mathrm{MSE} = (s^{(0)} + s^{*(0)} - 2|u^{(0)}|)/d` from the identity-weight family (:math:`A = I`, shift 0)."""
    return (A0.ww(0) + A0.ss(0) - 2 * sp.Abs(A0.ws(0))) / A0.tr(0)
