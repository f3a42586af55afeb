r"""(C) Spiked covariance, :math:`\Sigma = I + \theta vv^\top`: the three-variable systems (docs/theory.md §3C).

Set-up: :math:`|v| = |w^*| = 1`, :math:`v \perp w^*`, so :math:`\Sigma w^* = w^*`, :math:`\Sigma v = (1+\theta)v`
and :math:`\Sigma = 1` on the bulk :math:`P_\perp = I - w^*w^{*\top} - vv^\top` (rank :math:`d - 2`).
Here :math:`a, b, c` are the spiked system's coefficients (signal, spike, bulk; [P2]'s :math:`a_k, b_k, c_k`),
not the power-law exponent of §3B.

**One neuron** (:func:`neuron_system`), :math:`a = w\cdot w^*`, :math:`b = w\cdot v`,
:math:`c = |P_\perp w|`. Derived by :mod:`.derive` from three block families: signal
:math:`A = P_{w^*}` (linear statistic :math:`a`), spike :math:`A = P_v` (:math:`q_b = b^2`) and bulk
:math:`A = P_\perp` (:math:`q_c = c^2`), with :math:`u = a`, :math:`s = a^2 + (1+\theta)q_b + q_c`,
:math:`s^* = 1`; then :math:`b = \sqrt{q_b}`, :math:`c = \sqrt{q_c}` by :func:`sqrt_flow` /
:func:`sqrt_map`. Gradient flow:

.. math:: \dot a = 12(1 - s)a,\quad \dot b = 4(1+\theta)(1 - 3s)b,\quad \dot c = 4(1 - 3s)c .

(The bulk component :math:`P_\perp w` keeps its direction under GF and GD, so :math:`c` is its signed
length along :math:`P_\perp w(0)`.)

**Two layers** (:func:`two_layer_system`), :math:`f_W(x) = |Wx|^2/m`, :math:`W \in \mathbb R^{m\times d}`,
population loss in trace form :math:`L(W) = (\mathrm{tr}\,A\Sigma)^2 + 2\,\mathrm{tr}(A\Sigma A\Sigma)`,
:math:`A = W^\top W/m - w^*w^{*\top}`. On the manifold :math:`W = Q(a P_{w^*} + b P_v + c P_\perp)`
(:math:`Q^\top Q = I_d`) the gradient stays in the span, :math:`\nabla_W L = Q(g_a P_{w^*} + g_b P_v + g_c P_\perp)`,
with :math:`g_X = (\partial L/\partial X)/\mathrm{tr}\,P_X` (:func:`block_gradient`, derived by sympy from
the restricted trace form). GD moves :math:`X \leftarrow X - \eta g_X`; SpecGD
(:math:`W \leftarrow W - \eta\,\mathrm{polar}(\nabla_W L)`) moves :math:`X \leftarrow X - \eta\,\mathrm{sign}(g_X)`.

Manifold conditions (both optimisers, exact in exact arithmetic): :math:`W(0)^\top W(0)` lies in
:math:`\mathrm{span}\{P_{w^*}, P_v, P_\perp\}`, i.e. :math:`W(0) = Q D_0` with :math:`Q^\top Q = I` on the range
of :math:`D_0 = a_0P_{w^*} + b_0P_v + c_0P_\perp`; this needs :math:`m \ge \mathrm{rank}\,D_0`
(:math:`= d` when :math:`c_0 \ne 0`, 2 when :math:`c_0 = 0`, ...). Examples: :math:`W(0) = c_0 I` (:math:`m = d`),
:math:`W(0) = c_0 Q` with :math:`Q` orthogonal (:math:`m = d`). A random Gaussian :math:`W(0)` or
:math:`m < d` with :math:`c_0 \ne 0` leaves the manifold: the reduced system is then a model, not an identity.

Predictions: early growth rates (:func:`growth_rates`), the threshold :math:`\theta = 2`
(:func:`threshold`), fixed points, the small-initialisation law of the peak ratio
(:func:`peak_ratio_exponent`) and, by iterating the reduced maps with every step inspected
(:func:`track`), the peak :math:`|b|/|a|`, its step, and the steps to bring :math:`b, c` below a tolerance.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jax import lax

from . import derive as D
from . import symbols as S
from .model import Model
from .validate import check_choice, check_greater, check_int, check_positive
from .system import System

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
_M, _D = m, d  # for functions whose arguments are named m, d

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

    Parameters ``(theta,)`` (+ ``eta`` for ``"gd"``). Observables ``s`` and ``loss``
    (phase retrieval: :math:`L = 3s^2 + 3 - 4a^2 - 2s`). Derived from ``model``'s loss (default phase
    retrieval) through :mod:`.derive` (see module doc); nothing is typed in.
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
    s_expr = subs[S.s].xreplace(sq)
    return System(
        name=f"spiked-neuron-{optimizer}{model.tag}",
        states=(a, b, c),
        params=(theta,) + ((eta,) if optimizer == "gd" else ()),
        rhs=rhs,
        observables=(("s", s_expr), ("loss", sp.expand(D.population_loss(coef, subs).xreplace(sq)))),
        kind="flow" if optimizer == "gf" else "map",
        description={"gf": "spiked one neuron, gradient flow", "gd": "spiked one neuron, population GD (exact map)"}[
            optimizer],
    )


# ----------------------------------------------------------------------------- two layers
#: ranks of the blocks P_{w*}, P_v, P_⊥
RANKS = (sp.Integer(1), sp.Integer(1), d - 2)
#: Σ on the blocks
SIGMA_BLOCKS = (sp.Integer(1), 1 + theta, sp.Integer(1))


def _block_trace(diag: list[sp.Expr]) -> sp.Expr:
    return sum(r * x for r, x in zip(RANKS, diag))


@lru_cache(maxsize=1)
def trace_form_loss() -> sp.Expr:
    r"""Two-layer population loss restricted to :math:`W = aP_{w^*} + bP_v + cP_\perp` (up to :math:`Q`).

    Every matrix of the trace form :math:`L = (\mathrm{tr}\,A\Sigma)^2 + 2\,\mathrm{tr}(A\Sigma A\Sigma)`,
    :math:`A = W^\top W/m - w^*w^{*\top}`, is then a combination of the three orthogonal projectors;
    products act block by block and :math:`\mathrm{tr}\,P_X` is the block's rank (:data:`RANKS`).
    """
    W = sp.diag(a, b, c)
    Sig = sp.diag(*SIGMA_BLOCKS)
    A = W.T * W / m - sp.diag(1, 0, 0)
    AS = A * Sig
    tr = lambda X: _block_trace([X[i, i] for i in range(3)])  # noqa: E731
    return sp.expand(tr(AS) ** 2 + 2 * tr(AS * AS))


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

    Parameters ``(theta, m, d)`` (+ ``eta`` for the maps). Observables: ``loss`` (the trace form),
    ``trace`` (:math:`\mathrm{tr}\,A\Sigma`). The manifold conditions are in the module docstring.
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
    trace = _block_trace([(x**2 / m - t) * sg for x, t, sg in zip(X, (1, 0, 0), SIGMA_BLOCKS)])
    desc = {"gf": "gradient flow", "gd": "GD (exact map)", "specgd": "SpecGD (exact sign map)",
            "specgf": "SpecGD continuous-time limit (sign flow)"}[optimizer]
    return System(
        name=f"spiked-two-layer-{optimizer}",
        states=X,
        params=(theta, m, d) + ((eta,) if optimizer in ("gd", "specgd") else ()),
        rhs=rhs,
        observables=(("loss", trace_form_loss()), ("trace", sp.expand(trace))),
        kind="flow" if optimizer in ("gf", "specgf") else "map",
        description=f"spiked two-layer, {desc}",
    )


# ----------------------------------------------------------------------------- parameters, validation
def check_theta(value: float) -> float:
    """Require a finite spike strength ``theta > -1`` (the spike eigenvalue 1 + θ must be positive)."""
    return check_greater("theta", value, -1.0)


def check_geometry(w_star: np.ndarray, v: np.ndarray, atol: float = 1e-10) -> None:
    r"""The reduced systems need :math:`|w^*| = |v| = 1` and :math:`v \perp w^*`; raise ``ValueError`` otherwise."""
    w_star, v = np.asarray(w_star, float), np.asarray(v, float)
    if w_star.shape != v.shape or w_star.ndim != 1:
        raise ValueError(f"w_star and v must be vectors of one length d, got shapes {w_star.shape}, {v.shape}")
    for name, x in (("w_star", w_star), ("v", v)):
        if abs(np.linalg.norm(x) - 1) > atol:
            raise ValueError(f"{name} must be a unit vector for the reduced spiked system, got |{name}| = "
                             f"{np.linalg.norm(x):.6g}")
    overlap = float(w_star @ v)
    if abs(overlap) > atol:
        raise ValueError(f"the spike v must be orthogonal to w_star for the reduced (a, b, c) system "
                         f"(allowed |v.w_star| <= {atol:g}), got v.w_star = {overlap:.6g}")


def spiked_params(
    system: System, theta: float, m: float | None = None, d: float | None = None, eta: float | None = None
) -> dict[str, float]:
    """Validated parameter dict for a spiked system (only the names it needs; ``eta`` required for maps)."""
    out = {"theta": check_theta(theta)}
    names = system.param_names
    if "m" in names:
        if m is None:
            raise ValueError("m is required for the two-layer system (allowed range: integer >= 1)")
        out["m"] = float(check_int("m", m, 1))
    if "d" in names:
        if d is None:
            raise ValueError("d is required for the two-layer system (allowed range: integer >= 3)")
        out["d"] = float(check_int("d", d, 3))
    if "eta" in names:
        if eta is None:
            raise ValueError(f"eta is required for {system.name} (allowed range (0, inf))")
        out["eta"] = check_positive("eta", eta)
    return out


# ----------------------------------------------------------------------------- analysis
def fixed_points(system: System | None = None) -> list[dict]:
    r"""Fixed points of a flow system (default the one-neuron gradient flow), solved by sympy.

    One neuron: the origin, :math:`(\pm1, 0, 0)` (:math:`w = \pm w^*`) and the saddle set
    :math:`a = 0`, :math:`(1+\theta)b^2 + c^2 = 1/3` (with its points on the axes).
    """
    system = system or neuron_system("gf")
    if system.kind != "flow":
        raise ValueError("fixed_points needs a flow system (kind='flow')")
    unique: dict[tuple, dict] = {}
    for fp in sp.solve(list(system.rhs), list(system.states), dict=True):
        unique.setdefault(tuple(sp.srepr(sp.simplify(fp.get(x, x))) for x in system.states), fp)
    return list(unique.values())


def growth_rates(system: System | None = None) -> dict[str, sp.Expr]:
    r"""Early growth rates: the Jacobian's diagonal at the origin (it is diagonal there).

    One neuron: :math:`12`, :math:`4(1+\theta)`, :math:`4`; two layers: the same divided by :math:`m`.
    """
    system = system or neuron_system("gf")
    if system.kind != "flow":
        raise ValueError("growth_rates needs a flow system (kind='flow')")
    J = system.jacobian().xreplace({x: 0 for x in system.states})
    if not J.is_diagonal():
        raise ValueError(f"{system.name}: the Jacobian at the origin is not diagonal: {J}")
    return {str(x): sp.factor(J[i, i]) for i, x in enumerate(system.states)}


def threshold(system: System | None = None) -> sp.Expr:
    r"""The spike strength above which the spike outgrows the signal: the root in :math:`\theta` of
    rate_b = rate_a (it is 2)."""
    r = growth_rates(system)
    roots = sp.solve(sp.Eq(r["b"], r["a"]), theta)
    if len(roots) != 1:
        raise ValueError(f"expected one threshold, got {roots}")
    return roots[0]


def start_threshold(init_scale: float, m: int, d: int) -> float:
    r"""The :math:`\theta` at which spike and signal start at equal rates from :math:`W(0) = c_0 I`, two-layer model.

    From :math:`a = b = c = c_0` the ratio :math:`b/a` first grows iff :math:`g_b/b < g_a/a` there (for GD at any
    :math:`\eta`: the one-step factors are :math:`1 - \eta g_X/X`). Solved from the derived block gradient:

    .. math:: (1+\theta)\Big(1 - \tfrac{c_0^2}{m}(d + 3\theta + 2)\Big) = 3 - \tfrac{c_0^2}{m}(d + \theta + 2),

    whose root near 2 is :math:`2 + O(c_0^2 d/m)`; it tends to the threshold 2 as :math:`c_0 \to 0`.
    """
    c0 = check_positive("init_scale", init_scale)
    m_, d_ = check_int("m", m, 1), check_int("d", d, 3)
    g = block_gradient()
    at = {a: sp.nsimplify(c0), b: sp.nsimplify(c0), c: sp.nsimplify(c0), _M: sp.Integer(m_), _D: sp.Integer(d_)}
    gap = sp.numer(sp.together(sp.cancel(g[1] / b - g[0] / a).xreplace(at)))
    real = [float(r) for r in sp.Poly(gap, theta).nroots() if abs(sp.im(r)) < 1e-12 and sp.re(r) > -1]
    if not real:
        raise ValueError(f"no threshold theta > -1 from init_scale = {c0}, m = {m_}, d = {d_} "
                         "(the spike never starts faster than the signal)")
    return min(real, key=lambda r: abs(r - 2))


def peak_ratio_exponent(system: System | None = None) -> sp.Expr:
    r"""Small-initialisation law of the GD peak ratio: :math:`\max_t |b|/|a| \propto \varepsilon^{-\gamma}`.

    From a start of scale :math:`\varepsilon` with :math:`b_0 = a_0`, the spike grows like
    :math:`e^{\rho_b t}` until it saturates at an :math:`O(1)` level, at :math:`t_b \approx \log(1/\varepsilon)/\rho_b`,
    while the signal has grown by :math:`e^{\rho_a t_b}`: the ratio there is
    :math:`\propto \varepsilon^{-(1 - \rho_a/\rho_b)}`, so :math:`\gamma = 1 - \rho_a/\rho_b = (\theta-2)/(\theta+1)`
    (for :math:`\theta > 2`; below the threshold the ratio only falls).
    """
    r = growth_rates(system)
    return sp.factor(1 - r["a"] / r["b"])


# ----------------------------------------------------------------------------- iterating with every step seen
@dataclasses.dataclass(frozen=True)
class Tracked:
    r"""What :func:`track` reads off a reduced map, every step inspected (arrays of shape ``batch``).

    Attributes:
        ratio0: :math:`|b_0|/|a_0|`.
        peak_ratio: :math:`\max_k |b_k|/|a_k|` over :math:`k = 0..` ``steps`` (a new maximum must beat the old by
            the relative margin :data:`PEAK_RTOL`, so that round-off does not move the peak).
        peak_step: the first :math:`k` where the maximum is reached.
        amplification: ``peak_ratio / ratio0``.
        steps_to_tol: first :math:`k` from which :math:`\max(|b_j|, |c_j|) \le` ``tol`` :math:`\cdot\sqrt m`
            for every later :math:`j \le` ``steps`` (``-1``: still above at the end).
        diverged_step: first :math:`k` with a non-finite state or :math:`|y| >` ``blowup`` (``-1``: none).
        final: state after ``steps`` steps (the last finite one if it diverged), ``(*batch, 3)``.
    """

    ratio0: np.ndarray
    peak_ratio: np.ndarray
    peak_step: np.ndarray
    amplification: np.ndarray
    steps_to_tol: np.ndarray
    diverged_step: np.ndarray
    final: np.ndarray


#: relative margin by which a ratio must exceed the running maximum to count as a new peak
PEAK_RTOL = 1e-12

_TRACKERS: dict[tuple, object] = {}


def _tracker(system: System):
    key = (system._key, "track")
    if key not in _TRACKERS:
        step = system.vector_field
        ia, ib, ic = (system.state_names.index(n) for n in ("a", "b", "c"))
        im = system.param_names.index("m") if "m" in system.param_names else None

        def one(y0, p, steps, tol, blowup):
            scale = jnp.sqrt(p[im]) if im is not None else jnp.ones((), y0.dtype)
            ratio = lambda y: jnp.abs(y[ib]) / jnp.abs(y[ia])  # noqa: E731
            above = lambda y: jnp.maximum(jnp.abs(y[ib]), jnp.abs(y[ic])) > tol * scale  # noqa: E731
            neg = -jnp.ones((), steps.dtype)

            def body(k, carry):
                y, best, kbest, last_above, bad = carry
                y_new = step(0.0, y, p)
                out = ~jnp.all(jnp.isfinite(y_new) & (jnp.abs(y_new) < blowup))
                ok = bad < 0
                bad = jnp.where(ok & out, k + 1, bad)
                y = jnp.where(ok & ~out, y_new, y)
                live = ok & ~out
                r = ratio(y)
                better = live & (r > best * (1 + PEAK_RTOL))
                best = jnp.where(better, r, best)
                kbest = jnp.where(better, k + 1, kbest)
                last_above = jnp.where(live & above(y), k + 1, last_above)
                return y, best, kbest, last_above, bad

            init = (y0, ratio(y0), jnp.zeros((), steps.dtype), jnp.where(above(y0), 0, neg), neg)
            y, best, kbest, last_above, bad = lax.fori_loop(jnp.zeros((), steps.dtype), steps, body, init)
            return ratio(y0), best, kbest, last_above, bad, y

        _TRACKERS[key] = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None, None)))
    return _TRACKERS[key]


def track(system: System, y0, params, steps: int, tol: float = 0.05, blowup: float = 1e8) -> Tracked:
    r"""Iterate a reduced map ``steps`` times, inspecting every step: peak :math:`|b|/|a|`, steps to tolerance,
    divergence.

    ``y0``/``params`` as in :func:`~phasedyn.theory.iterate` (batched by their leading axes; unlike
    ``iterate`` each member may have its own ``eta``). ``tol`` is relative to the target scale
    :math:`\sqrt m` (1 for one neuron). One compilation per system; new values never recompile.
    """
    if system.kind != "map":
        raise ValueError(f"{system.name} is a flow: track() iterates maps (use a 'gd' or 'specgd' system)")
    steps = check_int("steps", steps, 1)
    tol, blowup = check_positive("tol", tol), check_positive("blowup", blowup)
    y = system.pack_state(y0)
    p = system.pack_params(params)
    batch = np.broadcast_shapes(y.shape[:-1], p.shape[:-1])
    yf = np.broadcast_to(y, batch + y.shape[-1:]).reshape(-1, y.shape[-1])
    pf = np.broadcast_to(p, batch + p.shape[-1:]).reshape(-1, p.shape[-1])
    int_t = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    out = _tracker(system)(jnp.asarray(yf), jnp.asarray(pf), jnp.asarray(steps, dtype=int_t),
                           jnp.asarray(tol, dtype=yf.dtype), jnp.asarray(blowup, dtype=yf.dtype))
    r0, best, kbest, last_above, bad, final = (np.asarray(x) for x in out)
    to_tol = np.where(last_above >= steps, -1, last_above + 1)
    shape = lambda x: x.reshape(batch)  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        amp = best / r0
    return Tracked(shape(r0), shape(best), shape(kbest), shape(amp), shape(to_tol), shape(bad),
                   final.reshape(batch + (3,)))


def identity_start(init_scale: float) -> dict[str, float]:
    r"""Reduced state of :math:`W(0) = c_0 I` (:math:`m = d`): :math:`a = b = c = c_0`."""
    c0 = check_positive("init_scale", init_scale)
    return {"a": c0, "b": c0, "c": c0}


def default_steps(optimizer: str, m: int, eta: float, init_scale: float, factor: float = 4.0) -> int:
    r"""A run long enough to pass the GD peak / the SpecGD turn-around, from a start of scale :math:`c_0`.

    GD: the signal escapes at :math:`t = \eta k \approx (m/12)\log(\sqrt m/c_0)`; SpecGD: every
    coefficient moves by :math:`\eta` per step, the signal needs :math:`(\sqrt m - c_0)/\eta` steps.
    ``factor`` times that.
    """
    m, eta, c0 = check_int("m", m, 1), check_positive("eta", eta), check_positive("init_scale", init_scale)
    if optimizer in ("gd", "gf", "sgd"):
        t = (m / 12) * max(np.log(np.sqrt(m) / c0), 1.0)
        return int(np.ceil(factor * t / eta))
    check_choice("optimizer", optimizer, ("gd", "gf", "sgd", "specgd"))
    return int(np.ceil(factor * max(np.sqrt(m) - c0, c0) / eta))


def scan_amplification(
    optimizer: Literal["gd", "specgd"], thetas, etas, m: int, d: int, init_scale: float,
    steps_factor: float = 4.0, blowup: float = 1e6,
) -> dict[str, np.ndarray]:
    r"""Amplification of :math:`|b|/|a|` over a :math:`(\eta, \theta)` grid from :math:`W(0) = c_0 I`, reduced maps.

    Returns ``{"theta", "eta", "amplification" (n_eta, n_theta), "diverged" (bool), "steps" (n_eta,)}``;
    each :math:`\eta` row runs :func:`default_steps` steps (one compilation for the whole grid).
    """
    check_choice("optimizer", optimizer, ("gd", "specgd"))
    thetas = np.asarray(thetas, float)
    etas = np.asarray(etas, float)
    for t_ in thetas:
        check_theta(float(t_))
    system = two_layer_system(optimizer)
    amp = np.empty((etas.size, thetas.size))
    div = np.zeros_like(amp, dtype=bool)
    nsteps = np.empty(etas.size, dtype=np.int64)
    y0 = system.pack_state(identity_start(init_scale))
    for i, e in enumerate(etas):
        p = np.stack([thetas, np.full_like(thetas, m), np.full_like(thetas, d), np.full_like(thetas, e)], -1)
        nsteps[i] = default_steps(optimizer, m, float(e), init_scale, steps_factor)
        tr = track(system, y0, p, int(nsteps[i]), blowup=blowup)
        amp[i], div[i] = tr.amplification, tr.diverged_step >= 0
    return {"theta": thetas, "eta": etas, "amplification": amp, "diverged": div, "steps": nsteps}


#: amplification above this counts as misaligned (1 + a margin for round-off in a ratio that stays at 1)
MISALIGNED_LEVEL = 1.0 + 1e-9


def boundary_bisect(
    optimizer: Literal["gd", "specgd"], etas, m: int, d: int, init_scale: float, lo: float = 0.5, hi: float = 8.0,
    iters: int = 40, level: float = MISALIGNED_LEVEL, steps_factor: float = 4.0,
) -> np.ndarray:
    r"""Per :math:`\eta`, the smallest :math:`\theta \in [lo, hi]` whose amplification exceeds ``level``, on the
    reduced map from :math:`W(0) = c_0 I`: the first of 33 equispaced :math:`\theta` above ``level`` (and not
    diverged) brackets the crossing with its left neighbour, then ``iters`` bisections refine it.

    NaN where no :math:`\theta` in the bracket is misaligned without diverging (e.g. SpecGD); ``lo`` where
    ``lo`` already is.
    """
    check_choice("optimizer", optimizer, ("gd", "specgd"))
    system = two_layer_system(optimizer)
    y0 = system.pack_state(identity_start(init_scale))
    etas = np.atleast_1d(np.asarray(etas, float))
    out = np.full(etas.size, np.nan)

    def amp(thetas: np.ndarray, e: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
        p = np.stack([thetas, np.full_like(thetas, m), np.full_like(thetas, d), np.full_like(thetas, e)], -1)
        tr = track(system, y0, p, steps)
        return tr.amplification, tr.diverged_step >= 0

    for i, e in enumerate(etas):
        steps = default_steps(optimizer, m, float(e), init_scale, steps_factor)
        cands = np.linspace(lo, hi, 33)
        a_c, d_c = amp(cands, float(e), steps)
        ok = (a_c > level) & ~d_c
        if not ok.any():
            continue
        if ok[0]:
            out[i] = lo
            continue
        j = int(np.argmax(ok))  # first misaligned, non-diverged candidate: bisect in [cands[j - 1], cands[j]]
        if d_c[j - 1]:
            out[i] = cands[j]
            continue
        left, right = float(cands[j - 1]), float(cands[j])
        for _ in range(check_int("iters", iters, 1)):
            mid = 0.5 * (left + right)
            (a_mid,), _ = amp(np.array([mid]), float(e), steps)
            left, right = (left, mid) if a_mid > level else (mid, right)
        out[i] = 0.5 * (left + right)
    return out


def boundary(thetas: np.ndarray, amplification: np.ndarray, diverged: np.ndarray | None = None,
             level: float = MISALIGNED_LEVEL) -> np.ndarray:
    r"""Per row, the smallest :math:`\theta` where ``amplification`` first exceeds ``level`` (linear interpolation
    between grid points, in :math:`\theta`); NaN where no (non-diverged) point of the row does."""
    thetas = np.asarray(thetas, float)
    amp = np.asarray(amplification, float)
    div = np.zeros_like(amp, bool) if diverged is None else np.asarray(diverged, bool)
    out = np.full(amp.shape[0], np.nan)
    for i, row in enumerate(amp):
        above = (row > level) & ~div[i]
        if not above.any():
            continue
        j = int(np.argmax(above))
        if j == 0 or div[i, j - 1]:
            out[i] = thetas[j]
            continue
        f0, f1 = row[j - 1] - level, row[j] - level
        out[i] = thetas[j - 1] + (thetas[j] - thetas[j - 1]) * (-f0) / (f1 - f0)
    return out
