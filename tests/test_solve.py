"""Tests of phasedyn.theory.solve: diffrax flows, exact maps, batching, caching, errors, closed forms.

Independent routes: closed-form solutions (logistic s at u = 0, x' = -kx + c, x' = kx^2), the
linearisation at the saddle (rate 8 s*), the fixed point, a plain-numpy d-dimensional GD loop for the
divergence step, loops of single solves for the batch, and the O(eta) convergence of GD to GF.

Compiled shapes are shared across tests (batch 1 and 3, 200 save times, RTOL/ATOL below) to keep the
number of JAX compilations small.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from phasedyn.theory import (
    Solution,
    SolveError,
    System,
    escape_time,
    escape_time_d,
    isotropic_params,
    isotropic_system,
    iterate,
    log_grid,
    solve,
    step_grid,
    trace_count,
)

RTOL, ATOL = 1e-10, 1e-12
N_SAVE = 200


@pytest.fixture(scope="module")
def gf():
    return isotropic_system("gf")


@pytest.fixture(scope="module")
def gd():
    return isotropic_system("gd")


def solve_gf(system, y0, s_star, **kw):
    kw.setdefault("rtol", RTOL)
    kw.setdefault("atol", ATOL)
    return solve(system, y0, {"s_star": s_star, "sigma": 0.0, "d": 1000.0}, **kw)


# ----------------------------------------------------------------------------- batching and caching
def test_batch_equals_loop_of_single_solves(gf):
    """One vmapped solve = a loop of single solves, to round-off (1e-12 relative).

    Horizon t1 = 1 with s* <= 0.7 keeps every member in its transient (distance to the fixed point
    >= e^{-16 s* t1} ~ 1e-5, far above the solver tolerance), where the batched and single runs take
    the same steps and differ only by round-off of the batched arithmetic."""
    y0 = np.array([[0.3, 0.5], [-0.05, 1.2], [1e-3, 0.9]])
    params = np.array([[0.5, 0.0, 1000.0], [0.7, 0.2, 50.0], [0.4, 0.0, 1e4]])
    batch = solve(gf, y0, params, 1.0, n_save=N_SAVE, rtol=RTOL, atol=ATOL)
    assert isinstance(batch, Solution)
    assert batch.y.shape == (3, N_SAVE, 2) and batch.obs.shape == (3, N_SAVE, 2)
    assert batch.num_steps.shape == (3,) and batch.t.shape == (N_SAVE,)
    for i in range(3):
        single = solve(gf, y0[i], params[i], 1.0, n_save=N_SAVE, rtol=RTOL, atol=ATOL)
        assert single.y.shape == (N_SAVE, 2)
        np.testing.assert_allclose(batch.y[i], single.y, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(batch.obs[i], single.obs, rtol=1e-12, atol=1e-13)
        assert batch.num_steps[i] == single.num_steps
        np.testing.assert_array_equal(batch.y[i, 0], y0[i])


def test_batch_equals_loop_after_convergence_within_solver_tolerance(gf):
    """Past convergence (state within the tolerance floor atol + rtol|y| of the fixed point) an explicit
    method's accepted steps jitter at that floor, so round-off differences between batched and single
    arithmetic can change the step sequence: agreement is then at tolerance level (10x the floor)."""
    y0 = np.array([[0.3, 0.5], [-0.05, 1.2], [1e-3, 0.9]])
    p = {"s_star": 1.5, "sigma": 0.0, "d": 1000.0}
    batch = solve(gf, y0, p, 5.0, n_save=N_SAVE, rtol=RTOL, atol=ATOL)
    assert batch.params.shape == (3, 3)
    for i in range(3):
        single = solve(gf, {"u": y0[i, 0], "s": y0[i, 1]}, p, 5.0, n_save=N_SAVE, rtol=RTOL, atol=ATOL)
        floor = ATOL + RTOL * np.abs(single.y)
        assert np.all(np.abs(batch.y[i] - single.y) <= 10 * floor)


def test_params_broadcast_against_batched_y0(gf):
    y0 = np.array([[0.3, 0.5], [-0.05, 1.2], [1e-3, 0.9]])
    p = {"s_star": 0.5, "sigma": 0.0, "d": 1000.0}
    batch = solve(gf, y0, p, 1.0, n_save=N_SAVE, rtol=RTOL, atol=ATOL)
    assert batch.params.shape == (3, 3)
    np.testing.assert_array_equal(batch.params, np.broadcast_to([0.5, 0.0, 1000.0], (3, 3)))
    for i in range(3):
        single = solve(gf, {"u": y0[i, 0], "s": y0[i, 1]}, p, 1.0, n_save=N_SAVE, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(batch.y[i], single.y, rtol=1e-12, atol=1e-14)


def test_new_values_do_not_retrace():
    """x' = -k x + c: closed form c/k + (x0 - c/k) e^{-kt}; new values never recompile, a new batch shape does."""
    x, k, c = sp.symbols("x k c")
    decay = System("decay-retrace-test", (x,), (k, c), (-k * x + c,))
    before = trace_count(decay)
    ts = np.linspace(0.0, 2.0, N_SAVE)
    sol = solve(decay, {"x": 1.0}, {"k": 2.0, "c": 0.5}, ts=ts, rtol=RTOL, atol=ATOL)
    assert trace_count(decay) == before + 1
    np.testing.assert_allclose(sol["x"], 0.25 + 0.75 * np.exp(-2.0 * ts), rtol=1e-8)
    ts2 = np.geomspace(1e-3, 3.0, N_SAVE)
    ts2[0] = 0.0
    sol2 = solve(decay, {"x": -3.0}, {"k": 0.5, "c": 1.0}, ts=ts2, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(sol2["x"], 2.0 - 5.0 * np.exp(-0.5 * ts2), rtol=1e-8)
    assert trace_count(decay) == before + 1  # new values of y0, params and ts: no retrace
    # positive control: a new batch shape must trace again (so the counter can move)
    solve(decay, np.array([[1.0], [2.0]]), {"k": 2.0, "c": 0.5}, ts=ts, rtol=RTOL, atol=ATOL)
    assert trace_count(decay) == before + 2
    assert trace_count() >= trace_count(decay)


# ----------------------------------------------------------------------------- save times, solvers
def test_explicit_ts_and_logistic_closed_form(gf):
    """At u = 0: u stays 0 and s' = 8 s* s - 24 s^2 (logistic), s(t) = K/(1 + c e^{-rt}), K = s*/3, r = 8 s*.

    Tolerance 1e-8 relative: the controller's local tolerance is 1e-10; on this contracting
    trajectory the global error stays within ~10-100 local errors."""
    rng = np.random.default_rng(1)
    ts = np.concatenate([[0.0], np.sort(rng.uniform(0.0, 3.0, N_SAVE - 1))])
    s_star, s0 = 1.2, 2.0
    sol = solve_gf(gf, {"u": 0.0, "s": s0}, s_star, ts=ts)
    np.testing.assert_array_equal(sol.t, ts)
    np.testing.assert_array_equal(sol["u"], 0.0)
    K, r = s_star / 3, 8 * s_star
    exact = K / (1 + (K / s0 - 1) * np.exp(-r * ts))
    np.testing.assert_allclose(sol["s"], exact, rtol=1e-8)


def test_ts_not_starting_at_zero_is_rejected_or_integrated_from_zero(gf):
    ts = np.linspace(0.5, 3.0, N_SAVE)
    s_star, s0 = 1.2, 2.0
    try:
        sol = solve_gf(gf, {"u": 0.0, "s": s0}, s_star, ts=ts)
    except ValueError:
        return
    K, r = s_star / 3, 8 * s_star
    np.testing.assert_allclose(sol["s"], K / (1 + (K / s0 - 1) * np.exp(-r * ts)), rtol=1e-8)


def test_kvaerno5_agrees_with_tsit5(gf):
    """Two different methods (explicit RK vs implicit ESDIRK), each at local tolerance 1e-10: agree to 1e-7."""
    y0 = {"u": 0.05, "s": 0.8}
    a = solve_gf(gf, y0, 1.0, t1=5.0, n_save=N_SAVE)
    b = solve_gf(gf, y0, 1.0, t1=5.0, n_save=N_SAVE, solver="kvaerno5")
    np.testing.assert_allclose(b.y, a.y, rtol=1e-7, atol=1e-9)


def test_solution_access(gf):
    sol = solve_gf(gf, {"u": 0.05, "s": 0.8}, 1.0, t1=5.0, n_save=N_SAVE)
    np.testing.assert_array_equal(sol["u"], sol.y[:, 0])
    np.testing.assert_array_equal(sol["s"], sol.y[:, 1])
    u, s = sol["u"], sol["s"]
    np.testing.assert_allclose(sol["loss"], 3 * s**2 + 3 - 4 * u**2 - 2 * s, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sol["mse"], (s + 1 - 2 * np.abs(u)) / 1000.0, rtol=1e-12, atol=1e-16)
    assert set(sol.as_dict()) == {"u", "s", "loss", "mse"}
    with pytest.raises(KeyError):
        sol["w"]
    np.testing.assert_allclose(sol.t, log_grid(5.0, N_SAVE))


# ----------------------------------------------------------------------------- closed-form dynamics
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_flow_converges_to_minimum(gf, sign):
    """From a generic start the flow reaches (u, s) = (+-s*, s*); the slowest rate there is 16 s*, so at
    t = 20 the remaining distance is e^{-480}: what is left is solver error (tolerance 1e-9)."""
    s_star = 1.5
    sol = solve_gf(gf, {"u": sign * 0.3, "s": 0.5}, s_star, t1=20.0, n_save=N_SAVE)
    np.testing.assert_allclose(sol.y[-1], [sign * s_star, s_star], atol=1e-9)
    # L = 3s^2 + 3s*^2 - 4u^2 - 2ss* cancels O(10) terms at the minimum: round-off ~ 10 * 2e-16
    assert abs(sol["loss"][-1]) < 1e-13


def test_saddle_escape_rate(gf):
    """From (u0, s*/3), u0 = 1e-6: log|u| grows at rate 8 s*.

    Fit over u <= 1e-3: s stays within 16 u^2/(8 s*) <~ 2e-6 of s*/3, so the rate is 8 s* to ~1e-5
    relative; tolerance 1e-3 (the issue asks 1%)."""
    s_star = 1.2
    T = np.log(1e3) / (8 * s_star)
    ts = np.linspace(0.0, T, N_SAVE)
    sol = solve_gf(gf, {"u": 1e-6, "s": s_star / 3}, s_star, ts=ts)
    slope = np.polyfit(ts, np.log(np.abs(sol["u"])), 1)[0]
    assert slope == pytest.approx(8 * s_star, rel=1e-3)
    np.testing.assert_allclose(sol["s"], s_star / 3, atol=1e-5)


def _first_crossing(ts, u, delta):
    """First time |u| >= delta, by linear interpolation of log|u| between the bracketing saves."""
    i = int(np.argmax(np.abs(u) >= delta))
    assert i > 0 and abs(u[i]) >= delta, "no crossing inside the save grid"
    la, lb = np.log(abs(u[i - 1])), np.log(abs(u[i]))
    return ts[i - 1] + (np.log(delta) - la) / (lb - la) * (ts[i] - ts[i - 1])


@pytest.mark.parametrize("s0,s_star", [(1.0, 1.0), (0.1, 2.0), (2.5, 0.6)])
def test_escape_time_matches_ode(gf, s0, s_star):
    """escape_time(u0, s0, s*, delta) = first |u| >= delta in the solved ODE (u0 = 1e-7, delta = 1e-3).

    Tolerance 1e-3 relative (issue: 1e-2). Error budget: the prediction drops 16u^2 in s', which moves
    s by <~ 2 delta^2/s* ~ 1e-6 (<~1e-5 in log u); linear interpolation of log|u| on a 200-point grid
    errs by dt^2/8 * 12|s'| <~ 1e-6 near the crossing; the ODE's atol = 1e-12 on u >= 1e-7 bounds the
    relative error of u by ~1e-5 per step, ~1e-3 in log u at the very worst, i.e. <~1e-4 in time."""
    u0, delta = 1e-7, 1e-3
    predicted = escape_time(u0, s0, s_star, delta)
    ts = np.linspace(0.0, 2.5 * predicted, N_SAVE)
    sol = solve_gf(gf, {"u": u0, "s": s0}, s_star, ts=ts)
    observed = _first_crossing(ts, sol["u"], delta)
    assert predicted == pytest.approx(observed, rel=1e-3)


def test_escape_time_edge_cases():
    assert escape_time(-1e-5, 1.0, 1.0, 1e-2) == escape_time(1e-5, 1.0, 1.0, 1e-2)
    assert escape_time(0.2, 1.0, 1.0, 0.1) == 0.0
    with pytest.raises(ValueError, match="u0"):
        escape_time(0.0)
    with pytest.raises(ValueError, match="s0"):
        escape_time(1e-3, s0=-1.0)
    with pytest.raises(ValueError, match="delta"):
        escape_time(1e-3, delta=float("nan"))


@pytest.mark.parametrize("s_star", [1.0, 2.0])
def test_escape_time_grows_like_log_d(s_star):
    """T(100 d) - T(d) = log(100)/(16 s*) once both times are >> 1/r (r = 8 s*).

    At d = 1e8 the neglected transient (BK/r)|c| e^{-rT}/rho is <~ 3e-5 absolute (1e-4 relative);
    tolerance 1e-3 relative."""
    d = 1e8
    diff = escape_time_d(100 * d, s_star=s_star) - escape_time_d(d, s_star=s_star)
    assert diff == pytest.approx(np.log(100) / (16 * s_star), rel=1e-3)
    assert escape_time_d(1e4, s_star=s_star) < escape_time_d(1e6, s_star=s_star)


# ----------------------------------------------------------------------------- maps
def test_gd_converges_to_gf_at_order_eta(gf, gd):
    """Population GD at time t = eta k approaches the flow with error O(eta): halving eta halves it."""
    y0 = {"u": 0.2, "s": 0.6}
    T = 1.0
    ref = solve_gf(gf, y0, 1.0, ts=np.linspace(0.0, T, N_SAVE)).y[-1]
    errs = []
    for step in (2e-3, 1e-3):
        n = int(round(T / step))
        sol = iterate(gd, y0, {"s_star": 1.0, "sigma": 0.0, "d": 1000.0, "eta": step}, n, record_steps=[0, n])
        assert sol.t[-1] == pytest.approx(T)
        np.testing.assert_array_equal(sol.steps, [0, n])
        errs.append(np.max(np.abs(sol.y[-1] - ref)))
    assert errs[1] < 1e-2
    assert errs[0] / errs[1] == pytest.approx(2.0, rel=0.05)  # first order: ratio 2 + O(eta)


def _gd_first_divergence(u0, s0, s_star, step, d=10, n_max=200, blowup=1e8):
    """Plain numpy GD in d dimensions, Sigma = I, grad L = 4(3s - s*) w - 8u w* (docs/theory.md section 1)."""
    w_star = np.zeros(d)
    w_star[0] = np.sqrt(s_star)
    w = np.zeros(d)
    w[0] = u0 / np.sqrt(s_star)
    w[1] = np.sqrt(s0 - w[0] ** 2)
    prev = np.array([w @ w_star, w @ w])  # the start: the last finite state if the first step diverges
    with np.errstate(all="ignore"):
        for k in range(1, n_max + 1):
            s, u = w @ w, w @ w_star
            w = w - step * (4 * (3 * s - s_star) * w - 8 * u * w_star)
            y = np.array([w @ w_star, w @ w])
            if not np.all(np.isfinite(y) & (np.abs(y) < blowup)):
                return k, prev, y
            prev = y
    raise AssertionError("no divergence")


def test_diverging_map_raises_naming_the_step(gd):
    k_bad, last_ok, first_bad = _gd_first_divergence(0.1, 1.0, 1.0, 1.0)
    # super-exponential blow-up: far from the 1e8 threshold on both sides, so round-off cannot move k_bad
    assert np.max(np.abs(last_ok)) < 0.5e8 and not np.max(np.abs(first_bad)) < 2e8
    with pytest.raises(SolveError, match=rf"step {k_bad}\b") as err:
        iterate(gd, {"u": 0.1, "s": 1.0}, isotropic_params("gd", d=1000, eta=1.0), 30, record_steps=np.arange(31))
    assert "eta" in str(err.value)


# ----------------------------------------------------------------------------- failures
def test_tiny_max_steps_raises(gf):
    with pytest.raises(SolveError, match="max_steps"):
        solve_gf(gf, {"u": 0.05, "s": 0.8}, 1.0, t1=5.0, n_save=N_SAVE, max_steps=5)


@pytest.fixture(scope="module")
def blowup_system():
    x, k = sp.symbols("x k")
    return System("blowup-test", (x,), (k,), (k * x**2,))


def test_blowup_raises(blowup_system):
    # x' = k x^2, x(0) = 1, k = 1: x = 1/(1 - t) blows up at t = 1 < t1 = 2
    with pytest.raises(SolveError, match="blew up"):
        solve(blowup_system, {"x": 1.0}, {"k": 1.0}, t1=2.0, n_save=N_SAVE)
    # the same system is fine before its blow-up time, and matches the closed form
    ts = np.linspace(0.0, 0.9, N_SAVE)
    sol = solve(blowup_system, {"x": 1.0}, {"k": 1.0}, ts=ts, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(sol["x"], 1 / (1 - ts), rtol=1e-8)


def test_blowup_reports_the_blowup_time(blowup_system):
    # x = 1/(1 - t) passes 1e8 at t = 1 - 1e-8; the coarse grid's next save after that is t = 2
    with pytest.raises(SolveError) as err:
        solve(blowup_system, {"x": 1.0}, {"k": 1.0}, ts=[0.0, 0.5, 2.0])
    t_reported = float(re.search(r"near t = ([0-9.eE+-]+)", str(err.value)).group(1))
    assert t_reported == pytest.approx(1.0, abs=1e-3)


def test_bad_inputs_raise_value_error(gf, gd):
    y0, p = {"u": 0.1, "s": 1.0}, {"s_star": 1.0, "sigma": 0.0, "d": 100.0}
    cases = [
        (dict(y0={"u": np.nan, "s": 1.0}), "y0"),
        (dict(y0={"u": 0.1, "s": np.inf}), "y0"),
        (dict(y0={"u": 0.1}), "s"),
        (dict(y0={"u": 0.1, "s": 1.0, "x": 2.0}), "x"),
        (dict(y0=[0.1, 1.0, 2.0]), "y0"),
        (dict(params={"s_star": 1.0, "sigma": 0.0}), "d"),
        (dict(params={"s_star": np.nan, "sigma": 0.0, "d": 100.0}), "params"),
        (dict(ts=[0.0, 1.0, 1.0, 2.0]), "ts"),
        (dict(ts=[0.0, 2.0, 1.0]), "ts"),
        (dict(ts=[0.0, np.nan]), "ts"),
        (dict(ts=[0.0]), "ts"),
        (dict(solver="euler"), "solver"),
        (dict(rtol=0.0), "rtol"),
        (dict(rtol=-1e-8), "rtol"),
        (dict(rtol=np.nan), "rtol"),
        (dict(atol=0.0), "atol"),
        (dict(max_steps=0), "max_steps"),
        (dict(t1=-1.0), "t1"),
        (dict(t1=None), "t1"),
        (dict(blowup=0.0), "blowup"),
    ]
    for override, needle in cases:
        kw = dict(y0=y0, params=p, t1=1.0)
        kw.update(override)
        with pytest.raises(ValueError, match=needle):
            solve(gf, **kw)
    with pytest.raises(ValueError, match="iterate"):
        solve(gd, y0, {**p, "eta": 0.1}, 1.0)
    with pytest.raises(ValueError, match="solve"):
        iterate(gf, y0, p, 10)
    with pytest.raises(ValueError, match="record_steps"):
        iterate(gd, y0, {**p, "eta": 0.1}, 10, record_steps=[1, 5, 10])
    with pytest.raises(ValueError, match="record_steps"):
        iterate(gd, y0, {**p, "eta": 0.1}, 10, record_steps=[0, 5, 5])


def test_iterate_rejects_mixed_eta(gd):
    p = {"s_star": 1.0, "sigma": 0.0, "d": 100.0, "eta": np.array([1e-3, 2e-3])}
    with pytest.raises(ValueError, match="eta"):
        iterate(gd, {"u": 0.1, "s": 1.0}, p, 10, record_steps=[0, 10])


def test_grids():
    g = log_grid(10.0, 50)
    assert g.shape == (50,) and g[0] == 0.0 and g[-1] == pytest.approx(10.0) and g[1] == pytest.approx(1e-3)
    assert np.all(np.diff(g) > 0)
    np.testing.assert_allclose(np.diff(np.log(g[1:])), np.log(1e4) / 48)
    st = step_grid(1000, 30)
    assert st[0] == 0 and st[1] == 1 and st[-1] == 1000 and np.all(np.diff(st) > 0)
    assert st.dtype.kind == "i"
    for bad in [lambda: log_grid(-1.0), lambda: log_grid(1.0, 1), lambda: log_grid(1.0, t_min=2.0),
                lambda: step_grid(0), lambda: step_grid(10, 1)]:
        with pytest.raises(ValueError):
            bad()


def test_stop_when_ends_a_flow_at_a_condition_without_error(blowup_system):
    """x' = x^2 from x(0) = 1, x = 1/(1 - t): the condition x >= 10 holds from t = 0.9 on, so the solve stops at the
    end of the solver step that crosses it (within one step of 0.9, long before the blow-up at t = 1 that would
    raise), saves from there on are NaN, earlier ones follow the closed form; a member that never meets the
    condition (k = 0.1: x = 1/(1 - 0.1 t) <= 1.25) runs to t1."""
    import equinox as eqx
    import jax.numpy as jnp

    from phasedyn.theory._watch import Condition

    class AtLeast(Condition):
        level: object = eqx.field(converter=lambda x: jnp.asarray(x, float))

        def __call__(self, y, p):
            return (y[0] >= self.level).astype(int)

        def describe(self, code):
            return f"x >= {float(self.level):g}"

    ts = np.linspace(0.0, 2.0, N_SAVE)
    sol = solve(blowup_system, {"x": 1.0}, {"k": np.array([1.0, 0.1])}, ts=ts, rtol=RTOL, atol=ATOL,
                stop_when={"ten": AtLeast(10.0)})
    assert sol.stop_reason.tolist() == ["ten", ""] and sol.stop_detail[0] == "x >= 10"
    t_stop = sol.stop_time[0]
    assert 0.9 <= t_stop < 0.95 and np.isnan(sol.stop_time[1])
    np.testing.assert_array_equal(sol.watch["ten"], [1, 0])
    before = ts < t_stop
    np.testing.assert_allclose(sol["x"][0, before], 1 / (1 - ts[before]), rtol=1e-7)
    assert np.all(np.isnan(sol["x"][0, ~before]))
    np.testing.assert_allclose(sol["x"][1], 1 / (1 - 0.1 * ts), rtol=1e-8)


def test_solution_is_a_mapping_prints_a_summary_and_converts_to_xarray():
    """Issue 15 §3: keys/items/in/len over states then observables, a one-line summary, an xarray Dataset."""
    pytest.importorskip("xarray")
    import phasedyn.theory as th

    gf = th.isotropic_system("gf")
    u0 = np.geomspace(1e-4, 1e-1, 4)
    sol = th.solve(gf, {"u": u0, "s": 1.0}, th.isotropic_params("gf", d=1000), t1=5.0, n_save=50)
    assert list(sol) == list(sol.keys()) == ["u", "s", "loss", "mse"] and len(sol) == 4
    assert "u" in sol and "eta" not in sol and sol.get("eta") is None
    for k, v in sol.items():
        assert np.array_equal(v, sol[k]) and v.shape == (4, 50)
    text = repr(sol)
    assert text.startswith("Solution(isotropic-gf: flow, batch (4,), 50 saves") and "'loss'" in text
    ds = sol.to_xarray()
    assert ds["u"].dims == ("batch_0", "t") and np.array_equal(ds["u"].values, sol["u"])
    assert np.array_equal(ds["t"].values, sol.t) and np.array_equal(ds["y0_u"].values, u0)
    assert float(ds["param_d"][0]) == 1000.0 and ds.attrs["system"] == "isotropic-gf"
    gd = th.isotropic_system("gd")
    m = th.iterate(gd, {"u": 0.03, "s": 1.0}, th.isotropic_params("gd", d=1000, eta=0.02), 100, n_record=20)
    dm = m.to_xarray()
    assert "map" in repr(m) and np.array_equal(dm["step"].values, m.steps) and dm["s"].dims == ("t",)


def test_log_grid_ends_at_t1_for_every_n():
    """n = 2 gave [0, t1·1e-4] (geomspace of one point is its start), so solve(..., n_save=2) stopped at t1·1e-4."""
    from phasedyn.theory import log_grid

    for n in (2, 3, 10):
        g = log_grid(7.0, n)
        assert g.size == n and g[0] == 0.0 and g[-1] == 7.0 and np.all(np.diff(g) > 0), (n, g)
