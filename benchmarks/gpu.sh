#!/usr/bin/env bash
# Issue 16, item 3: the GPU run in one command (< 5 min on a GPU). Prints one table: online SGD throughput
# (d = 1e5, 64 seeds, float32), the exact solver at d = 1e5 and 1e6, the GPU-relevant pytest subset.
#   benchmarks/gpu.sh            full run (on a GPU); add --write to append the table to benchmarks/RESULTS.md
#   PHASEDYN_BENCH_QUICK=1 benchmarks/gpu.sh   CPU smoke mode (tests/test_benchmarks_quick.py runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # the checkout, not an installed copy
exec "${PYTHON:-python}" benchmarks/gpu_bench.py "$@"
