r"""Finite-d runs: many seeds in one ``jax.vmap``, recorded on a log-spaced grid of steps.

A run advances :math:`w_k` by one of the update rules of :mod:`.optimizers` (time :math:`t = \eta k`)
and records the statistics of :func:`~.losses.statistics` at chosen steps. The record grid is cut
into intervals; one jitted function advances every seed across a fixed-size *chunk* of intervals
(``lax.scan`` over intervals, a ``lax.while_loop`` with a traced step count inside each), so a run
compiles once whatever ``steps`` is, and :math:`\eta`, :math:`\sigma` and the divergence bound are
traced arguments: changing them does not recompile. A Python loop over chunks drives the progress
bar and checks for divergence.

SGD randomness: seed :math:`j` uses ``jax.random.fold_in(jax.random.key(seed_j, impl=prng), k)`` at
step :math:`k` (the update from :math:`w_k` to :math:`w_{k+1}`), so results do not depend on the
chunking. ``prng`` picks JAX's generator (:data:`PRNG_IMPLS`; default: JAX's configured one, threefry).
Online SGD draws :math:`d` Gaussians per seed and step and is bound by that generation on a CPU:
``"philox4x32"`` ran 1.6-2x faster than threefry there (benchmarks/bench_sgd.py, PRNG experiment). The
streams differ between generators, not their law; the generator is recorded in ``config["prng"]``.

Devices: the seed axis is sharded over a 1-D :class:`jax.sharding.Mesh` of the visible devices
(:mod:`phasedyn.theory.devices`; padded to a multiple of the device count, padding dropped) and
``jax.jit`` propagates that sharding, so each device advances its share of the seeds. Every seed's
computation is independent of the others, so the result does not depend on the devices either.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from typing import Any, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from tqdm import tqdm

from phasedyn.theory.devices import BatchSharding, Devices
from phasedyn.theory.model import Model
from phasedyn.theory.problem import Problem
from phasedyn.theory.validate import check_choice, check_int, check_positive

from .errors import DivergenceError
from .losses import STATISTICS, statistics
from .optimizers import gd_step, sgd_step

Optimizer = Literal["gd", "gf", "sgd"]

OPTIMIZERS: dict[str, str] = {"gd": "gd", "gf": "gd", "sgd": "sgd"}
"""Accepted names → update rule. ``"gf"`` runs GD: at small :math:`\\eta` it approximates gradient flow."""

DEFAULT_CHUNK = 32
"""Record intervals advanced per jitted call (static; results do not depend on it)."""

PROGRESS_THRESHOLD = 2e8
"""``progress=None`` shows a bar when ``n_seeds * d * steps`` exceeds this."""

_TRACES: collections.Counter = collections.Counter()
"""Number of traces of each cached chunk function, keyed like :func:`_chunk_fn` (for tests)."""


def log_step_grid(steps: int, n_record: int) -> np.ndarray:
    """Record steps: 0 and about ``n_record - 1`` log-spaced integers from 1 to ``steps``.

    Returns a sorted, duplicate-free ``int64`` array that always contains 0, 1 and ``steps``
    (at most ``max(n_record, 3)`` entries; fewer where rounding merges small steps).
    """
    steps = check_int("steps", steps, 1)
    n_record = check_int("n_record", n_record, 2)
    logs = np.logspace(0.0, math.log10(steps), max(n_record - 1, 2))
    grid = np.concatenate([[0, 1, steps], np.rint(logs).astype(np.int64)])
    return np.unique(np.clip(grid, 0, steps)).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Trajectory:
    r"""A recorded run.

    Attributes:
        steps: record steps :math:`k`, shape ``(n_rec,)``, ``int64``.
        t: times :math:`t = \eta k`, shape ``(n_rec,)``, ``float64``.
        stats: name → array of shape ``(n_seeds, n_rec)`` for ``u0, u1, u2, s0, s1, s2, loss, mse``
            (see :func:`~.losses.statistics`), in the run's dtype.
        seeds: the seeds, one per row.
        config: JSON-serialisable description of the run (optimizer, eta, steps, d, sigma, seeds,
            dtype, problem kind and meta, ...).
        w_final: weights after ``config["steps"]`` steps, shape ``(n_seeds, d)``.
    """

    steps: np.ndarray
    t: np.ndarray
    stats: dict[str, np.ndarray]
    seeds: list[int]
    config: dict[str, Any]
    w_final: np.ndarray

    @property
    def u(self) -> np.ndarray:
        r""":math:`u = w^\top\Sigma w^*` (``stats["u1"]``), shape ``(n_seeds, n_rec)``."""
        return self.stats["u1"]

    @property
    def s(self) -> np.ndarray:
        r""":math:`s = w^\top\Sigma w` (``stats["s1"]``), shape ``(n_seeds, n_rec)``."""
        return self.stats["s1"]

    @property
    def n_seeds(self) -> int:
        """Number of seeds (rows of every statistic)."""
        return len(self.seeds)


# ---------------------------------------------------------------------------------------------
# The jitted kernel


def _advance(optimizer, model, w, key, bad, step0, n, w_star, lam, eta, sigma, bound):
    """Advance one seed by ``n`` steps from global step ``step0``; freeze it at the first bad step.

    ``bad`` is -1 while :math:`w` is fine, else the step :math:`k` of the first :math:`w_k` that
    was non-finite or had :math:`|w_k|^2 >` ``bound``.
    """

    def body(i, carry):
        w, bad = carry
        k = step0 + i
        if optimizer == "gd":
            w_new = gd_step(w, w_star, lam, eta, sigma, model)
        else:
            w_new = sgd_step(w, jax.random.fold_in(key, k), w_star, lam, eta, sigma, model)
        norm2 = jnp.sum(w_new * w_new)
        out = jnp.logical_not(jnp.isfinite(norm2)) | (norm2 > bound)
        ok = bad < 0
        # a seed that went bad is frozen at its last good w (the trip count stays unbatched under
        # vmap, so all seeds run one fused loop instead of a lock-step while with per-seed exits)
        return jnp.where(ok & ~out, w_new, w), jnp.where(ok & out, k + 1, bad)

    w, bad = lax.fori_loop(jnp.zeros_like(n), n, body, (w, bad))
    return w, bad


@functools.lru_cache(maxsize=None)
def _chunk_fn(optimizer: str, model: Model, dtype: str, chunk: int):
    """Jitted: advance all seeds across ``chunk`` record intervals, recording the statistics.

    Cached on static things only (update rule, model, dtype, chunk size); everything else is traced.
    Signature ``(w, keys, bad, step, lengths, w_star, lam, eta, sigma, bound)`` →
    ``(w, bad, step, stats)`` with ``stats[name]`` of shape ``(chunk, n_seeds)``.
    """
    advance = jax.vmap(
        functools.partial(_advance, optimizer, model), in_axes=(0, 0, 0) + (None,) * 7
    )
    stats_of = jax.vmap(functools.partial(statistics, model=model), in_axes=(0, None, None, None))

    def fn(w, keys, bad, step, lengths, w_star, lam, eta, sigma, bound):
        _TRACES[(optimizer, model, dtype, chunk)] += 1

        def body(carry, n):
            w, bad, step = carry
            w, bad = advance(w, keys, bad, step, n, w_star, lam, eta, sigma, bound)
            return (w, bad, step + n), stats_of(w, w_star, lam, sigma)

        (w, bad, step), stats = lax.scan(body, (w, bad, step), lengths)
        return w, bad, step, stats

    return jax.jit(fn)


# ---------------------------------------------------------------------------------------------
# Validation


def _scalar(x: Any) -> Any:
    """0-d numpy/JAX arrays → Python scalars, so that the shared checks accept them."""
    if isinstance(x, (np.ndarray, jax.Array)) and x.ndim == 0:
        return x.item()
    return x


def _check_seeds(seeds: int | Sequence[int], problem: Problem) -> list[int]:
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


def _check_record_steps(record_steps: Any, steps: int) -> np.ndarray:
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


def _check_dtype(dtype: Any) -> np.dtype:
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


PRNG_IMPLS = ("threefry2x32", "philox4x32", "rbg", "unsafe_rbg")
"""JAX's pseudo-random generators accepted by ``run(prng=...)``."""


def check_prng(prng: str | None) -> str:
    """The generator's name: ``prng`` if given (one of :data:`PRNG_IMPLS`), else JAX's configured default."""
    if prng is None:
        return str(jax.config.jax_default_prng_impl)
    return check_choice("prng", prng, PRNG_IMPLS)


def seed_keys(seed_list: Sequence[int], prng: str, shard: BatchSharding) -> jax.Array:
    """One ``jax.random.key(seed, impl=prng)`` per seed, laid over ``shard``'s batch axis (run and run_matrix)."""
    int_t = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    return jax.vmap(functools.partial(jax.random.key, impl=prng))(shard.shard(np.asarray(seed_list, dtype=int_t)))


# ---------------------------------------------------------------------------------------------
# The driver


def run(
    problem: Problem,
    optimizer: Optimizer,
    eta: float,
    steps: int,
    seeds: int | Sequence[int] = 1,
    n_record: int = 200,
    record_steps: Sequence[int] | np.ndarray | None = None,
    w0: np.ndarray | None = None,
    divergence_bound: float = 1e6,
    progress: bool | None = None,
    dtype: Any = jnp.float64,
    chunk_size: int = DEFAULT_CHUNK,
    devices: Devices = None,
    prng: str | None = None,
    model: Model | None = None,
) -> Trajectory:
    r"""Run ``optimizer`` on ``problem`` for ``steps`` steps and record its statistics.

    Args:
        problem: spectrum :math:`\lambda`, target :math:`w^*` and label noise :math:`\sigma`, shared
            by all seeds.
        optimizer: ``"gd"`` (population GD, :func:`~.optimizers.gd_step`), ``"sgd"`` (online SGD,
            :func:`~.optimizers.sgd_step`) or ``"gf"`` (alias of ``"gd"``, for comparison with
            gradient flow at small :math:`\eta`).
        eta: step size :math:`\eta > 0`; time is :math:`t = \eta k`.
        steps: number of steps :math:`\ge 1`.
        seeds: a count :math:`n` (seeds ``init_seed + j``, ``init_seed`` from ``problem.meta``,
            default 0) or an explicit list of seeds :math:`\ge 0`. Seed :math:`j` starts from
            ``problem.w0_batch(seeds)[j]`` and draws its SGD samples from ``jax.random.key(seed_j, impl=prng)``.
        n_record: size of the log-spaced record grid (:func:`log_step_grid`), :math:`\ge 2`.
        record_steps: explicit record steps instead (strictly increasing integers in
            ``[0, steps]``); the run still goes to ``steps``.
        w0: initial weights, shape ``(n_seeds, d)``, replacing ``problem.w0_batch``.
        divergence_bound: raise :class:`DivergenceError` once :math:`|w|^2` exceeds it (or
            :math:`w` is non-finite).
        progress: progress bar; ``None`` shows one when ``n_seeds * d * steps > 2e8``.
        dtype: ``jnp.float64`` (default) or ``jnp.float32``; every array and parameter of the run
            is cast to it, and the statistics are computed in it.
        chunk_size: record intervals per jitted call (affects speed and progress granularity only).
        devices: where the seeds run: ``None`` or ``"all"`` (default: every visible device), one
            :class:`jax.Device`, or a sequence of them. The seed axis is sharded over (at most
            ``n_seeds`` of) them, padded to a multiple of their number; results do not depend on it.
        prng: JAX generator for the SGD samples, one of :data:`PRNG_IMPLS` (``None``: JAX's
            configured default, ``jax_default_prng_impl``). Same law, different streams; recorded in
            ``config["prng"]``. GD draws nothing.
        model: the per-sample loss :math:`\ell(g, h, \xi)` (:class:`~phasedyn.theory.model.Model`,
            or its text; default phase retrieval). Both update rules are ``jax.grad`` of it.

    Returns:
        :class:`Trajectory` with statistics of shape ``(n_seeds, n_rec)``.

    Raises:
        ValueError: invalid argument (the message names it and the allowed range).
        DivergenceError: some seed diverged; the message gives the seed and the exact step.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a phasedyn.theory.Problem, got {type(problem).__name__}")
    check_choice("optimizer", optimizer, tuple(OPTIMIZERS))
    rule = OPTIMIZERS[optimizer]
    eta = check_positive("eta", _scalar(eta))
    steps = check_int("steps", _scalar(steps), 1)
    n_record = check_int("n_record", _scalar(n_record), 2)
    divergence_bound = check_positive("divergence_bound", _scalar(divergence_bound))
    chunk_size = check_int("chunk_size", chunk_size, 1)
    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"progress must be None, True or False, got {progress!r}")
    dt = _check_dtype(dtype)
    seed_list = _check_seeds(seeds, problem)
    prng = check_prng(prng)
    model = Model.coerce(model)
    n_seeds, d = len(seed_list), problem.d

    if w0 is None:
        w0 = problem.w0_batch(seed_list)
    else:
        w0 = np.asarray(w0, dtype=np.float64)
        if w0.shape != (n_seeds, d):
            raise ValueError(f"w0 must have shape (n_seeds, d) = ({n_seeds}, {d}), got {w0.shape}")
        if not np.all(np.isfinite(w0)):
            raise ValueError("w0 must be finite (no NaN or inf)")
    norm2 = np.sum(w0**2, axis=1)
    if np.any(norm2 > divergence_bound):
        raise ValueError(
            f"divergence_bound = {divergence_bound} must exceed |w0|^2 (max {norm2.max():.4g}) "
            "(allowed range (max |w0|^2, inf))"
        )

    grid = log_step_grid(steps, n_record) if record_steps is None else _check_record_steps(record_steps, steps)
    targets = grid if grid[-1] == steps else np.append(grid, steps)
    lengths = np.diff(targets, prepend=0)
    n_int = lengths.shape[0]
    n_chunks = -(-n_int // chunk_size)
    lengths = np.concatenate([lengths, np.zeros(n_chunks * chunk_size - n_int, np.int64)])

    int_t = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    fn = _chunk_fn(rule, model, dt.name, chunk_size)
    # seeds (and w, keys, bad) sharded over the mesh's batch axis; shared inputs replicated
    shard = BatchSharding.make(n_seeds, devices)
    w = shard.shard(np.asarray(w0, dtype=dt))
    keys = seed_keys(seed_list, prng, shard)
    bad = shard.shard(np.full((n_seeds,), -1, dtype=int_t))
    step = shard.replicate(np.zeros((), dtype=int_t))
    params = {
        name: shard.replicate(np.asarray(value, dtype=dt))
        for name, value in dict(
            w_star=problem.w_star, lam=problem.lam, eta=eta, sigma=problem.sigma, bound=divergence_bound
        ).items()
    }
    show = n_seeds * d * steps > PROGRESS_THRESHOLD if progress is None else progress

    recorded: list[dict[str, np.ndarray]] = []
    with tqdm(total=steps, disable=not show, unit="step", desc=f"{rule} eta={eta:g}") as bar:
        for c in range(n_chunks):
            block = lengths[c * chunk_size : (c + 1) * chunk_size]
            block_in = shard.replicate(np.asarray(block, dtype=int_t))
            w, bad, step, stats = fn(w, keys, bad, step, block_in, **params)
            stats = {k: shard.unpad(np.asarray(v), axis=1) for k, v in stats.items()}
            bad_seeds = shard.unpad(np.asarray(bad))
            _check_divergence(bad_seeds, stats, targets, c * chunk_size, rule, eta, seed_list, divergence_bound)
            recorded.append(stats)
            bar.update(int(block.sum()))

    keep = np.isin(targets, grid)
    stats_out = {
        k: np.concatenate([r[k] for r in recorded])[:n_int][keep].T.copy() for k in STATISTICS
    }
    config = {
        "optimizer": rule,
        "optimizer_requested": optimizer,
        "eta": eta,
        "steps": steps,
        "d": d,
        "sigma": float(problem.sigma),
        "seeds": list(seed_list),
        "dtype": dt.name,
        "prng": prng,
        "model": model.to_dict(),
        "divergence_bound": divergence_bound,
        "kind": problem.kind,
        "meta": dict(problem.meta),
    }
    return Trajectory(
        steps=grid.astype(np.int64),
        t=eta * grid.astype(np.float64),
        stats=stats_out,
        seeds=list(seed_list),
        config=config,
        w_final=shard.unpad(np.asarray(w)),
    )


def _check_divergence(
    bad: np.ndarray,
    stats: dict[str, np.ndarray],
    targets: np.ndarray,
    offset: int,
    rule: str,
    eta: float,
    seeds: list[int],
    bound: float,
) -> None:
    """Raise :class:`DivergenceError` if any seed diverged in this chunk (or has non-finite stats)."""
    advice = f"try a smaller step size (e.g. eta = {eta / 10:.3g})"
    if np.any(bad >= 0):
        j = int(np.argmin(np.where(bad >= 0, bad, np.iinfo(bad.dtype).max)))
        k, others = int(bad[j]), int(np.sum(bad >= 0)) - 1
        raise DivergenceError(
            f"{rule} with eta = {eta:g} diverged: seed {seeds[j]} at step {k} (t = {eta * k:.6g}), "
            f"w became non-finite or |w|^2 exceeded divergence_bound = {bound:g}"
            + (f" ({others} other seed(s) diverged too)" if others else "")
            + f"; {advice}",
            optimizer=rule, eta=eta, seed=seeds[j], step=k,
        )
    finite = np.all([np.isfinite(v) for v in stats.values()], axis=0)  # (chunk, n_seeds)
    if not np.all(finite):
        i, j = (int(a[0]) for a in np.nonzero(~finite))
        k = int(targets[min(offset + i, len(targets) - 1)])
        raise DivergenceError(
            f"{rule} with eta = {eta:g}: statistics of seed {seeds[j]} became non-finite by step {k} "
            f"(t = {eta * k:.6g}) although |w|^2 <= divergence_bound = {bound:g}; lower divergence_bound "
            f"or {advice}",
            optimizer=rule, eta=eta, seed=seeds[j], step=k,
        )
