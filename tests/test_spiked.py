"""Spiked covariance (issue 5): the (a, b, c) systems, full-matrix GD / SpecGD, the comparison.

Independent routes:
* docs/theory.md's hand formulas (typed here only) against the derived one-neuron flow;
* d/dt of the projections of the full d-dimensional gradient flow, the gradient by ``jax.grad`` of
  simulate/'s own population losses, against the derived systems at random points;
* the gradient of the full trace-form loss, entry by entry in sympy at d = 4, against the restricted one;
* full-matrix training (simulate.matrix: jax.grad, SVD / Newton-Schulz polar) against the reduced maps;
* the SVD polar factor against Newton-Schulz.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import phasedyn.simulate as simulate_pkg
import phasedyn.theory as th
from phasedyn.compare import Overlay
from phasedyn.compare import spiked as CS
from phasedyn.simulate import DivergenceError
from phasedyn.simulate import losses as L1
from phasedyn.simulate import matrix as MX
from phasedyn.theory import spiked as SP

a, b, c, theta, m, d, eta = SP.a, SP.b, SP.c, SP.theta, SP.m, SP.d, SP.eta
M = D = 32  # the size for the round-off checks


def _spike_basis(problem):
    v = np.zeros(problem.d)
    v[0] = 1.0
    w = problem.w_star
    perp = np.eye(problem.d) - np.outer(w, w) - np.outer(v, v)
    return w, v, perp


# ----------------------------------------------------------------------------- one neuron
def test_neuron_flow_is_theory_md():
    """Derived by the engine; docs/theory.md: a' = 12(1 - s)a, b' = 4(1 + θ)(1 - 3s)b, c' = 4(1 - 3s)c."""
    f = SP.neuron_system("gf").equations()
    s = a**2 + (1 + theta) * b**2 + c**2
    assert sp.expand(f[a] - 12 * (1 - s) * a) == 0
    assert sp.expand(f[b] - 4 * (1 + theta) * (1 - 3 * s) * b) == 0
    assert sp.expand(f[c] - 4 * (1 - 3 * s) * c) == 0
    # the GD map is X + eta*flow + O(eta^2), and exactly linear in each block's coefficient
    F = SP.neuron_system("gd").equations()
    for x in (a, b, c):
        assert sp.expand(sp.diff(F[x], eta).xreplace({eta: 0}) - f[x]) == 0
        assert sp.expand(F[x].xreplace({eta: 0}) - x) == 0
    assert sp.expand(F[b] - b * (1 + eta * f[b] / b)) == 0


def test_neuron_rates_threshold_and_fixed_points():
    r = SP.growth_rates()
    assert {k: sp.expand(v) for k, v in r.items()} == {"a": 12, "b": 4 * theta + 4, "c": 4}
    assert SP.threshold() == 2
    assert sp.simplify(SP.peak_ratio_exponent() - (theta - 2) / (theta + 1)) == 0
    fps = {tuple(fp[x] for x in (a, b, c)) for fp in SP.fixed_points()}
    assert {(0, 0, 0), (1, 0, 0), (-1, 0, 0)} <= fps
    # the saddle set (1 + θ)b² + c² = 1/3 on its axes
    assert (0, 0, sp.sqrt(3) / 3) in fps
    assert any(p[0] == 0 and p[2] == 0 and sp.simplify((1 + theta) * p[1] ** 2 - sp.Rational(1, 3)) == 0 for p in fps)
    r2 = SP.growth_rates(SP.two_layer_system("gf"))
    assert {k: sp.expand(v * m) for k, v in r2.items()} == {"a": 12, "b": 4 * theta + 4, "c": 4}
    assert SP.threshold(SP.two_layer_system("gf")) == 2


@pytest.mark.parametrize("theta_val", [0.5, 3.0, 7.0])
def test_neuron_flow_equals_projected_full_flow(theta_val):
    """d/dt of (w.w*, w.v, |P_perp w|) under w' = -grad L (jax.grad of simulate's loss) = derived (a, b, c) field."""
    problem = th.spiked_problem(20, theta_val, seed=1)
    w_star, v, perp = _spike_basis(problem)
    system = SP.neuron_system("gf")
    grad = jax.grad(L1.population_loss)
    rng = np.random.default_rng(2)
    for _ in range(5):
        w = rng.standard_normal(problem.d) * rng.uniform(0.1, 0.6)
        w_dot = -np.asarray(grad(jnp.asarray(w), jnp.asarray(w_star), jnp.asarray(problem.lam)))
        wp = perp @ w
        full = np.array([w_star @ w_dot, v @ w_dot, wp @ (perp @ w_dot) / np.linalg.norm(wp)])
        y = np.array([w_star @ w, v @ w, np.linalg.norm(wp)])
        derived = np.asarray(system.vector_field(0.0, jnp.asarray(y), jnp.asarray([theta_val])))
        np.testing.assert_allclose(derived, full, rtol=1e-10, atol=1e-12)


def test_neuron_gd_map_equals_full_gd_step():
    """One population-GD step of the full d-dim model (simulate.gd_step) projected = the derived map, to round-off."""
    from phasedyn.simulate import gd_step

    problem = th.spiked_problem(16, 4.0, seed=0)
    w_star, v, perp = _spike_basis(problem)
    w = 0.3 * np.random.default_rng(0).standard_normal(16)
    e0 = perp @ w / np.linalg.norm(perp @ w)  # the bulk direction keeps its direction: c is signed along it
    system = SP.neuron_system("gd")
    y = np.array([w_star @ w, v @ w, np.linalg.norm(perp @ w)])
    for _ in range(30):
        w = np.asarray(gd_step(jnp.asarray(w), jnp.asarray(w_star), jnp.asarray(problem.lam), 0.02))
        y = np.asarray(system.vector_field(0.0, jnp.asarray(y), jnp.asarray([4.0, 0.02])))
        np.testing.assert_allclose(y, [w_star @ w, v @ w, e0 @ (perp @ w)], rtol=1e-12, atol=1e-14)


def test_sqrt_change_of_variables_guards():
    q = sp.Symbol("q", nonnegative=True)
    x = sp.Symbol("x", real=True)
    assert sp.expand(SP.sqrt_flow(-4 * q + 2 * q**2, q, x) - (-2 * x + x**3)) == 0
    with pytest.raises(ValueError, match="singular"):
        SP.sqrt_flow(-4 * q + eta, q, x)  # an SGD-like noise term: not a flow of sqrt(q)
    assert sp.expand(SP.sqrt_map(q * (1 - 3 * eta * x**2) ** 2, q, x) - x * (1 - 3 * eta * x**2)) == 0
    with pytest.raises(ValueError, match="square"):
        SP.sqrt_map(q * (1 - eta + eta**2), q, x)


# ----------------------------------------------------------------------------- two layers
def test_block_gradient_is_the_full_gradient_symbolically():
    """At d = 4 (w* = e0, v = e1, bulk e2, e3): the full trace-form gradient, entry by entry in sympy, at
    W = diag(a, b, c, c) has no off-block entries and its blocks are the derived g_a, g_b, g_c."""
    n = 4
    Wsym = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"w{i}{j}", real=True))
    Sig = sp.diag(1, 1 + theta, 1, 1)
    A = Wsym.T * Wsym / m - sp.diag(1, 0, 0, 0)
    loss = (A * Sig).trace() ** 2 + 2 * (A * Sig * A * Sig).trace()
    point = {Wsym[i, j]: 0 for i in range(n) for j in range(n)}
    point.update({Wsym[0, 0]: a, Wsym[1, 1]: b, Wsym[2, 2]: c, Wsym[3, 3]: c})
    G = sp.Matrix(n, n, lambda i, j: sp.expand(sp.diff(loss, Wsym[i, j]).xreplace(point)))
    g = [gi.xreplace({d: n}) for gi in SP.block_gradient()]
    expected = sp.diag(g[0], g[1], g[2], g[2])
    assert sp.simplify(G - expected) == sp.zeros(n, n)


def _random_manifold_W(rng, a_, b_, c_, w_star, v, perp):
    Q, _ = np.linalg.qr(rng.standard_normal((len(w_star),) * 2))
    return Q @ (a_ * np.outer(w_star, w_star) + b_ * np.outer(v, v) + c_ * perp)


def test_two_layer_flow_equals_projected_full_flow():
    """On the manifold (any orthogonal Q): -grad_W L (jax.grad of simulate.matrix's loss) projected = derived GF
    field, and its off-manifold part vanishes (1e-10)."""
    problem = th.spiked_problem(D, 3.0, seed=2)
    w_star, v, perp = _spike_basis(problem)
    system = SP.two_layer_system("gf")
    rng = np.random.default_rng(3)
    grad = jax.grad(MX.population_loss)
    for _ in range(4):
        y = rng.uniform(0.2, 5.0, 3) * rng.choice([-1.0, 1.0], 3)
        W = _random_manifold_W(rng, *y, w_star, v, perp)
        G = np.asarray(grad(jnp.asarray(W), jnp.asarray(w_star), jnp.asarray(problem.lam)))
        Q = W @ np.linalg.pinv(y[0] * np.outer(w_star, w_star) + y[1] * np.outer(v, v) + y[2] * perp)
        blocks = Q.T @ (-G)  # in the span: g_a P* + g_b P_v + g_c P_perp
        coef = np.array([w_star @ blocks @ w_star, v @ blocks @ v, np.trace(perp @ blocks) / (D - 2)])
        rebuilt = coef[0] * np.outer(w_star, w_star) + coef[1] * np.outer(v, v) + coef[2] * perp
        assert np.abs(blocks - rebuilt).max() <= 1e-10 * np.abs(blocks).max()
        derived = np.asarray(system.vector_field(0.0, jnp.asarray(y), jnp.asarray([3.0, D, D])))
        np.testing.assert_allclose(derived, coef, rtol=1e-10, atol=1e-13)


def _reduced(optimizer, theta_, eta_, steps, c0, record):
    system = SP.two_layer_system(optimizer)
    return th.iterate(system, SP.identity_start(c0), SP.spiked_params(system, theta_, M, D, eta_), steps,
                      record_steps=record)


@pytest.mark.parametrize("optimizer", ["gd", "specgd"])
def test_full_matrix_reproduces_reduced_map_to_roundoff(optimizer):
    """m = d = 32, W(0) = c0 I, θ = 4: every step of full-matrix GD / SpecGD (SVD polar) equals the reduced map
    (to 1e-12 on coefficients of size sqrt(m)), through SpecGD's chattering phase; off-manifold mass at round-off."""
    problem = th.spiked_problem(D, 4.0, seed=0)
    steps = 400
    record = np.arange(steps + 1)
    traj = MX.run_matrix(problem, optimizer, 0.07, steps, M, "identity", 0.01, seeds=1, record_steps=record,
                         progress=False)
    sol = _reduced(optimizer, 4.0, 0.07, steps, 0.01, record)
    for k in ("a", "b", "c"):
        np.testing.assert_allclose(traj.stats[k][0], np.abs(sol[k]), rtol=0, atol=1e-12)
    assert traj.stats["off"].max() < 1e-13
    np.testing.assert_allclose(traj.stats["loss"][0], sol["loss"], rtol=0, atol=1e-12)
    # and the run is not trivial: the coefficients moved by O(sqrt m)
    assert traj.stats["a"][0, -1] > 0.9 * np.sqrt(M)


def test_orthogonal_start_stays_on_manifold_under_gd():
    """W(0) = c0 Q (Q Haar orthogonal, m = d) is on the manifold too: GD keeps W^T W in the span to round-off."""
    problem = th.spiked_problem(D, 4.0, seed=0)
    traj = MX.run_matrix(problem, "gd", 0.07, 300, M, "orthogonal", 0.01, seeds=2, n_record=30, progress=False)
    sol = _reduced("gd", 4.0, 0.07, 300, 0.01, traj.steps)
    assert traj.stats["off"].max() < 1e-13
    np.testing.assert_allclose(traj.stats["b"], np.abs(sol["b"])[None].repeat(2, 0), atol=1e-12)


@pytest.mark.parametrize("theta_val, grows", [(4.0, True), (1.0, False)])
def test_misalignment_gd_vs_specgd(theta_val, grows):
    """Same start W(0) = 0.01 I: under GD |b|/|a| rises well above its initial value for θ = 4, never for θ = 1;
    under SpecGD never for either. Full-matrix simulation (every step inspected) and reduced map agree."""
    problem = th.spiked_problem(D, theta_val, seed=0)
    c0, eta_ = 0.01, 0.07
    for optimizer in ("gd", "specgd"):
        steps = SP.default_steps(optimizer, M, eta_, c0)
        traj = MX.run_matrix(problem, optimizer, eta_, steps, M, "identity", c0, seeds=1, n_record=10, progress=False)
        system = SP.two_layer_system(optimizer)
        tracked = SP.track(system, SP.identity_start(c0), SP.spiked_params(system, theta_val, M, D, eta_), steps)
        for amp in (float(traj.amplification[0]), float(tracked.amplification)):
            if optimizer == "gd" and grows:
                assert amp > 3.0
            else:
                assert amp <= 1.0 + 1e-12
        assert traj.stats["alignment"][0, -1] > 1 - 1e-9  # both end aligned with w*


def test_small_start_peak_ratio_law():
    """Reduced GD map: peak |b|/|a| ∝ c0^-(θ-2)/(θ+1) as c0 -> 0 (THEORY-free prediction from the growth rates)."""
    system = SP.two_layer_system("gd")
    c0s = np.array([1e-4, 1e-6])
    for theta_val in (4.0, 8.0):
        peaks = [float(SP.track(system, SP.identity_start(x), SP.spiked_params(system, theta_val, M, D, 0.05),
                                SP.default_steps("gd", M, 0.05, x)).peak_ratio) for x in c0s]
        slope = np.diff(np.log(peaks))[0] / np.diff(np.log(c0s))[0]
        assert slope == pytest.approx(-(theta_val - 2) / (theta_val + 1), rel=0.02)


def test_specgd_time_to_tolerance_is_linear_in_inverse_eta():
    """SpecGD moves every coefficient by eta per step: steps to |b|, |c| <= tol sqrt(m) scale like 1/eta, and the
    model time it needs is far below GD's at the same tolerance."""
    sg, gd = SP.two_layer_system("specgd"), SP.two_layer_system("gd")
    times = []
    for e in (0.02, 0.01, 0.005):
        tr = SP.track(sg, SP.identity_start(0.01), SP.spiked_params(sg, 4.0, M, D, e),
                      SP.default_steps("specgd", M, e, 0.01), tol=0.05)
        times.append(int(tr.steps_to_tol) * e)
    assert np.ptp(times) < 0.02 * np.mean(times)
    tr = SP.track(gd, SP.identity_start(0.01), SP.spiked_params(gd, 4.0, M, D, 0.02), 20000, tol=0.05)
    assert int(tr.steps_to_tol) * 0.02 > 5 * np.mean(times)


def test_specgd_sign_flow_is_the_small_eta_limit():
    """Before any g_X reaches 0 (here up to t = 0.9, past the spike's turn at t ~ 0.82 and before the bulk starts
    sliding at t ~ 0.94) the SpecGD map at step eta stays within ~2 eta of the sign flow solved by diffrax."""
    sf, sg = SP.two_layer_system("specgf"), SP.two_layer_system("specgd")
    ts = np.linspace(0.0, 0.9, 91)
    flow = th.solve(sf, SP.identity_start(0.01), SP.spiked_params(sf, 4.0, M, D), ts=ts, max_steps=20000)
    assert flow["b"][-1] < flow["b"].max() - 0.05  # the spike did turn
    for e in (1e-2, 1e-3):
        mp = th.iterate(sg, SP.identity_start(0.01), SP.spiked_params(sg, 4.0, M, D, e), int(round(0.9 / e)),
                        record_steps=np.round(ts / e).astype(np.int64))
        assert np.abs(mp.y - flow.y).max() < 2 * e


def test_start_threshold_is_the_boundary():
    """The phase boundary of the reduced GD map (bisection) is the θ of equal start rates; it tends to 2."""
    for c0 in (0.1, 0.01):
        found = SP.boundary_bisect("gd", [0.05, 0.5], M, D, c0, lo=1.0, hi=4.0)
        assert np.allclose(found, SP.start_threshold(c0, M, D), atol=1e-5)
    assert abs(SP.start_threshold(1e-3, M, D) - 2) < 1e-5
    assert np.all(np.isnan(SP.boundary_bisect("specgd", [0.05], M, D, 0.01)))


def test_common_statistics_are_the_simulations_own():
    """u, s, mse of the two-layer system (observables of M = W^T W / m) evaluated at simulate.matrix's recorded
    (a, b, c) equal the same quantities computed directly from W, for W on the manifold and far off it (Gaussian,
    m < d); the one-neuron u, s equal w.Sigma w*, w^T Sigma w."""
    problem = th.spiked_problem(10, 2.5, seed=4)
    w_star, v, perp = _spike_basis(problem)
    Sig = np.diag(problem.lam)
    system = SP.two_layer_system("gd")
    rng = np.random.default_rng(5)
    for W in (_random_manifold_W(rng, -1.5, 0.4, 0.2, w_star, v, perp), MX.init_weights("gaussian", 6, 10, 0.7, 3)):
        m_ = W.shape[0]
        st = MX.statistics(*(jnp.asarray(x) for x in (W, w_star, v[None], w_star, problem.lam)))
        M_ = W.T @ W / m_
        direct = {"u": np.sqrt(w_star @ Sig @ M_ @ Sig @ w_star), "s": np.trace(M_ @ Sig),
                  "mse": (np.trace(M_) + w_star @ w_star - 2 * np.sqrt(w_star @ M_ @ w_star)) / 10}
        got = SP.observe(system, [float(st[k]) for k in "abc"], SP.spiked_params(system, 2.5, m_, 10, 0.1))
        for k, val in direct.items():
            assert float(got[k]) == pytest.approx(val, rel=1e-12), k
    # at the minimum M = w* w*^T the common statistics are u = s = s* = 1 and mse = 0
    at_min = SP.observe(system, [np.sqrt(8.0), 0.0, 0.0], SP.spiked_params(system, 2.5, 8, 10, 0.1))
    assert [float(at_min[k]) for k in ("u", "s", "mse", "loss")] == pytest.approx([1.0, 1.0, 0.0, 0.0], abs=1e-15)
    neuron = SP.neuron_system("gd")
    w = rng.standard_normal(10)
    got = SP.observe(neuron, [w_star @ w, v @ w, np.linalg.norm(perp @ w)], SP.spiked_params(neuron, 2.5, eta=0.1))
    assert float(got["u"]) == pytest.approx(w @ Sig @ w_star, rel=1e-12)
    assert float(got["s"]) == pytest.approx(w @ Sig @ w, rel=1e-12)


# ----------------------------------------------------------------------------- polar factors
@pytest.mark.parametrize("shape", [(16, 32), (32, 32), (40, 20)])
def test_newton_schulz_matches_svd_on_well_conditioned(shape):
    rng = np.random.default_rng(shape[0])
    U, _ = np.linalg.qr(rng.standard_normal((shape[0], min(shape))))
    V, _ = np.linalg.qr(rng.standard_normal((shape[1], min(shape))))
    s = np.geomspace(1.0, 1e-3, min(shape))  # condition number 1e3
    G = (U * s) @ V.T
    X_svd = MX.polar(G, "svd")
    X, r, k = MX.newton_schulz(jnp.asarray(G))
    assert float(r) <= MX.NS_TOL
    # the stated accuracy: |X - UV^T|_F <= |XX^T - I|_F (+ round-off)
    assert np.linalg.norm(np.asarray(X) - X_svd) <= float(r) + 1e-12
    np.testing.assert_allclose(X_svd, U @ V.T, atol=1e-12)
    np.testing.assert_allclose(MX.polar(G, "newton-schulz"), X_svd, atol=MX.NS_TOL + 1e-12)


def test_newton_schulz_fails_loudly_on_singular_input():
    rng = np.random.default_rng(0)
    G = rng.standard_normal((8, 3)) @ rng.standard_normal((3, 8))  # rank 3 < 8
    with pytest.raises(MX.PolarError, match="did not converge"):
        MX.polar(G, "newton-schulz")
    with pytest.raises(MX.PolarError):
        MX.polar(np.zeros((4, 4)), "newton-schulz")
    # the SVD convention: zero singular values map to 0, and the result is a partial isometry
    X = MX.polar(G, "svd")
    np.testing.assert_allclose(X @ X.T @ X, X, atol=1e-12)
    assert np.linalg.matrix_rank(X) == 3


def test_newton_schulz_in_a_run_raises_or_falls_back():
    """W(0) with no spike component: g_b = 0, the gradient is singular. NS raises PolarError (seed and step named);
    with ns_fallback the SVD takes over and the run equals the SVD run (b stays 0, as in the reduced map)."""
    problem = th.spiked_problem(12, 4.0, seed=0)
    w_star, v, perp = _spike_basis(problem)
    W0 = (0.5 * np.outer(w_star, w_star) + 0.3 * perp)[None]
    kw = dict(m=12, W0=W0, seeds=1, n_record=5, progress=False)
    with pytest.raises(MX.PolarError, match="seed 0 at step 1"):
        MX.run_matrix(problem, "specgd", 0.03, 50, polar="newton-schulz", **kw)
    fb = MX.run_matrix(problem, "specgd", 0.03, 50, polar="newton-schulz", ns_fallback=True, **kw)
    svd = MX.run_matrix(problem, "specgd", 0.03, 50, polar="svd", **kw)
    np.testing.assert_allclose(fb.W_final, svd.W_final, atol=1e-9)
    assert np.abs(svd.stats["b"]).max() < 1e-12


# ----------------------------------------------------------------------------- simulation details
def test_statistics_on_manifold_and_off():
    problem = th.spiked_problem(10, 2.0, seed=4)
    w_star, v, perp = _spike_basis(problem)
    W = _random_manifold_W(np.random.default_rng(0), -1.5, 0.4, 0.2, w_star, v, perp)
    st = MX.statistics(*(jnp.asarray(x) for x in (W, w_star, v[None], w_star, problem.lam)))
    assert float(st["a"]) == pytest.approx(1.5, rel=1e-13) and float(st["b"]) == pytest.approx(0.4, rel=1e-13)
    assert float(st["c"]) == pytest.approx(0.2, rel=1e-13)
    assert float(st["off"]) < 1e-14 and float(st["alignment"]) == pytest.approx(1.0, rel=1e-12)
    g = MX.init_weights("gaussian", 5, 10, 0.1, seed=1)
    assert float(MX.statistics(*(jnp.asarray(x) for x in (g, w_star, v[None], w_star, problem.lam)))["off"]) > 0.1


def test_sgd_tracks_the_gd_map_and_depends_on_the_seed():
    """Online mini-batch SGD (batch 64, small eta): the seed mean follows the population-GD map within a few
    percent of sqrt(m), but not exactly (it is a stochastic process)."""
    problem = th.spiked_problem(16, 4.0, seed=0)
    ov = CS.overlay_spiked(problem, "sgd", 0.01, 1500, 16, "identity", 0.1, seeds=4, batch=64, n_record=30,
                           progress=False)
    assert type(ov) is Overlay and set(ov.phases()) == {"T1", "T1p", "T2"}
    gap = ov.gap()["a"]["max"] / np.sqrt(16)
    assert 1e-6 < gap < 0.05
    assert np.ptp(ov.sim["a"][:, -1]) > 0


def test_any_spectrum_and_several_spikes():
    """The simulation takes any spectrum (here a power-law bulk) and several spike directions."""
    d_ = 12
    lam = np.concatenate([[6.0, 4.0], 1.0 / np.arange(1, d_ - 1)])
    spikes = np.eye(d_)[:2]
    z = np.random.default_rng(0).standard_normal(d_)
    z[:2] = 0.0
    problem = th.custom_problem(lam, z / np.linalg.norm(z), np.ones(d_))
    traj = MX.run_matrix(problem, "gd", 0.05, 400, d_, "identity", 0.05, seeds=1, spikes=spikes, n_record=20,
                         progress=False)
    assert traj.config["n_spikes"] == 2
    assert traj.stats["b"][0, 0] == pytest.approx(0.05, rel=1e-12)
    assert traj.amplification[0] > 1.5  # both spikes outgrow the signal early on
    assert traj.stats["loss"][0, -1] < traj.stats["loss"][0, 0] and traj.stats["a"][0, -1] > 2 * traj.stats["a"][0, 0]
    assert all(np.all(np.isfinite(v)) for v in traj.stats.values())


def test_no_retrace_for_new_values():
    problem = th.spiked_problem(12, 4.0, seed=0)
    MX.run_matrix(problem, "gd", 0.05, 20, 12, seeds=2, n_record=5, progress=False)
    before = simulate_pkg.trace_count()
    MX.run_matrix(th.spiked_problem(12, 1.0, seed=3), "gd", 0.02, 40, 12, init_scale=0.3, seeds=[5, 6], n_record=7,
                  progress=False)
    assert simulate_pkg.trace_count() == before


def test_divergence_is_reported():
    problem = th.spiked_problem(12, 4.0, seed=0)
    with pytest.raises(DivergenceError, match="diverged: seed 0 at step"):
        MX.run_matrix(problem, "gd", 50.0, 200, 12, init_scale=1.0, seeds=1, progress=False)


# ----------------------------------------------------------------------------- bad input
def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="theta"):
        th.spiked_problem(10, -1.0)
    with pytest.raises(ValueError, match="theta"):
        CS.SpikedConfig(theta=-1.5).resolved()
    with pytest.raises(ValueError, match="theta"):
        SP.spiked_params(SP.two_layer_system("gd"), -2.0, 4, 4, 0.1)
    with pytest.raises(ValueError, match="m must be an integer >= 1"):
        CS.SpikedConfig(m=0, init="gaussian").resolved()
    problem = th.spiked_problem(10, 2.0)
    with pytest.raises(ValueError, match="m must be an integer >= 1"):
        MX.run_matrix(problem, "gd", 0.1, 10, 0)
    with pytest.raises(ValueError, match="eta must be > 0"):
        MX.run_matrix(problem, "gd", 0.0, 10, 10)
    with pytest.raises(ValueError, match="eta must be > 0"):
        CS.SpikedConfig(eta=-0.1).resolved()
    with pytest.raises(ValueError, match="m = d"):
        MX.run_matrix(problem, "gd", 0.1, 10, 5, init="identity")
    with pytest.raises(ValueError, match="optimizer"):
        CS.SpikedConfig(optimizer="adam").resolved()
    with pytest.raises(ValueError, match="polar"):
        MX.run_matrix(problem, "specgd", 0.1, 10, 10, polar="qr")
    # a spike that is not orthogonal to w* when the reduced system is requested
    v = np.zeros(10)
    v[0] = 1.0
    tilted = (problem.w_star + 0.3 * v) / np.linalg.norm(problem.w_star + 0.3 * v)
    with pytest.raises(ValueError, match="orthogonal"):
        SP.check_geometry(tilted, v)
    bad = dataclasses.replace(problem, w_star=tilted)
    with pytest.raises(ValueError, match="orthogonal"):
        CS.overlay_spiked(bad, "gd", 0.1, 10, 10)
    # ...while the simulation itself accepts any spike direction
    MX.run_matrix(bad, "gd", 0.05, 5, 10, seeds=1, n_record=3, progress=False)


# ----------------------------------------------------------------------------- the experiment
def test_run_spiked_outputs(tmp_path):
    cfg = CS.SpikedConfig(d=12, steps=300, seeds=2, n_record=40, phase_diagram=False)
    result = CS.run_spiked(cfg, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"system", "params", "phases", "final", "gap", "version", "measured"} <= set(summary)
    for key in ("peak_ratio", "amplification", "t_peak", "alignment_final", "steps_to_tol"):
        assert set(summary["measured"][key]) == {"theory", "simulation"}
    assert summary["measured"]["amplification"]["simulation"] == pytest.approx(
        summary["measured"]["amplification"]["theory"], rel=1e-10)
    data = np.load(tmp_path / "trajectories.npz")
    for k in ("t", "theory_a", "theory_b", "theory_c", "sim_a_mean", "sim_b_mean", "sim_c_mean", "sim_a_std",
              "specgd_theory_b", "gd_sim_b_mean"):
        assert k in data and np.all(np.isfinite(data[k]))
    assert json.loads((tmp_path / "config.json").read_text())["m"] == 12
    assert all(p.exists() for p in result["files"])
    assert (tmp_path / "gd_vs_specgd.png").exists() and (tmp_path / "gd_vs_specgd.pdf").exists()
    assert "amplification" in CS.report("spiked", result)
    # schema 2: the common keys of every system, spiked's own under measured
    assert summary["schema"] == 2 and set(summary["phases"]) == {"T1", "T1p", "T2"}
    assert summary["phases"]["T1p"] == {"theory": None, "simulation": None}  # no single saddle level of s
    for who in ("theory", "simulation"):
        assert {"u", "s", "loss", "mse"} <= set(summary["final"][who])
    assert {"u", "s", "loss", "mse", "a", "b", "c"} <= set(summary["gap"])
    assert summary["gap"]["u"]["max"] < 1e-12 and summary["gap"]["s"]["max"] < 1e-12  # on the manifold: round-off
    for k in ("t_tol", "t_escape"):
        assert set(summary["measured"][k]) == {"theory", "simulation"}
    for k in ("theory_u", "sim_s_mean", "theory_mse", "gd_theory_u", "specgd_sim_mse_mean"):
        assert k in data and np.all(np.isfinite(data[k]))


def test_command_line_helpers(tmp_path):
    """``add_parser`` / ``config_from_args`` wire ``phasedyn run spiked`` into any argparse ``run`` subparsers."""
    import argparse

    parser = argparse.ArgumentParser()
    CS.add_parser(parser.add_subparsers(dest="system"))
    args = parser.parse_args(["spiked", "--theta", "8", "--d", "16", "--m", "8", "--init", "gaussian", "--optimizer",
                              "specgd", "--polar", "newton-schulz", "--steps", "50", "--no-phase-diagram"])
    cfg = CS.config_from_args(args)
    got = (cfg.theta, cfg.d, cfg.m, cfg.steps, cfg.polar, cfg.phase_diagram)
    assert got == (8.0, 16, 8, 50, "newton-schulz", False)
    with pytest.raises(ValueError, match="theta"):
        CS.config_from_args(parser.parse_args(["spiked", "--theta", "-3"]))


@pytest.mark.slow
def test_default_spiked_experiment(tmp_path):
    """The main job's spiked experiment, with the phase diagram and the θ tables (about 30 s)."""
    result = CS.run_spiked(CS.DEFAULT_SPIKED[0], tmp_path, progress=False)
    s = result["summary"]
    table = s["amplification_table"]
    assert table["gd"]["4"]["simulation"] > 3 and table["gd"]["1"]["simulation"] <= 1 + 1e-12
    assert all(v["simulation"] <= 1 + 1e-12 for v in table["specgd"].values())
    bnd = [x for x in s["phase_diagram"]["boundary"]["gd"] if x is not None]
    assert bnd and all(abs(x - 2) < 0.01 for x in bnd)
    assert all(x is None for x in s["phase_diagram"]["boundary"]["specgd"])
    assert (tmp_path / "phase_diagram.png").exists() and (tmp_path / "peak_ratio.pdf").exists()
    # SpecGD by polar factor (issue 13 item 4): exact and converged NS never amplify, Muon's quintic does a little
    pt = s["polar_table"]
    assert pt["eta"] == 0.07 and pt["theta"] == [1.0, 2.0, 4.0, 8.0]
    for pol in ("svd", "newton-schulz"):
        assert all(v["theory"] == 1.0 and v["simulation"] <= 1 + 1e-12 for v in pt["table"][pol].values())
    muon = pt["table"]["muon"]
    assert all(v["simulation"] == pytest.approx(v["theory"], rel=1e-10) for v in muon.values())
    assert muon["1"]["simulation"] > 1.3 and all(1.1 < v["simulation"] < 1.5 for v in muon.values())
    assert all(row["amplification"] < 1.5 for row in pt["muon_max_by_eta"][:-1])
    assert (tmp_path / "polar_amplification.png").exists() and (tmp_path / "polar_amplification.npz").exists()
