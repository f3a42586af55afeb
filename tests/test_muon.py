"""Muon's Newton–Schulz quintic (issue 13 item 4): its reduced map on the two-layer manifold, the matrix iteration,
SpecGD with it, ``--polar muon`` and the amplification table.

Independent routes:
* Muon's published quintic and coefficients, typed here only, against the engine's derived ``quintic_step`` and
  the composition ``muon_polynomial``;
* ``simulate._polar.muon_quintic`` (the matrix iteration, step for step as Muon runs it) against
  :math:`U\\,p(S/|G|_F)\\,V^\\top` by numpy's SVD and the scalar composition typed here;
* the full-matrix SpecGD run with ``polar="muon"`` (``jax.grad`` of simulate's own loss; the simulation never
  imports the derived map) against the reduced map on the manifold: every step one step at a time (round-off),
  and as a trajectory, whose gap is the round-off amplified by the reduced map's own tangent (the map is
  sensitive: its tangent grows by ~1e4 within 20-45 steps at eta = 0.07, m = d = 32).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import phasedyn.theory as th
from phasedyn.compare import spiked as CS
from phasedyn.simulate import matrix as MX
from phasedyn.theory import spiked as SP

A_, B_, C_ = 3.4445, -4.7750, 2.0315  # Muon's coefficients (Keller Jordan's zeropower_via_newtonschulz5)
M = D = 32


def _q(x):
    return A_ * x + B_ * x**3 + C_ * x**5


def _p(x, steps=5):
    for _ in range(steps):
        x = _q(x)
    return x


# ----------------------------------------------------------------------------- the derivation
def test_quintic_is_derived_from_the_matrix_iteration():
    """One Muon iteration on block-diagonal X acts on each block as q(σ) = aσ + bσ³ + cσ⁵ (Muon's numbers, exact)."""
    from phasedyn.theory._spiked_two_layer import sigma as s
    q = SP.quintic_step()
    assert sp.expand(q - (sp.Rational("3.4445") * s - sp.Rational("4.775") * s**3 + sp.Rational("2.0315") * s**5)) == 0
    assert tuple(float(x) for x in SP.MUON_COEFFS) == MX.MUON_COEFFS  # theory and simulation state the same numbers
    assert SP.MUON_STEPS == MX.MUON_STEPS and float(SP.MUON_EPS) == MX.MUON_EPS
    x = np.linspace(-1.0, 1.0, 11)
    np.testing.assert_allclose(SP.muon_polynomial()._imp_(x), _p(x), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(SP.muon_polynomial(2)._imp_(x), _p(x, 2), rtol=1e-15, atol=1e-15)


def test_reduced_map_is_x_minus_eta_p_of_g_over_frobenius_norm():
    """The muon map at random points: X' = X - eta p(g_X/(sqrt(g_a² + g_b² + (d-2) g_c²) + 1e-7)) with the derived
    block gradient (tested against the full gradient in test_spiked) and p composed here; odd in each block."""
    system = SP.two_layer_system("muon")
    g = [sp.lambdify((SP.a, SP.b, SP.c, SP.theta, SP.m, SP.d), gi) for gi in SP.block_gradient()]
    rng = np.random.default_rng(0)
    field = jax.jit(system.vector_field)
    for _ in range(5):
        y = rng.normal(size=3)
        th_, m_, d_, eta_ = rng.uniform(0, 8), float(rng.integers(4, 40)), float(rng.integers(4, 40)), 0.1
        gs = np.array([gi(*y, th_, m_, d_) for gi in g])
        norm = np.sqrt(gs[0] ** 2 + gs[1] ** 2 + (d_ - 2) * gs[2] ** 2) + 1e-7
        want = y - eta_ * _p(gs / norm)
        got = np.asarray(field(0.0, jnp.asarray(y), jnp.asarray([th_, m_, d_, eta_])))
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
        flip = np.asarray(field(0.0, jnp.asarray(y * [1, -1, 1]), jnp.asarray([th_, m_, d_, eta_])))
        np.testing.assert_allclose(flip, got * [1, -1, 1], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(system.evaluate(y, [th_, m_, d_, eta_]), got, rtol=1e-12)  # sympy, 30 digits


def test_p_is_not_the_polar_factor():
    """p(σ) on [0.01, 1] stays in [0.68, 1.14] (measured 0.6818 to 1.1344), far from 1 in places; it is positive on
    (0, 1] (signs kept); below 1e-3 it is linear, p(σ) ≈ a⁵σ: tiny singular values are not sent to 1."""
    p = SP.muon_polynomial()._imp_
    x = np.linspace(0.01, 1.0, 99001)
    px = p(x)
    assert 0.68 < px.min() < 0.69 and 1.13 < px.max() < 1.14
    assert np.abs(px - 1).max() > 0.3
    assert np.all(p(np.geomspace(1e-12, 1.0, 2001)) > 0)
    small = np.geomspace(1e-10, 1e-6, 9)
    np.testing.assert_allclose(p(small) / small, A_**5, rtol=1e-5)
    assert p(np.array([1e-4]))[0] < 0.05


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)])
def test_muon_quintic_is_u_p_s_vt(shape):
    """The matrix iteration equals U p(S/(|G|_F + eps)) V^T (numpy SVD, p typed here), wide, tall or square; the
    factor is not orthogonal (its residual |XX^T - I|_F is O(0.1-1)), while SVD and converged NS are, unchanged."""
    G = np.random.default_rng(1).standard_normal(shape)
    U, S, Vt = np.linalg.svd(G, full_matrices=False)
    want = (U * _p(S / (np.linalg.norm(G) + 1e-7))) @ Vt
    X = np.asarray(MX.muon_quintic(jnp.asarray(G)))
    np.testing.assert_allclose(X, want, rtol=0, atol=1e-14)
    np.testing.assert_allclose(MX.polar(G, "muon"), X, rtol=0, atol=0)
    assert float(MX.orthogonality_residual(jnp.asarray(X))) > 0.05
    for method in ("svd", "newton-schulz"):
        np.testing.assert_allclose(MX.polar(G, method), U @ Vt, atol=1e-9)
    # the number of steps and the coefficients are Muon's by default, and are arguments
    np.testing.assert_allclose(np.asarray(MX.muon_quintic(jnp.asarray(G), steps=2, coeffs=(1.5, -0.5, 0.0), eps=0.0)),
                               (U * _q_cubic(_q_cubic(S / np.linalg.norm(G)))) @ Vt, atol=1e-14)


def _q_cubic(x):
    return 1.5 * x - 0.5 * x**3


# ----------------------------------------------------------------------------- reduced map vs matrix run
def _tangent_bound(F, pv, ys, resid):
    r"""First-order propagation of the per-step residuals r_j (2-norms) through the reduced map's tangent along its
    own trajectory ys: B_k = sum_j |J_{k-1} ... J_{j+1}|_2 |r_j|_2."""
    J = np.asarray(jax.jit(jax.vmap(lambda y: jax.jacfwd(lambda z: F(0.0, z, pv))(y)))(jnp.asarray(ys[:-1])))
    bound, growth, prods, P = np.zeros(len(ys)), np.ones(len(ys)), [], np.eye(3)
    for k in range(1, len(ys)):
        prods = [J[k - 1] @ Q for Q in prods] + [np.eye(3)]
        bound[k] = sum(np.linalg.norm(Q, 2) * resid[j] for j, Q in enumerate(prods))
        P = J[k - 1] @ P
        growth[k] = np.linalg.norm(P, 2)
    return bound, growth


@pytest.mark.parametrize("theta_val", [1.0, 4.0, 8.0])
def test_reduced_muon_map_is_the_matrix_run_to_roundoff(theta_val):
    """m = d = 32, W(0) = 0.01 I, eta = 0.07, 200 steps of full-matrix SpecGD with Muon's quintic:

    * every step, the reduced map applied to the simulation's (a, b, c) gives its next (a, b, c) to <= 1e-13
      (measured 7e-15 to 2e-14) wherever the run is on the manifold (off <= 1e-13: every step at θ = 4, 8; at
      θ = 1 the run leaves it from step ~145, the bulk's equal singular values separating: the manifold is
      transversally unstable under this map);
    * as trajectories: |a, b, c| agree to 1e-12 until the map's tangent first exceeds 1e3 (18-27 steps, past
      the peak of |b|/|a|), peak and its step are equal, and later the gap stays below the round-off propagated by the
      tangent (plus 1e-14 for the measurement of a, b, c as norms) while that is below 1e-6."""
    problem = th.spiked_problem(D, theta_val, seed=0)
    steps, eta_ = 200, 0.07
    rec = np.arange(steps + 1)
    traj = MX.run_matrix(problem, "specgd", eta_, steps, M, "identity", 0.01, seeds=1, polar="muon",
                         record_steps=rec, progress=False)
    assert traj.config["polar"] == "muon" and traj.config["muon"]["steps"] == 5
    system = SP.two_layer_system("muon")
    params = SP.spiked_params(system, theta_val, M, D, eta_)
    F, pv = system.vector_field, jnp.asarray(system.pack_params(params))
    y = np.stack([traj.stats[k][0] for k in ("a", "b", "c")], -1)
    Fy = np.abs(np.asarray(jax.vmap(lambda z: F(0.0, z, pv))(jnp.asarray(y[:-1]))))  # the map is odd per block
    off = traj.stats["off"][0]
    on = np.maximum(off[:-1], off[1:]) <= 1e-13
    assert on[:140].all() and (on.all() or theta_val == 1.0)
    one_step = np.abs(Fy - y[1:]).max(axis=1)
    assert one_step[on].max() < 1e-13

    tracked = SP.track(system, SP.identity_start(0.01), params, steps, record_steps=rec)
    ys = tracked.solution.y.reshape(steps + 1, 3)
    gap = np.abs(y - np.abs(ys)).max(axis=1)
    bound, growth = _tangent_bound(F, pv, ys, np.linalg.norm(Fy - y[1:], axis=1))
    early = np.cumsum(growth > 1e3) == 0  # the steps before the tangent first exceeds 1e3
    assert np.all(early[: int(tracked.peak_step) + 2]) and gap[early].max() < 1e-12
    assert float(traj.amplification[0]) == pytest.approx(float(tracked.amplification), rel=1e-12)
    assert int(traj.peak_step[0]) == int(tracked.peak_step)
    lin = bound <= 1e-6
    assert lin.sum() > 40 and np.all(gap[lin] <= bound[lin] + 1e-14)
    assert growth[lin].max() > 1e3  # a sensitive map: the check above is not the early agreement again
    assert traj.stats["a"][0, -1] > 0.9 * np.sqrt(M)  # the run is not trivial: the signal escaped


def test_exact_polar_and_converged_newton_schulz_unchanged():
    """The sign map is still X - eta sign(g_X); full-matrix SpecGD with converged Newton-Schulz equals it within
    Newton-Schulz's stated accuracy (400 steps, through the chattering phase), as the SVD's does to round-off
    (test_spiked); Muon's map differs: it amplifies at θ = 1, below GD's threshold, where the sign map does not."""
    system = SP.two_layer_system("specgd")
    for x, f, g in zip((SP.a, SP.b, SP.c), system.rhs, SP.block_gradient()):
        assert sp.simplify(f - (x - SP.eta * sp.sign(g))) == 0
    problem = th.spiked_problem(D, 4.0, seed=0)
    rec = np.arange(401)
    traj = MX.run_matrix(problem, "specgd", 0.07, 400, M, "identity", 0.01, seeds=1, polar="newton-schulz",
                         record_steps=rec, progress=False)
    sol = th.iterate(system, SP.identity_start(0.01), SP.spiked_params(system, 4.0, M, D, 0.07), 400,
                     record_steps=rec)
    # each step's factor is within its residual r <= ns_tol of U V^T (newton_schulz's bound), the sign map is
    # locally constant: the gap after k steps is at most eta k r (measured 4.4e-12 against 2.6e-9 at the end)
    r = traj.polar_residual[0]
    assert 0 < r <= MX.NS_TOL
    gap = np.max([np.abs(traj.stats[k][0] - np.abs(sol[k])) for k in ("a", "b", "c")], axis=0)
    assert np.all(gap <= 0.07 * rec * r + 1e-13)
    amp = {opt: float(SP.track(SP.two_layer_system(opt), SP.identity_start(0.01),
                               SP.spiked_params(SP.two_layer_system(opt), 1.0, M, D, 0.07), 323).amplification)
           for opt in ("specgd", "muon")}
    assert amp["specgd"] == 1.0 and amp["muon"] > 1.3  # measured 1.3353


def test_muon_amplification_is_bounded_by_the_spread_of_p():
    """While signal and spike grow from a small start, b_k/a_k ~ sum p(σ_b)/sum p(σ_a): Muon's amplification stays
    below max p / min p on [0.01, 1] (1.66) for every θ in [0, 8] at η well inside GD's stability range, and does
    not grow as c0 -> 0 (GD's peak ratio grows like c0^-(θ-2)/(θ+1)); the exact polar's is exactly 1."""
    p = SP.muon_polynomial()._imp_(np.linspace(0.01, 1.0, 99001))
    spread = p.max() / p.min()
    thetas = np.linspace(0.0, 8.0, 17)
    for c0 in (1e-2, 1e-5):
        amp = SP.scan_amplification("muon", thetas, [0.07, 0.5], M, D, c0)["amplification"]
        assert 1.3 < amp.max() < spread  # measured 1.42-1.52
        assert np.all(SP.scan_amplification("specgd", thetas, [0.07], M, D, c0)["amplification"] == 1.0)


# ----------------------------------------------------------------------------- compare
def test_run_spiked_polar_muon(tmp_path):
    """``--polar muon`` reaches the simulation and picks Muon's reduced map; both recorded in config/summary."""
    import argparse

    parser = argparse.ArgumentParser()
    CS.add_parser(parser.add_subparsers(dest="system"))
    cfg = CS.config_from_args(parser.parse_args(["spiked", "--d", "12", "--optimizer", "specgd", "--polar", "muon",
                                                 "--steps", "150", "--seeds", "1", "--n-record", "30",
                                                 "--no-phase-diagram"]))
    assert cfg.polar == "muon"
    CS.run_spiked(cfg, tmp_path, progress=False, figures=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert json.loads((tmp_path / "config.json").read_text())["polar"] == "muon"
    assert summary["params"]["polar"] == "muon" and summary["params"]["theory"] == "spiked-two-layer-muon"
    amp = summary["measured"]["amplification"]
    assert amp["simulation"] == pytest.approx(amp["theory"], rel=1e-10) and amp["theory"] > 1.0
    assert summary["by_optimizer"]["gd"]["amplification"]["theory"] == pytest.approx(
        summary["by_optimizer"]["gd"]["amplification"]["simulation"], rel=1e-10)
    with pytest.raises(SystemExit):
        parser.parse_args(["spiked", "--polar", "muon5"])


def test_polar_table(tmp_path):
    """The table: exact polar and converged NS never amplify (theory = simulation = 1); Muon's quintic does, and its
    reduced map gives the simulation's number; the scan is the reduced maps'; the figure is written."""
    from phasedyn.compare._spiked_diagram import polar_table
    from phasedyn.compare._spiked_plots import plot_polar_amplification

    cfg = CS.SpikedConfig(d=12, steps=150, seeds=1, n_record=20)
    pt = polar_table(cfg, thetas=(1.0, 4.0), etas=[0.07, 0.3], scan_thetas=[0.0, 1.0, 4.0])
    assert set(pt["table"]) == {"svd", "newton-schulz", "muon"}
    for pol in ("svd", "newton-schulz"):
        assert all(v["theory"] == 1.0 and v["simulation"] <= 1 + 1e-12 for v in pt["table"][pol].values())
    for v in pt["table"]["muon"].values():
        assert v["simulation"] == pytest.approx(v["theory"], rel=1e-10) and v["reduced_map"] == "muon"
    assert max(v["theory"] for v in pt["table"]["muon"].values()) > 1.05
    assert np.all(pt["scan"]["exact"] == 1.0) and pt["scan"]["muon"].shape == (2, 3)
    assert pt["scan"]["muon_max"]["amplification"] == np.nanmax(pt["scan"]["muon"]) > 1.0
    files = plot_polar_amplification(pt, cfg, tmp_path)
    assert all(p.exists() for p in files)


def test_invalid_inputs():
    G = jnp.eye(3)
    with pytest.raises(ValueError, match="steps"):
        MX.muon_quintic(G, steps=0)
    with pytest.raises(ValueError, match="coeffs"):
        MX.muon_quintic(G, coeffs=(1.0, 2.0))
    with pytest.raises(ValueError, match="eps"):
        MX.muon_quintic(G, eps=-1.0)
    with pytest.raises(ValueError, match="polar"):
        MX.run_matrix(th.spiked_problem(8, 1.0), "specgd", 0.1, 5, 8, polar="muon5", progress=False)
    with pytest.raises(ValueError, match="coeffs"):
        SP.quintic_step((1.0, 2.0))
    with pytest.raises(ValueError, match="steps"):
        SP.muon_polynomial(0)
    with pytest.raises(ValueError, match="optimizer"):
        SP.scan_amplification("muon5", [1.0], [0.1], 8, 8, 0.01)
    with pytest.raises(ValueError, match="optimizer"):
        SP.two_layer_system("muon5")
