r"""Theory against simulation on one time axis (docs/theory.md §4).

:func:`overlay_isotropic` runs the finite-d simulation (population GD or online SGD, seeds
vmapped), fixes each seed's sign (phase retrieval is symmetric under :math:`w \to -w`, so every
seed's curve, simulated and theoretical alike, is flipped to end with :math:`u \ge 0` before
averaging), and solves the summary-statistic
system **per seed from that seed's own statistics** at :math:`t = 0`, in one vmapped call, with
time in the same units :math:`t = \eta k`.

With ``align=delta`` each seed is cut at its first record time :math:`T_1` with :math:`|u| \ge \delta`
(below :math:`\sim d^{-1/2}` escape is random at finite d); the ODE starts from the simulation's
state there and both are compared on :math:`\tau = t - T_1`. Only initial conditions pass from
simulation to theory: the rest of each curve is computed independently.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np

from phasedyn.simulate import Trajectory, run
from phasedyn.theory import (Model, Problem, escape_law, isotropic_params, isotropic_system, iterate, saddle_level,
                             solve)
from phasedyn.theory.validate import check_choice, check_open_interval

from ._fluctuations import fluctuations, law_curves
from ._interrupt import check_complete
from .phases import detect_phases

Optimizer = Literal["gf", "gd", "sgd"]
STATS = ("u", "s", "loss", "mse")


@dataclasses.dataclass(frozen=True)
class Overlay:
    r"""Theory and simulation on a common time grid: the one overlay type of every system.

    Every system's curves carry the common statistics :data:`STATS` (``u``, ``s``, ``loss``, ``mse``, in the
    theory's own names: docs/theory.md §1 for the vector model, :func:`phasedyn.theory.spiked.matrix_statistics`
    for the spiked two-layer model), so :meth:`gap`, :meth:`final` and :meth:`phases` have one shape everywhere.
    A system may carry more curves (spiked: its coefficients ``a``, ``b``, ``c``; the simulation's ``alignment``
    and ``off``) and its own measurements (:meth:`measured`).

    Attributes:
        system: the theory system's name (``"isotropic-gf"`` ...).
        t: common grid (:math:`t = \eta k`, or :math:`\tau = t - T_1` when aligned), shape ``(n_t,)``.
        theory: theory curves ``{stat: (n_rows, n_t)}``: one row per seed, or, for unaligned isotropic online SGD,
            one per quantile of the escape law (their mean is the predicted seed average, :mod:`._fluctuations`).
        sim: per-seed simulation curves ``{stat: (n_seeds, n_t)}`` (sign-fixed).
        params: every parameter of the run (JSON-serialisable).
        shift: per-seed alignment time :math:`T_1` (zeros when not aligned).
        s_star: :math:`s^*` of the problem (for the phase detector).
        s_level: the saddle level of :math:`T_1'` for the run's model (:func:`phasedyn.theory.saddle_level`;
            ``None``: the model has no saddle with :math:`u = 0` at one level of :math:`s`, so no :math:`T_1'`;
            not given: phase retrieval's).
        steps: the recorded optimiser steps :math:`k` of ``t`` (``None`` where the grid is not a step grid).
        measurements: system-specific measurements, each ``{"theory", "simulation"}`` (summary.json's
            ``measured``; empty where a system has none): :meth:`measured`.
    """

    system: str
    t: np.ndarray
    theory: dict[str, np.ndarray]
    sim: dict[str, np.ndarray]
    params: dict
    shift: np.ndarray
    s_star: float
    s_level: float | None = ...  # type: ignore[assignment]
    steps: np.ndarray | None = None
    measurements: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.s_level is ...:  # not given: the phase-retrieval saddle level, from theory
            object.__setattr__(self, "s_level", saddle_level(self.s_star))

    @property
    def optimizer(self) -> str | None:
        """The simulated optimizer as the run named it (``params["optimizer"]``)."""
        return self.params.get("optimizer")

    @property
    def stats(self) -> tuple[str, ...]:
        """The compared statistics: :data:`STATS`, then every other curve that theory and simulation both have."""
        return STATS + tuple(k for k in self.theory if k in self.sim and k not in STATS)

    def mean(self, which: Literal["theory", "sim"], stat: str) -> np.ndarray:
        """Mean over seeds of a statistic."""
        return getattr(self, which)[stat].mean(axis=0)

    def std(self, which: Literal["theory", "sim"], stat: str) -> np.ndarray:
        """Standard deviation over seeds (0 for a single seed)."""
        return getattr(self, which)[stat].std(axis=0)

    def gap(self) -> dict[str, dict[str, float | None]]:
        """``{stat: {"max", "mean"}}`` of :math:`|\\text{theory} - \\text{simulation}|` between seed means on the grid,
        for every statistic of :attr:`stats`, over the grid times where **both** seed means are finite.

        A truncated-hierarchy theory curve is NaN after its validity stop (docs/theory.md §3(B), §4), so the gap is
        measured on its valid part instead of being NaN. ``None`` where no grid time has both finite.
        """
        out = {}
        for k in self.stats:
            diff = np.abs(self.mean("theory", k) - self.mean("sim", k))
            diff = diff[np.isfinite(diff)]
            out[k] = ({"max": float(diff.max()), "mean": float(diff.mean())} if diff.size
                      else {"max": None, "mean": None})
        return out

    def phases(self, delta: float = 0.1, eps: float = 0.05) -> dict[str, dict[str, float | None]]:
        """``{T1, T1p, T2}`` → ``{"theory", "simulation"}``, the same detector on both seed-mean curves.

        When aligned, times are reported on the original axis (:math:`\\tau` plus the mean shift).
        """
        off = float(self.shift.mean())
        th = detect_phases(self.t, self.mean("theory", "u"), self.mean("theory", "s"), self.s_star, delta, eps,
                           self.s_level)
        si = detect_phases(self.t, self.mean("sim", "u"), self.mean("sim", "s"), self.s_star, delta, eps,
                           self.s_level)
        add = lambda x: None if x is None else x + off  # noqa: E731
        return {k: {"theory": add(th[k]), "simulation": add(si[k])} for k in th}

    def final(self) -> dict[str, dict[str, float | None]]:
        """Value of each statistic of :attr:`stats` at the end of the grid, seed means, for theory and simulation.

        ``None`` where a curve has no value there: a truncated-hierarchy theory curve ends at its validity stop
        (docs/theory.md §3(B)), and its last valid value belongs to another time than the simulation's final one
        (that time is ``params["hierarchy_valid_until"]``; :meth:`gap` covers the valid part).
        """
        return {"theory": {k: _at_end(self.mean("theory", k)) for k in self.stats},
                "simulation": {k: _at_end(self.mean("sim", k)) for k in self.stats}}

    def measured(self) -> dict[str, dict]:
        """The system's own measurements (:attr:`measurements`; spiked: :func:`phasedyn.compare.overlay_spiked`)."""
        return dict(self.measurements)


def _at_end(x: np.ndarray) -> float | None:
    """The last entry of a 1-D curve, ``None`` if it is not finite."""
    return float(x[-1]) if np.isfinite(x[-1]) else None


def curve_basin(u: np.ndarray) -> list[int]:
    """The basin (+1 or -1) of each curve ``u`` (``(n, n_t)``, before sign-fixing): the sign of its last finite value
    (a truncated hierarchy curve is NaN after its valid part)."""
    u = np.asarray(u, float)
    last = np.where(np.isfinite(u), np.arange(u.shape[-1]), -1).max(axis=-1)
    return np.where(u[np.arange(u.shape[0]), np.maximum(last, 0)] < 0, -1, 1).tolist()


def _sign_fixed(curves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flip each curve's ``u`` so that it ends in the basin ``u >= 0`` (:func:`curve_basin`; the symmetry w → −w,
    other statistics are even)."""
    return {**curves, "u": np.asarray(curve_basin(curves["u"]), float)[:, None] * curves["u"]}


#: the optimizers an overlay pairs with its theory: gf (GD at a small step), gd, sgd and spherical online SGD
OPTIMIZERS = ("gf", "gd", "sgd", "spherical-sgd", "sigma-spherical-sgd")


def sim_rule(optimizer: str) -> str:
    """The simulated update rule of an overlay's ``optimizer`` (``gf``: population GD at a small step)."""
    return "gd" if optimizer == "gf" else optimizer


def _sim_curves(traj: Trajectory) -> dict[str, np.ndarray]:
    """The simulation's curves of :data:`STATS`: the simulation records them under the theory's names."""
    return {k: traj.stats[k] for k in STATS}


def _theory_curves(optimizer: Optimizer, model: Model, y0: np.ndarray, params: dict, t: np.ndarray,
                   steps: np.ndarray, solver_opts: dict) -> dict[str, np.ndarray]:
    system = isotropic_system(optimizer, model)
    p = {k: np.full(y0.shape[0], v) for k, v in params.items()}
    if system.kind == "map":
        sol = iterate(system, y0, p, int(steps[-1]), record_steps=steps - steps[0])
    else:
        sol = solve(system, y0, p, ts=t - t[0], **solver_opts)
    return {k: sol[k] for k in STATS}


def overlay_isotropic(
    problem: Problem,
    optimizer: Optimizer = "gf",
    eta: float = 1e-3,
    steps: int = 5000,
    seeds: int = 4,
    n_record: int = 300,
    align: float | None = None,
    progress: bool | None = None,
    solver_opts: dict | None = None,
    theory: Optimizer | None = None,
    prng: str | None = None,
    model: Model | str | None = None,
    checkpoint: str | Path | None = None,
    resume: str | Path | None = None,
    start: Literal["law", "seeds"] = "law",
    delta: float = 0.1,
) -> Overlay:
    r"""Simulate ``problem`` (Σ = I) and overlay its isotropic (u, s) theory.

    Args:
        problem: an isotropic :class:`~phasedyn.theory.Problem` (``w*``, ``w0`` seeds, ``sigma``).
        optimizer: ``"gf"`` (population GD at step ``eta`` against the gradient-flow ODE: an
            :math:`O(\eta)` discretisation gap), ``"gd"`` (population GD against its exact 2D map),
            ``"sgd"`` (online SGD against the mean-field ODE with its :math:`O(\eta)` term).
        eta: step size (> 0); time is :math:`t = \eta k`.
        steps: number of optimiser steps.
        seeds: number of seeds (initialisations; SGD sample streams).
        n_record: number of log-spaced record points.
        align: if given, align each seed at its first time :math:`|u| \ge` ``align`` (in (0, 1)).
        theory: which theory to overlay (``"gf"``, ``"gd"``, ``"sgd"``); default: the one matching
            ``optimizer``. For example online SGD against plain gradient flow shows what the
            :math:`O(\eta)` SGD term is worth.
        prng: JAX generator of the SGD samples (:data:`phasedyn.simulate.run.PRNG_IMPLS`; ``None``:
            JAX's default); recorded in ``params["prng"]``.
        model: the per-sample loss (:class:`~phasedyn.theory.Model` or its text; default phase retrieval),
            simulated by ``jax.grad`` and derived by the theory: the same model on both sides.
        solver_opts: keyword arguments for :func:`phasedyn.theory.solve` (default ``rtol=1e-10,
            atol=1e-12``: the loss cancels at the minimum, so its accuracy is the states' times ~8).
        checkpoint, resume: the simulation's checkpoint directory and a checkpoint to continue from
            (:func:`phasedyn.simulate.run`; bit-identical to a run that never stopped).
        start: where an unaligned online-SGD theory starts. ``"law"`` (default): from the law of the effective
            start (:func:`phasedyn.theory.escape_law`: the sphere's :math:`u_0` plus the SGD noise before the
            escape), so the theory rows are that law's quantile paths, their mean the predicted seed average,
            and ``measurements["fluctuations"]`` the predicted against the seeds' :math:`T_1` law
            (:mod:`._fluctuations`); ``"seeds"``: each seed's own :math:`(u, s)` at :math:`t = 0`. GF, GD and
            aligned overlays always start from each seed's own statistics.
        delta: the escape level :math:`|u| \ge \delta` of the law's :math:`T_1` (the phase detector's).

    Raises:
        Interrupted: a SIGINT stopped the simulation (:mod:`._interrupt`): it carries the partial trajectory and
            its sign-fixed curves; no theory is computed from a truncated run.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if optimizer == "sigma-spherical-sgd":  # on Sigma = I the Sigma-norm is the Euclidean one
        optimizer = "spherical-sgd"
    theory_opt = optimizer if theory is None else check_choice("theory", theory, OPTIMIZERS[:4])
    model = Model.coerce(model)
    if not np.allclose(problem.lam, 1.0):
        raise ValueError("overlay_isotropic needs an isotropic problem (spectrum all ones); "
                         f"got kind {problem.kind!r}")
    if align is not None:
        check_open_interval("align", align, 0.0, 1.0)
    traj = run(problem, sim_rule(optimizer), eta, steps, seeds=seeds, n_record=n_record, progress=progress, prng=prng, model=model, checkpoint=checkpoint, resume=resume)
    eta = traj.config["eta"]  # validated once, by simulate.run (check_run), before anything runs
    sim = _sign_fixed(_sim_curves(traj))
    check_complete(traj, sim)
    t, rec = traj.t, traj.steps
    params = isotropic_params(theory_opt, s_star=problem.s_star, sigma=problem.sigma, d=problem.d,
                              eta=None if theory_opt == "gf" else eta)
    opts = {"rtol": 1e-10, "atol": 1e-12, **(solver_opts or {})}
    n_seeds = sim["u"].shape[0]
    check_choice("start", start, ("law", "seeds"))
    measurements: dict = {}
    law = None
    if align is None and theory_opt == "sgd" and start == "law":
        try:
            law = escape_law(problem.d, eta, t, init_scale=float(problem.meta.get("init_scale", 1.0)),
                             s_star=problem.s_star, sigma=problem.sigma, delta=delta, model=model)
        except ValueError as err:  # no escape for this model (rho <= 0): each seed's own start instead
            measurements["fluctuations_note"] = f"no escape law: {err}"
    if law is not None:
        theory = law_curves(law, STATS)
        measurements["fluctuations"] = fluctuations(law, t, sim)
        shift, grid = np.zeros(n_seeds), t
    elif align is None:
        y0 = np.stack([sim["u"][:, 0], sim["s"][:, 0]], axis=-1)
        theory = _theory_curves(theory_opt, model, y0, params, t, rec, opts)
        shift = np.zeros(n_seeds)
        grid = t
    else:
        idx = np.array([np.argmax(np.abs(u) >= align) if np.any(np.abs(u) >= align) else -1 for u in sim["u"]])
        if np.any(idx < 0):
            raise ValueError(f"align = {align}: seeds {np.flatnonzero(idx < 0).tolist()} never reach |u| >= {align}; "
                             "run longer (steps) or lower align")
        shift = t[idx]
        rel_steps = np.unique(np.concatenate([[0], (rec[:, None] - rec[idx][None, :]).ravel()]))
        rel_steps = rel_steps[(rel_steps >= 0) & (rel_steps <= (rec[-1] - rec[idx].max()))]
        grid = rel_steps * eta
        if grid.size > n_record:  # thin to a log grid over the common window
            keep = np.unique(np.round(np.geomspace(1, grid.size - 1, n_record - 1)).astype(int))
            rel_steps, grid = rel_steps[np.r_[0, keep]], grid[np.r_[0, keep]]
        y0 = np.stack([sim["u"][np.arange(n_seeds), idx], sim["s"][np.arange(n_seeds), idx]], axis=-1)
        theory = _theory_curves(theory_opt, model, y0, params, grid, rel_steps, opts)
        sim = {k: np.stack([np.interp(grid + shift[i], t, v[i]) for i in range(n_seeds)]) for k, v in sim.items()}
    # the theory curve of a seed may settle in the other basin (near u = 0 the sign is a coin flip):
    # fix its sign by its own end point, exactly as for the simulation (the law's paths are sign-fixed)
    theory = theory if law is not None else _sign_fixed(theory)
    run_params = {
        "optimizer": optimizer, "theory": theory_opt, "eta": eta, "steps": int(steps), "seeds": traj.seeds, "n_record": int(n_record),
        "prng": traj.config["prng"],
        "align": align, "d": problem.d, "s_star": problem.s_star, "sigma": problem.sigma,
        "problem": {"kind": problem.kind, **problem.meta}, "theory_params": params,
        "simulation_optimizer": sim_rule(optimizer), "model": model.to_dict(),
        "theory_start": "law" if law is not None else "seeds",
    }
    return Overlay(isotropic_system(theory_opt, model).name, np.asarray(grid, float), theory, sim, run_params, shift,
                   problem.s_star, saddle_level(problem.s_star, model, problem.sigma), measurements=measurements)
