"""Online SGD throughput on power-law data (a = 2): ``phasedyn.simulate.run`` against a plain numpy loop
and against the machine's own bounds, all measured in the same run.

Rate = coordinate updates per second = seeds × d × steps / wall seconds (after compilation; best of a
few repeats, taken round-robin so that a noisy neighbour hits every column alike).

For d = 10³, 10⁴, 10⁵, 1 and 64 seeds, float32 and float64:

* ``run()``: ``run(problem, "sgd", eta, steps, seeds, n_record=20, dtype=...)`` as a user calls it
  (one jitted chunk per call). Its fixed per-call cost (the wall of ``steps=1``: mostly the statistics of
  all 32 record intervals of the chunk, padding included, and ``problem.w0_batch``) is reported on its
  own, and *steady* is the marginal rate ``work·(n - 1)/(t(n) - t(1))`` that long runs approach;
* numpy: one seed, the same update (x = √λ ⊙ z, y = (x·w*)², w ← w − η·4g(g² − y)x), the same d and dtype;
  BLAS is pinned to one thread (``OPENBLAS_NUM_THREADS=1`` unless set): a threaded ``ddot`` on a loaded
  2-core machine is 10-20× slower and would flatter the ratio;
* bounds: *rng* = ``jax.random.normal`` of shape (seeds, d) per step (key ``fold_in(key, k)``) in a
  ``fori_loop``, summed so nothing is stored (the sampling cost alone); *axpy* = ``w ← w + c·x`` on
  (seeds, d) per step (one fused read-read-write pass: the memory-bandwidth cost of touching w);
* *fused*: a prototype of a leaner SGD kernel (see :func:`fused_kernel`): the same samples, the same
  update and the same divergence freeze as ``run()`` (checked against it to rounding), but with
  ``grad_w ℓ = ℓ'(x·w)·x`` (``jax.grad`` of ℓ in the scalar g), the new |w|² from scalars, and the
  freeze applied to the scalar step size instead of a select over (seeds, d).

Experiments on d = 10³, 1 seed and on the target configuration (d = 10⁵, 64 seeds), float32, in the full run: the PRNG
implementation (``jax_default_prng_impl`` = threefry2x32, philox4x32, rbg, unsafe_rbg; run() picks it up
through ``jax.random.key``), and on CPU, in a child process, JAX's *unrolled* threefry lowering (JAX
lowers threefry on CPU as a rolled 5-iteration XLA while loop whose (seeds, d) uint32 state goes
through memory every iteration; this patches a private JAX registration, benchmark-only).

Targets: run()/numpy ≥ 2 on CPU (every configuration); ≥ 1e11 updates/s on an H100 (float32,
d = 10⁵, 64 seeds).

Run: ``python benchmarks/bench_sgd.py [--quick] [--no-write]`` (prints a table and appends it to
benchmarks/RESULTS.md unless ``--no-write``; nothing is asserted). ``--quick`` (< 60 s): float32 only,
shorter timings, bounds for the target configuration only, no experiments.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: see module doc

import argparse
import functools
import json
import pathlib
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import phasedyn.theory as th
from phasedyn.simulate import DivergenceError, _sgd_rng, run

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # _common, from any working directory
from _common import append_results, fmt, machine_lines, results_body  # noqa: E402

A = 2.0
ETA = 1e-3  # far inside the stable range: throughput does not depend on eta
SIGMA = 0.0
BOUND = 1e6
TARGET_X_NUMPY = 2.0
TARGET_GPU_RATE = 1e11
TARGET_CONFIG = (100_000, 64, "float32")
EXPERIMENT_CONFIGS = ((1000, 1, "float32"), TARGET_CONFIG)


# ----------------------------------------------------------------------------- timing helpers
def _calibrate(timed, target_s: float, start: int = 2, max_steps: int = 10**8) -> tuple[int, int, float]:
    """Steps such that ``timed(steps)`` (seconds) takes about ``target_s``.

    Returns ``(steps, probe_steps, probe_s)``: the last probe, reusable as a measurement when it took
    at least half the target.
    """
    steps = start
    while True:
        t = timed(steps)
        if t >= target_s / 4 or steps >= max_steps:
            return int(min(max(steps * target_s / max(t, 1e-9), 1), max_steps)), steps, t
        steps = int(min(steps * min(100.0, max(2.0, target_s / 4 / max(t, 1e-9))), max_steps))


def _wall(fn, *args) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


# ----------------------------------------------------------------------------- kernels
@functools.lru_cache(maxsize=None)
def rng_kernel(seeds: int, d: int, dtype: str):
    """Sampling alone: a (seeds, d) normal per step from ``fold_in(key, k)``, reduced to a scalar."""

    def f(key, n):
        def body(k, acc):
            return acc + jnp.sum(jax.random.normal(jax.random.fold_in(key, k), (seeds, d), dtype))

        return lax.fori_loop(0, n, body, jnp.zeros((), dtype))

    return jax.jit(f)


@functools.lru_cache(maxsize=None)
def sgd_rng_kernel(seeds: int, d: int, dtype: str):
    """Sampling alone as ``run()`` samples: per seed and step, ``split(fold_in(key_j, k))`` and the d normals of
    ``simulate.optimizers.sample`` (simulate/_sgd_rng.py: jax.random.normal's bits, Threefry unrolled), summed."""

    def f(keys, n):
        def one(key, k):
            kx, _ = jax.random.split(jax.random.fold_in(key, k))
            return jnp.sum(_sgd_rng.normal(kx, (d,), jnp.dtype(dtype)))

        def body(k, acc):
            return acc + jnp.sum(jax.vmap(one, in_axes=(0, None))(keys, k))

        return lax.fori_loop(0, n, body, jnp.zeros((), dtype))

    return jax.jit(f)


@functools.lru_cache(maxsize=None)
def axpy_kernel():
    """Memory bound: one fused ``w + c·x`` pass over (seeds, d) per step."""

    def f(w, x, c, n):
        return lax.fori_loop(0, n, lambda k, w: w + c * x, w)

    return jax.jit(f)


@functools.lru_cache(maxsize=None)
def fused_kernel():
    r"""Prototype of a leaner ``run()`` inner loop (same samples, update and freeze as ``run()``).

    Per step: samples exactly as :func:`phasedyn.simulate.optimizers.sample` (per-seed
    ``fold_in(key_j, k)``, split, normal); one pass for the three reductions g = x·w, h = x·w*,
    xx = |x|²; ``c = η ℓ'(g)`` with ``ℓ' = jax.grad`` of :math:`(g^2 - y)^2` in g (so
    :math:`\nabla_w\ell = \ell'(g)x` is still never typed by hand); the new
    :math:`|w|^2 = |w|^2 - 2cg + c^2xx` from scalars (carried; exact |w|² at the start of each call); a
    bad seed gets c = 0 (frozen at its last good w, first bad step recorded) instead of a
    ``where`` over (seeds, d); then one axpy ``w - c x``.
    """
    dl = jax.grad(lambda g, y: (g * g - y) ** 2)

    def draw(key, k, shape, dtype):
        kx, kxi = jax.random.split(jax.random.fold_in(key, k))
        return jax.random.normal(kx, shape, dtype), jax.random.normal(kxi, (), dtype)

    def f(w, keys, bad, n, w_star, lam, eta, sigma, bound):
        sqrt_lam = jnp.sqrt(lam)

        def body(k, carry):
            w, s, bad = carry
            z, xi = jax.vmap(draw, in_axes=(0, None, None, None))(keys, k, w_star.shape, w.dtype)
            x = sqrt_lam * z
            g, h, xx = jnp.sum(x * w, -1), jnp.sum(x * w_star, -1), jnp.sum(x * x, -1)
            c = eta * jax.vmap(dl)(g, h * h + sigma * xi)
            s_new = s - 2 * c * g + c * c * xx
            ok = bad < 0
            out = jnp.logical_not(jnp.isfinite(s_new)) | (s_new > bound)
            keep = ok & ~out
            c = jnp.where(keep, c, 0)
            return w - c[:, None] * x, jnp.where(keep, s_new, s), jnp.where(ok & out, k + 1, bad)

        w, _, bad = lax.fori_loop(0, n, body, (w, jnp.sum(w * w, -1), bad))
        return w, bad

    return jax.jit(f)


def numpy_rate(problem, dtype: str, target_s: float) -> float:
    """The plain numpy loop, one seed, run for about ``target_s`` seconds."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    w, w_star = problem.w0.astype(dt), problem.w_star.astype(dt)
    sqrt_lam, eta, d = np.sqrt(problem.lam).astype(dt), dt.type(ETA), problem.d
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(8):
            x = sqrt_lam * rng.standard_normal(d, dtype=dt)
            g, h = x @ w, x @ w_star
            y = h * h + SIGMA * rng.standard_normal()
            w -= eta * (4 * g * (g * g - y)) * x
        n += 8
        el = time.perf_counter() - t0
        if el >= target_s:
            return d * n / el


def numpy_rng_rate(d: int, dtype: str, target_s: float) -> float:
    """numpy's generator alone (``default_rng().standard_normal(d)``, ziggurat), one core: normals / s."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(0)
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(8):
            rng.standard_normal(d, dtype=dt)
        n += 8
        el = time.perf_counter() - t0
        if el >= target_s:
            return d * n / el


# ----------------------------------------------------------------------------- one configuration
class Case:
    """Everything needed to time one (d, seeds, dtype); each ``time_*`` returns updates/s."""

    def __init__(self, d: int, seeds: int, dtype: str, target_s: float, quick: bool = False):
        self.d, self.seeds, self.dtype, self.target_s, self.quick = d, seeds, dtype, target_s, quick
        self.overhead_s = float("nan")  # wall of run(steps=1) after compilation
        self.run_share = float("nan")  # fraction of the last timed run() spent in that fixed cost
        self.problem = th.powerlaw_problem(d, A, sigma=SIGMA)
        self.work = seeds * d
        self._steps: dict[str, int] = {}
        dt = jnp.dtype(dtype)
        self.w0 = jnp.asarray(self.problem.w0_batch(seeds), dt)
        self.x = jnp.asarray(np.random.default_rng(1).standard_normal((seeds, d)) * 1e-6, dt)
        self.prm = (jnp.asarray(self.problem.w_star, dt), jnp.asarray(self.problem.lam, dt), jnp.asarray(ETA, dt),
                    jnp.asarray(SIGMA, dt), jnp.asarray(BOUND, dt))

    def _rate(self, name: str, timed) -> float:
        if name not in self._steps:
            timed(1)  # compile
            self._steps[name], n, t = _calibrate(timed, self.target_s)
            if t >= self.target_s / 2:
                return self.work * n / t
        n = self._steps[name]
        return self.work * n / timed(n)

    def time_run(self) -> float:
        """End-to-end rate of ``run()`` as a user calls it (``n_record=20``: one jitted chunk per call).

        Also sets ``overhead_s`` (wall of ``run(steps=1)``: building w0, the statistics of all
        ``chunk_size`` record intervals of the chunk, padding included, transfers), ``steady`` (the
        marginal rate ``work·(n - 1)/(t(n) - t(1))``, what a long run approaches) and ``run_share`` (the
        fraction of the timed call that the fixed cost took). Full mode times enough steps that the
        fixed cost is at most ~20 % of the call.
        """
        dt = jnp.dtype(self.dtype)

        def timed(n):
            return _wall(lambda: run(self.problem, "sgd", ETA, n, seeds=self.seeds, n_record=20, progress=False,
                                     dtype=dt).w_final)

        t = None
        if "run" not in self._steps:
            timed(1)  # compile
            self.overhead_s = min(timed(1) for _ in range(1 if self.quick else 2))
            target = max(self.target_s, (0.0 if self.quick else 4.0) * self.overhead_s)
            self._steps["run"], n, t = _calibrate(lambda n: max(timed(n) - self.overhead_s, 1e-9), target)
            t = t + self.overhead_s if t >= target / 2 else None
        if t is None:
            n = self._steps["run"]
            t = timed(n)
        self.run_share = min(self.overhead_s / t, 1.0)
        if n > 1 and t > self.overhead_s:
            self.steady = max(getattr(self, "steady", 0.0), self.work * (n - 1) / (t - self.overhead_s))
        return self.work * n / t

    def time_rng(self, impl: str | None = None) -> float:
        key = jax.random.key(0, impl=impl)
        f = rng_kernel(self.seeds, self.d, self.dtype)
        return self._rate(f"rng-{impl}", lambda n: _wall(f, key, n))

    def time_sgd_rng(self) -> float:
        keys = jax.vmap(jax.random.key)(jnp.arange(self.seeds))
        f = sgd_rng_kernel(self.seeds, self.d, self.dtype)
        return self._rate("sgd-rng", lambda n: _wall(f, keys, n))

    def time_numpy_rng(self) -> float:
        return numpy_rng_rate(self.d, self.dtype, self.target_s)

    def time_axpy(self) -> float:
        f = axpy_kernel()
        c = jnp.asarray(1e-3, self.w0.dtype)
        return self._rate("axpy", lambda n: _wall(f, self.w0, self.x, c, n))

    def time_fused(self, impl: str | None = None) -> float:
        f = fused_kernel()
        keys = jax.vmap(lambda s: jax.random.key(s, impl=impl))(jnp.arange(self.seeds))
        bad = jnp.full((self.seeds,), -1, jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
        return self._rate(f"fused-{impl}", lambda n: _wall(lambda: f(self.w0, keys, bad, n, *self.prm)[0]))

    def time_numpy(self) -> float:
        return numpy_rate(self.problem, self.dtype, self.target_s)


def check_fused(d: int = 500, seeds: int = 4, steps: int = 40) -> float:
    """Max |w_fused - w_run| / max|w| after ``steps`` float64 steps from the same w0 and keys (rounding only)."""
    p = th.powerlaw_problem(d, A, sigma=0.1)
    eta = 0.01
    ref = run(p, "sgd", eta, steps, seeds=seeds, n_record=2, progress=False).w_final
    keys = jax.vmap(jax.random.key)(jnp.arange(seeds))
    w, bad = fused_kernel()(jnp.asarray(p.w0_batch(seeds)), keys, jnp.full((seeds,), -1), steps, jnp.asarray(p.w_star),
                            jnp.asarray(p.lam), jnp.asarray(eta), jnp.asarray(0.1), jnp.asarray(BOUND))
    assert np.all(np.asarray(bad) < 0)
    return float(np.abs(np.asarray(w) - ref).max() / np.abs(ref).max())


# ----------------------------------------------------------------------------- experiments
def prng_experiment(d: int, seeds: int, dtype: str, target_s: float, repeats: int) -> list[dict]:
    rows = []
    default = jax.config.jax_default_prng_impl
    for impl in ("threefry2x32", "philox4x32", "rbg", "unsafe_rbg"):
        try:
            jax.config.update("jax_default_prng_impl", impl)
            case = Case(d, seeds, dtype, target_s)
            best = {"rng": 0.0, "run": 0.0, "fused": 0.0}
            for _ in range(repeats):
                best["rng"] = max(best["rng"], case.time_rng(impl))
                best["run"] = max(best["run"], case.time_run())
                best["fused"] = max(best["fused"], case.time_fused(impl))
            rows.append({"impl": impl, **best})
        except Exception as exc:  # an impl missing from this JAX version
            rows.append({"impl": impl, "error": f"{type(exc).__name__}: {exc}"[:120]})
        finally:
            jax.config.update("jax_default_prng_impl", default)
    return rows


def _unrolled_child(d: int, seeds: int, dtype: str, target_s: float, repeats: int) -> None:
    """In a child process: register JAX's unrolled threefry lowering for CPU, then time rng / run / fused."""
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32 as T  # private: benchmark-only experiment

    mlir.register_lowering(T.threefry2x32_p, T._threefry2x32_lowering_rule, platform="cpu")
    case = Case(d, seeds, dtype, target_s)
    best = {"rng": 0.0, "run": 0.0, "fused": 0.0}
    for _ in range(repeats):
        best["rng"] = max(best["rng"], case.time_rng())
        best["run"] = max(best["run"], case.time_run())
        best["fused"] = max(best["fused"], case.time_fused())
    print("JSON" + json.dumps({"impl": "threefry2x32, unrolled CPU lowering", **best}))


def unrolled_experiment(d: int, seeds: int, dtype: str, target_s: float, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--_unrolled-child", str(d), str(seeds), dtype, str(target_s), str(repeats)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("JSON")]
        if line:
            return json.loads(line[-1][4:])
        return {"impl": "threefry2x32, unrolled CPU lowering", "error": (out.stderr or out.stdout)[-200:]}
    except Exception as exc:
        return {"impl": "threefry2x32, unrolled CPU lowering", "error": f"{type(exc).__name__}: {exc}"[:200]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="float32 only, short timings, no experiments (< 60 s)")
    ap.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    ap.add_argument("--dims", type=int, nargs="*", default=None, help="dimensions (default 1000 10000 100000)")
    ap.add_argument("--seeds", type=int, nargs="*", default=None, help="seed counts (default 1 64)")
    ap.add_argument("--dtypes", nargs="*", default=None, help="dtypes (default float32 float64; --quick float32)")
    ap.add_argument("--no-experiments", action="store_true", help="skip the PRNG experiments")
    ap.add_argument("--_unrolled-child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._unrolled_child:
        d, s, dt, ts, r = args._unrolled_child
        _unrolled_child(int(d), int(s), dt, float(ts), int(r))
        return

    quick = args.quick
    gpu = jax.devices()[0].platform != "cpu"
    target_s, repeats = (0.15, 1) if quick else (1.5, 3)
    dtypes = args.dtypes or (("float32",) if quick else ("float32", "float64"))
    configs = [(d, s, dt) for dt in dtypes for d in (args.dims or (1000, 10_000, 100_000)) for s in (args.seeds or (1, 64))]
    t_start = time.perf_counter()
    header = machine_lines(with_cpu_model=True, with_openblas=True)
    print("\n".join(header))
    print(f"online SGD, power law a = {A}, eta = {ETA}; rates in coordinate updates / s (best of {repeats})")
    err = check_fused()
    print(f"fused prototype vs run(): max rel. difference of w after 40 float64 steps = {err:.1e}")

    rows = []
    for d, seeds, dtype in configs:
        case = Case(d, seeds, dtype, target_s, quick)
        bounds = (not quick) or (d, seeds, dtype) == TARGET_CONFIG
        best = {k: 0.0 for k in ("run", "numpy", "rng", "axpy", "fused", "sgd_rng", "numpy_rng")}
        err_msg = ""
        for _ in range(repeats):
            try:
                best["run"] = max(best["run"], case.time_run())
            except DivergenceError as exc:
                err_msg = str(exc)[:80]
            best["numpy"] = max(best["numpy"], case.time_numpy())
            if bounds:
                best["rng"] = max(best["rng"], case.time_rng())
                best["axpy"] = max(best["axpy"], case.time_axpy())
                best["fused"] = max(best["fused"], case.time_fused())
                best["sgd_rng"] = max(best["sgd_rng"], case.time_sgd_rng())
                best["numpy_rng"] = max(best["numpy_rng"], case.time_numpy_rng())
        overhead = case.overhead_s
        row = {"d": d, "seeds": seeds, "dtype": dtype, **best, "overhead_s": overhead, "share": case.run_share,
               "steady": getattr(case, "steady", float("nan")),
               "error": err_msg}
        rows.append(row)
        r = row
        print(f"  d={d:>6} seeds={seeds:>2} {dtype}: run {fmt(r['run'])}  numpy {fmt(r['numpy'])} "
              f"(x{r['run'] / r['numpy']:.2f})  rng {fmt(r['rng'] or None)}  axpy {fmt(r['axpy'] or None)}  "
              f"fused {fmt(r['fused'] or None)}  call {overhead * 1e3:.0f} ms ({r['share']:.0%} of the timed run) {err_msg}",
              flush=True)

    experiments = []
    if not (quick or args.no_experiments):
        for d, s, dt in EXPERIMENT_CONFIGS:
            rows_e = prng_experiment(d, s, dt, target_s, 2)
            if not gpu:
                rows_e.append(unrolled_experiment(d, s, dt, target_s, 2))
            experiments += [{"config": (d, s, dt), **e} for e in rows_e]
            for e in rows_e:
                print(f"  experiment d={d} seeds={s} {dt}: {e}", flush=True)

    # ------------------------------------------------------------------ table
    def ratio(a, b):
        return a / b if a and b else float("nan")

    lines = [
        "| d | seeds | dtype | run() upd/s | numpy 1 seed | run/numpy (target ≥ 2) | run() steady | rng-only bound "
        "| axpy bound | steady/rng | steady/axpy | bound | fused prototype | fused/steady | run() call overhead "
        "(share of timed run) | run()'s generator alone (both cores) | numpy generator alone (1 core) | "
        "generator bound: run()'s generator / numpy loop |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        x_np = ratio(r["run"], r["numpy"])
        steady = r["steady"]
        bound = ("RNG" if r["rng"] < r["axpy"] else "memory") if r["rng"] and r["axpy"] else "—"
        lines.append(
            f"| {r['d']:.0e} | {r['seeds']} | {r['dtype']} | {fmt(r['run'])} | {fmt(r['numpy'])} | "
            f"{x_np:.2f} ({'met' if x_np >= TARGET_X_NUMPY else 'not met'}) | {fmt(steady)} | {fmt(r['rng'] or None)} | "
            f"{fmt(r['axpy'] or None)} | {fmt(ratio(steady, r['rng']))} | {fmt(ratio(steady, r['axpy']))} | "
            f"{bound} | {fmt(r['fused'] or None)} | {fmt(ratio(r['fused'], steady))} | {r['overhead_s'] * 1e3:.0f} ms "
            f"({r['share']:.0%}) | {fmt(r['sgd_rng'] or None)} | {fmt(r['numpy_rng'] or None)} | "
            f"{fmt(ratio(r['sgd_rng'], r['numpy']))} |"
        )
    tgt = next((r for r in rows if (r["d"], r["seeds"], r["dtype"]) == TARGET_CONFIG), None)
    summary = [] if tgt is None else [
        f"GPU target (float32, d = 1e5, 64 seeds): run() = {fmt(tgt['run'])} upd/s, "
        f"{tgt['run'] / TARGET_GPU_RATE:.2g} of 1e11"
        + ("" if gpu else " (measured on CPU: the 1e11 target applies to an H100 and was not measured here)")]
    summary += [f"fused prototype agrees with run() to {err:.1e} (max rel. difference of w, 40 float64 steps).",
                "generator bound = the rate of run()'s sampling alone over the numpy loop's rate: run()/numpy cannot "
                "exceed it, so where it is < 2 the 2x goal is out of reach with this generator."]
    if experiments:
        lines += ["", "PRNG experiment (``jax_default_prng_impl``; run() end-to-end as above, best of 2):", "",
                  "| d | seeds | dtype | PRNG impl | rng-only | run() | fused prototype |", "|---:|---:|---|---|---:|---:|---:|"]
        for e in experiments:
            d, s, dt = e["config"]
            if "error" in e:
                lines.append(f"| {d:.0e} | {s} | {dt} | {e['impl']} | error: {e['error']} | | |")
            else:
                lines.append(f"| {d:.0e} | {s} | {dt} | {e['impl']} | {fmt(e['rng'])} | {fmt(e['run'])} | {fmt(e['fused'])} |")
    total = time.perf_counter() - t_start
    print()
    print("\n".join(lines))
    print("\n".join(["", *summary, f"wall {total:.0f} s"]))
    if not args.no_write:
        append_results(f"bench_sgd{' --quick' if quick else ''}",
                       results_body(header, f"Online SGD, power law a = {A}, eta = {ETA}; coordinate updates / s, "
                                    f"best of {repeats} round-robin repeats of ~{target_s} s.", lines, summary, total))


if __name__ == "__main__":
    main()
