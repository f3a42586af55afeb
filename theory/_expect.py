r"""Gaussian expectations of non-polynomial functions of the local fields, behind one interface (issue 12, item 1).

For :math:`(g, h) \sim N(0, C)`, :math:`C = \begin{pmatrix} s & u \\ u & s^*\end{pmatrix}`, :func:`gauss_expect`
returns :math:`\mathbb E[f(g, h)]` for a sympy expression ``f`` in ``g``, ``h`` by the best route it knows, and says
which (:class:`Expectation`):

* ``"isserlis"``: ``f`` is a polynomial (Hermite polynomials :math:`He_k` included): exact, through
  :func:`phasedyn.theory.gaussian.expectation`;
* ``"closed"``: a product of two functions with a known Gaussian kernel:
  :math:`\mathbb E[\mathrm{erf}(ag)\,\mathrm{erf}(bh)] = \tfrac{2}{\pi}\arcsin\frac{2abu}{\sqrt{(1+2a^2s)(1+2b^2s^*)}}`
  (the arcsine formula) and the ReLU arc-cosine kernel of degree 1,
  :math:`\mathbb E[\mathrm{relu}(g)\,\mathrm{relu}(h)] = \frac{\sqrt{ss^*}}{2\pi}(\sin\theta + (\pi-\theta)\cos\theta)`,
  :math:`\cos\theta = u/\sqrt{ss^*}` (Cho and Saul, 2009);
* ``"quadrature"``: anything else, by two-dimensional Gauss–Hermite quadrature over :math:`C` (its Cholesky
  factor maps the product rule of :math:`N(0, I)` onto :math:`C`), compiled to JAX; an integrand with kinks on
  lines through the origin (ReLU, :math:`|g|`, their derivatives) takes the split polar rule of
  :mod:`phasedyn.theory._quadrature` instead, exact on each sector for piecewise polynomials. The node count doubles
  from 32 until two successive estimates agree to ``rtol`` (default 1e-13) or :data:`MAX_NODES` a side are reached;
  ``error`` is the last change, so a caller sees how far it got. Smooth integrands converge fast (spectrally):
  erf·erf reaches round-off by 256 nodes, tanh·tanh (poles at :math:`\pm i\pi/2`) 1e-15 by 256–1024, a
  polynomial of degree :math:`< 2n` is exact. At ReLU's kink the integrand is only once differentiable and the
  product rule converges like :math:`1/n` (measured, :math:`(s, u, s^*) = (1, 0.6, 1.3)`: 2.0e-3 at :math:`n = 32`,
  6.2e-5 at 1024, halving with each doubling), and :math:`|g|` likewise: the interface therefore takes the closed
  form for ReLU pairs and the split polar rule for other kinks through the origin (round-off by 32 nodes);
  ``error`` reports what quadrature reached (kinks off the origin still converge like :math:`1/n`).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import jax
import jax.numpy as jnp
import sympy as sp

from . import symbols as S
from .gaussian import expectation

MAX_NODES = 1024
MAX_POLAR = 128  # the split polar rule's node cap (radially and per arc)
#: ``Max(0, g)`` and ``Heaviside`` spellings of the ReLU
_RELU = sp.Function("relu")


@dataclasses.dataclass(frozen=True)
class Expectation:
    """``value`` of :math:`E f`, the ``route`` taken, and for quadrature the node count and last change."""

    value: float
    route: str
    nodes: int | None = None
    error: float | None = None


def relu(x):
    """:math:`\\max(0, x)` as a sympy expression (what :func:`gauss_expect` recognises)."""
    return sp.Max(0, x)


def _is_poly(f: sp.Expr) -> bool:
    try:
        poly = sp.Poly(sp.expand(f), S.g, S.h)
    except sp.PolynomialError:
        return False
    return not any(c.has(S.g, S.h) for c in poly.coeffs())


def _erf_arg(f: sp.Expr, x: sp.Symbol):
    """``a`` when ``f`` is ``erf(a x)`` for a constant ``a``, else None."""
    if isinstance(f, sp.erf):
        a = sp.simplify(f.args[0] / x)
        if not a.has(S.g, S.h):
            return a
    return None


def _is_relu(f: sp.Expr, x: sp.Symbol) -> bool:
    return isinstance(f, sp.Max) and set(f.args) == {sp.Integer(0), x}


def _closed(f: sp.Expr) -> sp.Expr | None:
    """The closed form of a recognised product ``phi(g) * psi(h)``, else None."""
    f = sp.factor_terms(f)
    coeff, rest = f.as_coeff_Mul()
    factors = sp.Mul.make_args(rest)
    if len(factors) != 2:
        return None
    fg = [x for x in factors if x.free_symbols == {S.g}]
    fh = [x for x in factors if x.free_symbols == {S.h}]
    if len(fg) != 1 or len(fh) != 1:
        return None
    (pg,), (ph,) = fg, fh
    a, b = _erf_arg(pg, S.g), _erf_arg(ph, S.h)
    if a is not None and b is not None:
        return coeff * 2 / sp.pi * sp.asin(2 * a * b * S.u / sp.sqrt((1 + 2 * a**2 * S.s) * (1 + 2 * b**2 * S.s_star)))
    if _is_relu(pg, S.g) and _is_relu(ph, S.h):
        cos = S.u / sp.sqrt(S.s * S.s_star)
        theta = sp.acos(cos)
        return coeff * sp.sqrt(S.s * S.s_star) / (2 * sp.pi) * (sp.sqrt(1 - cos**2) + (sp.pi - theta) * cos)
    return None


@lru_cache(maxsize=64)
def _compiled(f: sp.Expr):
    from .model import jax_functions

    fn = sp.lambdify((S.g, S.h), f, modules=[jax_functions(), "jax"])
    return lambda G, H, z1, z2: jnp.asarray(fn(G, H), dtype=jnp.float64) * jnp.ones_like(G)


def quadrature(f: sp.Expr, s: float, u: float, s_star: float, n: int, kinks=()) -> float:
    r""":math:`\mathbb E[f(g, h)]` by the ``n × n`` Gauss–Hermite product rule mapped through the Cholesky factor
    of :math:`C` (:math:`g = \sqrt s\,z_1`, :math:`h = (u/\sqrt s)z_1 + \sqrt{s^* - u^2/s}\,z_2`), or, given the
    ``kinks`` lines through the origin, the split polar rule with ``n`` nodes radially and per arc
    (:func:`phasedyn.theory._quadrature.expect`)."""
    from ._quadrature import gauss_quadrature as expect

    return float(jax.jit(lambda a, b, c: expect(_compiled(f), a, b, c, kinks, gh=n, polar=(n, n)))(s, u, s_star))


def gauss_expect(f: sp.Expr | str, s: float, u: float, s_star: float = 1.0, *, route: str = "auto",
                 rtol: float = 1e-13) -> Expectation:
    """:math:`\\mathbb E[f(g, h)]` at the covariance ``(s, u, s_star)`` by ``route`` in {``"auto"``, ``"isserlis"``,
    ``"closed"``, ``"quadrature"``} (module docstring); ``ValueError`` when the route does not apply or the
    covariance is not positive semi-definite."""
    f = sp.sympify(f, locals={"relu": relu, "g": S.g, "h": S.h})
    if f.free_symbols - {S.g, S.h}:
        raise ValueError(f"f must be a function of g and h only, got the symbols {sorted(map(str, f.free_symbols))}")
    if not (s > 0 and s_star > 0 and u * u <= s * s_star * (1 + 1e-15)):
        raise ValueError(f"(s, u, s_star) = ({s}, {u}, {s_star}) is not a covariance (need s, s_star > 0, u^2 <= s s_star)")
    at = {S.s: s, S.u: u, S.s_star: s_star, S.sigma: 0}
    if route in ("auto", "isserlis") and _is_poly(f):
        return Expectation(float(expectation(f).xreplace(at)), "isserlis")
    if route == "isserlis":
        raise ValueError("route 'isserlis' needs a polynomial in g, h")
    closed = _closed(f) if route in ("auto", "closed") else None
    if closed is not None:
        return Expectation(float(closed.xreplace(at)), "closed")
    if route == "closed":
        raise ValueError(f"no closed form known for {f}")
    from ._derive_numeric import kink_lines

    kinks = kink_lines(f) or ()
    prev, n = quadrature(f, s, u, s_star, 32, kinks), 64
    while True:
        value = quadrature(f, s, u, s_star, n, kinks)
        err = abs(value - prev)
        if err <= rtol * max(abs(value), 1e-300) or n >= (MAX_POLAR if kinks else MAX_NODES):
            return Expectation(value, "quadrature", n, err)
        prev, n = value, 2 * n
