"""Links of single-index models (theory/_links.py, issue 12 item 2): Hermite coefficients and the information
exponent, exact for piecewise polynomials, numeric otherwise, each against an independent value."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from phasedyn.theory._links import LINKS, hermite_expansion, parse_link as link


@pytest.mark.parametrize("name, k_star", [*((f"he{k}", k) for k in range(1, 7)), ("relu", 1), ("tanh", 1),
                                          ("erf", 1), ("sigmoid", 1), ("abs", 2)])
def test_information_exponent_of_the_library(name, k_star):
    assert hermite_expansion(name, 6).information_exponent == k_star


def test_coefficients_against_closed_forms_and_monte_carlo():
    relu = hermite_expansion("relu", 5)
    # E[relu(z)] = 1/sqrt(2 pi), E[relu(z) z] = 1/2, E[relu(z) He2] / 2 = 1/(2 sqrt(2 pi)), odd k >= 3 vanish
    assert relu.exact[:4] == (1 / sp.sqrt(2 * sp.pi), sp.Rational(1, 2), 1 / (2 * sp.sqrt(2 * sp.pi)), 0)
    assert relu.exact[5] == 0
    erf = hermite_expansion("erf", 3)  # E[erf(z) z] = 2/sqrt(3 pi) (Stein: E[erf'(z)])
    assert erf.coefficients[1] == pytest.approx(2 / np.sqrt(3 * np.pi), rel=1e-13) and erf.exact[1] is None
    zs = np.random.default_rng(0).normal(size=1_000_000)
    for name, fn in (("tanh", np.tanh), ("sigmoid", lambda x: 1 / (1 + np.exp(-x)))):
        c = hermite_expansion(name, 3).coefficients
        for k, he in ((1, zs), (3, zs**3 - 3 * zs)):
            x = fn(zs) * he / [1, 1, 2, 6][k]
            assert abs(c[k] - x.mean()) < 4 * x.std() / np.sqrt(x.size), (name, k)


def test_user_links_and_bad_input():
    mixed = hermite_expansion("z**3 + relu(z)", 4)
    assert mixed.exact[3] == 1 and mixed.exact[1] == sp.Rational(7, 2) and mixed.information_exponent == 1
    assert hermite_expansion("z**2", 4).information_exponent == 2 and set(LINKS) >= {"relu", "abs", "he6"}
    for bad in ("x + 1", "z +* 2"):
        with pytest.raises(ValueError, match="link"):
            link(bad)
    with pytest.raises(ValueError, match="k_max"):
        hermite_expansion("relu", 0)
