"""Parameter sweep: 64 settings in one vmapped ``solve`` call against 64 sequential calls.

System: the isotropic online-SGD mean-field flow (``isotropic_system("sgd")``, d = 1000, no label noise),
a grid of 8 learning rates eta*d in geomspace(1e-3, 3e-2) x 8 initial overlaps u0 in geomspace(1e-6, 1e-1),
s(0) = 1, t in [0, 20] saved at 101 points, Tsit5, rtol 1e-8, atol 1e-10 (``solve``'s defaults).

Compared, each after its compilation (wall = best of repeats; the machine is shared):

* sequential: 64 ``solve`` calls, one setting each (what a loop over a sweep does);
* sequential, bare: the same 64 calls made straight to the compiled solver (no validation, packing or
  error checks), to show how much of the gap is per-call Python overhead;
* one vmapped call with all 64 settings (grid order);
* sorted and grouped: settings sorted by predicted cost and run as 4 vmapped calls of 16.

diffrax's vmapped while-loop runs until its slowest member is done: every member pays for max_i steps_i,
so the batch's efficiency is mean_i steps_i / max_i steps_i (reported). The batch is ordered by the
predicted cost — the gradient-flow escape time ``isotropic.escape_time(u0)`` (steps are spent mostly
while u moves; eta changes the count by < 2%) — so that a group holds members of similar cost; grouping
pays only when the efficiency of the single batch is low (here the step counts differ by ~15%, so one
batch is best: each extra call costs more than the idle steps it saves). The sweep covers what a
[P1]-style phase diagram needs; sweeps over the GD map's eta cannot be batched at all
(``iterate`` requires one eta per batch so that members share a time grid).

Target: one vmapped call >= 10x faster than 64 sequential calls.

Run: ``python benchmarks/bench_sweep.py [--quick] [--no-write]`` (prints a table and appends a section to
benchmarks/RESULTS.md; nothing is asserted). ``--quick`` (< 60 s): fewer repeats.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import phasedyn.theory as th
from phasedyn.theory._solve import _flow_solver

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # _common, from any working directory
from _common import append_results, best_of, machine_lines, results_body  # noqa: E402

D = 1000
TARGET = 10.0


def grid():
    eta_d = np.geomspace(1e-3, 3e-2, 8)
    u0 = np.geomspace(1e-6, 1e-1, 8)
    E, U = np.meshgrid(eta_d, u0, indexing="ij")
    y0 = np.stack([U.ravel(), np.ones(E.size)], -1)
    params = np.stack([np.ones(E.size), np.zeros(E.size), np.full(E.size, float(D)), E.ravel() / D], -1)
    return y0, params  # params in the system's order (s_star, sigma, d, eta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke version (< 60 s): fewer repeats")
    ap.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args()
    t_start = time.perf_counter()
    reps_batch, reps_seq = (3, 1) if args.quick else (10, 3)
    system = th.isotropic_system("sgd")
    y0, params = grid()
    n = y0.shape[0]
    ts = np.linspace(0.0, 20.0, 101)
    print("\n".join(machine_lines()))

    # compile each shape once: batch 64, 16, and 1
    compile_s = {}
    for size in (n, 16, 1):
        t = time.perf_counter()
        th.solve(system, y0[:size], params[:size], ts=ts)
        compile_s[size] = time.perf_counter() - t

    # one vmapped call (grid order)
    wall_vmap, sol = best_of(lambda: th.solve(system, y0, params, ts=ts), reps_batch)
    steps = sol.num_steps.astype(float)
    efficiency = steps.mean() / steps.max()

    # sequential library calls
    def sequential():
        return [th.solve(system, y0[i], params[i], ts=ts) for i in range(n)]

    wall_seq, sols = best_of(sequential, reps_seq)
    seq_y = np.stack([s.y for s in sols])
    agree = float(np.abs(seq_y - sol.y).max())

    # sequential calls of the compiled solver itself (no Python wrapper work)
    fn = _flow_solver(system, "tsit5", 1e-8, 1e-10, 100_000, 1e8)
    Y0, P, TS = jnp.asarray(y0), jnp.asarray(params), jnp.asarray(ts)

    def bare():
        return [jax.block_until_ready(fn(Y0[i:i + 1], P[i:i + 1], TS)) for i in range(n)]

    bare()
    wall_bare, _ = best_of(bare, reps_seq)

    # sorted by predicted cost, 4 groups of 16
    cost = np.array([th.escape_time(u) for u in y0[:, 0]])
    order = np.argsort(-cost)
    groups = np.split(order, 4)

    def grouped():
        return [th.solve(system, y0[g], params[g], ts=ts) for g in groups]

    wall_grp, gsols = best_of(grouped, reps_batch)
    g_steps = [s.num_steps.astype(float) for s in gsols]
    g_eff = sum(s.sum() for s in g_steps) / sum(16 * s.max() for s in g_steps)
    rho = np.corrcoef(cost, steps)[0, 1]

    ratio = wall_seq / wall_vmap
    ratio_g = wall_seq / wall_grp
    met = lambda r: "met" if r >= TARGET else "not met"  # noqa: E731
    lines = [
        "| strategy | calls | wall (ms) | sequential / this (target ≥ 10×) | step-work efficiency |",
        "|---|---:|---:|---|---:|",
        f"| 64 sequential solve() calls | 64 | {wall_seq * 1e3:.1f} | 1 | 1 |",
        f"| 64 sequential calls of the compiled solver (no wrapper) | 64 | {wall_bare * 1e3:.1f} | "
        f"{wall_seq / wall_bare:.2f}× | 1 |",
        f"| one vmapped solve(), grid order | 1 | {wall_vmap * 1e3:.2f} | {ratio:.1f}× ({met(ratio)}) | {efficiency:.2f} |",
        f"| sorted by predicted cost, 4 vmapped calls of 16 | 4 | {wall_grp * 1e3:.2f} | {ratio_g:.1f}× ({met(ratio_g)}) | "
        f"{g_eff:.2f} |",
    ]
    notes = [
        f"steps per member: min {steps.min():.0f}, mean {steps.mean():.0f}, max {steps.max():.0f} (one batch runs "
        f"max × 64 member-steps: efficiency {efficiency:.2f}); correlation of the escape-time predictor with the "
        f"steps {rho:.2f}; vmapped and sequential results agree to {agree:.1e}.",
        f"bare-kernel sequential / vmapped = {wall_bare / wall_vmap:.1f}× (the part of the ratio not due to "
        "per-call Python overhead).",
        "compile (first call, s): " + ", ".join(f"batch {k}: {v:.1f}" for k, v in compile_s.items()) + ".",
    ]
    print("\nSweep: isotropic online-SGD mean field, 8 eta x 8 u0 settings, t in [0, 20], rtol 1e-8")
    print("\n".join(lines))
    print("\n".join(notes))
    wall = time.perf_counter() - t_start
    if not args.no_write:
        append_results(
            "bench_sweep" + (" (--quick)" if args.quick else ""),
            results_body(machine_lines(),
                         "64-setting sweep: isotropic online-SGD mean field (d = 1000, sigma = 0), eta·d in "
                         "geomspace(1e-3, 3e-2, 8) × u0 in geomspace(1e-6, 1e-1, 8), s(0) = 1, t in [0, 20], 101 save "
                         f"times, Tsit5, rtol 1e-8, atol 1e-10; wall = best of {reps_batch} (batched) / {reps_seq} "
                         "(sequential) after compilation.",
                         lines, notes, wall),
        )


if __name__ == "__main__":
    main()
