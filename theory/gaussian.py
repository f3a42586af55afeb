r"""Exact Gaussian moments of polynomials in the local fields (Isserlis / Wick).

For :math:`(g, h)` jointly Gaussian with covariance :math:`\begin{pmatrix}s & u\\ u & s^*\end{pmatrix}`
and :math:`\xi \sim N(0, \sigma^2)` independent,

.. math::
    \mathbb E[g^i h^j] = \sum_{m} \binom{i}{m}\binom{j}{m}\, m!\; u^m\,
        (i-m-1)!!\, s^{(i-m)/2}\,(j-m-1)!!\, {s^*}^{(j-m)/2},

the sum over :math:`m \le \min(i, j)` with :math:`i-m`, :math:`j-m` even (:math:`m` cross pairings
:math:`g`–:math:`h`, the rest paired within each field), and
:math:`\mathbb E[\xi^k] = (k-1)!!\,\sigma^k` for even :math:`k`, 0 for odd :math:`k`.
The expectation of a polynomial is taken monomial by monomial, so the result is an exact
polynomial in :math:`(s, u, s^*, \sigma)`.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from . import symbols as S


def _double_factorial_odd(n: int) -> int:
    """(n-1)!! for even n >= 0 (number of perfect pairings of n objects); 1 for n = 0."""
    out = 1
    for k in range(n - 1, 0, -2):
        out *= k
    return out


@lru_cache(maxsize=None)
def monomial_moment(i: int, j: int, k: int = 0) -> sp.Expr:
    r""":math:`\mathbb E[g^i h^j \xi^k]` as a polynomial in :math:`(s, u, s^*, \sigma)` (see module doc)."""
    if min(i, j, k) < 0:
        raise ValueError(f"exponents must be >= 0, got {(i, j, k)}")
    if (i + j) % 2 or k % 2:
        return sp.Integer(0)
    total = sp.Integer(0)
    for m in range(min(i, j) + 1):
        if (i - m) % 2 or (j - m) % 2:
            continue
        total += (
            sp.binomial(i, m) * sp.binomial(j, m) * sp.factorial(m) * S.u**m
            * _double_factorial_odd(i - m) * S.s ** ((i - m) // 2)
            * _double_factorial_odd(j - m) * S.s_star ** ((j - m) // 2)
        )
    return sp.expand(total * _double_factorial_odd(k) * S.sigma**k)


def expectation(expr: sp.Expr, g: sp.Symbol = S.g, h: sp.Symbol = S.h, xi: sp.Symbol = S.xi) -> sp.Expr:
    r""":math:`\mathbb E[p(g, h, \xi)]` for a polynomial ``p`` (other symbols are treated as constants).

    Raises ``ValueError`` if ``expr`` is not polynomial in the fields.
    """
    expr = sp.sympify(expr)
    try:
        poly = sp.Poly(sp.expand(expr), g, h, xi)
    except sp.PolynomialError as err:  # pragma: no cover - message path
        raise ValueError(f"expectation needs a polynomial in (g, h, xi), got {expr}") from err
    if any(c.has(g, h, xi) for c in poly.coeffs()):
        raise ValueError(f"expectation needs a polynomial in (g, h, xi), got {expr}")
    total = sp.Integer(0)
    for (i, j, k), coeff in poly.terms():
        total += coeff * monomial_moment(i, j, k)
    return sp.expand(total)
