"""Isotropic benchmarks: phasedyn against what researchers use today, measured in the same run.

1. ODE: the isotropic gradient-flow system for 64 initial overlaps, t in [0, 10], rtol = 1e-8:
   one vmapped ``phasedyn.theory.solve`` call (after compilation) against 64 ``scipy.integrate.solve_ivp``
   (RK45, the same tolerances, a hand-written numpy right-hand side) and a fixed-step Euler loop
   at dt = 1e-3. Reports wall times, their ratios and the max error against a tight reference.
2. Online SGD throughput (coordinate updates per second, seeds × d × steps / s): ``phasedyn.simulate.run``
   against a plain numpy loop (one seed, the same update) for d = 1000.

Run: ``python benchmarks/bench_isotropic.py`` (prints a table; nothing is asserted: targets live here,
not in unit tests).
"""

from __future__ import annotations

import platform
import time

import numpy as np
from scipy.integrate import solve_ivp

import phasedyn.theory as th
from phasedyn.simulate import run


def _rhs_numpy(t, y, s_star=1.0):
    u, s = y
    return [12 * (s_star - s) * u, 8 * (s_star - 3 * s) * s + 16 * u * u]


def bench_ode(n: int = 64, t1: float = 10.0) -> dict:
    gf = th.isotropic_system("gf")
    u0 = np.geomspace(1e-4, 1e-1, n)
    y0 = np.stack([u0, np.ones(n)], -1)
    params = th.isotropic_params("gf", d=1000)
    ts = np.linspace(0, t1, 101)
    t = time.perf_counter()
    th.solve(gf, y0, params, ts=ts)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    sol = th.solve(gf, y0 * 1.0000001, params, ts=ts)  # new values: no recompilation
    ours = time.perf_counter() - t
    ref = th.solve(gf, y0 * 1.0000001, params, ts=ts, rtol=1e-13, atol=1e-15, solver="dopri8")
    err_ours = np.abs(sol.y - ref.y).max()

    t = time.perf_counter()
    ys = [solve_ivp(_rhs_numpy, (0, t1), y, t_eval=ts, rtol=1e-8, atol=1e-10).y.T for y in y0 * 1.0000001]
    scipy_s = time.perf_counter() - t
    err_scipy = np.abs(np.stack(ys) - ref.y).max()

    dt = 1e-3
    t = time.perf_counter()
    y = y0 * 1.0000001
    out = [y.copy()]
    every = int(round((ts[1] - ts[0]) / dt))
    for k in range(1, int(round(t1 / dt)) + 1):
        u, s = y[:, 0], y[:, 1]
        y = y + dt * np.stack([12 * (1 - s) * u, 8 * (1 - 3 * s) * s + 16 * u * u], -1)
        if k % every == 0:
            out.append(y.copy())
    euler_s = time.perf_counter() - t
    err_euler = np.abs(np.stack(out, 1) - ref.y).max()
    return {"compile_s": compile_s, "phasedyn_s": ours, "scipy_rk45_s": scipy_s, "euler_s": euler_s,
            "err_phasedyn": err_ours, "err_scipy": err_scipy, "err_euler": err_euler}


def bench_sgd(d: int = 1000, steps: int = 20000, seeds: int = 8) -> dict:
    problem = th.isotropic_problem(d)
    eta = 0.01 / d
    run(problem, "sgd", eta, 10, seeds=seeds, n_record=10, progress=False)  # compile
    t = time.perf_counter()
    run(problem, "sgd", eta, steps, seeds=seeds, n_record=50, progress=False)
    ours = seeds * d * steps / (time.perf_counter() - t)

    rng = np.random.default_rng(0)
    w, w_star = problem.w0.copy(), problem.w_star
    n_np = steps // 4
    t = time.perf_counter()
    for _ in range(n_np):
        x = rng.standard_normal(d)
        g, h = x @ w, x @ w_star
        w -= eta * 4 * g * (g * g - h * h) * x
    numpy_rate = d * n_np / (time.perf_counter() - t)
    return {"phasedyn_updates_per_s": ours, "numpy_updates_per_s": numpy_rate}


def main() -> None:
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    ode = bench_ode()
    print("\nODE, isotropic gradient flow, 64 initial conditions, rtol 1e-8 (wall time after compilation)")
    print(f"  phasedyn (one vmapped call) {ode['phasedyn_s'] * 1e3:8.1f} ms   max err {ode['err_phasedyn']:.1e}"
          f"   (compile {ode['compile_s']:.1f} s)")
    print(f"  scipy solve_ivp RK45 x64    {ode['scipy_rk45_s'] * 1e3:8.1f} ms   max err {ode['err_scipy']:.1e}"
          f"   ratio {ode['scipy_rk45_s'] / ode['phasedyn_s']:.1f}x")
    print(f"  Euler loop dt=1e-3 (numpy)  {ode['euler_s'] * 1e3:8.1f} ms   max err {ode['err_euler']:.1e}"
          f"   ratio {ode['euler_s'] / ode['phasedyn_s']:.1f}x")
    sgd = bench_sgd()
    print("\nOnline SGD, isotropic, d = 1000 (coordinate updates per second)")
    print(f"  phasedyn, 8 vmapped seeds   {sgd['phasedyn_updates_per_s']:.3g}")
    print(f"  numpy loop, 1 seed          {sgd['numpy_updates_per_s']:.3g}"
          f"   ratio {sgd['phasedyn_updates_per_s'] / sgd['numpy_updates_per_s']:.2f}x")


if __name__ == "__main__":
    main()
