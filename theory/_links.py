r"""Links and activations of single-index models: the library, Hermite coefficients, the information exponent
(issue 12, item 2; docs/theory.md §5).

A link is a function :math:`\sigma(z)` of one variable. Its probabilists' Hermite expansion
:math:`\sigma = \sum_k c_k He_k`, :math:`c_k = \mathbb E[\sigma(z)He_k(z)]/k!` for :math:`z \sim N(0, 1)`, decides how
hard it is to learn from a random start: the *information exponent* :math:`k^*` is the index of its first
non-zero coefficient with :math:`k \ge 1` (Ben Arous, Gheissari and Jagannath, 2021). The coefficients are
exact (sympy's integral against the Gaussian) for piecewise polynomials (polynomials, ReLU, :math:`|z|`) and
otherwise numeric: one-dimensional Gauss–Hermite with the node count doubled until two estimates agree to
1e-14 (spectral for smooth links: tanh, erf, sigmoid).
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy import special
from scipy.special import roots_hermite

z = sp.Symbol("z", real=True)

#: the built-in links by name (``--link`` / ``--activation``)
LINKS: dict[str, sp.Expr] = {
    **{f"he{k}": sp.hermite_prob(k, z) for k in range(1, 7)},
    "relu": sp.Max(0, z),
    "tanh": sp.tanh(z),
    "erf": sp.erf(z),
    "sigmoid": 1 / (1 + sp.exp(-z)),
    "abs": sp.Abs(z),
}
ZERO = 1e-12  # |c_k| below this (numeric route) counts as zero


def parse_link(spec: str | sp.Expr) -> sp.Expr:
    """The link of a name in :data:`LINKS` or an expression in ``z`` (``ValueError`` otherwise)."""
    if isinstance(spec, str) and spec.strip().lower() in LINKS:
        return LINKS[spec.strip().lower()]
    try:
        expr = sp.sympify(spec, locals={"z": z, "relu": lambda x: sp.Max(0, x)})
    except (sp.SympifyError, TypeError, SyntaxError):
        raise ValueError(f"link {spec!r}: a name in {sorted(LINKS)} or an expression in z") from None
    if expr.free_symbols - {z}:
        raise ValueError(f"link {spec!r}: an expression in z only, got {sorted(map(str, expr.free_symbols))}")
    return expr


@dataclasses.dataclass(frozen=True)
class HermiteExpansion:
    """``coefficients[k]`` :math:`= c_k` for :math:`k = 0..k_{max}`, ``exact[k]`` the sympy value where the
    integral is exact (``None`` where numeric), and the information exponent (``None``: none up to ``k_max``)."""

    link: sp.Expr
    coefficients: tuple[float, ...]
    exact: tuple[sp.Expr | None, ...]
    information_exponent: int | None


def _piecewise_polynomial(expr: sp.Expr) -> bool:
    allowed = (sp.Max, sp.Min, sp.Abs, sp.Heaviside, sp.Piecewise)
    pieces = [e for e in sp.preorder_traversal(expr) if isinstance(e, allowed)]
    if any(not a.is_polynomial(z) for e in pieces for a in e.args if not isinstance(a, sp.Tuple)):
        return False
    return bool(expr.replace(lambda e: isinstance(e, allowed), lambda e: z).is_polynomial(z))


def _gaussian_integral(expr: sp.Expr) -> sp.Expr:
    phi = sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi)
    return sp.nsimplify(sp.simplify(sp.integrate(expr.rewrite(sp.Piecewise) * phi, (z, -sp.oo, sp.oo))))


def _numeric(expr: sp.Expr, k: int) -> float:
    fn = sp.lambdify(z, expr * sp.hermite_prob(k, z), modules=[{"erf": special.erf, "erfc": special.erfc}, "numpy"])
    prev, n = None, 64
    while True:
        x, w = roots_hermite(n)
        value = float(np.sum(w * np.asarray(fn(np.sqrt(2.0) * x), float)) / np.sqrt(np.pi))
        if prev is not None and (abs(value - prev) <= 1e-14 * max(1.0, abs(value)) or n >= 8192):
            return value
        prev, n = value, 2 * n


def hermite_expansion(spec: str | sp.Expr, k_max: int = 6) -> HermiteExpansion:
    """The Hermite coefficients :math:`c_0..c_{k_{max}}` and the information exponent of a link (module docstring)."""
    if not (isinstance(k_max, int) and 1 <= k_max <= 40):
        raise ValueError(f"k_max must be an integer in [1, 40], got {k_max!r}")
    return _expansion(parse_link(spec), k_max)


@lru_cache(maxsize=64)
def _expansion(expr: sp.Expr, k_max: int) -> HermiteExpansion:
    exact_route = _piecewise_polynomial(expr)
    values, exact = [], []
    for k in range(k_max + 1):
        if exact_route:
            e = _gaussian_integral(expr * sp.hermite_prob(k, z)) / math.factorial(k)
            exact.append(e)
            values.append(float(e))
        else:
            exact.append(None)
            values.append(_numeric(expr, k) / math.factorial(k))
    nonzero = [k for k in range(1, k_max + 1)
               if (exact[k] != 0 if exact[k] is not None else abs(values[k]) > ZERO)]
    return HermiteExpansion(expr, tuple(values), tuple(exact), nonzero[0] if nonzero else None)
