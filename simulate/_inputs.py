r"""What a run is given, checked once for both models: problem, seeds and their keys, record grid, dtype, start.

Every check raises ``ValueError`` naming the argument and its allowed range (docs/theory.md §1 for the
quantities). Used by :func:`~phasedyn.simulate.run` (one neuron) and
:func:`~phasedyn.simulate.run_matrix` (two-layer network) alike.

SGD randomness: seed :math:`j` draws from ``jax.random.key(seed_j, impl=prng)`` (:func:`seed_keys`),
folded with the step :math:`k` in the kernel, so results do not depend on the chunking. ``prng`` picks
JAX's generator (:data:`PRNG_IMPLS`; default: JAX's configured one, threefry). Online SGD is bound by the
sample generation on a CPU (threefry's draws run unrolled, :mod:`._sgd_rng`, with ``jax.random.normal``'s bits;
the philox comparison in benchmarks/RESULTS.md predates that). The streams differ between generators, not their law.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from phasedyn.typing import SeedKeys
from phasedyn.theory.devices import BatchSharding
from phasedyn.theory.grid import step_grid
from phasedyn.theory.problem import Problem
from phasedyn.theory.validate import check_choice, check_int, check_positive

PRNG_IMPLS = ("threefry2x32", "philox4x32", "rbg", "unsafe_rbg")
"""JAX's pseudo-random generators accepted by ``run(prng=...)`` and ``run_matrix(prng=...)``."""


def int_dtype() -> Any:
    """The integer dtype of step counters: ``int64`` under x64, else ``int32``."""
    return jnp.int64 if jax.config.jax_enable_x64 else jnp.int32


def scalar(x: Any) -> Any:
    """0-d numpy/JAX arrays → Python scalars, so that the shared checks accept them."""
    if isinstance(x, (np.ndarray, jax.Array)) and x.ndim == 0:
        return x.item()
    return x


def check_problem(problem: Any) -> Problem:
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a phasedyn.theory.Problem, got {type(problem).__name__}")
    return problem


def check_progress(progress: Any) -> bool | None:
    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"progress must be None, True or False, got {progress!r}")
    return progress


def check_seeds(seeds: int | Sequence[int], problem: Problem) -> list[int]:
    """A count :math:`n` (seeds ``init_seed + j``, ``init_seed`` from ``problem.meta``, default 0) or a
    non-empty list of seeds :math:`\\ge 0`."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        n = check_int("seeds", seeds, 1)
        first = int(problem.meta.get("init_seed", 0))
        return [first + j for j in range(n)]
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence | np.ndarray):
        raise ValueError(f"seeds must be a count >= 1 or a list of integers >= 0, got {seeds!r}")
    out = [check_int("seeds[j]", s, 0) for s in seeds]
    if not out:
        raise ValueError("seeds must be a count >= 1 or a non-empty list of integers >= 0, got []")
    return out


def log_step_grid(steps: int, n_record: int) -> np.ndarray:
    """Record steps: 0 and about ``n_record - 1`` log-spaced integers from 1 to ``steps``.

    The one step grid, :func:`phasedyn.theory.grid.step_grid` (the grid of the exact GD map), with
    its size named ``n_record`` as in :func:`~phasedyn.simulate.run`. Returns a sorted,
    duplicate-free ``int64`` array that always contains 0, 1 and ``steps`` (at most
    ``max(n_record, 3)`` entries; fewer where rounding merges small steps).
    """
    return step_grid(check_int("steps", steps, 1), check_int("n_record", n_record, 2))


def check_record_steps(record_steps: Any, steps: int) -> np.ndarray:
    """Explicit record steps: strictly increasing integers in ``[0, steps]``, as ``int64``."""
    arr = np.asarray(record_steps)
    if arr.ndim != 1 or arr.size == 0 or not (
        np.issubdtype(arr.dtype, np.integer)
        or (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.rint(arr)))
    ):
        raise ValueError(f"record_steps must be a non-empty 1-D array of integers, got {record_steps!r}")
    arr = arr.astype(np.int64)
    if arr[0] < 0 or arr[-1] > steps or np.any(np.diff(arr) <= 0):
        raise ValueError(
            f"record_steps must be strictly increasing integers in [0, steps] = [0, {steps}], got {arr}"
        )
    return arr


def check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = jnp.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    check_choice("dtype", dt.name, ("float32", "float64"))
    if dt == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype = float64 needs jax_enable_x64 (importing phasedyn switches it on unless PHASEDYN_X64=0); "
            "pass dtype=jnp.float32 or enable x64"
        )
    return dt


def check_prng(prng: str | None) -> str:
    """The generator's name: ``prng`` if given (one of :data:`PRNG_IMPLS`), else JAX's configured default."""
    if prng is None:
        return str(jax.config.jax_default_prng_impl)
    return check_choice("prng", prng, PRNG_IMPLS)


def seed_keys(seed_list: Sequence[int], prng: str, shard: BatchSharding) -> SeedKeys:
    """One ``jax.random.key(seed, impl=prng)`` per seed, laid over ``shard``'s batch axis."""
    return jax.vmap(functools.partial(jax.random.key, impl=prng))(
        shard.shard(np.asarray(seed_list, dtype=int_dtype()))
    )


def check_start(name: str, x0: Any, shape: tuple[int, ...], axes: str) -> np.ndarray:
    """Explicit initial weights ``x0``, as float64: shape ``shape`` (described by ``axes``, e.g.
    ``"(n_seeds, d)"``) and finite."""
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape != shape:
        raise ValueError(f"{name} must have shape {axes} = {shape}, got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return x0


def check_bound(bound: float, x0: np.ndarray, norm: str) -> None:
    r"""``divergence_bound`` must exceed every seed's :math:`|x_0|^2` (``norm`` names it, e.g. ``"|w0|^2"``)."""
    norm2 = np.sum(x0.reshape(x0.shape[0], -1) ** 2, axis=1)
    if np.any(norm2 > bound):
        raise ValueError(
            f"divergence_bound = {bound} must exceed {norm} (max {norm2.max():.4g}) "
            f"(allowed range (max {norm}, inf))"
        )



@dataclasses.dataclass(frozen=True)
class RunArgs:
    """The checked arguments that every run shares (see :func:`~phasedyn.simulate.run` for each)."""

    eta: float
    steps: int
    seeds: list[int]
    grid: np.ndarray
    divergence_bound: float
    dtype: np.dtype
    prng: str
    chunk_size: int
    devices: Any
    progress: bool | None


def check_run(
    problem: Any, *, eta: Any, steps: Any, seeds: Any, n_record: Any, record_steps: Any, divergence_bound: Any,
    progress: Any, dtype: Any, chunk_size: Any, devices: Any, prng: Any,
) -> RunArgs:
    """Check the shared arguments once, in this order: problem, eta, steps, n_record, divergence_bound,
    chunk_size, progress, dtype, seeds, prng, record_steps (the record grid)."""
    check_problem(problem)
    eta = check_positive("eta", scalar(eta))
    steps = check_int("steps", scalar(steps), 1)
    n_record = check_int("n_record", scalar(n_record), 2)
    divergence_bound = check_positive("divergence_bound", scalar(divergence_bound))
    chunk_size = check_int("chunk_size", chunk_size, 1)
    check_progress(progress)
    dt = check_dtype(dtype)
    seed_list = check_seeds(seeds, problem)
    prng = check_prng(prng)
    grid = step_grid(steps, n_record) if record_steps is None else check_record_steps(record_steps, steps)
    return RunArgs(eta, steps, seed_list, grid, divergence_bound, dt, prng, chunk_size, devices, progress)
