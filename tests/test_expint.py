"""The exponential integrator for the exact per-mode gradient flow (theory/expint.py).

Independent routes: diffrax on the per-mode BlockSystem (B = d) with a stiff solver at tight
tolerances; convergence in rtol; batch members against single solves; a non-default loss.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from phasedyn.theory import SolveError, powerlaw_problem, solve_modes
from phasedyn.theory import powerlaw as PL
from phasedyn.theory import symbols as S
from phasedyn.theory.blocks import BlockSystem, block_params, block_state, make_blocks
from phasedyn.theory._solve import solve


@pytest.fixture(scope="module")
def p200():
    return powerlaw_problem(200, 2.0, seed=3)


@pytest.fixture(scope="module")
def reference_200(p200):
    """Per-mode system by diffrax (explicit Dopri8: independent of the exponential scheme) at tight
    tolerances, t in [0, d^a / 10]: stiff enough (lambda_1 alpha t ~ 2e4) to matter, cheap enough for it."""
    ts = np.concatenate([[0.0], np.geomspace(1e-2, 4e3, 60)])
    ref = PL.blocks(p200, None, ts=ts, solver="dopri8", rtol=1e-12, atol=1e-14, max_steps=500_000)
    return ts, ref


def test_matches_stiff_diffrax_reference(p200, reference_200):
    ts, ref = reference_200
    sol, W = solve_modes(p200, ts, rtol=1e-9, atol=1e-12)
    for k in ("u", "s", "mse"):
        np.testing.assert_allclose(sol[k], ref[k], rtol=0, atol=2e-7, err_msg=k)
    # the returned weights reproduce the statistics
    np.testing.assert_allclose((p200.lam * W * p200.w_star).sum(-1), sol["u"], atol=1e-13)
    np.testing.assert_allclose((p200.lam * W * W).sum(-1), sol["s"], atol=1e-13)
    assert W.shape == (ts.size, p200.d)
    np.testing.assert_array_equal(W[0], p200.w0)


def test_error_shrinks_with_rtol(p200, reference_200):
    ts, ref = reference_200
    errs, steps = [], []
    for rtol in (1e-5, 1e-7, 1e-9):
        sol, _ = solve_modes(p200, ts, rtol=rtol, atol=rtol * 1e-3)
        errs.append(np.abs(sol["u"] - ref["u"]).max())
        steps.append(int(sol.num_steps))
    assert errs[0] > 10 * errs[1] > 10 * errs[2] * 0.999, errs
    assert steps[0] < steps[1] < steps[2], steps
    # order 3 also in the stiff head: <= 7x the steps per 100x in rtol (100^(1/3) = 4.6; the exponential
    # midpoint, which puts a stiff mode at its quasi-static value of t + h/2, needed 9.5-12x)
    assert steps[1] <= 7 * steps[0] and steps[2] <= 7 * steps[1], steps


def test_exact_auto_uses_it_and_is_fast_in_the_stiff_regime():
    """t up to d^a at d = 2000: the step is set by (u, s), not by lambda_1 t."""
    p = powerlaw_problem(2000, 2.0, seed=0)
    ts = np.concatenate([[0.0], np.geomspace(1e-2, 4e6, 40)])
    sol = PL.exact(p, ts=ts, rtol=1e-6, atol=1e-9)
    assert int(sol.num_steps) < 3000  # an explicit method needs lambda_1 t / 2 ~ 10^6 steps
    assert sol["mse"][-1] < 1e-3 * sol["mse"][0]
    # Phase III: the MSE keeps decreasing monotonically once s has converged
    late = sol["mse"][ts > 1e3]
    assert np.all(np.diff(late) <= 1e-12)


def test_batch_matches_single_solves(p200):
    ts = np.concatenate([[0.0], np.geomspace(1e-2, 1e3, 20)])
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(2, 3, p200.d)) / np.sqrt(p200.d)
    sol, W = solve_modes(p200, ts, w0, rtol=1e-9)
    assert sol["u"].shape == (2, 3, ts.size) and W.shape == (2, 3, ts.size, p200.d)
    one, _ = solve_modes(p200, ts, w0[1, 2], rtol=1e-9)
    np.testing.assert_allclose(sol["u"][1, 2], one["u"], atol=1e-12)


def test_other_loss_matches_diffrax():
    """Any polynomial loss: the per-mode structure needs only alpha(u, s), beta(u, s)."""
    g, h = S.g, S.h
    loss = sp.expand((g**2 - h**2) ** 2 * (1 + g**2) / 4)
    p = powerlaw_problem(60, 1.5, seed=1)
    ts = np.linspace(0.0, 3.0, 16)
    sol, _ = solve_modes(p, ts, rtol=1e-10, atol=1e-12, model=loss)
    bl = make_blocks(p.lam, None)
    system = BlockSystem(bl.B, "gf", loss)
    ref = solve(system, block_state(p, bl, p.w0), block_params(p, bl), ts=ts, solver="dopri8", rtol=1e-12,
                atol=1e-14)
    np.testing.assert_allclose(sol["u"], ref["u"], atol=1e-8)
    np.testing.assert_allclose(sol["s"], ref["s"], atol=1e-8)


def test_bad_input_and_max_steps(p200):
    with pytest.raises(ValueError, match="ts"):
        solve_modes(p200, [1.0, 2.0])
    with pytest.raises(ValueError, match="w0"):
        solve_modes(p200, [0.0, 1.0], np.ones(5))
    with pytest.raises(ValueError, match="w0"):
        solve_modes(p200, [0.0, 1.0], np.full(p200.d, np.nan))
    with pytest.raises(ValueError, match="rtol"):
        solve_modes(p200, [0.0, 1.0], rtol=0.0)
    with pytest.raises(SolveError, match="max_steps = 5"):
        solve_modes(p200, [0.0, 1e4], max_steps=5)


def test_new_tolerances_and_spectra_do_not_recompile(p200):
    from phasedyn.theory._solve import _TRACES

    ts = np.linspace(0.0, 5.0, 6)
    solve_modes(p200, ts, rtol=1e-6)
    before = sum(v for k, v in _TRACES.items() if k[1] == "expint")
    other = powerlaw_problem(200, 3.0, seed=9)
    solve_modes(other, ts * 2, rtol=3e-7, atol=1e-11, max_steps=10_000)
    assert sum(v for k, v in _TRACES.items() if k[1] == "expint") == before


def test_exact_auto_rejects_options_it_would_ignore(p200):
    with pytest.raises(ValueError, match="solver"):
        PL.exact(p200, t1=1.0, solver="kvaerno5")
    # method="blocks" takes diffrax options
    sol = PL.exact(p200, method="blocks", ts=np.linspace(0.0, 1.0, 5), solver="kvaerno5")
    assert sol["u"].shape == (5,)


def test_phi_functions_against_high_precision():
    """phi_1..3 of the solver (series below |z| = 1/2, recursion above, e^z - 1 from e^(z/2) - 1) against
    mpmath at 50 digits, on both sides of the switch and far into the stiff range."""
    import mpmath as mp

    from phasedyn.theory._etd import phi1, phis, phis_from_half

    mp.mp.dps = 50
    z = np.array([-700.0, -50.0, -3.0, -0.5000001, -0.4999999, -1e-3, -1e-9, 0.0, 1e-6, 0.3, 0.49999, 0.5, 2.0, 30.0])

    def exact(x, k):
        x = mp.mpf(x)
        if x == 0:
            return float(1 / mp.factorial(k))
        return float((mp.exp(x) - sum(x**j / mp.factorial(j) for j in range(k))) / x**k)

    got = [np.asarray(p) for p in phis(z)]
    half = [np.asarray(p) for p in phis_from_half(z, np.expm1(z / 2))]
    for k in range(4):
        want = np.array([exact(x, k) for x in z])
        atol = 3e-16 if k == 0 else 0.0  # e^z = 1 + expm1(z): absolute accuracy only (it multiplies w)
        np.testing.assert_allclose(got[k], want, rtol=5e-14, atol=atol, err_msg=f"phi_{k}")
        np.testing.assert_allclose(half[k], want, rtol=5e-14, atol=atol, err_msg=f"phi_{k} from z/2")
    np.testing.assert_allclose(np.asarray(phi1(z)), got[1], rtol=0, atol=0)
