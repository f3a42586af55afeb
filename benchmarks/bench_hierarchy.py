"""Truncated power-law hierarchy: time per solve after compilation, and accuracy against the exact flow.

Problem: power law a = 2, d = 1000, gradient flow, w(0) uniform on the unit sphere (``powerlaw_problem``
defaults). ``powerlaw.hierarchy(problem, K, closure)`` for K = 4, 16, 64 and the closures ``top`` (the
default) and ``quadrature`` (``zero`` blows up before the end of Phase I and is left out), on two spans,
each saved on {0} U geomspace(1e-2, t1, 100), rtol 1e-8, atol 1e-10:

* three phases, t1 = 1e6 (= d^a: escape, Phase II and the spectral tail), solver Kvaerno5 (the top-mode
  decay rate 8 lambda_1 ~ 5 makes an explicit solver take ~1e6 steps here);
* the hierarchy's own range, Phase I and the start of Phase II, t1 = 10 (s crosses 1/3 at t ~ 2, |u|
  reaches 0.5 at t ~ 7), solver Tsit5 (the default).

On the long span every hierarchy with K >= 16 blows up in Phase II (any closure; tolerance-independent, so
the closed system itself, not the integrator: the linear closures do not keep the moment sequence
realisable, s = s^(1) drifts below 1/3, alpha = 4(s* - 3s) turns positive and feeds the growth). For
comparison the realisable K + 1-node system, ``powerlaw.blocks`` with B = K + 1 log-spaced blocks (same
state size 2(K + 1)), is timed there too.

Reported per (span, K, closure): wall time of one solve after compilation (best of repeats; the machine
is shared), first call (sympy derivation + compilation + one solve) minus that, solver steps, and
max_t |u - u_exact|, |s - s_exact| on the save grid against ``solve_modes`` (rtol 1e-11 on t <= 10,
1e-9 on t <= 1e6). A solve that fails (``SolveError``: blow-up or max_steps) is reported with the time
it reached. For context the exact per-mode solver (``powerlaw.exact``, rtol 1e-8) is timed on both spans.

Target: K = 16 under 50 ms per solve on CPU over all three phases.

Run: ``python benchmarks/bench_hierarchy.py [--quick] [--no-write]`` (prints a table and appends a section to
benchmarks/RESULTS.md; nothing is asserted). ``--quick`` (< 60 s): d = 200, t1 = 1e3 and 10, K = 16.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys
import time
import warnings

import numpy as np

import phasedyn.theory as th
from phasedyn.theory import SolveError
from phasedyn.theory import powerlaw as PL

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # _common, from any working directory
from _common import append_results, best_of, machine_lines, results_body, save_grid  # noqa: E402

A = 2.0
RTOL, ATOL = 1e-8, 1e-10
TARGET_MS = 50.0


def reached(exc: Exception) -> str:
    m = re.search(r"(?:near|before) t = ([0-9.eE+-]+)", str(exc))
    why = "blew up" if "blew up" in str(exc) else ("max_steps" if "max_steps" in str(exc) else "failed")
    return f"{why} at t ≈ {float(m.group(1)):.3g}" if m else why


def run_case(solve, ref, budget_s: float) -> dict:
    """Time ``solve()`` after its first call; errors of its u, s against ``ref``; a SolveError is reported."""
    t = time.perf_counter()
    try:
        solve()
    except SolveError as exc:
        return {"failed": reached(exc), "first": time.perf_counter() - t}
    first = time.perf_counter() - t
    wall, sol = best_of(solve, repeats=3, budget_s=budget_s)
    return {"wall": wall, "compile": max(first - wall, 0.0), "steps": int(sol.num_steps),
            "err_u": float(np.abs(sol["u"] - ref["u"]).max()),
            "err_s": float(np.abs(sol["s"] - ref["s"]).max())}


def phase_times(ts, u, s) -> str:
    def first(mask):
        return f"{ts[np.argmax(mask)]:.3g}" if mask.any() else f"> {ts[-1]:g}"

    return (f"exact flow: |u| ≥ 0.1 at t ≈ {first(np.abs(u) >= 0.1)}, s ≥ 1/3 at {first(s >= 1 / 3)}, "
            f"|u|, s ≥ 0.99 at {first((np.abs(u) >= 0.99) & (s >= 0.99))}, ≥ 0.9999 at "
            f"{first((np.abs(u) >= 0.9999) & (s >= 0.9999))} (first save time)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke version (< 60 s): d = 200, K = 4, 16")
    ap.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args()
    t_start = time.perf_counter()
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.quick:
        d, spans = 200, (("three phases", 1e3, "kvaerno5", 1e-8, (16,)),
                         ("Phase I + early II", 10.0, "tsit5", 1e-10, (16,)))
    else:
        d, spans = 1000, (("three phases", 1e6, "kvaerno5", 1e-9, (4, 16, 64)),
                          ("Phase I + early II", 10.0, "tsit5", 1e-11, (4, 16, 64)))
    problem = th.powerlaw_problem(d, A)
    budget = 0.5 if args.quick else 2.0
    print("\n".join(machine_lines()))
    lines = ["| span | model | solver | wall / solve (ms) | K = 16 vs target 50 ms | first call − wall (s) | steps | "
             "max err u | max err s |",
             "|---|---|---|---:|---|---:|---:|---:|---:|"]
    notes = []
    compiled = set()
    for span, t1, solver, ref_rtol, Ks in spans:
        ts = save_grid(t1)
        t = time.perf_counter()
        ref_sol, _ = th.solve_modes(problem, ts, rtol=ref_rtol, atol=ref_rtol * 1e-2, max_steps=10_000_000)
        ref = {"u": ref_sol["u"], "s": ref_sol["s"]}
        ref_wall = time.perf_counter() - t
        PL.exact(problem, ts=ts, rtol=RTOL, atol=ATOL)  # compiled already by the reference (same shapes)
        ex_wall, ex = best_of(lambda: PL.exact(problem, ts=ts, rtol=RTOL, atol=ATOL), repeats=1, budget_s=5.0)
        ex_err = (np.abs(ex["u"] - ref["u"]).max(), np.abs(ex["s"] - ref["s"]).max())
        notes.append(f"{span} (t ≤ {t1:g}): reference solve_modes rtol {ref_rtol:g} took {ref_wall:.1f} s; the exact "
                     f"per-mode solver at rtol 1e-8 takes {ex_wall * 1e3:.0f} ms ({int(ex.num_steps)} steps, err u "
                     f"{ex_err[0]:.1e}, s {ex_err[1]:.1e}); {phase_times(ts, ref['u'], ref['s'])}.")
        print(notes[-1], flush=True)
        cases = [(f"hierarchy K = {K}, {closure}", K, "hier", closure) for K in Ks for closure in ("top", "quadrature")]
        if span.startswith("three"):
            cases += [(f"blocks B = {K + 1} (log-spaced; for comparison)", K, "blocks", None) for K in Ks]
        for label, K, kind, closure in cases:
            kw = dict(ts=ts, solver=solver, rtol=RTOL, atol=ATOL, max_steps=200_000)
            if kind == "hier":
                r = run_case(lambda: PL.hierarchy(problem, K, closure, **kw), ref, budget)
                key = ("hier", K, solver)
            else:
                r = run_case(lambda: PL.blocks(problem, K + 1, **kw), ref, budget)
                key = ("blocks", K, solver)
            shared = key in compiled
            compiled.add(key)
            target = kind == "hier" and K == 16
            if "failed" in r:
                row = (f"| {span} (t ≤ {t1:g}) | {label} | {solver} | {r['failed']} | {'not met' if target else ''} | "
                       "— | — | — | — |")
            else:
                ms = r["wall"] * 1e3
                verdict = f"{TARGET_MS / ms:.2g}× ({'met' if ms < TARGET_MS else 'not met'})" if target else ""
                comp = "(shared)" if shared else f"{r['compile']:.2g}"
                row = (f"| {span} (t ≤ {t1:g}) | {label} | {solver} | {ms:.3g} | {verdict} | {comp} | {r['steps']} | "
                       f"{r['err_u']:.1e} | {r['err_s']:.1e} |")
            lines.append(row)
            print(row, flush=True)
    title = (f"\nTruncated hierarchy, power law a = {A:g}, d = {d}, gradient flow, rtol 1e-8 (wall = best of repeats "
             "after compilation)")
    print(title)
    print("\n".join(lines))
    wall = time.perf_counter() - t_start
    if not args.no_write:
        append_results(
            "bench_hierarchy" + (" (--quick)" if args.quick else ""),
            results_body(machine_lines(),
                         f"Truncated hierarchy, power law a = 2, d = {d}, gradient flow, unit-sphere w(0); 101 "
                         "log-spaced save times, rtol 1e-8, atol 1e-10; wall = best of ≥ 3 solves after compilation; "
                         "errors against solve_modes (exact per-mode flow). 'vs target' = 50 ms / wall for K = 16. "
                         "Closure is a parameter: one compilation per (K, solver), '(shared)'.",
                         lines, notes, wall),
        )


if __name__ == "__main__":
    main()
