"""Tests of phasedyn.simulate: losses, update rules and the chunked, vmapped driver.

Every check goes through a route independent of the code under test: Monte Carlo over samples,
finite differences, numpy by hand, plain Python loops over the single-step rules.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from phasedyn.simulate import (
    DivergenceError,
    Trajectory,
    gd_step,
    log_step_grid,
    population_loss,
    run,
    sample_loss,
    sgd_step,
    statistics,
    trace_count,
)
from phasedyn.theory import custom_problem, isotropic_problem, powerlaw_problem

STATS = ("u", "s", "u_0", "s_0", "u_2", "s_2", "loss", "mse")  # the theory's names (u = u_1, s = s_1)

# An anisotropic set-up small enough for Monte Carlo: d = 6, spread spectrum, label noise.
LAM = np.array([2.0, 1.0, 0.6, 0.3, 0.1, 0.05])
_rng = np.random.default_rng(12345)
W_STAR = _rng.standard_normal(6)
W_STAR /= np.sqrt(np.sum(LAM * W_STAR**2))  # s* = 1
W = 0.6 * W_STAR + 0.3 * _rng.standard_normal(6)  # partly aligned: small loss, small MC variance
SIGMA = 0.3
N_MC = 1_000_000


def _numpy_stats(w: np.ndarray, w_star: np.ndarray, lam: np.ndarray, sigma: float = 0.0) -> dict:
    """The statistics by hand, in numpy (no JAX)."""
    s = float(np.sum(lam * w * w))
    u = float(np.sum(lam * w * w_star))
    ss = float(np.sum(lam * w_star * w_star))
    out = {}
    for k in range(3):
        out["u" if k == 1 else f"u_{k}"] = float(np.sum(lam**k * w * w_star))
        out["s" if k == 1 else f"s_{k}"] = float(np.sum(lam**k * w * w))
    out["loss"] = 3 * s**2 + 3 * ss**2 - 4 * u**2 - 2 * s * ss + sigma**2
    d = w.shape[0]
    out["mse"] = min(np.sum((w - w_star) ** 2), np.sum((w + w_star) ** 2)) / d
    return out


@pytest.fixture(scope="module")
def mc_samples():
    """10^6 samples x ~ N(0, diag(LAM)) and label noise xi ~ N(0, sigma^2) (y = (x.w*)^2 + xi), drawn with numpy."""
    rng = np.random.default_rng(2024)
    x = rng.standard_normal((N_MC, 6)) * np.sqrt(LAM)
    xi = SIGMA * rng.standard_normal(N_MC)
    return jnp.asarray(x), jnp.asarray(xi)


def _within(mean_est, se, exact, n_se=4.0):
    mean_est, se, exact = (np.asarray(a, dtype=np.float64) for a in (mean_est, se, exact))
    assert np.all(np.abs(mean_est - exact) <= n_se * se), (mean_est, exact, se)


# ---------------------------------------------------------------------------------------------
# losses


def test_population_loss_matches_monte_carlo(mc_samples):
    x, xi = mc_samples
    per = np.asarray(jax.vmap(sample_loss, in_axes=(None, 0, None, 0))(jnp.asarray(W), x, jnp.asarray(W_STAR), xi))
    exact = float(population_loss(jnp.asarray(W), jnp.asarray(W_STAR), jnp.asarray(LAM), SIGMA))
    _within(per.mean(), per.std(ddof=1) / np.sqrt(N_MC), exact)
    # sigma matters at this precision: without the sigma^2 term the estimate is far off
    assert abs(per.mean() - (exact - SIGMA**2)) > 4 * per.std(ddof=1) / np.sqrt(N_MC)


def test_statistics_against_numpy():
    rng = np.random.default_rng(7)
    lam = rng.uniform(0.1, 3.0, 7)
    w, w_star = rng.standard_normal(7), rng.standard_normal(7)
    got = statistics(jnp.asarray(w), jnp.asarray(w_star), jnp.asarray(lam), 0.25)
    want = _numpy_stats(w, w_star, lam, 0.25)
    assert set(got) == set(STATS)
    for k in STATS:
        assert np.ndim(got[k]) == 0
        np.testing.assert_allclose(float(got[k]), want[k], rtol=1e-12, err_msg=k)
    # minima of the loss at +-w* (sigma = 0), where the MSE vanishes
    for sign in (1.0, -1.0):
        st = statistics(jnp.asarray(sign * w_star), jnp.asarray(w_star), jnp.asarray(lam))
        assert abs(float(st["loss"])) < 1e-10 and abs(float(st["mse"])) < 1e-14


# ---------------------------------------------------------------------------------------------
# update rules


def _gd_gradient(w):
    """Gradient read off gd_step: (w - gd_step(w)) / eta."""
    eta = 0.5
    return (w - np.asarray(gd_step(jnp.asarray(w), jnp.asarray(W_STAR), jnp.asarray(LAM), eta))) / eta


def test_gd_gradient_finite_differences():
    g = _gd_gradient(W)
    h = 1e-6
    fd = np.empty(6)
    for i in range(6):
        e = np.zeros(6)
        e[i] = h
        lp = float(population_loss(jnp.asarray(W + e), jnp.asarray(W_STAR), jnp.asarray(LAM), SIGMA))
        lm = float(population_loss(jnp.asarray(W - e), jnp.asarray(W_STAR), jnp.asarray(LAM), SIGMA))
        fd[i] = (lp - lm) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-8)
    # and docs/theory.md §1's Stein form 4(3s - s*) Sigma w - 8 u Sigma w*, typed here as a third route
    s, u, ss = np.sum(LAM * W * W), np.sum(LAM * W * W_STAR), np.sum(LAM * W_STAR**2)
    np.testing.assert_allclose(g, 4 * (3 * s - ss) * LAM * W - 8 * u * LAM * W_STAR, rtol=1e-12)


def test_gd_gradient_matches_monte_carlo_of_sample_gradients(mc_samples):
    x, xi = mc_samples
    grads = np.asarray(jax.vmap(jax.grad(sample_loss), in_axes=(None, 0, None, 0))(jnp.asarray(W), x,
                                                                                  jnp.asarray(W_STAR), xi))
    _within(grads.mean(0), grads.std(0, ddof=1) / np.sqrt(N_MC), _gd_gradient(W))


@pytest.mark.parametrize("impl", ["threefry2x32", "philox4x32"])
def test_mean_sgd_update_matches_gd_update(impl):
    """Each generator run() accepts gives samples of the right law: E[SGD step] = GD step."""
    n, eta = 400_000, 0.01
    keys = jax.random.split(jax.random.key(99, impl=impl), n)
    step = jax.vmap(sgd_step, in_axes=(None, 0, None, None, None, None))
    new = np.asarray(step(jnp.asarray(W), keys, jnp.asarray(W_STAR), jnp.asarray(LAM), eta, SIGMA))
    delta = (W - new) / eta  # one stochastic gradient per key
    assert np.all(delta.std(0) > 0.1)  # the samples are really random
    _within(delta.mean(0), delta.std(0, ddof=1) / np.sqrt(n), _gd_gradient(W))


# ---------------------------------------------------------------------------------------------
# the driver

PL = powerlaw_problem(16, 1.5, seed=3, sigma=0.1)


def test_step_zero_statistics_are_those_of_w0():
    seeds = [0, 5, 11]
    tr = run(PL, "sgd", 1e-3, 50, seeds=seeds, n_record=10)
    assert tr.steps[0] == 0 and tr.t[0] == 0.0
    w0 = PL.w0_batch(seeds)
    for j in range(3):
        want = _numpy_stats(w0[j], PL.w_star, PL.lam, PL.sigma)
        for k in STATS:
            np.testing.assert_allclose(tr.stats[k][j, 0], want[k], rtol=1e-12, err_msg=k)
    # an explicit w0 replaces problem.w0_batch
    w0x = np.random.default_rng(0).standard_normal((3, 16))
    tr = run(PL, "sgd", 1e-3, 50, seeds=seeds, n_record=10, w0=w0x)
    np.testing.assert_allclose(tr.s[:, 0], (w0x**2 * PL.lam).sum(1), rtol=1e-12)


@pytest.mark.parametrize("optimizer", ["gd", "sgd"])
def test_run_matches_python_loop_of_single_steps(optimizer):
    """The scan/while/vmap machinery against a plain loop: no off-by-one in steps or keys."""
    record, seed, eta = [0, 1, 2, 5, 13, 30], 4, 2e-3
    tr = run(PL, optimizer, eta, 40, seeds=[seed], record_steps=record)
    np.testing.assert_array_equal(tr.steps, record)
    w = jnp.asarray(PL.w0_batch([seed])[0])
    ws, lam, key = jnp.asarray(PL.w_star), jnp.asarray(PL.lam), jax.random.key(seed)
    for k in range(41):
        if k in record:
            st = _numpy_stats(np.asarray(w), PL.w_star, PL.lam, PL.sigma)
            i = record.index(k)
            for name in STATS:
                np.testing.assert_allclose(tr.stats[name][0, i], st[name], rtol=1e-10, atol=1e-14)
        if k == 40:
            break
        if optimizer == "gd":
            w = gd_step(w, ws, lam, eta)
        else:
            w = sgd_step(w, jax.random.fold_in(key, k), ws, lam, eta, PL.sigma)
    np.testing.assert_allclose(tr.w_final[0], np.asarray(w), rtol=1e-10)  # w_final is w_steps


def test_prng_choice_is_used_recorded_and_checked():
    """prng= picks the generator of the SGD samples: same loop with keys of that impl; recorded in config."""
    seed, eta = 4, 2e-3
    tr = run(PL, "sgd", eta, 30, seeds=[seed], n_record=5, prng="philox4x32")
    assert tr.config["prng"] == "philox4x32"
    w, ws, lam = jnp.asarray(PL.w0_batch([seed])[0]), jnp.asarray(PL.w_star), jnp.asarray(PL.lam)
    key = jax.random.key(seed, impl="philox4x32")
    for k in range(30):
        w = sgd_step(w, jax.random.fold_in(key, k), ws, lam, eta, PL.sigma)
    np.testing.assert_allclose(tr.w_final[0], np.asarray(w), rtol=1e-10)
    default = run(PL, "sgd", eta, 30, seeds=[seed], n_record=5)
    assert default.config["prng"] == jax.config.jax_default_prng_impl
    assert not np.allclose(default.w_final, tr.w_final)  # another stream
    with pytest.raises(ValueError, match="prng"):
        run(PL, "sgd", eta, 30, prng="mt19937")


def test_vmapped_seeds_equal_single_seed_runs():
    seeds = [4, 7, 9]
    tr = run(PL, "sgd", 1e-3, 300, seeds=seeds, n_record=20)
    for j, s in enumerate(seeds):
        one = run(PL, "sgd", 1e-3, 300, seeds=[s], n_record=20)
        for k in STATS:
            np.testing.assert_allclose(tr.stats[k][j], one.stats[k][0], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(tr.w_final[j], one.w_final[0], rtol=1e-10)
    assert not np.allclose(tr.u[0], tr.u[1])  # the seeds really differ


def test_seed_count_is_the_list_from_init_seed():
    p = isotropic_problem(8, seed=1, init_seed=3)
    a = run(p, "sgd", 1e-3, 20, seeds=2, n_record=5)
    b = run(p, "sgd", 1e-3, 20, seeds=[3, 4], n_record=5)
    assert a.seeds == [3, 4]
    np.testing.assert_array_equal(a.w_final, b.w_final)
    assert not np.array_equal(a.w_final[0], p.w0_batch([3])[0])  # it moved


def test_result_independent_of_chunk_size():
    runs = [run(PL, "sgd", 1e-3, 500, seeds=2, n_record=25, chunk_size=c) for c in (1, 4, 64)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.steps, runs[0].steps)
        for k in STATS:
            np.testing.assert_allclose(other.stats[k], runs[0].stats[k], rtol=1e-12, atol=1e-15)


def test_changing_eta_sigma_or_steps_does_not_retrace():
    before = trace_count()
    run(PL, "sgd", 1e-3, 100, seeds=2, n_record=10, chunk_size=7)
    n = trace_count()
    assert n > before  # a new configuration (chunk_size 7) compiles, and the count sees it
    other = dataclasses.replace(PL, sigma=0.5)
    a = run(PL, "sgd", 3e-3, 1000, seeds=2, n_record=30, chunk_size=7)
    b = run(other, "sgd", 3e-3, 1000, seeds=2, n_record=30, chunk_size=7, divergence_bound=1e3)
    assert trace_count() == n
    assert not np.allclose(a.s, b.s)  # sigma reached the traced kernel


def test_float32_run():
    tr32 = run(PL, "gd", 1e-2, 200, seeds=2, n_record=10, dtype=jnp.float32)
    tr64 = run(PL, "gd", 1e-2, 200, seeds=2, n_record=10)
    for k in STATS:
        assert tr32.stats[k].dtype == np.float32, k
        np.testing.assert_allclose(tr32.stats[k], tr64.stats[k], rtol=1e-4, atol=1e-5, err_msg=k)
    assert tr32.w_final.dtype == np.float32 and tr32.t.dtype == np.float64
    assert tr32.config["dtype"] == "float32"
    # computed in float32, not float64 cast down afterwards
    assert not np.array_equal(tr32.stats["u"], tr64.stats["u"].astype(np.float32))
    tr = run(PL, "sgd", 1e-3, 100, seeds=2, n_record=10, dtype="float32")
    assert tr.stats["loss"].dtype == np.float32 and np.all(np.isfinite(tr.stats["loss"]))


def test_isotropic_gd_learns_the_target():
    p = isotropic_problem(200, seed=1)
    tr = run(p, "gd", 1e-2, 4000, seeds=2, n_record=60)
    loss = tr.stats["loss"]
    assert np.all(np.diff(loss, axis=1) <= 1e-12)  # monotone decrease at small eta
    assert np.all(loss[:, -1] < 1e-10) and np.all(loss[:, 0] > 2.0)
    np.testing.assert_allclose(np.abs(tr.u[:, -1]), 1.0, atol=1e-6)
    np.testing.assert_allclose(tr.s[:, -1], 1.0, atol=1e-6)
    assert np.all(np.abs(tr.u[:, 0]) < 0.3)  # started near the equator, u ~ d^(-1/2)
    np.testing.assert_allclose(tr.stats["mse"][:, -1], 0.0, atol=1e-8)


def test_gf_is_an_alias_of_gd():
    a = run(PL, "gf", 1e-2, 50, n_record=8)
    b = run(PL, "gd", 1e-2, 50, n_record=8)
    np.testing.assert_array_equal(a.w_final, b.w_final)
    assert a.config["optimizer"] == "gd" and a.config["optimizer_requested"] == "gf"


def test_trajectory_contents():
    tr = run(PL, "sgd", 2e-3, 123, seeds=[1, 2], n_record=12)
    assert isinstance(tr, Trajectory)
    json.dumps(tr.config)
    for k in ("optimizer", "eta", "steps", "d", "sigma", "seeds", "dtype", "kind", "meta"):
        assert k in tr.config
    assert tr.config["kind"] == "powerlaw" and tr.config["meta"]["a"] == 1.5
    assert tr.steps.dtype == np.int64 and tr.steps[-1] == 123
    np.testing.assert_allclose(tr.t, 2e-3 * tr.steps)
    assert tr.u is tr.stats["u"] and tr.s is tr.stats["s"]
    assert all(v.shape == (2, tr.steps.shape[0]) for v in tr.stats.values())
    assert tr.w_final.shape == (2, 16) and tr.n_seeds == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        tr.seeds = [3]  # type: ignore[misc]


def test_progress_bar(capsys):
    run(PL, "gd", 1e-2, 50, n_record=5, progress=True)
    assert "50/50" in capsys.readouterr().err
    run(PL, "gd", 1e-2, 50, n_record=5)  # auto: small run, no bar
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------
# divergence and validation


def _first_bad_step(p, eta, bound):
    w = jnp.asarray(p.w0)
    ws, lam = jnp.asarray(p.w_star), jnp.asarray(p.lam)
    for k in range(1, 1000):
        w = gd_step(w, ws, lam, eta)
        n2 = float(jnp.sum(w * w))
        if not np.isfinite(n2) or n2 > bound:
            return k
    raise AssertionError("did not diverge")


def test_divergence_raises_with_exact_step():
    p = isotropic_problem(20, seed=2)
    eta = 0.5
    k = _first_bad_step(p, eta, 1e6)
    with pytest.raises(DivergenceError, match=rf"seed 2 at step {k} ") as info:
        run(p, "gd", eta, 10_000, n_record=50)
    assert isinstance(info.value, RuntimeError)
    assert info.value.step == k and info.value.seed == 2 and info.value.optimizer == "gd"
    msg = str(info.value)
    assert "eta = 0.5" in msg and "smaller" in msg
    k3 = _first_bad_step(p, eta, 1e3)
    with pytest.raises(DivergenceError, match=rf"at step {k3} "):
        run(p, "gd", eta, 10_000, n_record=50, divergence_bound=1e3)


def test_sgd_divergence_names_seed():
    p = isotropic_problem(50, seed=0)
    with pytest.raises(DivergenceError, match=r"sgd with eta = 0\.1 diverged: seed \d+ at step \d+") as info:
        run(p, "sgd", 0.1, 1000, seeds=[8, 9], n_record=20)
    assert info.value.seed in (8, 9) and info.value.step >= 1


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(eta=0.0), "eta"),
        (dict(eta=-1e-3), "eta"),
        (dict(eta=float("nan")), "eta"),
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(n_record=1), "n_record"),
        (dict(optimizer="adam"), "optimizer"),
        (dict(seeds=0), "seeds"),
        (dict(seeds=[]), "seeds"),
        (dict(seeds=[-1]), "seeds"),
        (dict(w0=np.zeros((2, 16))), "w0"),
        (dict(w0=np.zeros((1, 15))), "w0"),
        (dict(divergence_bound=0.0), "divergence_bound"),
        (dict(divergence_bound=-5.0), "divergence_bound"),
        (dict(dtype=jnp.int32), "dtype"),
        (dict(record_steps=[0, 5, 3]), "record_steps"),
        (dict(record_steps=[0, 200]), "record_steps"),
        (dict(progress="yes"), "progress"),
    ],
)
def test_invalid_inputs(kwargs, name):
    args = dict(problem=PL, optimizer="gd", eta=1e-2, steps=100)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        run(**args)


def test_log_step_grid():
    g = log_step_grid(10**6, 100)
    assert g.dtype == np.int64 and g[0] == 0 and g[1] == 1 and g[-1] == 10**6
    assert np.all(np.diff(g) > 0) and len(g) <= 100
    ratios = g[-20:][1:] / g[-20:][:-1]  # log-spaced at large steps
    np.testing.assert_allclose(ratios, 10 ** (6 / 98), rtol=1e-3)
    np.testing.assert_array_equal(log_step_grid(1, 10), [0, 1])
    np.testing.assert_array_equal(log_step_grid(7, 2), [0, 1, 7])
    assert set(log_step_grid(5, 50)) == {0, 1, 2, 3, 4, 5}
    with pytest.raises(ValueError, match="steps"):
        log_step_grid(0, 10)
    with pytest.raises(ValueError, match="n_record"):
        log_step_grid(10, 1)


def test_custom_problem_runs():
    p = custom_problem([3.0, 1.0, 0.2], [0.5, 0.1, -0.3], [0.2, 0.9, 0.1])
    tr = run(p, "gd", 1e-2, 100, n_record=5)
    assert tr.config["kind"] == "custom" and np.all(np.isfinite(tr.stats["loss"]))
