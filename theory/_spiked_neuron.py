r"""(C) Spiked covariance, one neuron: symbols, block families and the derived (a, b, c) systems (docs/theory.md §3C).

Set-up: :math:`\Sigma = I + \theta vv^\top`, :math:`|v| = |w^*| = 1`, :math:`v \perp w^*`, so
:math:`\Sigma w^* = w^*`, :math:`\Sigma v = (1+\theta)v` and :math:`\Sigma = 1` on the bulk
:math:`P_\perp = I - w^*w^{*\top} - vv^\top` (rank :math:`d - 2`). Here :math:`a, b, c` are the spiked system's
coefficients (signal, spike, bulk; [P2]'s :math:`a_k, b_k, c_k`), not the power-law exponent of §3B.

:math:`a = w\cdot w^*`, :math:`b = w\cdot v`, :math:`c = |P_\perp w|`, derived by :mod:`.derive` from three block
families: signal :math:`A = P_{w^*}` (linear statistic :math:`a`), spike :math:`A = P_v` (:math:`q_b = b^2`) and
bulk :math:`A = P_\perp` (:math:`q_c = c^2`), with :math:`u = a`, :math:`s = a^2 + (1+\theta)q_b + q_c`,
:math:`s^* = 1`; then :math:`b = \sqrt{q_b}`, :math:`c = \sqrt{q_c}` by :func:`sqrt_flow` / :func:`sqrt_map`.
Gradient flow:

.. math:: \dot a = 12(1 - s)a,\quad \dot b = 4(1+\theta)(1 - 3s)b,\quad \dot c = 4(1 - 3s)c .

(The bulk component :math:`P_\perp w` keeps its direction under GF and GD, so :math:`c` is its signed
length along :math:`P_\perp w(0)`.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import sympy as sp

from . import derive as D
from . import symbols as S
from .model import Model
from .system import System
from .validate import check_choice

# ----------------------------------------------------------------------------- symbols
theta = sp.Symbol("theta", real=True)
"""Spike strength :math:`\\theta > -1` (spike eigenvalue :math:`1 + \\theta`)."""
m = sp.Symbol("m", positive=True)
"""Width :math:`m` of the two-layer model."""
a, b, c = sp.symbols("a b c", real=True)
"""Signal, spike and bulk coefficients."""
q_b = sp.Symbol("q_b", nonnegative=True)
q_c = sp.Symbol("q_c", nonnegative=True)
d, eta = S.d, S.eta

LATEX_NAMES = {**S.LATEX_NAMES, theta: r"\theta"}


def latex(expr: sp.Expr) -> str:
    """LaTeX with docs/theory.md's typography (:math:`\\theta`, :math:`\\eta`, :math:`q_b`)."""
    return sp.latex(expr, symbol_names=LATEX_NAMES)


# ----------------------------------------------------------------------------- one neuron: families
#: signal block A = P_{w*}: a = wᵀA w*; Σ acts as 1 there, so every shift is unshifted; tr = 1
SIGNAL = D.Family(ww=lambda k: a**2, ws=lambda k: a, ss=lambda k: sp.Integer(1), tr=lambda k: sp.Integer(1))
#: spike block A = P_v: q_b = wᵀA w; Σ acts as 1 + θ; v ⟂ w* so the mixed terms vanish
SPIKE = D.Family(ww=lambda k: (1 + theta) ** k * q_b, ws=lambda k: sp.Integer(0), ss=lambda k: sp.Integer(0),
                 tr=lambda k: (1 + theta) ** k)
#: bulk block A = P_⊥ (rank d − 2): q_c = wᵀA w; Σ acts as 1
BULK = D.Family(ww=lambda k: q_c, ws=lambda k: sp.Integer(0), ss=lambda k: sp.Integer(0), tr=lambda k: d - 2)


def neuron_fields() -> dict:
    r""":math:`u = a`, :math:`s = a^2 + (1+\theta)q_b + q_c`, :math:`s^* = 1`, :math:`\sigma = 0`."""
    return {**D.fields(a, a**2 + (1 + theta) * q_b + q_c, sp.Integer(1)), S.sigma: sp.Integer(0)}


# ----------------------------------------------------------------------------- engine extensions
def sqrt_flow(q_dot: sp.Expr, q: sp.Symbol, x: sp.Symbol) -> sp.Expr:
    r"""Flow of :math:`x = \sqrt q` (signed) from the flow of :math:`q = x^2`: :math:`\dot x = \dot q/(2x)`.

    Raises ``ValueError`` if :math:`\dot q/(2x)` is not polynomial in :math:`x` (the flow of
    :math:`\sqrt q` would be singular at :math:`x = 0`, e.g. an online-SGD noise term).
    """
    out = sp.cancel(q_dot.xreplace({q: x**2}) / (2 * x))
    num, den = sp.fraction(out)
    if den.has(x):
        raise ValueError(f"the flow of {x} = sqrt({q}) is singular at {x} = 0: {out}")
    return sp.expand(out)


def sqrt_map(q_next: sp.Expr, q: sp.Symbol, x: sp.Symbol, step: sp.Symbol = S.eta) -> sp.Expr:
    r"""Map of :math:`x = \sqrt q` (signed) from the exact map of :math:`q = x^2`.

    For a single eigen-block the GD map is :math:`q' = r^2 q` with :math:`r` polynomial in the step;
    :math:`x' = r\,x` with the root :math:`r` continuous in the step, :math:`r = 1` at step 0 (the branch
    that GD itself takes: :math:`x' = (1 - \eta\alpha\lambda)x`). Raises ``ValueError`` if
    :math:`q'/q` is not the square of a polynomial in the step.
    """
    ratio = sp.cancel(q_next.xreplace({q: x**2}) / x**2)
    num, den = sp.fraction(ratio)
    if den.has(x):
        raise ValueError(f"the map of {q} is not proportional to {q}: {q_next}")
    ratio = sp.expand(ratio)
    n = sp.degree(ratio, step)
    if n % 2 or ratio.xreplace({step: 0}) != 1:
        raise ValueError(f"{q}'/{q} = {ratio} is not the square of a polynomial in {step} with value 1 at {step} = 0")
    root = sp.expand(sp.series(sp.sqrt(ratio), step, 0, n // 2 + 1).removeO())
    if sp.expand(root**2 - ratio) != 0:
        raise ValueError(f"{q}'/{q} = {ratio} is not the square of a polynomial in {step}")
    return sp.expand(root * x)


# ----------------------------------------------------------------------------- one neuron: systems
NeuronOptimizer = Literal["gf", "gd"]


def neuron_system(optimizer: NeuronOptimizer = "gf", model: Model | str | sp.Expr | None = None) -> System:
    r"""One neuron on spiked data, states ``(a, b, c)``: gradient flow (``"gf"``) or population GD (``"gd"``,
    exact map).

    Parameters ``(theta,)`` (+ ``eta`` for ``"gd"``). Observables: the local-field statistics of docs/theory.md §1
    as this system names them (:func:`neuron_fields`), ``u`` :math:`= w^\top\Sigma w^* = a` and
    ``s`` :math:`= w^\top\Sigma w = a^2 + (1+\theta)b^2 + c^2`, and the population ``loss`` (phase retrieval:
    :math:`L = 3s^2 + 3 - 4a^2 - 2s`). No ``mse``: :math:`\min|w \mp w^*|^2/d` needs :math:`d`, which the
    :math:`(a, b, c)` system does not carry. Derived from ``model``'s loss (default phase retrieval) through
    :mod:`.derive` (see module doc); nothing is typed in.
    """
    check_choice("optimizer", optimizer, ("gf", "gd"))
    return _neuron_system(optimizer, Model.coerce(model))


@lru_cache(maxsize=16)
def _neuron_system(optimizer: str, model: Model) -> System:
    coef = D.derive_loss(model.expr)
    subs = neuron_fields()
    if optimizer == "gf":
        fa = D.linear_flow(coef, SIGNAL, subs)
        fb = sqrt_flow(D.quadratic_flow(coef, SPIKE, subs), q_b, b)
        fc = sqrt_flow(D.quadratic_flow(coef, BULK, subs), q_c, c)
    else:
        fa = D.linear_gd_map(coef, SIGNAL, subs)
        fb = sqrt_map(D.quadratic_gd_map(coef, SPIKE, subs), q_b, b)
        fc = sqrt_map(D.quadratic_gd_map(coef, BULK, subs), q_c, c)
    sq = {q_b: b**2, q_c: c**2}
    rhs = tuple(sp.expand(f.xreplace(sq)) for f in (fa, fb, fc))
    u_expr, s_expr = (subs[x].xreplace(sq) for x in (S.u, S.s))
    return System(
        name=f"spiked-neuron-{optimizer}{model.tag}",
        states=(a, b, c),
        params=(theta,) + ((eta,) if optimizer == "gd" else ()),
        rhs=rhs,
        observables=(("u", u_expr), ("s", s_expr),
                     ("loss", sp.expand(D.population_loss(coef, subs).xreplace(sq)))),
        kind="flow" if optimizer == "gf" else "map",
        description={"gf": "spiked one neuron, gradient flow", "gd": "spiked one neuron, population GD (exact map)"}[
            optimizer],
    )

