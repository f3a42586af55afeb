"""benchmarks/gpu.sh in its CPU quick mode (issue 16, item 3): the one command that a GPU run will use must work
before a GPU is at hand. Runs the script as CI would (``PHASEDYN_BENCH_QUICK=1``) and checks its table: every
item measured (a finite SGD rate, the exact solver's steps) and the pytest subset passing. No timing is asserted."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_gpu_sh_quick_mode_prints_its_table():
    env = dict(os.environ, PHASEDYN_BENCH_QUICK="1")
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {ln.split("|")[1].strip(): ln for ln in out.stdout.splitlines() if ln.startswith("| ")}
    sgd = rows["SGD online, float32"]
    rate = float(re.search(r"\| ([0-9.e+]+) upd/s", sgd).group(1))
    assert rate > 0 and "d = 1e+03, 4 seeds" in sgd
    exact = rows["exact solver (solve_modes, rtol 1e-8)"]
    assert int(re.search(r"(\d+) steps", exact).group(1)) > 0
    assert re.search(r"\b1 passed\b", rows["pytest GPU-relevant subset"]), rows["pytest GPU-relevant subset"]
