"""Tests of phasedyn.theory.gaussian: exact Gaussian moments by Isserlis/Wick.

Independent routes: Monte Carlo over 10^6 samples (4 standard errors, SE from the samples), closed
forms typed in here, and derivatives of the moment generating function at 0 (sympy).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from phasedyn.theory import expectation, monomial_moment
from phasedyn.theory import symbols as S

g, h, xi = S.g, S.h, S.xi
s, u, s_star, sigma = S.s, S.u, S.s_star, S.sigma

N_MC = 1_000_000
N_SE = 4.0  # a 4-SE band: a correct formula fails it with probability ~6e-5 per check (seed fixed)


@pytest.fixture(scope="module")
def mc_samples():
    """A random valid covariance (|u| < sqrt(s s*)) and 10^6 samples of (g, h, xi)."""
    rng = np.random.default_rng(20240611)
    s_v = float(rng.uniform(0.5, 2.0))
    ss_v = float(rng.uniform(0.5, 2.0))
    rho = float(rng.uniform(-0.9, 0.9))
    u_v = rho * np.sqrt(s_v * ss_v)
    sig_v = float(rng.uniform(0.2, 0.8))
    cov = np.array([[s_v, u_v], [u_v, ss_v]])
    z = rng.standard_normal((N_MC, 2))
    gh = z @ np.linalg.cholesky(cov).T
    x = sig_v * rng.standard_normal(N_MC)
    vals = {s: s_v, u: u_v, s_star: ss_v, sigma: sig_v}
    return gh[:, 0], gh[:, 1], x, vals


def _mc_check(expr, samples):
    gs, hs, xs, vals = samples
    f = sp.lambdify((g, h, xi), expr, "numpy")
    y = np.broadcast_to(np.asarray(f(gs, hs, xs), dtype=np.float64), gs.shape)
    mean = y.mean()
    se = y.std(ddof=1) / np.sqrt(y.size)
    exact = float(expectation(expr).xreplace(vals))
    assert abs(mean - exact) <= N_SE * se, f"E[{expr}]: exact {exact}, MC {mean} +- {se}"


@pytest.mark.parametrize(
    "expr",
    [
        g**2,
        g * h,
        g**4,
        g**2 * h**2,
        g**3 * h,
        h**6,
        g**3 * h**3,
        g**2 * xi**2,
        g**4 * h**2 * xi**2,
        g * h**3 * xi**4,
    ],
    ids=str,
)
def test_monomials_against_monte_carlo(expr, mc_samples):
    _mc_check(expr, mc_samples)


def test_mixed_polynomial_against_monte_carlo(mc_samples):
    # a mixed polynomial with constants, odd terms, xi and the phase-retrieval loss itself
    p = 2 * g**3 * h - g**2 * xi**2 + 3 * h**4 * xi + g * h * xi**2 - 5 + g + (g**2 - h**2 - xi) ** 2
    _mc_check(p, mc_samples)


def test_closed_forms():
    assert sp.expand(expectation(g**4) - 3 * s**2) == 0
    assert sp.expand(expectation(g**2 * h**2) - (s * s_star + 2 * u**2)) == 0
    assert sp.expand(expectation(g**3 * h) - 3 * s * u) == 0
    assert sp.expand(expectation(h**6) - 15 * s_star**3) == 0
    assert sp.expand(expectation(xi**4) - 3 * sigma**4) == 0
    assert sp.expand(expectation(g**2 * xi**2) - s * sigma**2) == 0
    assert expectation(sp.Integer(7)) == 7
    # same forms through monomial_moment directly
    assert sp.expand(monomial_moment(4, 0) - 3 * s**2) == 0
    assert sp.expand(monomial_moment(2, 2) - (s * s_star + 2 * u**2)) == 0
    assert sp.expand(monomial_moment(0, 6) - 15 * s_star**3) == 0


def test_odd_moments_vanish():
    for i in range(8):
        for j in range(8 - i):
            for k in range(8 - i - j):
                if (i + j) % 2 or k % 2:
                    assert monomial_moment(i, j, k) == 0, (i, j, k)
                    assert expectation(g**i * h**j * xi**k) == 0, (i, j, k)


def test_against_moment_generating_function():
    """E[g^i h^j xi^k] = d^i_a d^j_b d^k_c M(a, b, c) at 0, M = exp(1/2(a^2 s + 2ab u + b^2 s*)) exp(1/2 c^2 sigma^2)."""
    a, b, c = sp.symbols("a b c")
    M = sp.exp(sp.Rational(1, 2) * (a**2 * s + 2 * a * b * u + b**2 * s_star)) * sp.exp(
        sp.Rational(1, 2) * c**2 * sigma**2
    )
    n_max = 8
    checked = 0
    Da = M
    for i in range(n_max + 1):  # substituting a = 0 commutes with d/db, d/dc
        Dab = Da.subs(a, 0)
        for j in range(n_max + 1 - i):
            Dabc = Dab.subs(b, 0)
            for k in range(n_max + 1 - i - j):
                mgf = sp.expand(Dabc.subs(c, 0))
                assert sp.expand(mgf - monomial_moment(i, j, k)) == 0, (i, j, k)
                assert sp.expand(mgf - expectation(g**i * h**j * xi**k)) == 0, (i, j, k)
                checked += 1
                Dabc = sp.diff(Dabc, c)
            Dab = sp.diff(Dab, b)
        Da = sp.diff(Da, a)
    assert checked == 165


def test_linearity_and_symbolic_coefficients():
    a, b = sp.symbols("a b")
    assert sp.expand(expectation(a * g**2 + b * g * h + a * b) - (a * s + b * u + a * b)) == 0
    # the loss expands to the Isserlis result of docs/theory.md section 1
    L = expectation(S.phase_retrieval_loss)
    assert sp.expand(L - (3 * s**2 + 3 * s_star**2 - 4 * u**2 - 2 * s * s_star + sigma**2)) == 0


@pytest.mark.parametrize(
    "expr",
    [sp.exp(g), 1 / g, sp.sqrt(h), sp.Abs(g), sp.sin(h) + g, g ** sp.Symbol("n"), (g + 1) / (h + 2), sp.log(1 + xi**2)],
    ids=str,
)
def test_non_polynomial_raises(expr):
    with pytest.raises(ValueError, match="polynomial"):
        expectation(expr)


def test_negative_exponent_raises():
    with pytest.raises(ValueError):
        monomial_moment(-1, 2)
