r"""Full-matrix training of the two-layer quadratic network :math:`f_W(x) = |Wx|^2/m` (docs/theory.md §3C).

Public face of the matrix model: :func:`run_matrix` trains :math:`W \in \mathbb R^{m\times d}` by population GD,
online mini-batch SGD or SpecGD (:math:`W \leftarrow W - \eta\,\mathrm{polar}(\nabla_W L)`) and returns a
:class:`MatrixTrajectory`. The pieces live in one module each:

* the model (losses, update rules, the statistics ``a, b, c, alignment, loss, off``, :math:`W(0)`):
  :mod:`phasedyn.simulate._network`, re-exported here;
* the polar factors (:func:`polar_svd`, :func:`newton_schulz`, :func:`muon_quintic`, :func:`polar`,
  :class:`PolarError`):
  :mod:`phasedyn.simulate._polar`, re-exported here;
* chunking, the jitted kernel, SGD keys, divergence, sharding over devices, progress: the one driver
  :mod:`phasedyn.simulate._driver`, shared with :func:`phasedyn.simulate.run`.

This module states the matrix model's step for the driver (:class:`_MatrixStep`) and its per-step
bookkeeping: per seed, the running maximum of :math:`b/a` and its step, the last step at which
:math:`\max(b, c) >` ``tol`` :math:`\sqrt m`, and the Newton–Schulz residuals. Nothing is imported from
theory/'s equations: the population loss is the network module's own statement, gradients are ``jax.grad``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from phasedyn.theory.devices import Devices
from phasedyn.theory.problem import Problem
from phasedyn.theory.validate import check_choice, check_int, check_positive

from ._checkpoint import PathLike
from ._driver import CHECKPOINT_EVERY, DEFAULT_CHUNK, Weights, chunk_kernel, drive
from ._inputs import check_bound, check_run, check_start, int_dtype, scalar
from ._network import (
    INITS,
    OPTIMIZERS,
    STATISTICS,
    default_spikes,
    directions,
    gd_step,
    init_weights,
    population_loss,
    ratio_and_excess,
    sample_loss,
    sgd_step,
    specgd_step,
    statistics,
)
from ._polar import (
    MUON_COEFFS, MUON_EPS, MUON_STEPS, NS_ITERS, NS_TOL, POLARS, PolarError, muon_quintic, newton_schulz,
    orthogonality_residual, polar, polar_svd,
)

__all__ = [
    "INITS", "MUON_COEFFS", "MUON_EPS", "MUON_STEPS", "NS_ITERS", "NS_TOL", "OPTIMIZERS", "PEAK_RTOL", "POLARS",
    "STATISTICS", "MatrixTrajectory", "PolarError", "default_spikes", "directions", "gd_step", "init_weights",
    "muon_quintic", "newton_schulz", "orthogonality_residual", "polar", "polar_svd", "population_loss",
    "run_matrix", "sample_loss", "sgd_step", "specgd_step", "statistics",
]

PEAK_RTOL = 1e-12
"""A new maximum of :math:`b/a` must beat the running one by this relative margin (round-off does not move the peak)."""

_chunk_fn = chunk_kernel
"""The kernel factory :func:`run_matrix` calls (a module attribute, so that a test can wrap it)."""


@dataclasses.dataclass(frozen=True)
class MatrixTrajectory:
    r"""A recorded full-matrix run.

    Attributes:
        steps: record steps :math:`k`, ``(n_rec,)``; ``t``: :math:`\eta k`.
        stats: name → ``(n_seeds, n_rec)`` for :data:`STATISTICS`.
        seeds: one per row.
        ratio0, peak_ratio, peak_step: :math:`b/a` at step 0, its maximum over **every** step and the first
            step reaching it, ``(n_seeds,)``.
        steps_to_tol: first step from which :math:`\max(b, c) \le` ``tol`` :math:`\sqrt m` for the rest of the
            run (``-1``: above at the end), ``(n_seeds,)``.
        polar_residual: the largest :math:`|XX^\top - I|_F` of the polar factor met, per seed: Newton–Schulz's
            residual, or how far Muon's factor is from orthogonal (0 for SVD / GD / SGD).
        W_final: ``(n_seeds, m, d)``, after ``step_reached`` steps.
        config: JSON-serialisable description of the run.
        interrupted: a SIGINT arrived: the run stopped before ``config["steps"]`` (``steps``, ``t``, ``stats``
            then hold the record steps :math:`\le` ``step_reached``; the per-seed outputs are over the steps
            done), or in its last call (records complete); either way the caller should stop.
        step_reached: the steps done: ``config["steps"]``, or fewer when ``interrupted``.
    """

    steps: np.ndarray
    t: np.ndarray
    stats: dict[str, np.ndarray]
    seeds: list[int]
    ratio0: np.ndarray
    peak_ratio: np.ndarray
    peak_step: np.ndarray
    steps_to_tol: np.ndarray
    polar_residual: np.ndarray
    W_final: np.ndarray
    config: dict[str, Any]
    interrupted: bool = False
    step_reached: int | None = None

    def __post_init__(self) -> None:
        if self.step_reached is None:
            object.__setattr__(self, "step_reached", int(self.config["steps"]))

    @property
    def amplification(self) -> np.ndarray:
        """``peak_ratio / ratio0`` per seed."""
        return self.peak_ratio / self.ratio0


@dataclasses.dataclass(frozen=True)
class _MatrixStep:
    r"""The matrix model's step for the driver: ``optimizer`` with its static options.

    Parameters ``p``: ``w_hat, V, w_star, lam, eta, sigma, tol_abs, ns_tol`` (and the driver's ``bound``).
    Bookkeeping ``extra = (best, kbest, last_above, res_max, res_bad)``: the running maximum of :math:`b/a`
    and the first step reaching it, the last step with :math:`\max(b, c) >` ``tol_abs``, the largest
    Newton–Schulz residual met, and the first step whose residual exceeded ``ns_tol`` (-1: none; only
    without ``fallback``).
    """

    optimizer: str
    polar: str = "none"
    ns_iters: int = 0
    fallback: bool = False
    batch: int = 0

    def update(self, W, key, p):
        if self.optimizer == "gd":
            return gd_step(W, p["w_star"], p["lam"], p["eta"]), jnp.zeros((), W.dtype)
        if self.optimizer == "sgd":
            return sgd_step(W, key, p["w_star"], p["lam"], p["eta"], p["sigma"], self.batch), jnp.zeros((), W.dtype)
        return specgd_step(W, p["w_star"], p["lam"], p["eta"], self.polar, self.ns_iters, p["ns_tol"], self.fallback)

    def track(self, W, live, k, res, extra, p):
        best, kbest, last_above, res_max, res_bad = extra
        r, excess = ratio_and_excess(W, p["w_hat"], p["V"], p["tol_abs"])
        better = live & (r > best * (1 + PEAK_RTOL))
        best = jnp.where(better, r, best)
        kbest = jnp.where(better, k + 1, kbest)
        last_above = jnp.where(live & excess, k + 1, last_above)
        res_max = jnp.maximum(res_max, jnp.where(live, res, 0.0))
        if self.polar == "newton-schulz" and not self.fallback:  # Muon's factor is approximate by design
            res_bad = jnp.where((res_bad < 0) & live & (res > p["ns_tol"]), k + 1, res_bad)
        return best, kbest, last_above, res_max, res_bad

    def statistics(self, W, p):
        return statistics(W, p["w_hat"], p["V"], p["w_star"], p["lam"], p["sigma"])


def _extra0(W, p):
    """The bookkeeping at step 0 (``W``: the sharded :math:`W(0)`)."""
    r0, exc0 = jax.vmap(ratio_and_excess, in_axes=(0, None, None, None))(W, p["w_hat"], p["V"], p["tol_abs"])
    int_t = int_dtype()
    neg = jnp.full_like(r0, -1, dtype=int_t)
    return r0, jnp.zeros_like(r0, dtype=int_t), jnp.where(exc0, 0, -1).astype(int_t), jnp.zeros_like(r0), neg


def run_matrix(
    problem: Problem,
    optimizer: Literal["gd", "sgd", "specgd"],
    eta: float,
    steps: int,
    m: int,
    init: Literal["identity", "orthogonal", "gaussian"] = "identity",
    init_scale: float = 0.1,
    seeds: int | Sequence[int] = 1,
    spikes: np.ndarray | None = None,
    polar: Literal["svd", "newton-schulz", "muon"] = "svd",
    batch: int = 1,
    tol: float = 0.05,
    n_record: int = 200,
    record_steps: Sequence[int] | np.ndarray | None = None,
    W0: np.ndarray | None = None,
    ns_iters: int = NS_ITERS,
    ns_tol: float = NS_TOL,
    ns_fallback: bool = False,
    divergence_bound: float = 1e8,
    progress: bool | None = None,
    dtype: Any = jnp.float64,
    chunk_size: int = DEFAULT_CHUNK,
    devices: Devices = None,
    prng: str | None = None,
    checkpoint: PathLike | None = None,
    resume: PathLike | None = None,
    checkpoint_every: float = CHECKPOINT_EVERY,
) -> MatrixTrajectory:
    r"""Train :math:`W \in \mathbb R^{m\times d}` on ``problem`` (its spectrum, :math:`w^*`, :math:`\sigma`) and
    record statistics.

    Args:
        problem: a :class:`~phasedyn.theory.Problem` (any spectrum; ``spiked_problem`` for §3C).
        optimizer: ``"gd"``, ``"sgd"`` (mini-batch of ``batch`` fresh samples) or ``"specgd"``.
        eta: step size :math:`> 0` (:math:`t = \eta k`).
        steps: number of steps :math:`\ge 1`.
        m: width :math:`\ge 1`.
        init, init_scale: :func:`init_weights` (seed :math:`j` draws its own :math:`W(0)` for the random inits).
        seeds: count (``init_seed + j``, ``init_seed`` from ``problem.meta``, default 0) or list of seeds;
            each seed has its own :math:`W(0)` and SGD stream ``fold_in(key(seed), k)``.
        spikes: spike directions ``(k, d)`` or ``(d,)`` for ``b``; default :func:`default_spikes`.
        polar: ``"svd"``, ``"newton-schulz"`` (run to ``ns_tol``) or ``"muon"`` (:func:`muon_quintic`: Muon's 5
            quintic steps, :data:`MUON_COEFFS`, :data:`MUON_EPS`; an approximate factor) (SpecGD only).
        tol: tolerance for ``steps_to_tol``, relative to the target scale :math:`\sqrt m`.
        n_record, record_steps: log-spaced record grid (or explicit steps in ``[0, steps]``).
        W0: explicit initial weights ``(n_seeds, m, d)`` instead of ``init``.
        ns_iters, ns_tol: Newton–Schulz budget and acceptance tolerance; ``ns_fallback``: use the SVD
            wherever NS does not reach ``ns_tol`` (else :class:`PolarError` is raised).
        divergence_bound: :class:`DivergenceError` once :math:`|W|_F^2` exceeds it or :math:`W` is non-finite.
        progress: progress bar (``None``: when ``n_seeds m d steps > 2e8``).
        dtype: ``jnp.float64`` (default) or ``jnp.float32``.
        chunk_size: segments per jitted call (speed only; the steps per call are set by wall time).
        devices: where the seeds run (as in :func:`~phasedyn.simulate.run`): ``None``/``"all"``, one device
            or a sequence; the seed axis is sharded over them (padded, padding dropped); results do not
            depend on it.
        prng: JAX generator of the SGD samples (:data:`~phasedyn.simulate.run.PRNG_IMPLS`; ``None``: JAX's
            default); recorded in ``config["prng"]``.
        checkpoint, resume, checkpoint_every: checkpoint the run into a directory every ``checkpoint_every``
            seconds, on SIGINT and at the end; continue a checkpointed run of the same arguments, bit for
            bit (as in :func:`~phasedyn.simulate.run`; layout in :mod:`phasedyn.simulate._checkpoint`).

    Returns:
        :class:`MatrixTrajectory`; after a SIGINT (answered within about a second) the part reached, with
        ``interrupted=True`` and ``step_reached``.

    Raises:
        ValueError: invalid argument (named, with its allowed range).
        DivergenceError: a seed diverged (seed and exact step in the message).
        PolarError: Newton–Schulz failed and ``ns_fallback`` is off (seed and step in the message).
    """
    args = check_run(problem, eta=eta, steps=steps, seeds=seeds, n_record=n_record, record_steps=record_steps,
                     divergence_bound=divergence_bound, progress=progress, dtype=dtype, chunk_size=chunk_size,
                     devices=devices, prng=prng)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_choice("polar", polar, POLARS)
    m = check_int("m", scalar(m), 1)
    batch = check_int("batch", batch, 1)
    tol = check_positive("tol", tol)
    ns_iters = check_int("ns_iters", ns_iters, 1)
    ns_tol = check_positive("ns_tol", ns_tol)
    d, seed_list = problem.d, args.seeds
    w_hat, V = directions(problem.w_star, default_spikes(problem) if spikes is None else spikes)
    if d - 1 - V.shape[0] < 1:
        raise ValueError(f"d = {d} leaves no bulk direction besides w* and {V.shape[0]} spike(s) (need d >= k + 2)")
    explicit_w0 = W0 is not None
    if W0 is None:
        W0 = np.stack([init_weights(init, m, d, init_scale, s) for s in seed_list])
    else:
        W0 = check_start("W0", W0, (len(seed_list), m, d), "(n_seeds, m, d)")
    check_bound(args.divergence_bound, W0, "|W0|_F^2")

    specgd, ns = optimizer == "specgd", optimizer == "specgd" and polar == "newton-schulz"
    stepper = _MatrixStep(optimizer, polar if specgd else "none", ns_iters if ns else 0, bool(ns_fallback) and ns,
                          batch if optimizer == "sgd" else 0)

    def check(extra) -> None:
        _, _, _, res_max, res_bad = extra
        if np.any(res_bad >= 0):
            j = int(np.argmin(np.where(res_bad >= 0, res_bad, np.iinfo(res_bad.dtype).max)))
            raise PolarError(
                f"specgd with polar = {polar!r}: Newton–Schulz did not converge for seed {seed_list[j]} at step "
                f"{int(res_bad[j])} (|XX^T - I|_F = {res_max[j]:.3g} > ns_tol = {ns_tol:g}): the gradient is "
                "singular or too ill-conditioned; use polar='svd', raise ns_iters, or pass ns_fallback=True"
            )

    config = {
        "optimizer": optimizer, "eta": args.eta, "steps": args.steps, "m": m, "d": d,
        "init": "explicit" if explicit_w0 else init,
        "init_scale": float(init_scale), "polar": polar if specgd else None,
        "batch": batch if optimizer == "sgd" else None, "tol": tol, "seeds": list(seed_list), "dtype": args.dtype.name,
        "ns_iters": ns_iters, "ns_tol": ns_tol, "ns_fallback": bool(ns_fallback), "sigma": float(problem.sigma),
        "kind": problem.kind, "meta": dict(problem.meta), "n_spikes": int(V.shape[0]),
        "prng": args.prng,
    }
    if specgd and polar == "muon":
        config["muon"] = {"steps": MUON_STEPS, "coeffs": list(MUON_COEFFS), "eps": MUON_EPS}
    out = drive(_chunk_fn(stepper), args, x0=W0, extra0=_extra0,
                params=dict(w_hat=w_hat, V=V, w_star=problem.w_star, lam=problem.lam, eta=args.eta,
                            sigma=problem.sigma, tol_abs=tol * math.sqrt(m), ns_tol=ns_tol),
                names=STATISTICS, label=optimizer, weights=Weights("W", "|W|_F^2"), finite_stats=False, check=check,
                config=config, checkpoint=checkpoint, resume=resume, checkpoint_every=checkpoint_every)
    r0, (best, kbest, last_above, res_max, _) = out.extra0[0], out.extra
    to_tol = np.where(last_above >= out.step, -1, last_above + 1)
    return MatrixTrajectory(
        steps=out.grid, t=args.eta * out.grid.astype(np.float64), stats=out.stats, seeds=list(seed_list),
        ratio0=r0, peak_ratio=best, peak_step=kbest, steps_to_tol=to_tol, polar_residual=res_max,
        W_final=out.x, config=config, interrupted=out.interrupted, step_reached=out.step,
    )
