"""Gaussian expectations beyond polynomials (theory/_expect.py, issue 12 item 1): every route against Monte Carlo
(1e6 samples, 4 standard errors) and the routes against each other where they overlap."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.special import erf

from phasedyn.theory import symbols as S
from phasedyn.theory._expect import gauss_expect, quadrature, relu

g, h = S.g, S.h
COV = (1.0, 0.6, 1.3)  # s, u, s_star


def _samples(n: int = 1_000_000, seed: int = 0):
    s, u, s_star = COV
    L = np.linalg.cholesky(np.array([[s, u], [u, s_star]]))
    z = np.random.default_rng(seed).normal(size=(2, n))
    return L @ z


CASES = [  # (f, numpy version of f, route auto takes)
    (sp.erf(g) * sp.erf(2 * h), lambda G, H: erf(G) * erf(2 * H), "closed"),
    (relu(g) * relu(h), lambda G, H: np.maximum(G, 0) * np.maximum(H, 0), "closed"),
    (sp.tanh(g) * sp.tanh(h), lambda G, H: np.tanh(G) * np.tanh(H), "quadrature"),
    (h / (1 + sp.exp(-g)), lambda G, H: H / (1 + np.exp(-G)), "quadrature"),
    ((g**3 - 3 * g) * (h**3 - 3 * h), lambda G, H: (G**3 - 3 * G) * (H**3 - 3 * H), "isserlis"),
    (sp.Abs(g) * h**2, lambda G, H: np.abs(G) * H**2, "quadrature"),
]


@pytest.mark.parametrize("f, f_np, route", CASES, ids=[str(c[0]) for c in CASES])
def test_every_route_against_monte_carlo(f, f_np, route):
    G, H = _samples()
    x = f_np(G, H)
    est, se = x.mean(), x.std() / np.sqrt(x.size)
    e = gauss_expect(f, *COV)
    assert e.route == route
    assert abs(e.value - est) < 4 * se, (e, est, se)


def test_routes_agree_where_they_overlap():
    """Hermite through Isserlis and through quadrature to 1e-12; erf closed form against quadrature to 1e-12."""
    for f in [(g**3 - 3 * g) * (h**3 - 3 * h), (g**4 - 6 * g**2 + 3) * (h**2 - 1), g**2 * h**4]:
        a, b = gauss_expect(f, *COV, route="isserlis"), gauss_expect(f, *COV, route="quadrature")
        assert abs(a.value - b.value) <= 1e-12 * max(1.0, abs(a.value)), (f, a, b)
    for f in [sp.erf(g) * sp.erf(2 * h), sp.erf(g / 3) * sp.erf(h)]:
        a, b = gauss_expect(f, *COV, route="closed"), gauss_expect(f, *COV, route="quadrature")
        assert abs(a.value - b.value) <= 1e-12 * abs(a.value), (f, a, b)
        assert b.error <= 1e-13 * abs(b.value)


def test_quadrature_at_relus_kink_converges_like_one_over_n():
    exact = gauss_expect(relu(g) * relu(h), *COV, route="closed").value
    errors = [abs(quadrature(relu(g) * relu(h), *COV, n) - exact) for n in (64, 128, 256, 512)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((1.7 < ratios) & (ratios < 2.3)), (errors, ratios)  # halves with each doubling
    assert errors[-1] < 2e-4


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="covariance"):
        gauss_expect(sp.tanh(g), 1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="g and h only"):
        gauss_expect(sp.tanh(g) * S.s, *COV)
    with pytest.raises(ValueError, match="polynomial"):
        gauss_expect(sp.tanh(g), *COV, route="isserlis")
    with pytest.raises(ValueError, match="no closed form"):
        gauss_expect(sp.tanh(g) * h, *COV, route="closed")
