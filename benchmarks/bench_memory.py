"""Peak memory against the number of saved times: the exact per-mode solve and a 64-seed SGD run.

Each case runs in its own child process (fresh allocator, nothing cached). In the child: import, build
the power-law problem (a = 2), run the case once with the same shapes to compile it, reset the peak
resident set (``/proc/self/clear_refs`` = 5, Linux ≥ 4.0), run it again and read ``VmHWM`` from
``/proc/self/status`` (where unavailable: ``getrusage(RUSAGE_SELF).ru_maxrss``, which then includes
the compilation). On a GPU the child also reports ``memory_stats()["peak_bytes_in_use"]`` of the device.

Cases (each for two numbers of saved times; everything else equal):

* ``exact``: ``theory.powerlaw.exact(problem, ts=log_grid(t1, n))`` (gradient flow, the exponential
  integrator of :func:`phasedyn.theory.expint.solve_modes`), whose saved arrays are the per-mode
  states y (n × 2d) of the returned Solution, and inside it the weights W (n × d);
* ``expint-core``: the jitted integrator alone (the call inside ``solve_modes``, private), to split
  the peak into the integration and the post-processing of ``solve_modes``;
* ``sgd``: ``simulate.run(problem, "sgd", eta, steps, seeds=64)`` in float64 at d = 10⁵ and 10⁶; its
  saved arrays are 8 statistics × 64 seeds × n (tiny); the working state is w, 64 × d × 8 bytes
  (512 MB at d = 10⁶). Steps are few (the cost per step does not change memory); the saved times are
  spread over them with ``record_steps``.

The table gives the peak above the child's resident set before the measured call, the saved arrays and
the working state in MB, and for each pair the growth of the peak against the growth of the saved
arrays: ≈ 1 means memory grows by the saved arrays only.

Run: ``python benchmarks/bench_memory.py [--quick] [--no-write] [--cases exact expint-core sgd]`` (prints a table and appends it to
benchmarks/RESULTS.md unless ``--no-write``; nothing is asserted). ``--quick`` (< 60 s): small d, few steps.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # _common, from any working directory
from _common import append_results, machine_lines, results_body  # noqa: E402

A = 2.0
MB = 2.0**20


# ----------------------------------------------------------------------------- child side
def _status(key: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024.0
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _child(spec: dict) -> dict:
    import numpy as np

    import jax

    import phasedyn.theory as th
    from phasedyn.simulate import run
    from phasedyn.theory import powerlaw as PL
    from phasedyn.theory._solve import log_grid

    kind, d, n = spec["kind"], spec["d"], spec["n_save"]
    problem = th.powerlaw_problem(d, A)
    out: dict = {}

    if kind in ("exact", "expint-core"):
        ts = log_grid(spec["t1"], n)
        if kind == "exact":
            def case(max_steps=1_000_000):
                sol = PL.exact(problem, ts=ts, max_steps=max_steps)
                out["steps"] = int(np.max(sol.num_steps))
                return sol.y.nbytes + sol.obs.nbytes
        else:
            import jax.numpy as jnp
            import sympy as sp

            from phasedyn.theory import expint as E
            from phasedyn.theory import symbols as S

            fn = E._compiled(sp.sympify(S.phase_retrieval_loss))  # private: the integrator alone

            def case(max_steps=1_000_000):
                W, reached, k, _ = fn(jnp.asarray(problem.w0[None]), jnp.asarray(problem.lam),
                                      jnp.asarray(problem.w_star), jnp.asarray(ts), jnp.asarray(1e-8),
                                      jnp.asarray(1e-10), jnp.asarray(max_steps))
                W = np.asarray(W)
                out["steps"] = int(np.asarray(k).max())
                return W.nbytes
        def warm():  # same shapes, one integrator step (exact() then raises SolveError): compiles
            try:
                case(max_steps=1)
            except th.SolveError:
                pass

        out["state_bytes"] = 3 * d * 8  # w, lam, w_star
        out["saved_expected"] = n * d * 8 * (2 if kind == "exact" else 1)
    else:
        seeds, steps = spec["seeds"], spec["steps"]
        record = np.unique(np.rint(np.linspace(0, steps, n)).astype(np.int64))
        w0 = problem.w0_batch(seeds)

        def case():
            tr = run(problem, "sgd", 1e-3, steps, seeds=seeds, record_steps=record, w0=w0, progress=False)
            out["steps"] = steps
            return sum(v.nbytes for v in tr.stats.values())

        def warm():  # same shapes, one step: compiles the chunk function
            run(problem, "sgd", 1e-3, 1, seeds=seeds, n_record=2, w0=w0, progress=False)

        out["state_bytes"] = seeds * d * 8
        out["saved_expected"] = 8 * seeds * len(record) * 8

    t = time.perf_counter()
    warm()
    out["warm_s"] = time.perf_counter() - t
    import gc

    gc.collect()
    out["reset"] = _reset_peak()
    out["rss_before"] = _status("VmRSS")
    t = time.perf_counter()
    out["saved_bytes"] = case()
    out["wall_s"] = time.perf_counter() - t
    out["peak"] = _status("VmHWM") if out["reset"] else None
    out["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0
    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    out["device_peak"] = stats.get("peak_bytes_in_use") if stats else None
    return out


# ----------------------------------------------------------------------------- parent side
def run_cases(specs: list[dict], timeout: float, parallel: bool) -> list[dict]:
    """One child process per spec (all at once when ``parallel``: memory is per process, so only the wall
    times are affected)."""
    def start(spec):
        cmd = [sys.executable, __file__, "--_child", json.dumps(spec)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(spec, proc):
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return {**spec, "error": f"timeout after {timeout:.0f} s"}
        lines = [ln for ln in stdout.splitlines() if ln.startswith("JSON")]
        if proc.returncode != 0 or not lines:
            tail = (stderr or stdout).strip().splitlines()
            return {**spec, "error": tail[-1][:160] if tail else f"exit {proc.returncode}"}
        # the parent's view as a cross-check: the largest max RSS of any child so far (whole lifetime)
        child_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024.0
        return {**spec, **json.loads(lines[-1][4:]), "children_maxrss": child_max}

    if parallel:
        procs = [(spec, start(spec)) for spec in specs]
        return [finish(spec, proc) for spec, proc in procs]
    return [finish(spec, start(spec)) for spec in specs]


def _mb(x) -> str:
    return "—" if x is None else f"{x / MB:.0f}" if x >= 10 * MB else f"{x / MB:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small d, few steps (< 60 s)")
    ap.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    ap.add_argument("--cases", nargs="+", choices=("exact", "expint-core", "sgd"), default=None,
                    help="only these cases (default: all)")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        print("JSON" + json.dumps(_child(json.loads(args._child))), flush=True)
        return

    if args.quick:
        groups = [
            [{"kind": "exact", "d": 1000, "t1": 1.0, "n_save": n} for n in (50, 500)],
            [{"kind": "sgd", "d": 10_000, "seeds": 64, "steps": 10, "n_save": n} for n in (5, 10)],
        ]
    else:
        groups = [
            [{"kind": "exact", "d": 100_000, "t1": 10.0, "n_save": n} for n in (50, 500)],
            [{"kind": "expint-core", "d": 100_000, "t1": 10.0, "n_save": n} for n in (50, 500)],
            [{"kind": "sgd", "d": 100_000, "seeds": 64, "steps": 500, "n_save": n} for n in (50, 500)],
            [{"kind": "sgd", "d": 1_000_000, "seeds": 64, "steps": 50, "n_save": n} for n in (5, 50)],
        ]
    if args.cases:
        groups = [g for g in groups if g[0]["kind"] in args.cases]
    t0 = time.perf_counter()
    header = machine_lines(with_cpu_model=True, with_ram=True, with_x64=False)
    print("\n".join(header), flush=True)
    rows: list[dict] = []
    results = run_cases([spec for group in groups for spec in group], timeout=1800, parallel=False)
    for group in groups:
        pair = []
        for spec in group:
            r = results.pop(0)
            pair.append(r)
            msg = r.get("error") or (f"peak {_mb(r.get('peak'))} MB (before {_mb(r.get('rss_before'))} MB), "
                                     f"saved {_mb(r.get('saved_bytes'))} MB, wall {r.get('wall_s', 0):.1f} s")
            print(f"  {spec}: {msg}", flush=True)
        if len(pair) == 2 and not any("error" in r for r in pair) and all(r.get("peak") for r in pair):
            a, b = pair
            dp = (b["peak"] - b["rss_before"]) - (a["peak"] - a["rss_before"])
            ds = b["saved_bytes"] - a["saved_bytes"]
            b["growth"] = (dp, ds)
        rows += pair

    lines = [
        "| case | d | seeds | steps | saved times | wall s | RSS before MB | peak RSS MB | peak − before MB "
        "| saved arrays MB | working state MB | Δ(peak − before) / Δ(saved) | device peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['d']:.0e} | {r.get('seeds', 1)} | {r.get('steps', '—')} | {r['n_save']} "
                         f"| error: {r['error']} | | | | | | | |")
            continue
        peak, before = r.get("peak"), r.get("rss_before")
        above = peak - before if peak and before else None
        g = r.get("growth")
        gtxt = "" if g is None else (f"{g[0] / MB:.0f} / {g[1] / MB:.1f} MB = {g[0] / g[1]:.2g}" if g[1] >= 10 * MB
                                     else f"{g[0] / MB:+.1f} MB for {g[1] / MB:.2f} MB more saved")
        lines.append(
            f"| {r['kind']} | {r['d']:.0e} | {r.get('seeds', 1)} | {r.get('steps', '—')} | {r['n_save']} | "
            f"{r['wall_s']:.1f} | {_mb(before)} | {_mb(peak)} | {_mb(above)} | {_mb(r['saved_bytes'])} | "
            f"{_mb(r['state_bytes'])} | {gtxt} | {_mb(r.get('device_peak'))} |"
        )
    notes = [
        "peak = VmHWM after a reset following a same-shape warm-up (compilation excluded); "
        "RUSAGE_CHILDREN max RSS over all children (compilation included): "
        f"{_mb(max((r.get('children_maxrss') or 0) for r in rows))} MB.",
    ]
    total = time.perf_counter() - t0
    print()
    print("\n".join(lines + [""] + notes + [f"wall {total:.0f} s"]))
    if not args.no_write:
        append_results(f"bench_memory{' --quick' if args.quick else ''}"
                       f"{' (cases: ' + ', '.join(args.cases) + ')' if args.cases else ''}",
                       results_body(header, "Peak host memory (and device memory on GPU) against the number of saved "
                                    "times.", lines, notes, total))


if __name__ == "__main__":
    main()
