r"""(C) Spiked covariance: fixed points, early growth rates, the threshold θ = 2, the start threshold and the
small-initialisation law of the peak ratio (docs/theory.md §3C), read off the derived systems by sympy."""

from __future__ import annotations

import sympy as sp

from ._spiked_neuron import a, b, c, d, m, neuron_system, theta
from ._spiked_two_layer import block_gradient
from .system import System
from .validate import check_int, check_positive

_M, _D = m, d  # for functions whose arguments are named m, d

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

