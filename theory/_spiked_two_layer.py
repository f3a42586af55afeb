r"""(C) Spiked covariance, two layers: the trace-form loss on the invariant manifold and its (a, b, c) systems
(docs/theory.md §3C).

:math:`f_W(x) = |Wx|^2/m`, :math:`W \in \mathbb R^{m\times d}`, population loss in trace form
:math:`L(W) = (\mathrm{tr}\,A\Sigma)^2 + 2\,\mathrm{tr}(A\Sigma A\Sigma)`, :math:`A = M - w^*w^{*\top}`,
:math:`M = W^\top W/m`. On the manifold :math:`W = Q(a P_{w^*} + b P_v + c P_\perp)` (:math:`Q^\top Q = I_d`) the
gradient stays in the span, :math:`\nabla_W L = Q(g_a P_{w^*} + g_b P_v + g_c P_\perp)`, with
:math:`g_X = (\partial L/\partial X)/\mathrm{tr}\,P_X` (:func:`block_gradient`, derived by sympy from the restricted
trace form). GD moves :math:`X \leftarrow X - \eta g_X`; SpecGD
(:math:`W \leftarrow W - \eta\,\mathrm{polar}(\nabla_W L)`) moves :math:`X \leftarrow X - \eta\,\mathrm{sign}(g_X)`.

**Statistics.** :math:`f_W` depends on :math:`W` only through :math:`M`, which plays the part of the neuron's
:math:`ww^\top` (docs/theory.md §1, where :math:`u^2 = w^{*\top}\Sigma ww^\top\Sigma w^*`,
:math:`s = \mathrm{tr}(ww^\top\Sigma)`, :math:`|w|^2 = \mathrm{tr}\,ww^\top`). The same definitions in :math:`M`
(:func:`matrix_statistics`):

.. math:: u = (w^{*\top}\Sigma M\Sigma w^*)^{1/2} = |a|/\sqrt m,\qquad
          s = \mathrm{tr}(M\Sigma) = \big(a^2 + (1+\theta)b^2 + (d-2)c^2\big)/m,

and :math:`\mathrm{MSE} = (\mathrm{tr}\,M + |w^*|^2 - 2(w^{*\top}Mw^*)^{1/2})/d` (:func:`phasedyn.theory.derive.mse`
with :math:`s^{(0)} = \mathrm{tr}\,M`, :math:`u^{(0)} = (w^{*\top}Mw^*)^{1/2}`), which for :math:`m = 1`,
:math:`M = ww^\top` are the neuron's :math:`|w^\top\Sigma w^*|`, :math:`w^\top\Sigma w` and
:math:`\min|w \mp w^*|^2/d`. The minimum :math:`M = w^*w^{*\top}` has :math:`u = s = s^* = 1`. They are functions of
the simulation's own statistics as well (:mod:`phasedyn.simulate.matrix`: :math:`a = |W\hat w|`,
:math:`b = |Wv|`, :math:`c^2 = \mathrm{tr}(P_\perp W^\top W)/(d-2)`), exactly and for any :math:`W`, on the manifold
or off it, because :math:`\hat w, v, P_\perp` split the identity and :math:`\Sigma w^* = w^*`; the loss is not (it
needs :math:`\mathrm{tr}(A\Sigma A\Sigma)`).

Manifold conditions (both optimisers, exact in exact arithmetic): :math:`W(0)^\top W(0)` lies in
:math:`\mathrm{span}\{P_{w^*}, P_v, P_\perp\}`, i.e. :math:`W(0) = Q D_0` with :math:`Q^\top Q = I` on the range
of :math:`D_0 = a_0P_{w^*} + b_0P_v + c_0P_\perp`; this needs :math:`m \ge \mathrm{rank}\,D_0`
(:math:`= d` when :math:`c_0 \ne 0`, 2 when :math:`c_0 = 0`, ...). Examples: :math:`W(0) = c_0 I` (:math:`m = d`),
:math:`W(0) = c_0 Q` with :math:`Q` orthogonal (:math:`m = d`). A random Gaussian :math:`W(0)` or
:math:`m < d` with :math:`c_0 \ne 0` leaves the manifold: the reduced system is then a model, not an identity.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import sympy as sp

from . import derive as D
from ._spiked_neuron import a, b, c, d, eta, m, theta
from .system import System
from .validate import check_choice

#: ranks of the blocks P_{w*}, P_v, P_⊥
RANKS = (sp.Integer(1), sp.Integer(1), d - 2)
#: Σ on the blocks
SIGMA_BLOCKS = (sp.Integer(1), 1 + theta, sp.Integer(1))


def _block_trace(diag: list[sp.Expr]) -> sp.Expr:
    return sum(r * x for r, x in zip(RANKS, diag))


def _blocks() -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    r""":math:`M = W^\top W/m`, :math:`\Sigma` and :math:`w^*w^{*\top}` on the blocks :math:`(P_{w^*}, P_v, P_\perp)` of
    :math:`W = aP_{w^*} + bP_v + cP_\perp` (up to :math:`Q`): diagonal, one entry per block."""
    W = sp.diag(a, b, c)
    return W.T * W / m, sp.diag(*SIGMA_BLOCKS), sp.diag(1, 0, 0)


def _tr(X: sp.Matrix) -> sp.Expr:
    """Trace of a block-diagonal matrix: each block's entry times its rank."""
    return _block_trace([X[i, i] for i in range(3)])


@lru_cache(maxsize=1)
def trace_form_loss() -> sp.Expr:
    r"""Two-layer population loss restricted to :math:`W = aP_{w^*} + bP_v + cP_\perp` (up to :math:`Q`).

    Every matrix of the trace form :math:`L = (\mathrm{tr}\,A\Sigma)^2 + 2\,\mathrm{tr}(A\Sigma A\Sigma)`,
    :math:`A = W^\top W/m - w^*w^{*\top}`, is then a combination of the three orthogonal projectors;
    products act block by block and :math:`\mathrm{tr}\,P_X` is the block's rank (:data:`RANKS`).
    """
    M, Sig, target = _blocks()
    AS = (M - target) * Sig
    return sp.expand(_tr(AS) ** 2 + 2 * _tr(AS * AS))


@lru_cache(maxsize=1)
def matrix_statistics() -> dict[str, sp.Expr]:
    r"""``u``, ``s``, ``mse`` and ``trace`` (:math:`\mathrm{tr}\,A\Sigma = s - s^*`) of the two-layer model in
    :math:`(a, b, c)`: the neuron's definitions written in :math:`M = W^\top W/m` (module docstring).

    :math:`u = (w^{*\top}\Sigma M\Sigma w^*)^{1/2}`, :math:`s = \mathrm{tr}(M\Sigma)`, and the MSE of
    :func:`phasedyn.theory.derive.mse` with :math:`s^{(0)} = \mathrm{tr}\,M`, :math:`u^{(0)} = (w^{*\top}Mw^*)^{1/2}`,
    :math:`s^{*(0)} = |w^*|^2 = 1` and :math:`\mathrm{tr}\,I = d`.
    """
    M, Sig, target = _blocks()
    u0 = sp.sqrt(M[0, 0])  # w* is the unit vector of the first block: w*^T M w* = M[0, 0]
    identity = D.Family(ww=lambda k: _tr(M), ws=lambda k: u0, ss=lambda k: sp.Integer(1), tr=lambda k: _tr(sp.eye(3)))
    return {
        "u": sp.sqrt((Sig * M * Sig)[0, 0]),
        "s": sp.expand(_tr(M * Sig)),
        "mse": D.mse(identity),
        "trace": sp.expand(_tr((M - target) * Sig)),
    }


@lru_cache(maxsize=1)
def block_gradient() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    r""":math:`(g_a, g_b, g_c)`: :math:`\nabla_W L = g_aP_{w^*} + g_bP_v + g_cP_\perp` on the manifold.

    Chain rule: :math:`\partial L/\partial X = \langle\nabla_W L, P_X\rangle_F = g_X\,\mathrm{tr}\,P_X`
    (the manifold is invariant, so :math:`\nabla_W L` lies in the span of the projectors).
    """
    L = trace_form_loss()
    return tuple(sp.factor(sp.diff(L, x) / r) for x, r in zip((a, b, c), RANKS))


TwoLayerOptimizer = Literal["gf", "gd", "specgd", "specgf"]
TWO_LAYER_OPTIMIZERS = ("gf", "gd", "specgd", "specgf")


def two_layer_system(optimizer: TwoLayerOptimizer = "gd") -> System:
    r"""The two-layer model on the invariant manifold, states ``(a, b, c)`` (coefficients of :math:`W`).

    * ``"gf"``: gradient flow :math:`\dot X = -g_X`;
    * ``"gd"``: GD, exact map :math:`X' = X - \eta g_X`;
    * ``"specgd"``: SpecGD, exact map :math:`X' = X - \eta\,\mathrm{sign}(g_X)` (the polar factor of
      :math:`\nabla_W L` on the manifold is :math:`\sum_X \mathrm{sign}(g_X)P_X`; a block with
      :math:`g_X = 0` has zero singular values and, by the convention of the polar factor used in
      :mod:`phasedyn.simulate.matrix`, does not move);
    * ``"specgf"``: its continuous-time limit :math:`\dot X = -\mathrm{sign}(g_X)` (time :math:`t = \eta k`). It
      exists while every :math:`g_X` keeps its sign; where a :math:`g_X` reaches 0 the flow slides
      along :math:`g_X = 0` (Filippov), while the discrete map chatters around it with amplitude :math:`\eta`.

    Parameters ``(theta, m, d)`` (+ ``eta`` for the maps). Observables: ``u``, ``s``, ``loss`` (the trace form),
    ``mse`` (:func:`matrix_statistics`, module docstring) and ``trace`` (:math:`\mathrm{tr}\,A\Sigma`). The
    manifold conditions are in the module docstring.
    """
    check_choice("optimizer", optimizer, TWO_LAYER_OPTIMIZERS)
    return _two_layer_system(optimizer)


@lru_cache(maxsize=8)
def _two_layer_system(optimizer: str) -> System:
    g = block_gradient()
    X = (a, b, c)
    if optimizer == "gf":
        rhs = tuple(sp.expand(-gi) for gi in g)
    elif optimizer == "gd":
        rhs = tuple(sp.expand(x - eta * gi) for x, gi in zip(X, g))
    elif optimizer == "specgd":
        rhs = tuple(x - eta * sp.sign(gi) for x, gi in zip(X, g))
    else:
        rhs = tuple(-sp.sign(gi) for gi in g)
    st = matrix_statistics()
    desc = {"gf": "gradient flow", "gd": "GD (exact map)", "specgd": "SpecGD (exact sign map)",
            "specgf": "SpecGD continuous-time limit (sign flow)"}[optimizer]
    return System(
        name=f"spiked-two-layer-{optimizer}",
        states=X,
        params=(theta, m, d) + ((eta,) if optimizer in ("gd", "specgd") else ()),
        rhs=rhs,
        observables=(("u", st["u"]), ("s", st["s"]), ("loss", trace_form_loss()), ("mse", st["mse"]),
                     ("trace", st["trace"])),
        kind="flow" if optimizer in ("gf", "specgf") else "map",
        description=f"spiked two-layer, {desc}",
    )

