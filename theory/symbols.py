r"""The sympy symbols of docs/theory.md, defined once.

Local fields: :math:`g = x\cdot w`, :math:`h = x\cdot w^*` (jointly Gaussian) and label noise
:math:`\xi \sim N(0,\sigma^2)`. Their covariance: :math:`\mathrm{Var}\,g = s`,
:math:`\mathrm{Var}\,h = s^*`, :math:`\mathrm{Cov}(g,h) = u`.
"""

from __future__ import annotations

import sympy as sp

g, h, xi = sp.symbols("g h xi", real=True)
u = sp.Symbol("u", real=True)
s = sp.Symbol("s", nonnegative=True)
s_star = sp.Symbol("s_star", positive=True)
sigma = sp.Symbol("sigma", nonnegative=True)
eta = sp.Symbol("eta", positive=True)
d = sp.Symbol("d", positive=True)

#: the per-sample loss of docs/theory.md §1: ℓ = ((x·w)² − y)², y = (x·w*)² + ξ
phase_retrieval_loss = (g**2 - h**2 - xi) ** 2

#: LaTeX names for symbols whose Python names are not the math's typography
LATEX_NAMES = {s_star: "s^*", xi: r"\xi", eta: r"\eta", sigma: r"\sigma"}


def latex(expr: sp.Expr) -> str:
    """LaTeX of ``expr`` with docs/theory.md's typography (:math:`s^*`, :math:`\\eta`, ...)."""
    return sp.latex(expr, symbol_names=LATEX_NAMES)
