"""The exact per-mode solver (``solve_modes``, theory/_etd.py) against scipy LSODA at equal accuracy, d = 50 ... 1e5.

Issue 16, item 1. The system of bench_powerlaw_ode (a = 2, w(0) uniform on the unit sphere), here over the
horizon t1 = d^a (Phases I-III, the brief's span) for each d, saved on {0} U geomspace(1e-2, t1, 100).

* baseline, measured in the same run: scipy LSODA with the analytic dense Jacobian (bench_powerlaw_ode's
  ``run_scipy``: child process, OpenBLAS 1 thread, rtol 1e-8, atol 1e-10), capped at ``--cap`` seconds;
  a capped run is bounded below by (its LU count at the largest d that finished) x (one LAPACK LU at d);
* reference for both errors: LSODA at rtol 1e-12 for d <= 400 (independent of the exponential scheme),
  ``solve_modes`` at rtol 1e-11 above (LSODA's d^3 LU makes a tight LSODA run impractical there);
* phasedyn at equal accuracy: the loosest rtol on the half-decade ladder whose max errors in u and s are
  <= LSODA's (``matched_run``), wall = best of ``--repeats`` compiled calls;
* warm d = 1e4 to t = 1e8 (= d^a) at rtol 1e-8: the README's headline case (goal <= 1 s on 2 cores).

Targets: ratio LSODA / phasedyn >= 10 for d >= 100, >= 3 at d = 50; warm d = 1e4 case <= 1 s.

Run: ``python benchmarks/bench_expint_scaling.py [--dims 50 100 400 ...] [--cap S] [--quick] [--no-write]``
(``--quick``: d = 50, 100, cap 20 s, no d = 1e4 case). Prints a table; appends it to RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: see bench_powerlaw_ode

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import append_results, best_of, fmt, machine_lines, results_body, save_grid  # noqa: E402
from bench_powerlaw_ode import A, errs, lu_seconds, matched_run, problem_of, run_scipy  # noqa: E402

import phasedyn.theory as th  # noqa: E402


def reference(d: int, ts: np.ndarray, cap: float) -> dict:
    if d <= 400:
        import bench_powerlaw_ode as B

        saved = B.RTOL, B.ATOL
        B.RTOL, B.ATOL = 1e-12, 1e-14
        try:
            r = run_scipy(d, "LSODA", ts, 10 * cap)
        finally:
            B.RTOL, B.ATOL = saved
        if r.get("ok"):
            return {"u": r["u"], "s": r["s"], "name": "LSODA rtol 1e-12"}
    sol, _ = th.solve_modes(problem_of(d), ts, rtol=1e-11, atol=1e-13, max_steps=10_000_000)
    return {"u": sol["u"], "s": sol["s"], "name": "solve_modes rtol 1e-11"}


def bench_d(d: int, cap: float, repeats: int, memo: dict) -> dict:
    problem = problem_of(d)
    ts = save_grid(float(d) ** A)
    t = time.perf_counter()
    th.solve_modes(problem, ts, rtol=1e-8, atol=1e-10)
    first = time.perf_counter() - t
    print(f"d = {d}: first solve {first:.1f} s; reference ...", flush=True)
    ref = reference(d, ts, cap)
    print(f"  reference {ref['name']}; LSODA (cap {cap:.0f} s) ...", flush=True)
    ls = run_scipy(d, "LSODA", ts, cap)
    row = {"d": d, "t1": ts[-1], "ref": ref["name"], "first": first, "lsoda": ls}
    if ls.get("ok"):
        ls["err_u"], ls["err_s"] = errs(ls, ref)
        memo["nlu"] = (int(ls["nlu"]), d)
        target = (ls["err_u"], ls["err_s"])
    else:
        n_lu, d_lu = memo.get("nlu", (None, None))
        if n_lu:
            ls["bound"] = n_lu * lu_seconds(d)
            ls["bound_note"] = f"{n_lu} LU (count at d = {d_lu}) x one LAPACK LU at d = {d}"
        target = memo.get("target", (2e-9, 4e-9))
    memo["target"] = target
    print(f"  LSODA {ls.get('wall')} s; phasedyn at LSODA's accuracy ...", flush=True)
    m = matched_run(problem, ts, ref, target, repeats)
    m["err_u"], m["err_s"] = errs(m, ref)
    row["ours"] = m
    base = ls["wall"] if ls.get("ok") else None
    row["ratio"] = base / m["wall"] if base else None
    row["ratio_lower"] = (cap if not ls.get("ok") else None) and cap / m["wall"]
    row["ratio_bound"] = ls.get("bound", 0) / m["wall"] if ls.get("bound") else None
    return row


def warm_1e4(rtol: float = 1e-8) -> dict:
    p = problem_of(10_000)
    ts = save_grid(1e8)
    th.solve_modes(p, ts, rtol=rtol, atol=rtol * 1e-2)
    wall, (sol, _) = best_of(lambda: th.solve_modes(p, ts, rtol=rtol, atol=rtol * 1e-2), 2)
    return {"wall": wall, "steps": int(sol.num_steps)}


def table(rows: list[dict]) -> list[str]:
    out = ["| d | t1 | LSODA wall (s) | LSODA err u / s | phasedyn rtol (matched) | phasedyn wall (s) | steps | "
           "phasedyn err u / s | first solve (s) | LSODA / phasedyn (goal) |",
           "|---:|---:|---:|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        ls, m = r["lsoda"], r["ours"]
        goal = 3 if r["d"] < 100 else 10
        if r["ratio"] is not None:
            verdict = f"{r['ratio']:.1f}× (≥ {goal}: {'met' if r['ratio'] >= goal else 'not met'})"
            lw, le = f"{ls['wall']:.3g}", f"{fmt(ls['err_u'], '.1e')} / {fmt(ls['err_s'], '.1e')}"
        else:
            verdict = f"> {r['ratio_lower']:.0f}× (capped)"
            if r["ratio_bound"]:
                verdict += f"; ≳ {r['ratio_bound']:.0f}× by the LU bound"
            lw = f"> {ls.get('capped', 0):.0f} (t reached {ls.get('t_reached', 0):.3g})"
            le = "—"
        out.append(f"| {r['d']} | {r['t1']:.0e} | {lw} | {le} | {m['rtol']:.2g} | {m['wall']:.3g} | {m['steps']} | "
                   f"{fmt(m['err_u'], '.1e')} / {fmt(m['err_s'], '.1e')} | {r['first']:.1f} | {verdict} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="*", default=None)
    ap.add_argument("--cap", type=float, default=None, help="LSODA time cap, s (default 120; --quick 20)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-warm", action="store_true", help="skip the warm d = 1e4, t = 1e8 case")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    dims = args.dims or ([50, 100] if args.quick else [50, 100, 400, 2000, 10_000, 100_000])
    cap = args.cap or (20.0 if args.quick else 120.0)
    header = machine_lines(with_cpu_model=True, with_openblas=True)
    print("\n".join(header))
    memo: dict = {}
    rows = [bench_d(d, cap, args.repeats, memo) for d in dims]
    lines = table(rows)
    refs = ", ".join(f"{r['d']}: {r['ref']}" for r in rows)
    notes = [f"reference per d: {refs}."]
    notes += [f"d = {r['d']}: LSODA capped; bound = {r['lsoda']['bound_note']}." for r in rows if "bound_note" in r["lsoda"]]
    notes += [f"d = {r['d']}: LSODA {r['lsoda']['steps']} steps, {r['lsoda']['nlu']} LU." for r in rows
              if r["lsoda"].get("ok")]
    if not (args.quick or args.no_warm):
        w = warm_1e4()
        notes.append(f"warm d = 1e4 to t = 1e8, rtol 1e-8: {w['wall']:.2f} s, {w['steps']} steps (goal ≤ 1 s: "
                     f"{'met' if w['wall'] <= 1 else 'not met'}).")
    print("\n".join(lines + notes))
    if not args.no_write:
        append_results("bench_expint_scaling" + (" (--quick)" if args.quick else ""), results_body(
            header, f"Exact per-mode flow, a = {A:g}, t in [0, d^a], 101 save times: phasedyn solve_modes at the "
            "rtol matching LSODA's accuracy (rtol 1e-8, atol 1e-10, analytic dense Jacobian, child process, "
            f"capped at {cap:.0f} s) against LSODA measured in the same run.", lines, notes,
            time.perf_counter() - t0))


if __name__ == "__main__":
    main()
