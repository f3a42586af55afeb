r"""Loss coefficients of non-polynomial models: the drift and the SGD noise through first derivatives only.

For a loss that is not a polynomial in :math:`(g, h)` (single-index links: ReLU, tanh, erf, ...; docs/theory.md
§5) the coefficients of :class:`~phasedyn.theory.derive.LossCoefficients` are Gaussian expectations with no
closed form. They enter the derived systems as opaque functions :math:`E_F(s, u, s^*)` of the local-field
covariance (sympy ``implemented_function``\ s whose implementation is the JAX quadrature of
:mod:`._quadrature`), so every system built from the coefficients (isotropic, per-mode, blocks, hierarchy,
the maps) is derived the same way as for a polynomial loss and compiles to JAX unchanged.

Written in the whitened fields :math:`g = \sqrt s\,\zeta_1`, :math:`h = (u/\sqrt s)\zeta_1 + c\,\zeta_2`
(:math:`c^2 = s^* - u^2/s`), with :math:`f = \partial_g\ell` and :math:`\varphi = f^2`, Stein's lemma in
:math:`\zeta_2` alone gives, with no division by :math:`\det C` (so :math:`w \parallel w^*` is regular) and no
second derivative in :math:`g` (so a ReLU activation needs none of its Dirac masses):

.. math::
    \alpha = \frac{\mathbb E[f\,g] - u\,\mathbb E[\partial_h f]}{s},\qquad \beta = \mathbb E[\partial_h f],

and for the noise :math:`\mathbb E[\varphi\,x^\top Ax] = \mathrm{tr}(A\Sigma)\mathbb E\varphi + \mathrm{tr}(G K)`,
:math:`G = V^\top\Sigma A\Sigma V`, :math:`K = L^{-\top}\mathbb E[\varphi(\zeta\zeta^\top - I)]L^{-1}`:

.. math::
    K_{22} = Q,\quad K_{12} = \frac{P}{\sqrt s} - \frac{u}{s}Q,\quad
    K_{11} = \frac{\mathbb E[\varphi(\zeta_1^2 - 1)]}{s} - \frac{2u}{s^{3/2}}P + \frac{u^2}{s^2}Q,

:math:`P = \mathbb E[\partial_h\varphi\,\zeta_1]`, :math:`Q = \mathbb E[\partial_h^2\varphi]` when the link is
twice differentiable, else :math:`Q = \mathbb E[\partial_h\varphi\,\zeta_2]/c` (one more Stein step, accurate to
round-off over :math:`c`). For smooth losses these equal Stein's :math:`(\mathbb E\varphi_{gg},
\mathbb E\varphi_{gh}, \mathbb E\varphi_{hh})`, which the tests check against Isserlis on polynomial losses.
The label noise :math:`\xi` is integrated exactly (the loss is a polynomial in it).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import jax.numpy as jnp
import sympy as sp
from sympy.utilities.lambdify import implemented_function

from . import symbols as S
from ._quadrature import gauss_quadrature as expect
from ._quadrature import whiten
from .gaussian import monomial_moment

#: the whitened coordinates (integrands may use them)
Z1, Z2 = sp.symbols("zeta_1 zeta_2", real=True)
_KINKED = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.sign)


def kink_lines(expr: sp.Expr) -> tuple[tuple[float, float], ...] | None:
    r"""The lines :math:`\alpha g + \beta h = 0` on which ``expr`` is not smooth (from its ``Max``, ``Min``,
    ``Abs``, ``Heaviside``, ``sign``), or ``None`` when some kink is not on a line through the origin."""
    lines: list[tuple[float, float]] = []
    for node in sp.preorder_traversal(expr):
        if not isinstance(node, _KINKED):
            continue
        if isinstance(node, (sp.Max, sp.Min)):
            if len(node.args) != 2:
                return None
            arg = node.args[0] - node.args[1]
        else:
            arg = node.args[0]
        try:
            poly = sp.Poly(sp.expand(arg), S.g, S.h)
        except sp.PolynomialError:
            return None
        if poly.total_degree() != 1 or any(sum(m) != 1 for m in poly.monoms()) or any(
                c.free_symbols for c in poly.coeffs()):
            return None
        a, b = float(poly.coeff_monomial(S.g)), float(poly.coeff_monomial(S.h))
        n = (a * a + b * b) ** 0.5
        line = (a / n, b / n) if (a, b) > (0.0, 0.0) else (-a / n, -b / n)
        if all(abs(line[0] - m[0]) + abs(line[1] - m[1]) > 1e-12 for m in lines):
            lines.append(line)
    return tuple(lines)


def _name(tag: str, f: sp.Expr) -> str:
    return f"E{tag}_" + hashlib.sha1(sp.srepr(f).encode()).hexdigest()[:10]


@lru_cache(maxsize=512)
def field_expectation(f: sp.Expr, over_c: bool = False):
    r"""The opaque function :math:`E_f(s, u, s^*) = \mathbb E[f(g, h, \zeta_1, \zeta_2)]` (divided by :math:`c`
    when ``over_c``) as a sympy function class whose implementation is the JAX quadrature (any shape)."""
    from .model import jax_functions

    kinks = kink_lines(f)
    fn = sp.lambdify((S.g, S.h, Z1, Z2), f, modules=[jax_functions(), "jax"], docstring_limit=0)

    def one(s, u, s_star):
        integrand = lambda g, h, z1, z2: jnp.asarray(fn(g, h, z1, z2), jnp.result_type(g)) * jnp.ones_like(g)  # noqa: E731
        if kinks is None:  # kinks off the origin: Gauss–Hermite with many nodes (1/n at the kink)
            value = expect(integrand, s, u, s_star, gh=512)
        else:
            value = expect(integrand, s, u, s_star, kinks)
        return value / whiten(s, u, s_star)[2] if over_c else value

    vec = jnp.vectorize(one)

    def impl(s, u, s_star):
        if any(type(a).__module__.startswith("sympy") for a in (s, u, s_star)):  # sympy's evalf
            return float(vec(*(jnp.asarray(float(a), dtype=jnp.float64) for a in (s, u, s_star))))
        return vec(s, u, s_star)

    return implemented_function(sp.Function(_name("c" if over_c else "", f)), impl)


def _expect(F: sp.Expr, over_c: bool = False) -> sp.Expr:
    """:math:`\\mathbb E[F]` with :math:`\\xi` integrated exactly and the field part as opaque functions."""
    F = sp.expand(F)
    if F.has(sp.DiracDelta):
        raise ValueError("the loss's derivative has a jump where the drift needs it continuous "
                         f"(a Dirac mass in {sp.sstr(F)[:80]}): use a continuous activation")
    total = sp.Integer(0)
    for (k,), coeff in sp.Poly(F, S.xi).terms():
        if k % 2:
            continue
        if coeff == 0:
            continue
        total += monomial_moment(0, 0, k) * field_expectation(coeff, over_c)(S.s, S.u, S.s_star)
    return total


def numeric_coefficients(ell: sp.Expr):
    """:class:`~phasedyn.theory.derive.LossCoefficients` of any loss by the module's formulas (also applies to
    polynomial losses: the tests compare it with Isserlis)."""
    from .derive import LossCoefficients

    f = sp.diff(ell, S.g)
    fh = sp.diff(f, S.h)
    phi = f**2
    phih = sp.expand(2 * f * fh)
    rs = sp.sqrt(S.s)
    Ef_g, Efh = _expect(f * S.g), _expect(fh)
    phihh = sp.diff(phih, S.h)
    Q = _expect(phih * Z2, over_c=True) if phihh.has(sp.DiracDelta) else _expect(phihh)
    P = _expect(phih * Z1)
    M11 = _expect(phi * (Z1**2 - 1))
    return LossCoefficients(
        sample_loss=ell,
        loss=_expect(ell),
        alpha=(Ef_g - S.u * Efh) / S.s,
        beta=Efh,
        noise=(
            _expect(phi),
            M11 / S.s - 2 * S.u / (S.s * rs) * P + S.u**2 / S.s**2 * Q,
            P / rs - S.u / S.s * Q,
            Q,
        ),
    )
