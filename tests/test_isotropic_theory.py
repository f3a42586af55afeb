"""Tests of phasedyn.theory.isotropic (Sigma = I, closed (u, s) system) and of System's compiled field.

Independent routes:
* docs/theory.md section 3A typed here only;
* the full d-dimensional flow / GD step, w' = -grad L(w), with grad L by jax autodiff of a
  Monte-Carlo-free population loss (Gauss-Hermite quadrature over (g, h) ~ N(0, Gram(w, w*)) and xi),
  which is exact for polynomial losses and shares no code with theory/;
* the online-SGD term against an exact quadrature of E[(dl/dg)^2 |x|^2];
* compiled JAX vs sympy evaluation in 30-digit arithmetic;
* hand-computed fixed points and eigenvalues, and eigenvalues of a JAX-autodiff Jacobian.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from phasedyn.theory import (
    System,
    escape_rate,
    fixed_points,
    isotropic_params,
    isotropic_system,
    stability,
)
from phasedyn.theory import symbols as S

g, h, xi = S.g, S.h, S.xi
u, s, s_star, sigma, eta, d_sym = S.u, S.s, S.s_star, S.sigma, S.eta, S.d

PR = S.phase_retrieval_loss
LOSS2 = (g**2 - h**2) ** 2 * (1 + g**2)
LOSSES = {"phase_retrieval": PR, "quartic_times_quadratic": LOSS2}

D_FULL = 50
SIG = 0.3


@pytest.fixture(scope="module")
def systems():
    return {opt: isotropic_system(opt) for opt in ("gf", "sgd", "gd")}


@pytest.fixture(scope="module")
def full_problem():
    rng = np.random.default_rng(42)
    w_star = rng.standard_normal(D_FULL)
    w_star *= 1.3 / np.linalg.norm(w_star)  # s* = |w*|^2 = 1.69
    w = 0.7 * rng.standard_normal(D_FULL) / np.sqrt(D_FULL) + 0.4 * w_star
    return w, w_star


# ----------------------------------------------------------------------------- numerical reference
def make_jax_population_loss(ell, n=8):
    """L(w; w*, sig) = E l(g, h, xi) for Sigma = I by tensor Gauss-Hermite quadrature (exact to degree 2n-1).

    (g, h) ~ N(0, G), G = [[w.w, w.w*], [w.w*, w*.w*]]: g = c00 z1, h = c10 z1 + c11 z2 (Cholesky)."""
    f = sp.lambdify((g, h, xi), ell, "jax")
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    weights = weights / np.sqrt(2 * np.pi)
    z1, z2, z3 = (jnp.asarray(a) for a in np.meshgrid(nodes, nodes, nodes, indexing="ij"))
    wt = jnp.asarray(weights[:, None, None] * weights[None, :, None] * weights[None, None, :])

    def loss(w, w_star, sig):
        c00 = jnp.sqrt(w @ w)
        c10 = (w @ w_star) / c00
        c11 = jnp.sqrt(w_star @ w_star - c10**2)
        return jnp.sum(wt * f(c00 * z1, c10 * z1 + c11 * z2, sig * z3))

    return jax.jit(jax.grad(loss))


# ----------------------------------------------------------------------------- the equations
def test_gf_is_theory_3A(systems):
    gf = systems["gf"]
    assert gf.states == (u, s)
    assert gf.kind == "flow"
    f_u, f_s = gf.rhs
    assert sp.expand(f_u - 12 * (s_star - s) * u) == 0
    assert sp.expand(f_s - (8 * (s_star - 3 * s) * s + 16 * u**2)) == 0


def test_sgd_and_gd_structure(systems):
    gf, sgd, gd = systems["gf"], systems["sgd"], systems["gd"]
    assert sgd.kind == "flow" and gd.kind == "map"
    assert "eta" in sgd.param_names and "eta" in gd.param_names and "eta" not in gf.param_names
    # u is unchanged by the SGD noise; the s-equation differs by an O(eta) term only
    assert sp.expand(sgd.rhs[0] - gf.rhs[0]) == 0
    diff = sp.expand(sgd.rhs[1] - gf.rhs[1])
    assert diff != 0 and sp.expand(diff.xreplace({eta: 0})) == 0 and sp.degree(diff, eta) == 1
    # as eta -> 0, (map(y) - y)/eta -> the gradient flow
    for k in range(2):
        assert sp.expand(sp.limit((gd.rhs[k] - gd.states[k]) / eta, eta, 0) - gf.rhs[k]) == 0


@pytest.mark.parametrize("name", LOSSES)
def test_gf_matches_full_dimensional_flow(name, full_problem):
    """(u, s)' from the gf system = (w'.w*, 2 w'.w) with w' = -grad L(w) at d = 50 (tolerance 1e-10 rel.:
    both sides are exact up to float64 round-off, ~1e-14 relative)."""
    ell = LOSSES[name]
    w, w_star = full_problem
    grad = np.asarray(make_jax_population_loss(ell)(jnp.asarray(w), jnp.asarray(w_star), SIG))
    wdot = -grad
    full = np.array([wdot @ w_star, 2 * wdot @ w])
    system = isotropic_system("gf", ell)
    params = {"s_star": w_star @ w_star, "sigma": SIG, "d": D_FULL}
    y = {"u": w @ w_star, "s": w @ w}
    np.testing.assert_allclose(system.evaluate(y, params), full, rtol=1e-10, atol=1e-10 * np.max(np.abs(full)))
    jf = np.asarray(system.vector_field(0.0, jnp.asarray(system.pack_state(y)), jnp.asarray(system.pack_params(params))))
    np.testing.assert_allclose(jf, full, rtol=1e-10, atol=1e-10 * np.max(np.abs(full)))


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("step", [1e-3, 0.05])
def test_gd_map_matches_full_dimensional_step(name, step, full_problem):
    """(u', s') of the gd map = (w'.w*, |w'|^2), w' = w - eta grad L(w), to round-off (1e-12 relative)."""
    ell = LOSSES[name]
    w, w_star = full_problem
    grad = np.asarray(make_jax_population_loss(ell)(jnp.asarray(w), jnp.asarray(w_star), SIG))
    w1 = w - step * grad
    full = np.array([w1 @ w_star, w1 @ w1])
    system = isotropic_system("gd", ell)
    params = {"s_star": w_star @ w_star, "sigma": SIG, "d": D_FULL, "eta": step}
    got = system.evaluate({"u": w @ w_star, "s": w @ w}, params)
    np.testing.assert_allclose(got, full, rtol=1e-12)


def test_sgd_term_matches_exact_quadrature(full_problem):
    """The eta-term of the sgd s-equation = eta E[(dl/dg)^2 |x|^2] at d = 50, computed exactly:
    |x|^2 = z_par^2 + |z_perp|^2 with z_perp (d - 2 dims) independent of (g, h, xi)."""
    w, w_star = full_problem
    sgd, gf = isotropic_system("sgd"), isotropic_system("gf")
    step = 0.01
    p_sgd = {"s_star": w_star @ w_star, "sigma": SIG, "d": D_FULL, "eta": step}
    y = {"u": w @ w_star, "s": w @ w}
    term = (sgd.evaluate(y, p_sgd) - gf.evaluate(y, {k: v for k, v in p_sgd.items() if k != "eta"}))[1] / step
    dl = sp.lambdify((g, h, xi), 4 * g * (g**2 - h**2 - xi), "numpy")
    nodes, weights = np.polynomial.hermite_e.hermegauss(10)
    weights = weights / np.sqrt(2 * np.pi)
    z1, z2, z3 = np.meshgrid(nodes, nodes, nodes, indexing="ij")
    wt = weights[:, None, None] * weights[None, :, None] * weights[None, None, :]
    c00 = np.sqrt(w @ w)
    c10 = (w @ w_star) / c00
    c11 = np.sqrt(w_star @ w_star - c10**2)
    phi = dl(c00 * z1, c10 * z1 + c11 * z2, SIG * z3) ** 2
    exact = np.sum(wt * phi * (z1**2 + z2**2 + (D_FULL - 2)))
    assert term == pytest.approx(exact, rel=1e-10)  # the subtraction/division by eta costs ~1e-13


# ----------------------------------------------------------------------------- System: compiled vs sympy
def _random_point(system, rng):
    y = {"u": rng.uniform(-1.5, 1.5), "s": rng.uniform(0.01, 3.0)}
    p = {"s_star": rng.uniform(0.2, 3.0), "sigma": rng.uniform(0.0, 1.0), "d": float(rng.integers(2, 5000))}
    if "eta" in system.param_names:
        p["eta"] = 10 ** rng.uniform(-4, -1)
    return y, p


@pytest.mark.parametrize("opt", ["gf", "sgd", "gd"])
def test_vector_field_matches_sympy(opt, systems):
    system = systems[opt]
    rng = np.random.default_rng({"gf": 1, "sgd": 2, "gd": 3}[opt])
    field = system.vector_field
    for _ in range(20):
        y, p = _random_point(system, rng)
        ref = system.evaluate(y, p)
        got = np.asarray(field(0.0, jnp.asarray(system.pack_state(y)), jnp.asarray(system.pack_params(p))))
        # 1e-12 relative to the largest term magnitude: round-off of a handful of float64 products
        scale = np.max(np.abs(ref)) + 1e-300
        assert np.max(np.abs(got - ref)) <= 1e-12 * scale, (y, p, got, ref)


@pytest.mark.parametrize("opt", ["gf", "sgd", "gd"])
def test_vector_field_batches(opt, systems):
    """The compiled field vmaps over a batch and matches pointwise sympy evaluations."""
    system = systems[opt]
    rng = np.random.default_rng(5)
    pts = [_random_point(system, rng) for _ in range(8)]
    Y = jnp.asarray(np.stack([system.pack_state(y) for y, _ in pts]))
    P = jnp.asarray(np.stack([system.pack_params(p) for _, p in pts]))
    got = np.asarray(jax.vmap(system.vector_field, in_axes=(None, 0, 0))(0.0, Y, P))
    ref = np.stack([system.evaluate(y, p) for y, p in pts])
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.max(np.abs(ref)))


def test_build_twice_is_cached(systems):
    gf = systems["gf"]
    t0 = time.perf_counter()
    again = isotropic_system("gf")
    assert time.perf_counter() - t0 < 0.05  # an lru_cache hit takes microseconds
    assert again is gf
    assert again.vector_field is gf.vector_field
    assert gf.vector_field is gf.vector_field and gf.observable_fn is gf.observable_fn
    # a structurally identical System built by hand reuses the compiled function too
    clone = System(name="clone", states=gf.states, params=gf.params, rhs=gf.rhs, observables=gf.observables)
    assert clone.vector_field is gf.vector_field
    # ... and a different system does not
    assert systems["sgd"].vector_field is not gf.vector_field


def test_build_twice_is_cached_for_any_spelling(systems):
    assert isotropic_system(optimizer="gf") is systems["gf"]
    assert isotropic_system("gf", S.phase_retrieval_loss) is systems["gf"]


def test_latex(systems):
    tex = systems["gf"].latex()
    assert r"\dot{u}" in tex and r"\dot{s}" in tex and "s^*" in tex
    assert "s_star" not in tex and "s_{star}" not in tex
    tex_gd = systems["gd"].latex()
    assert "u'" in tex_gd and r"\eta" in tex_gd
    assert r"\sigma" in systems["sgd"].latex()


def test_observables(systems):
    gf = systems["gf"]
    assert gf.observable_names == ("loss", "mse")
    loss = dict(gf.observables)["loss"]
    assert sp.expand(loss - (3 * s**2 + 3 * s_star**2 - 4 * u**2 - 2 * s * s_star + sigma**2)) == 0


def test_invalid_optimizer_and_params():
    with pytest.raises(ValueError, match="optimizer"):
        isotropic_system("adam")
    with pytest.raises(ValueError, match="eta"):
        isotropic_params("gd")
    with pytest.raises(ValueError, match="s_star"):
        isotropic_params("gf", s_star=0.0)
    with pytest.raises(ValueError, match="d"):
        isotropic_params("gf", d=-1)


# ----------------------------------------------------------------------------- fixed points and stability
def test_fixed_points():
    fps = fixed_points()
    got = {(sp.simplify(fp[u]), sp.simplify(fp[s])) for fp in fps}
    expected = {(0, 0), (0, s_star / 3), (s_star, s_star), (-s_star, s_star)}
    assert len(fps) == 4
    assert got == expected
    # each one zeroes the hand-typed right-hand side
    for fu, fs in expected:
        rhs_u = 12 * (s_star - s) * u
        rhs_s = 8 * (s_star - 3 * s) * s + 16 * u**2
        assert sp.expand(rhs_u.subs({u: fu, s: fs})) == 0 and sp.expand(rhs_s.subs({u: fu, s: fs})) == 0


def test_stability():
    by_point = {(sp.simplify(fp[u]), sp.simplify(fp[s])): ev for fp, ev in stability()}
    # hand-computed Jacobian eigenvalues of u' = 12(s* - s)u, s' = 8(s* - 3s)s + 16u^2
    assert by_point[(0, s_star / 3)] == {8 * s_star: 1, -8 * s_star: 1}
    assert by_point[(0, 0)] == {12 * s_star: 1, 8 * s_star: 1}
    for sign in (1, -1):
        ev = by_point[(sign * s_star, s_star)]
        assert set(ev) == {-16 * s_star, -24 * s_star}
        assert all(e.is_negative for e in ev)


def test_stability_against_autodiff_jacobian(systems):
    gf = systems["gf"]
    ss = 1.7
    p = jnp.asarray(gf.pack_params({"s_star": ss, "sigma": 0.0, "d": 100.0}))
    for point, expected in [((0.0, ss / 3), [-8 * ss, 8 * ss]), ((ss, ss), [-24 * ss, -16 * ss]),
                            ((-ss, ss), [-24 * ss, -16 * ss]), ((0.0, 0.0), [8 * ss, 12 * ss])]:
        J = np.asarray(jax.jacfwd(lambda y: gf.vector_field(0.0, y, p))(jnp.asarray(point)))
        np.testing.assert_allclose(np.sort(np.linalg.eigvals(J).real), expected, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(gf.vector_field(0.0, jnp.asarray(point), p)), 0.0, atol=1e-12)


def test_escape_rate():
    for ss in (0.5, 1.0, 2.5):
        assert escape_rate(ss) == pytest.approx(8 * ss, rel=1e-14)
