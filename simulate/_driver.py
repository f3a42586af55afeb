r"""The one simulation driver: many seeds in one ``jax.vmap``, advanced chunk by chunk, recorded on a grid.

A *model* is a :class:`Stepper`: a hashable, static description of one update
:math:`x_{k+1} = F(x_k; \text{key}_k, p)` of one seed's weights :math:`x` (the vector :math:`w` of
:func:`~phasedyn.simulate.run`, the matrix :math:`W` of :func:`~phasedyn.simulate.run_matrix`), of
per-step bookkeeping beside it and of the statistics recorded. Everything else is written here once
for every model:

* **Kernel** (:func:`chunk_kernel`): the record grid is cut into intervals, the intervals into
  *segments*; one jitted function (``eqx.filter_jit``: the stepper is static, every array traced)
  advances every seed across a fixed number (``chunk_size``) of segments (``lax.scan`` over segments, a
  ``lax.fori_loop`` with a traced trip count inside each), so a run compiles once whatever ``steps`` is,
  and :math:`\eta`, :math:`\sigma`, the divergence bound and the model's other parameters never
  recompile. ``eqx.debug.assert_max_traces`` counts the traces (:func:`trace_count`).
* **Wall-time chunks** (:mod:`._schedule`): each call does about :data:`~._schedule.CHUNK_SECONDS` of
  work, its budget of steps set from the measured per-step cost of the calls before; a segment is the
  rest of a record interval or the piece of one that the budget allows. Every step is the same compiled
  update whatever the cut, so the cut changes no bit (tests/test_interrupt.py).
* **Ctrl-C**: SIGINT sets a flag read after the call in flight (so within about a second); the run
  stops there and returns the records reached, ``interrupted=True`` and the step reached.
* **Checkpoints** (:mod:`._checkpoint`): the whole state (weights, PRNG keys, bookkeeping, records,
  config) every ``checkpoint_every`` seconds, on SIGINT and at the end; ``resume`` continues one
  bit-identically to a run that never stopped.
* **Randomness**: seed :math:`j` steps from :math:`x_k` to :math:`x_{k+1}` with
  ``jax.random.fold_in(key_j, k)``, so results do not depend on the chunking.
* **Divergence**: a seed whose new :math:`x` is non-finite or has :math:`|x|^2 >` ``divergence_bound``
  is frozen at its last good :math:`x` and the step recorded; after each chunk :func:`drive` raises
  :class:`~.errors.DivergenceError` for the first such seed.
* **Devices**: the seed axis is sharded over a 1-D :class:`jax.sharding.Mesh` of the visible devices
  (:mod:`phasedyn.theory.devices`; padded to a multiple of the device count, padding dropped) and
  ``jax.jit`` propagates that sharding. Each seed's computation is independent of the others.
* **Progress**: a Python loop over calls drives a ``tqdm`` bar.

Time is :math:`t = \eta k` (docs/theory.md §1).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from tqdm import tqdm

from phasedyn.typing import PRNGKey, PyTree
from phasedyn.theory.devices import BatchSharding

from phasedyn.theory.validate import check_positive

from . import _checkpoint as ck
from ._inputs import RunArgs, int_dtype, seed_keys
from ._schedule import Budget, Interrupt, plan
from .errors import DivergenceError

DEFAULT_CHUNK = 32
"""Segments (record intervals or pieces of one) per jitted call: the ``lax.scan`` length, static; results
do not depend on it."""

CHECKPOINT_EVERY = 300.0
"""Default seconds between checkpoints (``checkpoint_every``)."""

PROGRESS_THRESHOLD = 2e8
"""``progress=None`` shows a bar when ``n_seeds * (size of x) * steps`` exceeds this."""


class Stepper(Protocol):
    """One model's step, as the driver uses it (hashable: it is static in the jitted kernel).

    ``p`` is the dict of traced parameters given to :func:`drive` (it always holds ``"bound"``); in
    :meth:`update` it also holds ``"k"``, the global index of the step being taken (for schedules).
    """

    def update(self, x: jax.Array, key: PRNGKey, p: dict) -> tuple[jax.Array, PyTree]:
        """One step from ``x`` with the step's key: ``(x_new, aux)`` (``aux`` goes to :meth:`track`)."""

    def track(self, x: jax.Array, live: jax.Array, k: jax.Array, aux: PyTree, extra: PyTree, p: dict) -> PyTree:
        """Per-step bookkeeping after the step to :math:`x_{k+1}` = ``x`` (``live``: the seed is still good)."""

    def statistics(self, x: jax.Array, p: dict) -> dict[str, jax.Array]:
        """The recorded statistics of one seed's ``x``."""


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)
def _chunk(stepper: Stepper, x, keys, bad, extra, step, lengths, p):
    """Advance all seeds across ``len(lengths)`` record intervals from global step ``step``.

    Returns ``(x, bad, extra, step, stats)`` with ``stats[name]`` of shape ``(chunk, n_seeds)``.
    ``bad`` is -1 while a seed is fine, else the step :math:`k` of its first :math:`x_k` that was
    non-finite or had :math:`|x_k|^2 >` ``p["bound"]``.
    """

    def advance(x, key, bad, extra, step0, n):
        def body(i, carry):
            x, bad, extra = carry
            k = step0 + i
            x_new, aux = stepper.update(x, jax.random.fold_in(key, k), {**p, "k": k})
            norm2 = jnp.sum(x_new * x_new)
            out = jnp.logical_not(jnp.isfinite(norm2)) | (norm2 > p["bound"])
            ok = bad < 0
            live = ok & ~out
            # a seed that went bad is frozen at its last good x (the trip count stays unbatched under
            # vmap, so all seeds run one fused loop instead of a lock-step while with per-seed exits)
            x = jnp.where(live, x_new, x)
            bad = jnp.where(ok & out, k + 1, bad)
            return x, bad, stepper.track(x, live, k, aux, extra, p)

        return lax.fori_loop(jnp.zeros_like(n), n, body, (x, bad, extra))

    advance_all = jax.vmap(advance, in_axes=(0, 0, 0, 0, None, None))
    stats_of = jax.vmap(stepper.statistics, in_axes=(0, None))

    def body(carry, n):
        x, bad, extra, step = carry
        x, bad, extra = advance_all(x, keys, bad, extra, step, n)
        return (x, bad, extra, step + n), stats_of(x, p)

    (x, bad, extra, step), stats = lax.scan(body, (x, bad, extra, step), lengths)
    return x, bad, extra, step, stats


def chunk_kernel(stepper: Stepper) -> Callable:
    """The jitted chunk function of one model: ``(x, keys, bad, extra, step, lengths, p)`` →
    ``(x, bad, extra, step, stats)``; compiled once per stepper, dtype, shapes and chunk size."""

    def fn(x, keys, bad, extra, step, lengths, p):
        return _chunk(stepper, x, keys, bad, extra, step, lengths, p)

    return fn


def trace_count() -> int:
    """Number of times the simulation kernel was traced (compiled), over every model and option."""
    return eqx.debug.get_num_traces(_chunk)


@dataclasses.dataclass(frozen=True)
class Weights:
    """How the divergence message names the weights: ``Weights("w", "|w|^2")``."""

    name: str
    norm: str


@dataclasses.dataclass(frozen=True)
class Driven:
    """What :func:`drive` returns: the record ``grid`` reached (``int64``), ``stats`` name → ``(n_seeds, n_rec)``,
    the last ``x``, the bookkeeping at the start (``extra0``) and at the end (``extra``); numpy, padding
    dropped. ``step``: the steps done (``x`` is :math:`x_{step}`); ``interrupted``: a SIGINT arrived: the run
    stopped before ``args.steps`` (then ``grid`` holds the record steps :math:`\\le` ``step`` only), or the SIGINT
    came during the last call and the records are complete (``step == args.steps``): the caller stops either way."""

    grid: np.ndarray
    stats: dict[str, np.ndarray]
    x: np.ndarray
    extra0: PyTree
    extra: PyTree
    step: int
    interrupted: bool


def drive(
    kernel: Callable,
    args: RunArgs,
    *,
    x0: np.ndarray,
    extra0: Callable[[jax.Array, dict], PyTree],
    params: dict[str, Any],
    names: tuple[str, ...],
    label: str,
    weights: Weights,
    config: dict[str, Any],
    finite_stats: bool = True,
    check: Callable[[PyTree], None] | None = None,
    checkpoint: ck.PathLike | None = None,
    resume: ck.PathLike | None = None,
    checkpoint_every: float = CHECKPOINT_EVERY,
) -> Driven:
    r"""Run ``kernel`` (from :func:`chunk_kernel`) from ``x0`` to ``args.steps``; record on ``args.grid``.

    Each jitted call advances every seed by about :data:`~._schedule.CHUNK_SECONDS` of wall time
    (:class:`~._schedule.Budget`: at most ``args.chunk_size`` segments, each the rest of a record interval
    or a piece of one; statistics are kept at interval ends only). A SIGINT is read after the call in flight: the run stops there and
    returns what it reached (``interrupted=True``; checkpointed first when ``checkpoint`` is given).

    Args:
        kernel: the model's chunk function.
        args: the checked arguments every run shares (:func:`~._inputs.check_run`): step size, steps, seeds
            and their generator, record grid, divergence bound, dtype, chunk size, devices, progress.
        x0: initial weights, one row per seed (the caller has checked them: ``check_start``, ``check_bound``).
        extra0: ``(x, p) → extra``: the bookkeeping's start from the sharded ``x`` and parameters.
        params: the model's traced parameters (scalars and arrays, cast to ``args.dtype``); the driver adds
            ``"bound"``, the divergence bound on :math:`|x|^2`.
        names: the statistics to return, in order.
        label, weights: the update rule and the weights' names, for the progress bar and the messages.
        config: the run's JSON description (checkpointed, and compared on resume).
        finite_stats: also raise :class:`DivergenceError` when a statistic is non-finite although every
            :math:`|x|^2` is within the bound.
        check: called after each chunk with the (unpadded) ``extra``; raises the model's own errors.
        checkpoint: directory to checkpoint into (:mod:`._checkpoint`): every ``checkpoint_every`` seconds,
            on SIGINT and at the end. Default: ``resume``.
        resume: a checkpoint directory of this same run to continue from (bit-identical to not stopping).
        checkpoint_every: seconds between checkpoints, > 0.

    Raises:
        DivergenceError: a seed diverged (seed, exact step and a smaller step size in the message).
        ValueError: ``resume`` is no checkpoint, or one of another run (the differing argument named).
    """
    eta, steps, seeds, grid, chunk_size = args.eta, args.steps, args.seeds, args.grid, args.chunk_size
    checkpoint_every = check_positive("checkpoint_every", checkpoint_every)
    checkpoint = resume if checkpoint is None else checkpoint
    n_seeds = len(seeds)
    targets = grid if grid[-1] == steps else np.append(grid, steps)
    is_record = np.isin(targets, grid)

    int_t = int_dtype()
    params = dict(params, bound=args.divergence_bound)
    x0 = np.asarray(x0, dtype=args.dtype)
    digest = ck.inputs_sha256({k: np.asarray(v, dtype=args.dtype) for k, v in params.items()}, x0)
    config = dict(config, driver=dict(label=label, eta=eta, steps=steps, seeds=list(seeds), grid=grid.tolist(),
                                      dtype=args.dtype.name, prng=args.prng, divergence_bound=args.divergence_bound))
    # seeds (and x, keys, bad, extra) sharded over the mesh's batch axis; shared inputs replicated
    shard = BatchSharding.make(n_seeds, args.devices)
    x = shard.shard(x0)
    keys = seed_keys(seeds, args.prng, shard)
    bad = shard.shard(np.full((n_seeds,), -1, dtype=int_t))
    p = {name: shard.replicate(np.asarray(value, dtype=args.dtype)) for name, value in params.items()}
    extra = extra0(x, p)
    unpad = functools.partial(jax.tree_util.tree_map, lambda v: shard.unpad(np.asarray(v)))
    start = unpad(extra)
    pos, j = 0, 0
    recorded: dict[str, list[np.ndarray]] = {k: [] for k in names}
    if checkpoint is not None:
        ck.prepare(checkpoint)
    if resume is not None:
        state = ck.load(resume)
        ck.check_same_run(resume, state.header, config, digest)
        x, bad, extra, pos, j = _restore(resume, state, x0, keys, extra, shard)
        if not set(names) <= set(state.records):
            missing = sorted(set(names) - set(state.records))
            raise ValueError(f"resume = {str(resume)!r}: the checkpoint lacks the records of {missing}")
        recorded = {k: [state.records[k]] for k in names}

    def save(interrupted: bool) -> None:
        if checkpoint is None:
            return
        leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(unpad(extra))]
        ck.save(checkpoint, ck.State(
            x=shard.unpad(np.asarray(x)), keys=shard.unpad(np.asarray(jax.random.key_data(keys))),
            bad=shard.unpad(np.asarray(bad)), extra=leaves, step=pos, next_target=j, grid=grid,
            records={k: np.concatenate(v) if v else np.zeros((0, n_seeds), args.dtype) for k, v in recorded.items()},
            header=dict(format=ck.FORMAT, version=ck.VERSION, step=pos, steps=steps, complete=j == len(targets),
                        interrupted=interrupted, inputs_sha256=digest, config=config),
        ))

    size = int(np.prod(np.shape(x0)[1:]))
    show = n_seeds * size * steps > PROGRESS_THRESHOLD if args.progress is None else args.progress
    budget = Budget(n_seeds * size, steps)
    last_save = time.monotonic()
    with Interrupt() as stop, tqdm(total=steps, initial=pos, disable=not show, unit="step",
                                    desc=f"{label} eta={eta:g}") as bar:
        while j < len(targets) and not stop.hit:
            before = pos
            block, ends, pos, j, limited = plan(targets, pos, j, budget.steps, chunk_size)
            tic = time.perf_counter()
            x, bad, extra, _, stats = kernel(x, keys, bad, extra, shard.replicate(np.asarray(before, dtype=int_t)),
                                             shard.replicate(np.asarray(block, dtype=int_t)), p)
            done = np.flatnonzero(ends >= 0)  # segments that end a record interval (or the run)
            stats = {k: shard.unpad(np.asarray(v), axis=1)[done] for k, v in stats.items()}
            budget.update(pos - before, time.perf_counter() - tic, limited)
            _check_divergence(shard.unpad(np.asarray(bad)), stats if finite_stats else None, targets[ends[done]],
                              label, eta, seeds, params["bound"], weights)
            if check is not None:
                check(unpad(extra))
            for k in names:
                recorded[k].append(stats[k][is_record[ends[done]]])
            bar.update(pos - before)
            if time.monotonic() - last_save >= checkpoint_every and j < len(targets):
                save(False)
                last_save = time.monotonic()
        # a SIGINT in the last call is not swallowed: the records are complete, but the user asked to stop
        interrupted = stop.hit or j < len(targets)
        save(interrupted)

    stats_out = {k: (np.concatenate(v) if v else np.zeros((0, n_seeds), args.dtype)).T.copy()
                 for k, v in recorded.items()}
    n_rec = next(iter(stats_out.values())).shape[1]
    return Driven(grid=grid[:n_rec].astype(np.int64), stats=stats_out, x=shard.unpad(np.asarray(x)),
                  extra0=start, extra=unpad(extra), step=pos, interrupted=interrupted)


def _restore(path, state: ck.State, x0: np.ndarray, keys, extra, shard: BatchSharding):
    """The sharded ``(x, bad, extra, step, next_target)`` of checkpoint ``state``, checked against this run's
    ``x0``, ``keys`` and bookkeeping ``extra`` (shapes, dtypes, key bits)."""
    template = jax.tree_util.tree_leaves(extra)
    same = (state.x.shape == x0.shape and state.x.dtype == x0.dtype and len(state.extra) == len(template)
            and all(a.shape == shard.unpad(np.asarray(b)).shape and a.dtype == b.dtype
                    for a, b in zip(state.extra, template))
            and np.array_equal(state.keys, shard.unpad(np.asarray(jax.random.key_data(keys)))))
    if not same:
        raise ValueError(f"resume = {str(path)!r} is a checkpoint of another run: its weights, keys or "
                         "bookkeeping do not fit this run's shapes, dtype or seeds")
    leaves = [shard.shard(leaf) for leaf in state.extra]
    extra = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(extra), leaves)
    return shard.shard(state.x), shard.shard(state.bad), extra, state.step, state.next_target


def _check_divergence(
    bad: np.ndarray,
    stats: dict[str, np.ndarray] | None,
    record_at: np.ndarray,
    label: str,
    eta: float,
    seeds: list[int],
    bound: float,
    weights: Weights,
) -> None:
    """Raise :class:`DivergenceError` if any seed diverged in this chunk (or, with ``stats`` recorded at the
    steps ``record_at``, has non-finite statistics)."""
    advice = f"try a smaller step size (e.g. eta = {eta / 10:.3g})"
    if np.any(bad >= 0):
        j = int(np.argmin(np.where(bad >= 0, bad, np.iinfo(bad.dtype).max)))
        k, others = int(bad[j]), int(np.sum(bad >= 0)) - 1
        raise DivergenceError(
            f"{label} with eta = {eta:g} diverged: seed {seeds[j]} at step {k} (t = {eta * k:.6g}), "
            f"{weights.name} became non-finite or {weights.norm} exceeded divergence_bound = {bound:g}"
            + (f" ({others} other seed(s) diverged too)" if others else "")
            + f"; {advice}",
            optimizer=label, eta=eta, seed=seeds[j], step=k,
        )
    if stats is None:
        return
    if not record_at.size:
        return
    finite = np.all([np.isfinite(v) for v in stats.values()], axis=0)  # (n_kept, n_seeds)
    if not np.all(finite):
        i, j = (int(a[0]) for a in np.nonzero(~finite))
        k = int(record_at[i])
        raise DivergenceError(
            f"{label} with eta = {eta:g}: statistics of seed {seeds[j]} became non-finite by step {k} "
            f"(t = {eta * k:.6g}) although {weights.norm} <= divergence_bound = {bound:g}; lower "
            f"divergence_bound or {advice}",
            optimizer=label, eta=eta, seed=seeds[j], step=k,
        )
