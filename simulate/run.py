r"""Finite-d runs of one neuron in the eigenbasis (O(d) per step): many seeds, recorded on a log-spaced grid.

A run advances :math:`w_k` by one of the update rules of :mod:`.optimizers` (time :math:`t = \eta k`)
and records the statistics of :func:`~.losses.statistics` at chosen steps. Chunking, the jitted
kernel, SGD keys (``fold_in(key(seed_j, impl=prng), k)`` at step :math:`k`), divergence detection,
sharding of the seeds over devices and the progress bar are the one driver's
(:mod:`phasedyn.simulate._driver`, shared with :func:`~phasedyn.simulate.run_matrix`); this module
states the vector model's step (:class:`_VectorStep`) and its :class:`Trajectory`. :math:`\eta`,
:math:`\sigma` and the divergence bound are traced: changing them does not recompile.

``prng`` picks JAX's generator (:data:`PRNG_IMPLS`; default: JAX's configured one, threefry); online
SGD draws :math:`d` Gaussians per seed and step and is bound by that generation on a CPU (threefry's draws
run unrolled, :mod:`._sgd_rng`; benchmarks/RESULTS.md). The streams differ between generators, not their law; the generator is recorded in ``config["prng"]``.
Results depend neither on the chunking (sized by wall time) nor on the devices; a run can be
interrupted (SIGINT), checkpointed and resumed bit for bit (``checkpoint=``, ``resume=``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Sequence

import jax.numpy as jnp
import numpy as np

from phasedyn.theory.devices import Devices
from phasedyn.theory.model import Model
from phasedyn.theory.problem import Problem
from phasedyn.theory.validate import check_choice

from ._checkpoint import PathLike
from ._driver import CHECKPOINT_EVERY, DEFAULT_CHUNK, PROGRESS_THRESHOLD, Weights, chunk_kernel, drive
from ._inputs import PRNG_IMPLS, check_bound, check_prng, check_run, check_start, log_step_grid, seed_keys
from .losses import STATISTICS, statistics
from ._spherical import SPHERES, normalise, spherical_sgd_step
from .optimizers import gd_step, sgd_step

__all__ = ["DEFAULT_CHUNK", "OPTIMIZERS", "PRNG_IMPLS", "PROGRESS_THRESHOLD", "Trajectory", "check_prng",
           "log_step_grid", "run", "seed_keys"]

Optimizer = Literal["gd", "gf", "sgd", "spherical-sgd", "sigma-spherical-sgd"]

OPTIMIZERS: dict[str, str] = {"gd": "gd", "gf": "gd", "sgd": "sgd", "spherical-sgd": "spherical-sgd",
                              "sigma-spherical-sgd": "sigma-spherical-sgd"}
"""Accepted names → update rule. ``"gf"`` runs GD: at small :math:`\\eta` it approximates gradient flow. The
spherical rules (:mod:`._spherical`) renormalise :math:`w` after every SGD step, in :math:`|w|` or in
:math:`w^\\top\\Sigma w`; their start is normalised the same way."""

_chunk_fn = chunk_kernel
"""The kernel factory :func:`run` calls (a module attribute, so that a test can wrap it)."""


@dataclasses.dataclass(frozen=True)
class Trajectory:
    r"""A recorded run.

    Attributes:
        steps: record steps :math:`k`, shape ``(n_rec,)``, ``int64``.
        t: times :math:`t = \eta k`, shape ``(n_rec,)``, ``float64``.
        stats: name → array of shape ``(n_seeds, n_rec)`` for ``u, s, u_0, s_0, u_2, s_2, loss, mse``
            (:data:`~.losses.STATISTICS`, the theory's names: see :func:`~.losses.statistics`), in the run's dtype.
        seeds: the seeds, one per row.
        config: JSON-serialisable description of the run (optimizer, eta, steps, d, sigma, seeds,
            dtype, problem kind and meta, ...).
        w_final: weights after ``step_reached`` steps, shape ``(n_seeds, d)``.
        interrupted: a SIGINT arrived: the run stopped before ``config["steps"]`` (then ``steps``, ``t`` and
            ``stats`` hold the record steps :math:`\le` ``step_reached`` only), or in its last call (records
            complete); either way the caller should stop.
        step_reached: the steps done: ``config["steps"]``, or fewer when ``interrupted``.
    """

    steps: np.ndarray
    t: np.ndarray
    stats: dict[str, np.ndarray]
    seeds: list[int]
    config: dict[str, Any]
    w_final: np.ndarray
    interrupted: bool = False
    step_reached: int | None = None

    def __post_init__(self) -> None:
        if self.step_reached is None:
            object.__setattr__(self, "step_reached", int(self.config["steps"]))

    @property
    def u(self) -> np.ndarray:
        r""":math:`u = u^{(1)} = w^\top\Sigma w^*` (``stats["u"]``; docs/theory.md §1), shape ``(n_seeds, n_rec)``."""
        return self.stats["u"]

    @property
    def s(self) -> np.ndarray:
        r""":math:`s = s^{(1)} = w^\top\Sigma w` (``stats["s"]``; docs/theory.md §1), shape ``(n_seeds, n_rec)``."""
        return self.stats["s"]

    @property
    def n_seeds(self) -> int:
        """Number of seeds (rows of every statistic)."""
        return len(self.seeds)


@dataclasses.dataclass(frozen=True)
class _VectorStep:
    r"""One neuron's step for the driver: ``rule`` (``"gd"`` or ``"sgd"``) on ``model``'s loss.

    Parameters ``p``: ``w_star``, ``lam``, ``eta``, ``sigma`` (and the driver's ``bound``). No
    bookkeeping beside :math:`w` (``extra = ()``).
    """

    rule: str
    model: Model

    def update(self, w, key, p):
        if self.rule == "gd":
            return gd_step(w, p["w_star"], p["lam"], p["eta"], p["sigma"], self.model), ()
        if self.rule in SPHERES:
            return spherical_sgd_step(w, key, p["w_star"], p["lam"], p["eta"], p["sigma"], self.model,
                                      SPHERES[self.rule]), ()
        return sgd_step(w, key, p["w_star"], p["lam"], p["eta"], p["sigma"], self.model), ()

    def track(self, w, live, k, aux, extra, p):
        return extra

    def statistics(self, w, p):
        return statistics(w, p["w_star"], p["lam"], p["sigma"], model=self.model)


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
    checkpoint: PathLike | None = None,
    resume: PathLike | None = None,
    checkpoint_every: float = CHECKPOINT_EVERY,
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
        progress: progress bar; ``None`` shows one when ``n_seeds * d * steps > 2e8``
            (:data:`PROGRESS_THRESHOLD`).
        dtype: ``jnp.float64`` (default) or ``jnp.float32``; every array and parameter of the run
            is cast to it, and the statistics are computed in it.
        chunk_size: segments (record intervals or pieces of one) per jitted call, the static scan length;
            the steps per call are set by wall time (~0.5 s). Speed only: no result depends on it.
        devices: where the seeds run: ``None`` or ``"all"`` (default: every visible device), one
            :class:`jax.Device`, or a sequence of them. The seed axis is sharded over (at most
            ``n_seeds`` of) them, padded to a multiple of their number; results do not depend on it.
        prng: JAX generator for the SGD samples, one of :data:`PRNG_IMPLS` (``None``: JAX's
            configured default, ``jax_default_prng_impl``). Same law, different streams; recorded in
            ``config["prng"]``. GD draws nothing.
        model: the per-sample loss :math:`\ell(g, h, \xi)` (:class:`~phasedyn.theory.model.Model`,
            or its text; default phase retrieval). Both update rules are ``jax.grad`` of it.
        checkpoint: a directory to checkpoint the run into (:mod:`phasedyn.simulate._checkpoint`: ``state.npz``
            and ``checkpoint.json``) every ``checkpoint_every`` seconds, on SIGINT and at the end
            (default: ``resume``, else none).
        resume: a checkpoint directory of the same run (same arguments; checked, the first difference
            named) to continue from; the result is bit-identical to a run that never stopped.
        checkpoint_every: seconds between checkpoints, > 0 (default 300).

    Returns:
        :class:`Trajectory` with statistics of shape ``(n_seeds, n_rec)``. A SIGINT (Ctrl-C) during the run
        stops it within about a second (the jitted calls are sized to :data:`~._schedule.CHUNK_SECONDS` of
        wall time) and returns the records reached, with ``interrupted=True`` and ``step_reached``.

    Raises:
        ValueError: invalid argument (the message names it and the allowed range).
        DivergenceError: some seed diverged; the message gives the seed and the exact step.
    """
    args = check_run(problem, eta=eta, steps=steps, seeds=seeds, n_record=n_record, record_steps=record_steps,
                     divergence_bound=divergence_bound, progress=progress, dtype=dtype, chunk_size=chunk_size,
                     devices=devices, prng=prng)
    check_choice("optimizer", optimizer, tuple(OPTIMIZERS))
    rule = OPTIMIZERS[optimizer]
    model = Model.coerce(model)
    n_seeds, d = len(args.seeds), problem.d
    if w0 is None:
        w0 = problem.w0_batch(args.seeds)
    else:
        w0 = check_start("w0", w0, (n_seeds, d), "(n_seeds, d)")
    if rule in SPHERES:
        w0 = np.asarray(normalise(np.asarray(w0, np.float64), np.asarray(problem.lam, np.float64), SPHERES[rule]))
    check_bound(args.divergence_bound, w0, "|w0|^2")

    config = {
        "optimizer": rule,
        "optimizer_requested": optimizer,
        "eta": args.eta,
        "steps": args.steps,
        "d": d,
        "sigma": float(problem.sigma),
        "seeds": list(args.seeds),
        "dtype": args.dtype.name,
        "prng": args.prng,
        "model": model.to_dict(),
        "divergence_bound": args.divergence_bound,
        "kind": problem.kind,
        "meta": dict(problem.meta),
    }
    out = drive(_chunk_fn(_VectorStep(rule, model)), args, x0=w0, extra0=lambda w, p: (),
                params=dict(w_star=problem.w_star, lam=problem.lam, eta=args.eta, sigma=problem.sigma),
                names=STATISTICS, label=rule, weights=Weights("w", "|w|^2"), config=config,
                checkpoint=checkpoint, resume=resume, checkpoint_every=checkpoint_every)
    return Trajectory(
        steps=out.grid,
        t=args.eta * out.grid.astype(np.float64),
        stats=out.stats,
        seeds=list(args.seeds),
        config=config,
        w_final=out.x,
        interrupted=out.interrupted,
        step_reached=out.step,
    )
