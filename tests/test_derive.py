"""Tests of phasedyn.theory.derive: population loss, gradient coefficients, SGD noise, statistic flows.

Independent routes:
* the population loss / alpha / beta against docs/theory.md's hand formulas (typed here only);
* the chain rule through the population loss, grad L = 2 dL/ds Sigma w + dL/du Sigma w* (symbolic);
* the gradient against central finite differences of a Monte-Carlo-free population loss
  L(w) = E l(x.w, x.w*, xi), computed by tensor Gauss-Hermite quadrature in the 2D span of
  (Sigma^1/2 w, Sigma^1/2 w*) times the xi direction (exact for polynomials of degree <= 2n-1 per axis),
  at an anisotropic Sigma, for several polynomial losses without code changes;
* the online-SGD noise E|grad l|_A^2 against Monte Carlo (10^6 samples, 4 standard errors).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from phasedyn.theory import derive as D
from phasedyn.theory import derive_loss
from phasedyn.theory import symbols as S
from phasedyn.theory.isotropic import IDENTITY

g, h, xi = S.g, S.h, S.xi
s, u, s_star, sigma, eta = S.s, S.u, S.s_star, S.sigma, S.eta

PR = S.phase_retrieval_loss
LOSS2 = (g**2 - h**2) ** 2 * (1 + g**2)  # the second loss (no label noise)
LOSS3 = (g * h - xi) ** 2 * (1 + g**2) + g**3 * h + xi * g  # odd terms and xi, degree 6
LOSSES = {"phase_retrieval": PR, "quartic_times_quadratic": LOSS2, "with_xi_and_odd_terms": LOSS3}

# An anisotropic problem, d = 6, with label noise.
LAM = np.array([2.0, 1.3, 0.7, 0.4, 0.15, 0.05])
_rng = np.random.default_rng(7)
W_STAR = _rng.standard_normal(6)
W_STAR /= np.sqrt(np.sum(LAM * W_STAR**2))  # s* = 1
W = 0.6 * _rng.standard_normal(6)
SIGMA = 0.4
N_MC = 1_000_000


# ----------------------------------------------------------------------------- numerical references
def gh_population_loss(ell, w, w_star, lam, sig, n=8):
    """E l(g, h, xi) by tensor Gauss-Hermite quadrature in span(Sigma^1/2 w, Sigma^1/2 w*) x xi.

    With x = Sigma^1/2 z, z ~ N(0, I): g = z.a, h = z.b (a = Sigma^1/2 w, b = Sigma^1/2 w*). With
    [a b] = QR, (g, h) = (R00 z1, R01 z1 + R11 z2), z1, z2 iid N(0, 1); xi = sig z3.
    n nodes per axis integrate polynomials of degree <= 2n - 1 exactly.
    """
    f = sp.lambdify((g, h, xi), ell, "numpy")
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    weights = weights / np.sqrt(2 * np.pi)
    a, b = np.sqrt(lam) * w, np.sqrt(lam) * w_star
    _, R = np.linalg.qr(np.stack([a, b], axis=1))
    z1, z2, z3 = np.meshgrid(nodes, nodes, nodes, indexing="ij")
    wt = weights[:, None, None] * weights[None, :, None] * weights[None, None, :]
    gg = R[0, 0] * z1
    hh = R[0, 1] * z1 + R[1, 1] * z2
    vals = np.broadcast_to(np.asarray(f(gg, hh, sig * z3), dtype=np.float64), wt.shape)
    return float(np.sum(wt * vals))


def fd_gradient(fun, w, eps=1e-3):
    """Central 5-point finite differences (truncation eps^4/30 f^(5): zero for quartic L)."""
    grad = np.empty_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = eps
        grad[i] = (-fun(w + 2 * e) + 8 * fun(w + e) - 8 * fun(w - e) + fun(w - 2 * e)) / (12 * eps)
    return grad


def stats(w, w_star, lam, k=1):
    lk = lam**k
    return float(np.sum(lk * w * w_star)), float(np.sum(lk * w * w)), float(np.sum(lk * w_star * w_star))


def numeric(expr, w, w_star, lam, sig, extra=None):
    u1, s1, ss1 = stats(w, w_star, lam)
    vals = {u: u1, s: s1, s_star: ss1, sigma: sig, **(extra or {})}
    out = expr.xreplace({k: sp.Float(v, 30) for k, v in vals.items()})
    return float(sp.N(out, 30))


# ----------------------------------------------------------------------------- symbolic
def test_phase_retrieval_population_loss():
    coef = derive_loss()
    expected = 3 * s**2 + 3 * s_star**2 - 4 * u**2 - 2 * s * s_star + sigma**2
    assert sp.expand(coef.loss - expected) == 0
    assert coef.sample_loss == PR


def test_phase_retrieval_gradient_coefficients():
    # docs/theory.md: grad L = 4(3s - s*) Sigma w - 8u Sigma w*
    coef = derive_loss(PR)
    assert sp.expand(coef.alpha - 4 * (3 * s - s_star)) == 0
    assert sp.expand(coef.beta - (-8 * u)) == 0


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_is_chain_rule_through_population_loss(name):
    # L depends on w through s = w'Sigma w (ds/dw = 2 Sigma w) and u = w'Sigma w* (du/dw = Sigma w*)
    coef = derive_loss(LOSSES[name])
    assert sp.expand(coef.alpha - 2 * sp.diff(coef.loss, s)) == 0
    assert sp.expand(coef.beta - sp.diff(coef.loss, u)) == 0


# ----------------------------------------------------------------------------- numerical
def test_quadrature_reference_is_exact():
    """Guard for the reference itself: the quadrature loss reproduces a closed form it does not use."""
    L_num = gh_population_loss(PR, W, W_STAR, LAM, SIGMA)
    u1, s1, ss1 = stats(W, W_STAR, LAM)
    L_hand = 3 * s1**2 + 3 * ss1**2 - 4 * u1**2 - 2 * s1 * ss1 + SIGMA**2
    assert L_num == pytest.approx(L_hand, rel=1e-13)


@pytest.mark.parametrize("name", LOSSES)
def test_population_loss_against_quadrature(name):
    ell = LOSSES[name]
    coef = derive_loss(ell)
    assert numeric(coef.loss, W, W_STAR, LAM, SIGMA) == pytest.approx(
        gh_population_loss(ell, W, W_STAR, LAM, SIGMA), rel=1e-12
    )


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_against_finite_differences_of_quadrature_loss(name):
    """alpha Sigma w + beta Sigma w* = FD gradient of the quadrature population loss (anisotropic Sigma).

    Tolerance 1e-8 relative to |grad|: the 5-point stencil at eps = 1e-3 has truncation
    eps^4/30 |f^(5)| (0 for the quartic loss, <~1e-9 for the degree-6 ones at these |w|) and
    round-off ~ 1e-16 |L| / eps ~ 1e-12.
    """
    ell = LOSSES[name]
    coef = derive_loss(ell)
    alpha = numeric(coef.alpha, W, W_STAR, LAM, SIGMA)
    beta = numeric(coef.beta, W, W_STAR, LAM, SIGMA)
    grad_theory = alpha * LAM * W + beta * LAM * W_STAR
    grad_fd = fd_gradient(lambda w: gh_population_loss(ell, w, W_STAR, LAM, SIGMA), W)
    err = np.max(np.abs(grad_theory - grad_fd)) / np.max(np.abs(grad_fd))
    assert err < 1e-8, (grad_theory, grad_fd)


# ----------------------------------------------------------------------------- statistic flows, any A = Sigma^kA
def numeric_family(w, w_star, lam, kA):
    r"""The family of A = Sigma^kA at a concrete (w, w*, Sigma): ww(k) = w'A Sigma^k w, ... as numbers."""
    F = lambda x: sp.Float(float(x), 30)  # noqa: E731
    return D.Family(
        ww=lambda k: F(np.sum(lam ** (kA + k) * w * w)),
        ws=lambda k: F(np.sum(lam ** (kA + k) * w * w_star)),
        ss=lambda k: F(np.sum(lam ** (kA + k) * w_star * w_star)),
        tr=lambda k: F(np.sum(lam ** (kA + k))),
    )


def numeric_subs(w, w_star, lam):
    u1, s1, ss1 = stats(w, w_star, lam)
    return D.fields(sp.Float(u1, 30), sp.Float(s1, 30), sp.Float(ss1, 30))


def to_float(expr, **vals):
    return float(sp.N(expr.xreplace({getattr(S, k): sp.Float(v, 30) for k, v in vals.items()}), 30))


@pytest.mark.parametrize("kA", [0, 1, 2])
@pytest.mark.parametrize("name", ["phase_retrieval", "with_xi_and_odd_terms"])
def test_family_flows_and_gd_maps_against_fd_gradient(name, kA):
    """d/dt w'Aw* = -grad L . A w*, d/dt w'Aw = -2 grad L . A w (GF), and the exact GD maps, for
    A = Sigma^kA at anisotropic Sigma, with grad L from finite differences of the quadrature loss."""
    ell = LOSSES[name]
    coef = derive_loss(ell)
    A = LAM**kA
    grad = fd_gradient(lambda w: gh_population_loss(ell, w, W_STAR, LAM, SIGMA), W)
    fam, subs = numeric_family(W, W_STAR, LAM, kA), numeric_subs(W, W_STAR, LAM)
    scale = np.max(np.abs(grad)) * max(np.max(A * np.abs(W_STAR)), np.max(A * np.abs(W)))
    lin = to_float(D.linear_flow(coef, fam, subs), sigma=SIGMA)
    quad = to_float(D.quadratic_flow(coef, fam, subs), sigma=SIGMA)
    assert abs(lin - (-grad @ (A * W_STAR))) < 1e-8 * scale
    assert abs(quad - (-2 * grad @ (A * W))) < 1e-8 * scale
    # population GD, one step, exact: statistics of w' = w - eta grad L
    step = 0.05
    w1 = W - step * grad
    lin_map = to_float(D.linear_gd_map(coef, fam, subs), sigma=SIGMA, eta=step)
    quad_map = to_float(D.quadratic_gd_map(coef, fam, subs), sigma=SIGMA, eta=step)
    assert lin_map == pytest.approx(np.sum(A * w1 * W_STAR), rel=1e-8)
    assert quad_map == pytest.approx(np.sum(A * w1 * w1), rel=1e-8)


def test_population_loss_and_mse_helpers():
    coef = derive_loss(PR)
    assert D.population_loss(coef, D.fields(u, s, s_star)) == coef.loss
    # MSE(w) = min(|w - w*|^2, |w + w*|^2)/d, from the A = I family at k = 0
    fam = numeric_family(W, W_STAR, LAM, 0)
    mse = float(D.mse(fam))
    d = W.size
    assert mse == pytest.approx(min(np.sum((W - W_STAR) ** 2), np.sum((W + W_STAR) ** 2)) / d, rel=1e-13)
    w_neg = -W
    mse_neg = float(D.mse(numeric_family(w_neg, W_STAR, LAM, 0)))
    assert mse_neg == pytest.approx(mse, rel=1e-13)


# ----------------------------------------------------------------------------- online-SGD noise
def _mc_noise(dl_dg, w, w_star, lam, sig, A, n=N_MC, seed=0, chunk=100_000):
    """Monte Carlo mean and SE of (dl/dg)^2 x'A x, x ~ N(0, diag(lam)), xi ~ N(0, sig^2)."""
    f = sp.lambdify((g, h, xi), dl_dg, "numpy")
    rng = np.random.default_rng(seed)
    tot = tot2 = 0.0
    for _ in range(n // chunk):
        x = rng.standard_normal((chunk, lam.size)) * np.sqrt(lam)
        noise = sig * rng.standard_normal(chunk)
        y = f(x @ w, x @ w_star, noise) ** 2 * np.sum(A * x * x, axis=1)
        tot += y.sum()
        tot2 += (y**2).sum()
    mean = tot / n
    var = (tot2 / n - mean**2) * n / (n - 1)
    return mean, np.sqrt(var / n)



def gh_noise(ell, w, w_star, lam, sig, A, n=10):
    """E[(dl/dg)^2 x'A x] without Monte Carlo: with x = Sigma^1/2 z and Q = [span basis | complement]
    (complete QR of [Sigma^1/2 w, Sigma^1/2 w*]), z'Mz = z_par' M_par z_par + cross + z_perp' M_perp z_perp,
    the cross terms average to 0 and z_perp is independent of (g, h, xi), so
    E = E[phi z_par' M_par z_par] + E[phi] tr M_perp, both by 3D Gauss-Hermite quadrature (exact)."""
    f = sp.lambdify((g, h, xi), sp.diff(ell, g), "numpy")
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    weights = weights / np.sqrt(2 * np.pi)
    Q, R = np.linalg.qr(np.stack([np.sqrt(lam) * w, np.sqrt(lam) * w_star], axis=1), mode="complete")
    M = Q.T @ np.diag(lam * A) @ Q
    z1, z2, z3 = np.meshgrid(nodes, nodes, nodes, indexing="ij")
    wt = weights[:, None, None] * weights[None, :, None] * weights[None, None, :]
    phi = np.broadcast_to(f(R[0, 0] * z1, R[0, 1] * z1 + R[1, 1] * z2, sig * z3), wt.shape) ** 2
    par = M[0, 0] * z1**2 + 2 * M[0, 1] * z1 * z2 + M[1, 1] * z2**2
    return float(np.sum(wt * phi * (par + np.trace(M[2:, 2:]))))


@pytest.mark.parametrize("kA", [0, 1, 2])
@pytest.mark.parametrize("name", LOSSES)
def test_sgd_noise_against_quadrature(name, kA):
    """The Stein-twice noise E|grad l|^2_A, A = Sigma^kA, anisotropic Sigma, against an exact quadrature.

    Tolerance 1e-11 relative: both sides are exact; the quadrature sums ~10^3 terms in float64."""
    ell = LOSSES[name]
    coef = derive_loss(ell)
    fam, subs = numeric_family(W, W_STAR, LAM, kA), numeric_subs(W, W_STAR, LAM)
    theory = to_float(sp.diff(D.quadratic_flow(coef, fam, subs, sgd=True), eta), sigma=SIGMA)
    assert theory == pytest.approx(gh_noise(ell, W, W_STAR, LAM, SIGMA, LAM**kA), rel=1e-11)


@pytest.mark.parametrize("name", ["phase_retrieval", "quartic_times_quadratic"])
def test_sgd_noise_isotropic_against_monte_carlo(name):
    """eta-coefficient of quadratic_flow(..., sgd=True) for Sigma = I, d = 20 equals E[(dl/dg)^2 |x|^2] (4 SE)."""
    ell = LOSSES[name]
    coef = derive_loss(ell)
    drift = D.quadratic_flow(coef, IDENTITY, D.fields(u, s, s_star), sgd=True)
    eta_coef = sp.diff(drift, eta)
    assert sp.expand(drift - eta * eta_coef - D.quadratic_flow(coef, IDENTITY, D.fields(u, s, s_star))) == 0
    d = 20
    rng = np.random.default_rng(3)
    w_star = rng.standard_normal(d)
    w_star /= np.linalg.norm(w_star)
    w = 0.8 * rng.standard_normal(d) / np.sqrt(d) + 0.3 * w_star
    lam = np.ones(d)
    sig = 0.3
    # hand-typed dl/dg for phase retrieval; sympy's derivative for the other loss
    dl_dg = 4 * g * (g**2 - h**2 - xi) if ell is PR else sp.diff(ell, g)
    mean, se = _mc_noise(dl_dg, w, w_star, lam, sig, np.ones(d))
    theory = numeric(eta_coef, w, w_star, lam, sig, {S.d: d})
    assert abs(theory - mean) <= 4 * se, (theory, mean, se)


@pytest.mark.parametrize("kA", [0, 1])
def test_sgd_noise_anisotropic_against_monte_carlo(kA):
    """E[(dl/dg)^2 x'A x] for A = Sigma^kA, anisotropic Sigma (the Stein-twice formula), 10^6 samples, 4 SE."""
    coef = derive_loss(PR)
    fam, subs = numeric_family(W, W_STAR, LAM, kA), numeric_subs(W, W_STAR, LAM)
    drift = D.quadratic_flow(coef, fam, subs, sgd=True)
    theory = to_float(sp.diff(drift, eta), sigma=SIGMA)
    mean, se = _mc_noise(4 * g * (g**2 - h**2 - xi), W, W_STAR, LAM, SIGMA, LAM**kA, seed=11 + kA)
    assert abs(theory - mean) <= 4 * se, (theory, mean, se)


def test_linear_flow_has_no_sgd_term():
    # E[delta (w'Aw*)] = -eta E[grad l].A w* exactly: no eta^2 term, so the linear flow is the same for SGD
    coef = derive_loss(PR)
    assert not D.linear_flow(coef, IDENTITY, D.fields(u, s, s_star)).has(eta)


def test_non_field_symbols_rejected():
    a = sp.Symbol("a")
    with pytest.raises(ValueError, match="a"):
        derive_loss((g**2 - a * h**2) ** 2)
    # a non-polynomial loss is derived through quadrature (test_single_index.py); a jump in the activation is not:
    # the drift needs the loss's first derivative, and a discontinuous activation's is a Dirac mass
    with pytest.raises(ValueError, match="Dirac"):
        derive_loss((sp.sign(g) - h) ** 2)
