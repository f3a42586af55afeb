r"""(C) Spiked covariance, two layers: the trace-form loss on the invariant manifold and its (a, b, c) systems
(docs/theory.md §3C).

:math:`f_W(x) = |Wx|^2/m`, :math:`W \in \mathbb R^{m\times d}`, population loss in trace form
:math:`L(W) = (\mathrm{tr}\,A\Sigma)^2 + 2\,\mathrm{tr}(A\Sigma A\Sigma)`, :math:`A = M - w^*w^{*\top}`,
:math:`M = W^\top W/m`. On the manifold :math:`W = Q(a P_{w^*} + b P_v + c P_\perp)` (:math:`Q^\top Q = I_d`) the
gradient stays in the span, :math:`\nabla_W L = Q(g_a P_{w^*} + g_b P_v + g_c P_\perp)`, with
:math:`g_X = (\partial L/\partial X)/\mathrm{tr}\,P_X` (:func:`block_gradient`, derived by sympy from the restricted
trace form). GD moves :math:`X \leftarrow X - \eta g_X`; SpecGD
(:math:`W \leftarrow W - \eta\,\mathrm{polar}(\nabla_W L)`) moves :math:`X \leftarrow X - \eta\,\mathrm{sign}(g_X)`;
Muon's approximate polar factor (5 steps of the Newton–Schulz quintic :math:`X \leftarrow aX + b(XX^\top)X +
c(XX^\top)^2X` on :math:`X_0 = \nabla_W L/(|\nabla_W L|_F + \epsilon)`, :func:`muon_block_polar`, derived by running
that iteration on the block matrices) moves :math:`X \leftarrow X - \eta\,p(g_X/(|\nabla_W L|_F + \epsilon))`, with
:math:`p` the 5-fold composition of :math:`q(\sigma) = a\sigma + b\sigma^3 + c\sigma^5` and
:math:`|\nabla_W L|_F^2 = \sum_X \mathrm{tr}(P_X)\,g_X^2` coupling the blocks.

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

import hashlib
from functools import lru_cache
from typing import Literal

import sympy as sp
from sympy.utilities.lambdify import implemented_function

from . import derive as D
from ._spiked_neuron import a, b, c, d, eta, m, theta
from .system import System
from .validate import check_choice, check_int

#: ranks of the blocks P_{w*}, P_v, P_⊥
RANKS = (sp.Integer(1), sp.Integer(1), d - 2)
#: Σ on the blocks
SIGMA_BLOCKS = (sp.Integer(1), 1 + theta, sp.Integer(1))
#: Muon's Newton–Schulz quintic as Muon runs it (Keller Jordan's ``zeropower_via_newtonschulz5``): coefficients
#: (a, b, c) of X <- aX + b(XX^T)X + c(XX^T)^2 X, exact decimals
MUON_COEFFS = (sp.Rational("3.4445"), sp.Rational("-4.7750"), sp.Rational("2.0315"))
#: its number of iterations and the epsilon added to |G|_F before dividing (Muon's defaults)
MUON_STEPS = 5
MUON_EPS = sp.Rational(1, 10**7)


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


#: the singular value :math:`\sigma` of :func:`quintic_step`
sigma = sp.Symbol("sigma", real=True)


def _coeffs(coeffs) -> tuple[sp.Rational, sp.Rational, sp.Rational]:
    out = tuple(sp.nsimplify(x, rational=True) for x in coeffs)
    if len(out) != 3 or not all(x.is_Rational for x in out):
        raise ValueError(f"coeffs must be three real numbers (a, b, c) of X <- aX + b(XX^T)X + c(XX^T)^2 X, "
                         f"got {coeffs!r}")
    return out


@lru_cache(maxsize=8)
def quintic_step(coeffs=MUON_COEFFS) -> sp.Expr:
    r""":math:`q(\sigma)`: what one Muon iteration :math:`A = XX^\top`, :math:`B = bA + cA^2`,
    :math:`X \leftarrow aX + BX` does to the singular value :math:`\sigma` of a block.

    Derived by running the iteration on a block-diagonal :math:`X = \mathrm{diag}(x_1, x_2, x_3)` (the form
    every matrix takes on the manifold): the result is block diagonal again and its entry :math:`i` is the same
    polynomial of :math:`x_i` alone (checked), :math:`q(\sigma) = a\sigma + b\sigma^3 + c\sigma^5`.
    """
    qa, qb, qc = _coeffs(coeffs)
    xs = sp.symbols("x_1:4", real=True)
    X = sp.diag(*xs)
    A = X * X.T
    B = qb * A + qc * A * A
    Xn = qa * X + B * X
    q = sp.expand(Xn[0, 0]).xreplace({xs[0]: sigma})
    if not Xn.is_diagonal() or any(sp.expand(Xn[i, i] - q.xreplace({sigma: xs[i]})) != 0 for i in range(3)):
        raise AssertionError(f"the Newton-Schulz step does not act block by block: {Xn}")  # pragma: no cover
    return q


@lru_cache(maxsize=8)
def muon_polynomial(steps: int = MUON_STEPS, coeffs=MUON_COEFFS) -> sp.Function:
    r""":math:`p = q^{\circ\text{steps}}` (:func:`quintic_step`) as a sympy function of one argument.

    Applied, :math:`p(x)` stays a function call (the expanded composition has degree :math:`5^{\text{steps}}`,
    3125 for Muon; its tree would repeat :math:`x` :math:`3^{\text{steps}}` times); it is a sympy
    ``implemented_function`` whose implementation is the derived :math:`q` (lambdified: plain arithmetic, so it
    takes floats, sympy numbers, numpy and JAX arrays) composed ``steps`` times, which is how
    :func:`~phasedyn.theory.system.System` compiles it and :meth:`~phasedyn.theory.system.System.evaluate`
    evaluates it.
    """
    steps = check_int("steps", steps, 1)
    q = quintic_step(tuple(coeffs))
    q_fn = sp.lambdify(sigma, q, modules=[{}, "math"])

    def p_fn(x):
        for _ in range(steps):
            x = q_fn(x)
        return x

    tag = hashlib.sha1(repr((steps, tuple(map(str, _coeffs(coeffs))))).encode()).hexdigest()[:8]
    fn = implemented_function(sp.Function(f"muon_p{steps}_{tag}"), p_fn)
    return fn


def muon_block_polar(gradient=None, steps: int = MUON_STEPS, coeffs=MUON_COEFFS,
                     eps=MUON_EPS) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    r"""Muon's approximate polar factor of :math:`\nabla_W L = Q\sum_X g_XP_X` on the manifold, per block:
    ``(p_a, p_b, p_c)`` with :math:`\mathrm{NS}_5(\nabla_W L) = Q\sum_X p_XP_X`.

    Muon's iteration on the block matrices (each block a diagonal entry, traces weighted by the ranks
    :data:`RANKS`): :math:`X_0 = G/(|G|_F + \epsilon)` with :math:`|G|_F^2 = \mathrm{tr}\,G^\top G
    = \sum_X \mathrm{tr}(P_X)\,g_X^2`, then ``steps`` iterations, each acting block by block as
    :func:`quintic_step` (derived), so :math:`p_X = p(g_X/(|G|_F + \epsilon))` with :math:`p` = :func:`muon_polynomial`
    (odd: the sign of :math:`g_X` is kept). The normalisation couples the blocks. ``coeffs`` :math:`= (a, b, c)`
    (default :data:`MUON_COEFFS`), ``eps`` (default :data:`MUON_EPS`, Muon's; it also makes :math:`G = 0` a zero
    step). ``gradient``: the block gradient ``(g_a, g_b, g_c)`` (default :func:`block_gradient`).
    """
    g = block_gradient() if gradient is None else tuple(gradient)
    G = sp.diag(*g)
    norm = sp.sqrt(_tr(G.T * G)) + sp.nsimplify(eps, rational=True)
    p = muon_polynomial(steps, tuple(coeffs))
    return tuple(p(gi / norm) for gi in g)


TwoLayerOptimizer = Literal["gf", "gd", "specgd", "specgf", "muon"]
TWO_LAYER_OPTIMIZERS = ("gf", "gd", "specgd", "specgf", "muon")


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
      along :math:`g_X = 0` (Filippov), while the discrete map chatters around it with amplitude :math:`\eta`;
    * ``"muon"``: SpecGD with Muon's approximate polar factor (5 Newton–Schulz quintic steps,
      :func:`muon_block_polar`), exact map :math:`X' = X - \eta\,p(g_X/(|\nabla_W L|_F + \epsilon))`. The converged
      Newton–Schulz polar factor is the exact one, so ``"specgd"`` is its map too.

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
    elif optimizer == "muon":
        rhs = tuple(x - eta * px for x, px in zip(X, muon_block_polar(g)))
    else:
        rhs = tuple(-sp.sign(gi) for gi in g)
    st = matrix_statistics()
    desc = {"gf": "gradient flow", "gd": "GD (exact map)", "specgd": "SpecGD (exact sign map)",
            "specgf": "SpecGD continuous-time limit (sign flow)",
            "muon": "SpecGD with Muon's Newton-Schulz quintic (exact map)"}[optimizer]
    return System(
        name=f"spiked-two-layer-{optimizer}",
        states=X,
        params=(theta, m, d) + ((eta,) if optimizer in ("gd", "specgd", "muon") else ()),
        rhs=rhs,
        observables=(("u", st["u"]), ("s", st["s"]), ("loss", trace_form_loss()), ("mse", st["mse"]),
                     ("trace", st["trace"])),
        kind="flow" if optimizer in ("gf", "specgf") else "map",
        description=f"spiked two-layer, {desc}",
    )

