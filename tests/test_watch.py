"""Tests of iterate's per-step watches (phasedyn.theory._watch): one map iterator for records, statistics, stops.

Independent routes: ``phasedyn.theory.spiked.track`` (the spiked tracker the PeakRatio watch must reproduce
bit for bit) and a plain Python loop over the compiled one-step map (every step inspected by hand), a
closed-form geometric map for the stop step, and a numpy GD loop for the exact divergence step.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import phasedyn.theory as th
from phasedyn.theory import spiked as SP
from phasedyn.theory._watch import PEAK_RTOL, Condition, PeakRatio, StopWhen, Watch

M = D = 32
THETAS = np.array([0.5, 4.0, 8.0])
ETAS = np.array([0.02, 0.07, 3.0])  # eta = 3 diverges within a few steps
STEPS = 3000


@pytest.fixture(scope="module")
def gd2():
    return SP.two_layer_system("gd")


def _grid_params(system):
    return np.array([[system.pack_params(SP.spiked_params(system, t, M, D, e)) for e in ETAS] for t in THETAS])


def _peak_watch(system, steps, **kw):
    y0 = system.pack_state(SP.identity_start(0.01))
    return th.iterate(system, y0, _grid_params(system), steps, record_steps=(), watches={"peak": PeakRatio.of(system, 0.05)},
                      on_divergence="stop", **kw)


def test_peak_ratio_watch_equals_spiked_track(gd2):
    """iterate + PeakRatio on a (theta, eta) batch with per-member eta, one member diverging, is spiked.track
    exactly (array_equal, NaN-aware): peak ratio and step, amplification, steps to tolerance, divergence step,
    final state."""
    sol = _peak_watch(gd2, STEPS, blowup=1e6)
    tr = SP.track(gd2, SP.identity_start(0.01), _grid_params(gd2), STEPS, tol=0.05, blowup=1e6)
    w = sol.watch["peak"]
    for field in ("ratio0", "peak_ratio", "peak_step", "amplification", "steps_to_tol"):
        np.testing.assert_array_equal(w[field], getattr(tr, field), err_msg=field)
    np.testing.assert_array_equal(np.where(sol.stop_reason == "diverged", sol.stop_step, -1), tr.diverged_step)
    np.testing.assert_array_equal(sol.y_last, tr.final)
    assert (sol.stop_reason == "diverged").sum() == 1 and sol.stop_reason[-1, -1] == "diverged"
    assert w["amplification"][1, 1] > 3  # positive control: theta = 4 misaligns under GD
    assert sol.y.shape == (3, 3, 0, 3) and sol.t.shape == (0,)


def test_peak_ratio_watch_against_a_python_loop(gd2):
    """The same statistics by a Python loop over the jitted one-step map, every state inspected by hand."""
    steps = 400
    sol = _peak_watch(gd2, steps, blowup=1e6)
    step = jax.jit(gd2.vector_field)
    P = _grid_params(gd2)
    y_start = gd2.pack_state(SP.identity_start(0.01))
    for i in range(3):
        for j in range(3):
            p, y = P[i, j], y_start.copy()
            ratio = lambda y: abs(y[1]) / abs(y[0])  # noqa: E731  states (a, b, c)
            above = lambda y: max(abs(y[1]), abs(y[2])) > 0.05 * math.sqrt(M)  # noqa: E731
            best, kbest, last_above, bad = ratio(y), 0, (0 if above(y) else -1), -1
            for k in range(1, steps + 1):
                y_new = np.asarray(step(0.0, y, p))
                if not np.all(np.isfinite(y_new) & (np.abs(y_new) < 1e6)):
                    bad = k
                    break
                y = y_new
                if ratio(y) > best * (1 + PEAK_RTOL):
                    best, kbest = ratio(y), k
                if above(y):
                    last_above = k
            w = {f: sol.watch["peak"][f][i, j] for f in ("peak_ratio", "peak_step", "steps_to_tol")}
            assert w["peak_ratio"] == pytest.approx(best, rel=1e-12) and w["peak_step"] == kbest
            assert w["steps_to_tol"] == (-1 if last_above >= steps else last_above + 1)
            assert sol.stop_step[i, j] == bad
            np.testing.assert_allclose(sol.y_last[i, j], y, rtol=1e-12)


class AboveLevel(Condition):
    """Code 1 where x >= level (a test condition)."""

    level: jax.Array = eqx.field(converter=lambda x: jnp.asarray(x, float))  # an array: new values are traced

    def __call__(self, y, p):
        return (y[0] >= self.level).astype(int)

    def describe(self, code):
        return f"x >= {float(self.level):g}"


@pytest.fixture(scope="module")
def growth():
    x, r, eta = sp.symbols("x r eta")
    return th.System("geometric-watch-test", (x,), (r, eta), (r * x,), kind="map")


def test_stop_freezes_at_the_exact_step_and_marks_the_rest(growth):
    """x_k = r^k x_0 stops at the first k with x_k >= level, k = ceil(log(level/x0)/log r), between recorded steps:
    records at and after it are NaN, y_last is x_{k-1}, stop_time = eta k; a member that never reaches the level
    runs to the end."""
    r = np.array([1.1, 1.0001])
    level = 10.0
    k_stop = math.ceil(math.log(level) / math.log(1.1))  # 25
    grid = np.array([0, 10, 20, 30, 40])
    sol = th.iterate(growth, {"x": 1.0}, {"r": r, "eta": 0.5}, 40, record_steps=grid,
                     watches={"level": StopWhen(AboveLevel(level))})
    assert sol.stop_step.tolist() == [k_stop, -1]
    assert sol.stop_reason.tolist() == ["level", ""] and sol.stop_detail[0] == "x >= 10"
    assert sol.stop_time[0] == 0.5 * k_stop and np.isnan(sol.stop_time[1])
    np.testing.assert_allclose(sol["x"][0, :3], 1.1 ** grid[:3], rtol=1e-14)
    assert np.all(np.isnan(sol["x"][0, 3:]))
    np.testing.assert_allclose(sol.y_last[0], [1.1 ** (k_stop - 1)], rtol=1e-14)
    np.testing.assert_allclose(sol["x"][1], 1.0001 ** grid, rtol=1e-14)
    np.testing.assert_array_equal(sol.watch["level"], [1, 0])


def test_divergence_is_reported_at_the_exact_step_not_the_recorded_one():
    """GD on the isotropic map with eta = 1 diverges at a step between two records: the error names that step."""
    gd = th.isotropic_system("gd")
    p = th.isotropic_params("gd", d=1000, eta=1.0)
    y0 = {"u": 0.1, "s": 1.0}
    full = th.iterate(gd, y0, p, 30, record_steps=(), on_divergence="stop")
    k_bad = int(full.stop_step)
    assert 2 < k_bad < 30 and full.stop_reason == "diverged"
    with pytest.raises(th.SolveError, match=rf"at step {k_bad}\b"):
        th.iterate(gd, y0, p, 30, record_steps=[0, 1, 30])


def test_new_watch_values_do_not_retrace_a_new_structure_does(growth):
    before = th.trace_count(growth)
    run = lambda w, n=40: th.iterate(growth, {"x": 1.0}, {"r": 1.1, "eta": 0.5}, n, record_steps=(), watches=w)  # noqa: E731
    run({"level": StopWhen(AboveLevel(10.0))})
    assert th.trace_count(growth) == before + 1
    sol = run({"level": StopWhen(AboveLevel(100.0))}, 60)
    assert th.trace_count(growth) == before + 1  # new level and steps: same compilation
    assert int(sol.stop_step) == math.ceil(math.log(100.0) / math.log(1.1))
    run({"level": StopWhen(AboveLevel(10.0)), "again": StopWhen(AboveLevel(5.0))})
    assert th.trace_count(growth) == before + 2  # positive control: two watches are a new structure


def test_watch_input_errors(growth):
    p = {"r": np.array([1.1, 1.2]), "eta": np.array([0.1, 0.2])}
    with pytest.raises(ValueError, match="eta"):
        th.iterate(growth, {"x": 1.0}, p, 10)  # per-member eta needs record_steps=()
    assert th.iterate(growth, {"x": 1.0}, p, 10, record_steps=()).stop_step.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="watches"):
        th.iterate(growth, {"x": 1.0}, {"r": 1.1, "eta": 0.1}, 10, watches={"w": object()})
    with pytest.raises(ValueError, match="reserved"):
        th.iterate(growth, {"x": 1.0}, {"r": 1.1, "eta": 0.1}, 10, watches={"diverged": StopWhen(AboveLevel(2.0))})
    with pytest.raises(ValueError, match="on_divergence"):
        th.iterate(growth, {"x": 1.0}, {"r": 1.1, "eta": 0.1}, 10, on_divergence="ignore")
    assert issubclass(StopWhen, Watch)
