"""Finite-d fluctuations of isotropic online SGD (theory/_escape.py, issue 14): the noise of one step against
Monte Carlo of real SGD steps, and the escape-time law and the unaligned seed average against many seeds.

Measured (d = 500, eta = 8e-5, eta*d = 0.04, 256 seeds, philox4x32, records every 25 steps): unit-sphere start,
T1 quantiles (10, 50, 90 %) simulation 0.074 / 0.220 / 0.473 against the law 0.069 / 0.219 / 0.467 (relative
-7.2 / -0.7 / -1.3 %), max |seed mean of u - law mean| 0.009 (largest standard error of the seed mean 0.016);
warm start u0 = 0.01: 0.162 / 0.308 / 0.533 against 0.158 / 0.291 / 0.535 (-2.5 / -5.6 / +0.3 %), gap 0.024.
Without the noise term (V = 0) the warm start would not spread at all, and from the sphere the 10 % quantile
moved to 0.048 when the whole noise V(inf) was put at t = 0 (-36 %): the noise acts before the escape, V(t).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from phasedyn.simulate import run
from phasedyn.simulate.losses import sample_loss
from phasedyn.theory import escape_law, increment_covariance, isotropic_problem, noise_variance
from phasedyn.theory import symbols as S


def _one_step_increments(d: int, eta: float, u: float, s: float, sigma: float, n: int, seed: int = 0):
    """(du, ds) of ``n`` independent online-SGD steps from one w (jax.grad of the per-sample loss)."""
    rng = np.random.default_rng(seed)
    w_star = np.zeros(d)
    w_star[0] = 1.0
    w = np.zeros(d)
    w[0], w[1] = u, np.sqrt(s - u**2)
    grad = jax.jit(jax.vmap(jax.grad(sample_loss), in_axes=(None, 0, None, 0)))
    du, ds = [], []
    for _ in range(n // 100_000):
        x = rng.normal(size=(100_000, d))
        xi = sigma * rng.normal(size=100_000)
        w_new = w - eta * np.asarray(grad(jnp.asarray(w), jnp.asarray(x), jnp.asarray(w_star), jnp.asarray(xi)))
        du.append(w_new @ w_star - w @ w_star)
        ds.append(np.sum(w_new**2, axis=1) - w @ w)
    return np.concatenate(du), np.concatenate(ds)


@pytest.mark.parametrize("d, eta, u, s, sigma", [(8, 1e-7, 0.0, 1.0, 0.0), (8, 1e-7, 0.3, 0.5, 0.2),
                                                 (50, 1e-3, 0.3, 1.0, 0.0), (50, 1e-3, 0.3, 0.5, 0.2)])
def test_increment_covariance_against_monte_carlo_of_sgd_steps(d, eta, u, s, sigma):
    """Cov(du, ds)/eta^2 of 1e6 real SGD steps within 4 standard errors of the derived exact C, at eta*d ~ 0
    and at eta*d = 0.05 (where the eta|x|^2 terms shrink C_ss severalfold: measured 1864 +- 124 against 2030,
    the leading term alone is 4554)."""
    n = 1_000_000
    du, ds = _one_step_increments(d, eta, u, s, sigma, n)
    X = np.stack([du, ds]) / eta
    C = np.asarray(increment_covariance().xreplace({S.u: u, S.s: s, S.s_star: 1.0, S.sigma: sigma, S.eta: eta,
                                                    S.d: d}), float)
    Xc = X - X.mean(1, keepdims=True)
    for i in range(2):
        for j in range(2):
            prod = Xc[i] * Xc[j]
            est, se = prod.mean(), prod.std() / np.sqrt(n)
            assert abs(est - C[i, j]) < 4 * se + 1e-9 * abs(C[i, j]), (i, j, est, C[i, j], se)


def test_noise_variance_integral_and_phase_retrieval_constants():
    """V(t) increases to V(inf) (proportional to eta), and C_uu at u = 0 is the hand Isserlis value
    E[16 g^2 (g^2 - h^2)^2 h^2] = 16(15 s^3 s* - 18 s^2 s*^2 + 15 s s*^3) for independent g, h (sigma = 0)."""
    c = increment_covariance()[0, 0].xreplace({S.u: 0, S.s_star: 1, S.sigma: 0})
    assert sp.simplify(c - 16 * (15 * S.s**3 - 18 * S.s**2 + 15 * S.s)) == 0
    t = np.linspace(0.0, 4.0, 41)
    v = noise_variance(2e-5, 500, t=t)
    assert v[0] == 0.0 and np.all(np.diff(v) >= 0)
    assert v[-1] == pytest.approx(noise_variance(2e-5, 500), rel=1e-6)
    # V = eta * I, and I itself grows with eta*d: the SGD term holds s higher, so G grows later (measured +7 %)
    ratio = noise_variance(4e-5, 500) / (2 * noise_variance(2e-5, 500))
    assert 1.0 < ratio < 1.15, ratio


def _warm_w0(problem, u0: float, seeds: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    ws = problem.w_star / np.linalg.norm(problem.w_star)
    z = rng.normal(size=(seeds, problem.d))
    z -= (z @ ws)[:, None] * ws
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return u0 * ws + np.sqrt(1 - u0**2) * z


def _first_time(t: np.ndarray, u: np.ndarray, level: float) -> np.ndarray:
    k = np.argmax(np.abs(u) >= level, axis=1)
    return np.where(np.abs(u[np.arange(len(u)), k]) >= level, t[k], np.nan)


@pytest.mark.slow
@pytest.mark.parametrize("u0", [None, 0.01], ids=["sphere", "warm"])
def test_escape_law_against_256_seeds(u0):
    """T1 quantiles (10, 50, 90 %) within 10 % and the unaligned seed average of u within 0.03 of 256 seeds."""
    d, eta, seeds = 500, 8e-5, 256
    steps = 12_500  # t = 1, twice the 90 % quantile of T1
    problem = isotropic_problem(d, seed=0)
    w0 = None if u0 is None else _warm_w0(problem, u0, seeds)
    traj = run(problem, "sgd", eta, steps, seeds=seeds, record_steps=np.arange(0, steps + 1, 25), progress=False,
               prng="philox4x32", w0=w0)
    t, u = traj.t, traj.stats["u"]
    u = u * np.sign(u[:, -1:])
    law = escape_law(d, eta, t, u0=u0)
    measured = np.nanquantile(_first_time(t, u, 0.1), [0.1, 0.5, 0.9])
    predicted = law.t1_quantiles([0.1, 0.5, 0.9])
    np.testing.assert_allclose(predicted, measured, rtol=0.10)
    gap = np.max(np.abs(u.mean(0) - law.mean("u")))
    assert gap < 0.03, gap
    # the law's own spread follows the seeds' (no noise after the escape: a looser check)
    assert np.max(np.abs(u.std(0) - law.std("u"))) < 0.1


def test_unaligned_sgd_overlay_starts_from_the_law_and_reports_fluctuations(tmp_path, capsys):
    """`phasedyn run isotropic --optimizer sgd` without --align: theory rows are the law's quantile paths and
    summary.json has `fluctuations` (strict JSON); start="seeds" gives one theory row per seed; a model whose
    u = 0 does not repel (rho = -18) falls back to the seeds' own starts with a note."""
    import json

    from phasedyn.compare import overlay_isotropic
    from phasedyn.compare.cli import main

    out = tmp_path / "sgd"
    args = ["run", "isotropic", "--optimizer", "sgd", "--d", "100", "--eta", "2e-4", "--t-max", "2", "--seeds", "4",
            "--n-record", "60", "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    fl = summary["fluctuations"]
    assert fl["seeds"] == 4 and fl["T1_quantiles"]["q"] == [0.1, 0.5, 0.9] and fl["start"]["var_u0"] == pytest.approx(0.01)
    assert all(x is None or x >= 0 for x in fl["T1_quantiles"]["theory"]) and summary["params"]["theory_start"] == "law"
    with np.load(out / "trajectories.npz") as z:  # the law's predicted band beside the seeds' spread
        assert np.nanmax(z["theory_u_std"]) > 0.05 and np.all(np.isfinite(z["theory_u_std"]))
    problem = isotropic_problem(100, seed=0)
    law_ov = overlay_isotropic(problem, "sgd", 2e-4, 10_000, 4, 60, progress=False)
    seeds_ov = overlay_isotropic(problem, "sgd", 2e-4, 10_000, 4, 60, progress=False, start="seeds")
    assert law_ov.theory["u"].shape[0] == 256 and seeds_ov.theory["u"].shape == (4, law_ov.t.size)
    assert np.array_equal(law_ov.sim["u"], seeds_ov.sim["u"]) and "fluctuations" not in seeds_ov.measurements
    flat = overlay_isotropic(problem, "sgd", 2e-5, 2_000, 2, 30, progress=False, model="(g**2 - h**2)**2 * (1 + g**2)")
    assert "no escape law" in flat.measurements["fluctuations_note"] and flat.theory["u"].shape[0] == 2


@pytest.mark.slow
def test_linear_noise_band_against_seeds_at_two_d():
    """The LNA sd of u and s (theory/_lna.py) against the sd over 256 seeds from a shared warm start (u0 = 0.3,
    s0 = 1) at d = 250 and 1000, eta*d = 0.05, t = 0.1, 0.2, 0.3: within 15 %, and both shrink like d^-1/2
    (ratio 2 within 15 %). Measured with 512 seeds at d = 250 and 500 (t = 0.1 ... 1): LNA/simulation 0.87-1.06.
    (The issue's d = 1000 and 8000 cost 256 * 8000 Gaussians a step, over 15 min on CI's 2 cores.)"""
    from phasedyn.theory import lna_band

    sd = {}
    for d in (250, 1000):
        eta = 0.05 / d
        steps = int(round(0.3 / eta))
        problem = isotropic_problem(d, seed=0)
        traj = run(problem, "sgd", eta, steps, seeds=256, record_steps=np.linspace(0, steps, 4).astype(int),
                   progress=False, prng="philox4x32", w0=_warm_w0(problem, 0.3, 256))
        band = lna_band(d, eta, 0.3, 1.0, traj.t)
        for k in ("u", "s"):
            sim, pred = traj.stats[k].std(0, ddof=1)[1:], np.asarray(band[f"sd_{k}"])[1:]
            np.testing.assert_allclose(pred, sim, rtol=0.15, err_msg=f"d = {d}, {k}")
            sd[d, k] = (sim, pred)
    for k in ("u", "s"):
        np.testing.assert_allclose(sd[250, k][1] / sd[1000, k][1], 2.0, rtol=0.05)  # predicted: sqrt(eta)
        np.testing.assert_allclose(sd[250, k][0] / sd[1000, k][0], 2.0, rtol=0.15)  # measured
