"""Single-index models (issue 12): non-polynomial drift and noise against Monte Carlo and Isserlis, the derived
systems against population GD and online SGD (vanilla and spherical) at growing d, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from phasedyn import simulate
from phasedyn.compare.cli import main
from phasedyn.theory import Model, effective_dimensions, isotropic, single_index_problem
from phasedyn.theory import powerlaw as PL
from phasedyn.theory import symbols as S
from phasedyn.theory import kink_lines
from phasedyn.theory._derive_numeric import numeric_coefficients
from phasedyn.theory.derive import derive_loss

AT = {S.s: 1.3, S.u: 0.4, S.s_star: 1.1, S.sigma: 0.3}


def _num(expr, at=AT) -> float:
    return float(sp.N(expr.xreplace(at)))


@pytest.mark.parametrize("loss", ["(g**2 - h**2 - xi)**2", "(g**3 - 3*g - h**3 + 3*h - xi)**2*(1 + h**2)",
                                  "-(h**3 - 3*h + xi)*(g**3 - 3*g)"])
def test_first_derivative_route_equals_isserlis_on_polynomials(loss):
    """The whitened first-derivative formulas (quadrature) against Stein + Isserlis (exact) to 1e-12."""
    exact, numeric = derive_loss(Model(loss).expr), numeric_coefficients(Model(loss).expr)
    pairs = [(exact.loss, numeric.loss), (exact.alpha, numeric.alpha), (exact.beta, numeric.beta),
             *zip(exact.noise, numeric.noise)]
    for a, b in pairs:
        a, b = _num(a), _num(b)
        assert abs(a - b) <= 1e-12 * max(1.0, abs(a)), (a, b)


@pytest.mark.parametrize("link,activation", [("tanh", "relu"), ("abs", "erf"), ("relu", "relu")])
def test_gradient_and_noise_against_monte_carlo(link, activation):
    """E[grad l] = alpha Sigma w + beta Sigma w* and E|grad l|^2 = the noise formula, against 10^6 samples (4 SE),
    on an anisotropic Sigma (d = 3), for non-polynomial links and activations (kinks included)."""
    model = Model.single_index(link, activation)
    coef = derive_loss(model.expr)
    rng = np.random.default_rng(3)
    lam = np.array([2.0, 1.0, 0.5])
    w, w_star = np.array([0.6, -0.3, 0.8]), np.array([0.5, 0.7, -0.2])
    sigma = 0.2
    at = {S.s: lam @ (w * w), S.u: lam @ (w * w_star), S.s_star: lam @ (w_star * w_star), S.sigma: sigma}
    alpha, beta = _num(coef.alpha, at), _num(coef.beta, at)
    n0, ngg, ngh, nhh = (_num(e, at) for e in coef.noise)
    L2, Sw, Sws = lam**2, lam * w, lam * w_star
    noise = lam.sum() * n0 + (L2 @ (w * w)) * ngg + 2 * (L2 @ (w * w_star)) * ngh + (L2 @ (w_star**2)) * nhh
    import jax
    import jax.numpy as jnp

    dl = jax.vmap(jax.grad(model.jax_loss(), argnums=0))
    n = 10**6
    x = rng.standard_normal((n, 3)) * np.sqrt(lam)
    xi = sigma * rng.standard_normal(n)
    f = np.asarray(dl(jnp.asarray(x @ w), jnp.asarray(x @ w_star), jnp.asarray(xi)))
    grads = f[:, None] * x
    mean, se = grads.mean(0), grads.std(0) / np.sqrt(n)
    assert np.all(np.abs(mean - (alpha * Sw + beta * Sws)) < 4 * se), (mean, alpha * Sw + beta * Sws, se)
    sq = (grads**2).sum(1)
    assert abs(sq.mean() - noise) < 4 * sq.std() / np.sqrt(n), (sq.mean(), noise)


def test_kink_lines_and_population_gradient_of_the_simulation():
    """The kinks of a ReLU/|.| loss lie on g = 0 and h = 0; the simulation's own population gradient (jax.grad of
    its quadrature loss) equals the theory's alpha Sigma w + beta Sigma w* to 1e-10."""
    model = Model.single_index("abs", "relu")
    assert set(kink_lines(model.expr)) == {(1.0, 0.0), (0.0, 1.0)}
    import jax
    import jax.numpy as jnp

    from phasedyn.simulate.losses import population_loss

    lam = np.array([1.5, 1.0, 0.4, 0.2])
    w, w_star = np.array([0.3, -0.5, 0.9, 0.1]), np.array([0.6, 0.2, -0.4, 0.7])
    grad = np.asarray(jax.grad(population_loss)(jnp.asarray(w), jnp.asarray(w_star), jnp.asarray(lam), 0.1, model))
    coef = derive_loss(model.expr)
    at = {S.s: lam @ (w * w), S.u: lam @ (w * w_star), S.s_star: lam @ (w_star * w_star), S.sigma: 0.1}
    assert np.max(np.abs(grad - (_num(coef.alpha, at) * lam * w + _num(coef.beta, at) * lam * w_star))) < 1e-10


def test_isotropic_gd_map_and_flow_against_population_gd_at_d2000():
    """tanh teacher, ReLU student, d = 2000: the exact GD map equals simulated population GD to round-off, and
    gradient flow follows GD at eta = 0.01 within 0.02 in u after the escape."""
    model = Model.single_index("tanh", "relu")
    pb = single_index_problem(2000, seed=1)
    rec = np.arange(0, 1201, 40)
    tr = simulate.run(pb, "gd", eta=0.01, steps=1200, record_steps=rec, seeds=[1], model=model, progress=False)
    w0 = pb.w0_batch([1])
    gd = isotropic.solve(pb, "gd", eta=0.01, steps=1200, record_steps=rec, w0=w0, model=model)
    gf = isotropic.solve(pb, "gf", ts=0.01 * rec, w0=w0, model=model, rtol=1e-10, atol=1e-12)
    u_sim = tr.stats["u"][0]
    assert np.abs(u_sim[-1]) > 0.5  # escaped
    assert np.max(np.abs(np.asarray(gd["u"]).ravel() - u_sim)) < 1e-10
    gap = np.max(np.abs(np.asarray(gf["u"]).ravel() - u_sim))
    assert 1e-4 < gap < 0.02  # an O(eta) discretisation gap, not zero


def _sgd_gap(d: int, optimizer: str, spectrum: str = "isotropic") -> tuple[float, float]:
    model = Model.single_index("erf", "relu")
    pb = single_index_problem(d, spectrum, theta=3.0, spike="signal", seed=2)
    eta = 0.5 / pb.lam.sum()
    steps = int(2.0 / eta)
    rec = np.linspace(0, steps, 11).astype(int)
    tr = simulate.run(pb, optimizer, eta=eta, steps=steps, record_steps=rec, seeds=16, model=model, progress=False)
    from phasedyn.simulate import SPHERES, normalise

    w0 = pb.w0_batch(tr.seeds)
    if optimizer in SPHERES:
        w0 = np.asarray(normalise(w0, pb.lam, SPHERES[optimizer]))
        norm = tr.stats["s" if SPHERES[optimizer] else "s_0"]
        assert np.max(np.abs(norm - 1.0)) < 1e-13  # on the sphere to round-off
    if spectrum == "isotropic":
        sol = isotropic.solve(pb, optimizer, eta=eta, ts=eta * rec, w0=w0, model=model)
    else:
        sol = PL.blocks(pb, None, optimizer, eta=eta, ts=eta * rec, w0=w0, model=model)
    u = np.asarray(sol["u"])
    return float(np.max(np.abs(u - tr.stats["u"]))), float(np.max(np.abs(u.mean(0) - tr.stats["u"].mean(0))))


@pytest.mark.parametrize("optimizer,spectrum,d", [("sgd", "isotropic", 200), ("spherical-sgd", "isotropic", 200),
                                                  ("sigma-spherical-sgd", "spiked", 100)])
def test_online_sgd_gap_shrinks_with_d(optimizer, spectrum, d):
    """Vanilla and spherical online SGD (erf teacher, ReLU student) against their derived mean field at d and 8d:
    the largest gap over 16 seeds shrinks (like d^-1/2: at least by 2 for a factor 8; measured 3.0-5.0), and so does
    the gap of the seed mean; the norm stays 1 to round-off."""
    small, large = _sgd_gap(d, optimizer, spectrum), _sgd_gap(8 * d, optimizer, spectrum)
    assert large[0] < small[0] / 2, (small, large)
    assert large[1] < small[1], (small, large)


def test_effective_dimensions_of_the_spectra():
    """Each candidate equals d on Sigma = I; a spike along the target lowers tr Sigma / r* to about d / (1 + theta)."""
    iso = single_index_problem(50)
    assert all(v == pytest.approx(50.0) for v in effective_dimensions(iso.lam, iso.w_star).values())
    sp_ = single_index_problem(50, "spiked", theta=4.0, spike="signal")
    ed = effective_dimensions(sp_.lam, sp_.w_star)
    assert ed["signal"] == pytest.approx((49 + 5) / 5) and ed["trace_over_max"] == pytest.approx(54 / 5)
    orth = single_index_problem(50, "spiked", theta=4.0, spike="orthogonal")
    assert effective_dimensions(orth.lam, orth.w_star)["signal"] == pytest.approx(54.0)


def test_cli_single_index_run_and_bad_input(tmp_path, capsys):
    """``phasedyn run single-index`` with a non-polynomial link and activation writes the usual files with the model
    and the effective dimensions; a link outside the whitelist and an unbounded loss exit 2 with one line."""
    out = tmp_path / "si"
    assert main(["run", "single-index", "--link", "erf", "--activation", "relu", "--d", "200", "--seeds", "2",
                 "--t-max", "1", "--n-record", "20", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["information_exponent"] == 1
    assert summary["model"]["hermite_link"][1] == pytest.approx(2 / np.sqrt(3 * np.pi), abs=1e-12)
    assert set(summary["effective_dimension"]) == {"trace_over_max", "participation", "signal", "d"}
    assert (out / "overview.png").exists() and (out / "trajectories.npz").exists()
    capsys.readouterr()
    assert main(["run", "single-index", "--link", "sin(z)", "--out", str(tmp_path / "x")]) == 2
    assert main(["run", "single-index", "--loss", "correlation", "--optimizer", "sgd",
                 "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "sin" in err[0] and "correlation" in err[1] and "spherical-sgd" in err[1]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_largest_escaping_step_scales_with_the_information_exponent():
    """eta_max read off the derived spherical flow at u0 = d^-1/2 falls like d^-max(1, k*/2): local exponents
    between d = 256 and 1024 within 0.15 of -1 (k* = 2) and of -1.5 (k* = 3, approached from above)."""
    from phasedyn.compare._sample_complexity import largest_escaping_step

    for k, expected in ((2, -1.0), (3, -1.5)):
        m = Model.single_index(f"he{k}", f"he{k}", "correlation")
        e1, e2 = (largest_escaping_step(m, "spherical-sgd", d) for d in (256, 1024))
        slope = np.log(e2 / e1) / np.log(4)
        assert abs(slope - expected) < 0.15 and slope > expected - 0.01, (k, slope)


def test_sample_complexity_experiment_small(tmp_path):
    """The scan on a tiny grid writes its files; every setting and k* has theory and simulation samples."""
    out = tmp_path / "sc"
    assert main(["run", "single-index", "--experiment", "sample-complexity", "--d-min", "16", "--d", "32",
                 "--n-d", "2", "--seeds", "2", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["exponents"]) == {f"{s}/he{k}" for s in ("spherical", "vanilla") for k in (1, 2, 3)}
    for entry in summary["exponents"].values():
        assert len(entry["theory_median_samples"]) == 2 and entry["predicted_gamma_band"][0] < 2.5
    data = np.load(out / "sample_complexity.npz")
    assert data["spherical_he2_simulation"].shape == (2, 2)
    assert (out / "sample_complexity.png").exists()
    table = summary["effective_dimension_collapse"]
    assert table["followed"] in table["scores"] and len(table["spectra"]) == 7
