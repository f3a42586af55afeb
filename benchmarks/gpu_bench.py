"""The GPU run of issue 16, item 3 (driven by benchmarks/gpu.sh): one table of

* online SGD throughput, ``simulate.run`` on power-law data (a = 2), d = 1e5, 64 seeds, float32
  (coordinate updates / s = d · seeds · steps / wall of a compiled call; target ≥ 1e11 on an H100-class GPU);
* the exact per-mode solver ``solve_modes`` (rtol 1e-8, atol 1e-10) at d = 1e5 and 1e6 to t = 1e6: first call
  (compile + solve) and a warm call, steps;
* the test suite's GPU-relevant subset (sharding, simulate, the exponential integrator, exact-solver tests):
  passed / failed counts and wall.

``PHASEDYN_BENCH_QUICK=1``: CPU-sized smoke mode (d = 1e3 SGD with 4 seeds, the exact solver at d = 1e3 to
t = 10, one short test), a few tens of seconds; it exercises every code path of the full run.
``PHASEDYN_GPU_PYTEST`` overrides the pytest selection (shell words). Prints the table; ``--write``
appends it to RESULTS.md with the machine named.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import append_results, machine_lines, results_body  # noqa: E402

QUICK = os.environ.get("PHASEDYN_BENCH_QUICK", "0") not in ("", "0")
ROOT = pathlib.Path(__file__).resolve().parent.parent
PYTEST_FULL = ("tests/test_shard.py tests/test_expint.py tests/test_simulate.py "
               "tests/test_powerlaw_theory.py -k 'shard or device or expint or exact or modes or seeds'")
PYTEST_QUICK = "tests/test_expint.py -k phi_functions"


def sgd_row(d: int, seeds: int, steps: int) -> list[str]:
    import jax
    import jax.numpy as jnp

    import phasedyn.theory as th
    from phasedyn.simulate import run

    problem = th.powerlaw_problem(d, 2.0, seed=0)

    def call(n):
        t = time.perf_counter()
        out = run(problem, "sgd", 1e-3, n, seeds=seeds, n_record=20, progress=False, dtype=jnp.float32)
        jax.block_until_ready(out.w_final)
        return time.perf_counter() - t

    first = call(steps)
    wall = min(call(steps) for _ in range(2))
    rate = d * seeds * steps / wall
    target = "≥ 1e11 (H100-class GPU)" if not QUICK else "— (quick mode)"
    return [f"| SGD online, float32 | d = {d:.0e}, {seeds} seeds, {steps} steps | {rate:.3g} upd/s "
            f"(wall {wall:.3g} s; first {first:.3g} s) | {target} |"]


def exact_row(d: int, t1: float) -> list[str]:
    import numpy as np

    import phasedyn.theory as th

    p = th.powerlaw_problem(d, 2.0, seed=0)
    ts = np.concatenate([[0.0], np.geomspace(1e-2, t1, 100)])
    t = time.perf_counter()
    th.solve_modes(p, ts, rtol=1e-8, atol=1e-10)
    first = time.perf_counter() - t
    t = time.perf_counter()
    sol, _ = th.solve_modes(p, ts, rtol=1e-8, atol=1e-10)
    wall = time.perf_counter() - t
    return [f"| exact solver (solve_modes, rtol 1e-8) | d = {d:.0e}, a = 2, t to {t1:g} | warm {wall:.3g} s, "
            f"{int(sol.num_steps)} steps ({wall / int(sol.num_steps) * 1e3:.3g} ms/step); first {first:.3g} s | — |"]


def pytest_row() -> list[str]:
    sel = os.environ.get("PHASEDYN_GPU_PYTEST", PYTEST_QUICK if QUICK else PYTEST_FULL)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *shlex.split(sel)],
                         cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    tail = [ln for ln in out.stdout.strip().splitlines() if ln.strip()]
    summary = tail[-1] if tail else f"exit {out.returncode}"
    return [f"| pytest GPU-relevant subset | `{sel}` | {summary.strip('= ')} ({wall:.0f} s) | all pass |"]


def main() -> int:
    t0 = time.perf_counter()
    import phasedyn  # noqa: F401  (float64 switch before machine_lines first imports jax)

    header = machine_lines(with_cpu_model=True)
    print("\n".join(header), flush=True)
    if QUICK:
        rows = sgd_row(1_000, 4, 2_000) + exact_row(1_000, 10.0)
    else:
        rows = sgd_row(100_000, 64, 2_000) + exact_row(100_000, 1e6) + exact_row(1_000_000, 1e6)
    rows += pytest_row()
    lines = ["| item | configuration | measured | target |", "|---|---|---|---|", *rows]
    print("\n" + "\n".join(lines), flush=True)
    if "--write" in sys.argv[1:]:
        append_results("gpu.sh" + (" (quick mode)" if QUICK else ""),
                       results_body(header, "benchmarks/gpu.sh: SGD throughput, the exact solver, the GPU-relevant "
                                    "tests.", lines, [], time.perf_counter() - t0))
    return 0 if "failed" not in rows[-1] and "error" not in rows[-1] else 1


if __name__ == "__main__":
    sys.exit(main())
