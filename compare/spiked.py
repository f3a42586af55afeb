r"""Spiked covariance, GD against SpecGD: reduced theory over full-matrix simulation (issue 5, docs/theory.md §3C).

:func:`overlay_spiked` trains :math:`W \in \mathbb R^{m\times d}` (``phasedyn.simulate.matrix``, which never imports
the theory's equations) and iterates the reduced map of :mod:`phasedyn.theory.spiked` **per seed from that
seed's own** :math:`(a, b, c)` **at step 0**, on the same step grid. On the invariant manifold (``init``
``"identity"``, or ``"orthogonal"`` with :math:`m = d`) the two agree to round-off; off it (``"gaussian"``,
:math:`m < d`, online SGD) the gap measures how far the reduced model still holds. Online SGD is compared with
the population-GD map (its mean, without the :math:`O(\eta)` noise).

:func:`run_spiked` writes into ``out``:

* ``config.json``: the resolved :class:`SpikedConfig`;
* ``summary.json``: ``system``, ``params``, ``phases`` (``T_escape``: first time :math:`a \ge \sqrt m/2`;
  ``T_peak``: time of the largest :math:`|b|/|a|`; ``T_tol``: time from which :math:`|b|, |c| \le`
  ``tol`` :math:`\sqrt m`; each ``{"theory", "simulation"}`` in model time :math:`t = \eta k`, ``null`` when
  not reached), ``final`` (last seed-mean :math:`a, b, c`, ``loss``), ``gap`` (``{"max", "mean"}`` of
  :math:`|\text{theory} - \text{simulation}|` of seed means), ``version``, and ``measured`` with
  ``peak_ratio`` (max over every step of :math:`|b|/|a|`), ``amplification`` (``peak_ratio`` over its value at
  :math:`t = 0`), ``t_peak`` (:math:`\eta k` of the peak), ``alignment_final`` (simulation:
  :math:`|\hat w\cdot u_1|` of the top right singular vector; theory: 1 if :math:`|a| > |b|, |c|` else 0),
  ``steps_to_tol`` (``null`` if some seed is still above at the end), each ``{"theory", "simulation"}``
  (means over seeds). Also ``by_optimizer`` (``measured`` for both optimizers of the figure),
  ``amplification_table`` (θ = 1, 2, 4, 8, both optimizers) and ``phase_diagram`` (boundary per η).
* ``trajectories.npz``: ``t`` (:math:`\eta k`), ``steps``, ``theory_a``, ``theory_b``, ``theory_c``,
  ``theory_loss`` (seed means of :math:`|\cdot|`), ``sim_<x>_mean``, ``sim_<x>_std`` for
  ``x`` in ``a, b, c, loss, alignment, off``; the same prefixed ``gd_`` / ``specgd_`` for the figure's two runs.
* ``phase_diagram.npz``: ``theta``, ``eta``, ``<opt>_amplification``, ``<opt>_diverged``, ``<opt>_boundary``.
* figures (PNG + PDF): ``gd_vs_specgd``, ``phase_diagram``, ``peak_ratio``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from phasedyn.simulate import log_step_grid
from phasedyn.simulate.matrix import INITS, OPTIMIZERS, POLARS, MatrixTrajectory, run_matrix
from phasedyn.theory import iterate, spiked_problem
from phasedyn.theory import spiked as SP
from phasedyn.theory.validate import check_choice, check_int, check_positive

from .output import jsonable, package_version
from .plots import RC

STATS = ("a", "b", "c", "loss")
SIM_STATS = ("a", "b", "c", "loss", "alignment", "off")
COLORS = {"gd": "C0", "sgd": "C2", "specgd": "C1"}
NAMES = {"gd": "GD", "sgd": "SGD", "specgd": "SpecGD"}


# ----------------------------------------------------------------------------- configuration
@dataclasses.dataclass(frozen=True)
class SpikedConfig:
    r"""Arguments of ``phasedyn run spiked`` (defaults: the built-in experiment, 15-20 s on 2 cores).

    Attributes:
        theta: spike strength :math:`\theta > -1` (:math:`\Sigma = I + \theta e_1e_1^\top`).
        d: dimension (:math:`\ge 3`); m: width (:math:`\ge 1`, default :math:`d`).
        eta: step size (> 0), the same for both optimizers of the figure. SpecGD moves every coefficient by
            exactly :math:`\eta` per step, so pick :math:`\eta/c_0` away from small-denominator fractions
            (a coefficient landing within round-off of 0 has a gradient sign decided by round-off).
        optimizer: ``"gd"``, ``"sgd"`` (online, ``batch`` samples per step) or ``"specgd"``; the figure
            shows it against the other of GD/SpecGD.
        polar: SpecGD's polar factor, ``"svd"`` or ``"newton-schulz"``.
        init: ``"identity"`` (:math:`c_0 I`, needs :math:`m = d`), ``"orthogonal"`` or ``"gaussian"``.
        init_scale: :math:`c_0 > 0` (the reduced start is :math:`a = b = c = c_0` on the manifold).
        batch: SGD mini-batch size.
        steps: optimiser steps (default: :func:`phasedyn.theory.spiked.default_steps`, the longer of GD's
            and SpecGD's).
        seeds, seed: number of seeds (initialisations, SGD streams) and the seed of :math:`w^*`.
        n_record: log-spaced record points.
        tol: ``steps_to_tol`` threshold on :math:`|b|, |c|`, relative to :math:`\sqrt m`.
        phase_diagram: also compute the (θ, η) phase diagram, the θ table and their figures.
    """

    theta: float = 4.0
    d: int = 32
    m: int | None = None
    eta: float = 0.07
    optimizer: str = "gd"
    polar: str = "svd"
    init: str = "identity"
    init_scale: float = 0.01
    batch: int = 1
    steps: int | None = None
    seeds: int = 4
    seed: int = 0
    n_record: int = 200
    tol: float = 0.05
    phase_diagram: bool = True

    def resolved(self) -> "SpikedConfig":
        """Validated copy with ``m`` and ``steps`` filled in (``ValueError`` naming the parameter otherwise)."""
        theta = SP.check_theta(self.theta)
        d = check_int("d", self.d, 3)
        m = d if self.m is None else check_int("m", self.m, 1)
        eta = check_positive("eta", self.eta)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("polar", self.polar, POLARS)
        check_choice("init", self.init, INITS)
        c0 = check_positive("init_scale", self.init_scale)
        if self.init == "identity" and m != d:
            raise ValueError(f"init='identity' needs m = d, got m = {m}, d = {d} (use init='orthogonal' or 'gaussian')")
        check_int("batch", self.batch, 1)
        steps = (max(SP.default_steps("gd", m, eta, c0), SP.default_steps("specgd", m, eta, c0))
                 if self.steps is None else check_int("steps", self.steps, 1))
        check_int("seeds", self.seeds, 1)
        check_int("seed", self.seed, 0)
        check_int("n_record", self.n_record, 2)
        check_positive("tol", self.tol)
        if not isinstance(self.phase_diagram, bool):
            raise ValueError(f"phase_diagram must be True or False, got {self.phase_diagram!r}")
        return dataclasses.replace(self, theta=theta, d=d, m=m, eta=eta, init_scale=c0, steps=steps)


#: the built-in spiked experiments for the main job (``phasedyn`` with no arguments)
DEFAULT_SPIKED: list[SpikedConfig] = [SpikedConfig()]


# ----------------------------------------------------------------------------- overlay
@dataclasses.dataclass(frozen=True)
class SpikedOverlay:
    r"""Reduced theory and full-matrix simulation of one optimizer on one step grid.

    Attributes:
        optimizer: ``"gd"``, ``"sgd"`` or ``"specgd"``; system: the reduced system's name.
        steps, t: record steps and :math:`t = \eta k`, ``(n_t,)``.
        theory: ``{a, b, c, loss}`` → ``(n_seeds, n_t)`` (:math:`|a|, |b|, |c|`).
        sim: ``{a, b, c, loss, alignment, off}`` → ``(n_seeds, n_t)``.
        tracked: :class:`phasedyn.theory.spiked.Tracked` of the theory (every step).
        traj: the :class:`~phasedyn.simulate.matrix.MatrixTrajectory`.
        params: JSON-serialisable parameters.
    """

    optimizer: str
    system: str
    steps: np.ndarray
    t: np.ndarray
    theory: dict[str, np.ndarray]
    sim: dict[str, np.ndarray]
    tracked: SP.Tracked
    traj: MatrixTrajectory
    params: dict

    def mean(self, which: str, stat: str) -> np.ndarray:
        """Seed mean of ``stat`` for ``which`` in {``"theory"``, ``"sim"``}."""
        return getattr(self, which)[stat].mean(axis=0)

    def std(self, which: str, stat: str) -> np.ndarray:
        """Seed standard deviation."""
        return getattr(self, which)[stat].std(axis=0)

    def gap(self) -> dict[str, dict[str, float]]:
        """``{stat: {"max", "mean"}}`` of :math:`|\\text{theory} - \\text{simulation}|` between seed means."""
        out = {}
        for k in STATS:
            diff = np.abs(self.mean("theory", k) - self.mean("sim", k))
            out[k] = {"max": float(diff.max()), "mean": float(diff.mean())}
        return out

    def final(self) -> dict[str, dict[str, float]]:
        """Last seed-mean values."""
        return {"theory": {k: float(self.mean("theory", k)[-1]) for k in STATS},
                "simulation": {k: float(self.mean("sim", k)[-1]) for k in (*STATS, "alignment", "off")}}

    def measured(self) -> dict[str, dict[str, float | None]]:
        """The ``measured`` block of ``summary.json`` (module docstring)."""
        eta, tr, sim = self.params["eta"], self.tracked, self.traj
        th_final = np.abs(tr.final)
        th_align = (th_final[:, 0] > np.maximum(th_final[:, 1], th_final[:, 2])).astype(float)

        def to_tol(x: np.ndarray) -> float | None:
            return None if np.any(x < 0) else float(np.mean(x))

        return {
            "peak_ratio": {"theory": float(tr.peak_ratio.mean()), "simulation": float(sim.peak_ratio.mean())},
            "amplification": {"theory": float(tr.amplification.mean()), "simulation": float(sim.amplification.mean())},
            "t_peak": {"theory": float(eta * tr.peak_step.mean()), "simulation": float(eta * sim.peak_step.mean())},
            "alignment_final": {"theory": float(th_align.mean()),
                                "simulation": float(sim.stats["alignment"][:, -1].mean())},
            "steps_to_tol": {"theory": to_tol(tr.steps_to_tol), "simulation": to_tol(sim.steps_to_tol)},
        }

    def phases(self) -> dict[str, dict[str, float | None]]:
        """``T_escape``, ``T_peak``, ``T_tol`` (module docstring), model time :math:`t = \\eta k`."""
        eta, m = self.params["eta"], self.params["m"]
        meas = self.measured()

        def escape(which: str) -> float | None:
            a = self.mean(which, "a")
            hit = np.flatnonzero(a >= 0.5 * np.sqrt(m))
            return float(self.t[hit[0]]) if hit.size else None

        tol = meas["steps_to_tol"]
        return {
            "T_escape": {"theory": escape("theory"), "simulation": escape("sim")},
            "T_peak": meas["t_peak"],
            "T_tol": {k: None if v is None else eta * v for k, v in tol.items()},
        }


def overlay_spiked(
    problem, optimizer: str, eta: float, steps: int, m: int, init: str = "identity", init_scale: float = 0.01,
    seeds: int = 4, polar: str = "svd", batch: int = 1, tol: float = 0.05, n_record: int = 200,
    progress: bool | None = None,
) -> SpikedOverlay:
    r"""Simulate ``problem`` (a spiked :class:`~phasedyn.theory.Problem`) and overlay the reduced map.

    The theory starts per seed from the simulation's own :math:`(a, b, c)` at step 0; the reduced system
    needs :math:`v = e_1 \perp w^*` (checked: ``ValueError`` otherwise). ``optimizer="sgd"`` is compared with
    the population-GD map. Records on the log grid of ``n_record`` steps plus each record step's predecessor.
    Other arguments as in :func:`~phasedyn.simulate.matrix.run_matrix`.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if problem.kind != "spiked":
        raise ValueError("overlay_spiked needs a spiked problem (phasedyn.theory.spiked_problem), "
                         f"got kind {problem.kind!r}")
    v = np.zeros(problem.d)
    v[0] = 1.0
    SP.check_geometry(problem.w_star, v)
    theta = float(problem.meta["theta"])
    grid = log_step_grid(check_int("steps", steps, 1), check_int("n_record", n_record, 2))
    # each record step k comes with k - 1, so that figures can show the envelope of SpecGD's period-2 chatter
    record = np.unique(np.concatenate([grid, np.maximum(grid - 1, 0)]))
    traj = run_matrix(problem, optimizer, eta, steps, m, init, init_scale, seeds, spikes=v, polar=polar,
                      batch=batch, tol=tol, record_steps=record, progress=progress)
    sim = dict(traj.stats)
    theory_opt = "specgd" if optimizer == "specgd" else "gd"
    system = SP.two_layer_system(theory_opt)
    y0 = np.stack([sim["a"][:, 0], sim["b"][:, 0], sim["c"][:, 0]], axis=-1)
    p = SP.spiked_params(system, theta, m, problem.d, eta)
    p = {k: np.full(y0.shape[0], val) for k, val in p.items()}
    sol = iterate(system, y0, p, int(traj.steps[-1]), record_steps=traj.steps, blowup=1e8)
    theory = {k: np.abs(sol[k]) for k in ("a", "b", "c")}
    theory["loss"] = sol["loss"]
    tracked = SP.track(system, y0, p, int(steps), tol=tol)
    params = {
        "theta": theta, "d": problem.d, "m": int(m), "eta": float(eta), "steps": int(steps), "optimizer": optimizer,
        "theory": system.name, "polar": polar if optimizer == "specgd" else None, "init": init,
        "init_scale": float(init_scale), "batch": batch if optimizer == "sgd" else None, "tol": float(tol),
        "seeds": traj.seeds, "n_record": int(n_record), "problem": {"kind": problem.kind, **problem.meta},
    }
    return SpikedOverlay(optimizer, system.name, traj.steps, traj.t, theory, sim, tracked, traj, params)


# ----------------------------------------------------------------------------- θ table and phase diagram
def amplification_table(cfg: SpikedConfig, thetas=(1.0, 2.0, 4.0, 8.0), optimizers=("gd", "specgd"),
                        progress: bool | None = False) -> dict:
    """Amplification of :math:`|b|/|a|` at each θ for each optimizer, theory and simulation (seed means).

    Uses ``cfg``'s d, m, η, init, seeds, steps. Returns ``{optimizer: {theta: {"theory", "simulation"}}}``
    (θ keys as strings, for JSON).
    """
    cfg = cfg.resolved()
    out: dict = {opt: {} for opt in optimizers}
    for theta in thetas:
        problem = spiked_problem(cfg.d, float(theta), seed=cfg.seed)
        for opt in optimizers:
            ov = overlay_spiked(problem, opt, cfg.eta, cfg.steps, cfg.m, cfg.init, cfg.init_scale, cfg.seeds,
                                cfg.polar, cfg.batch, cfg.tol, n_record=cfg.n_record, progress=progress)
            out[opt][f"{float(theta):g}"] = ov.measured()["amplification"]
    return out


def phase_diagram(cfg: SpikedConfig, thetas=None, etas=None, sim_points=None, progress: bool | None = False) -> dict:
    r"""Misalignment over :math:`(\theta, \eta)` for GD and SpecGD from :math:`W(0) = c_0 I`.

    Theory: the reduced maps on the grid (:func:`phasedyn.theory.spiked.scan_amplification`) and, per η, the
    boundary by bisection (:func:`~phasedyn.theory.spiked.boundary_bisect`); the predicted boundary is
    θ = 2 (small-start limit) and :func:`~phasedyn.theory.spiked.start_threshold` at this :math:`c_0`.
    Simulation: the full-matrix run at each of ``sim_points`` (θ, η), ``cfg.seeds`` seeds (mean). "Misaligned" means
    amplification > :data:`~phasedyn.theory.spiked.MISALIGNED_LEVEL`.
    """
    cfg = cfg.resolved()
    thetas = np.linspace(0.25, 8.0, 32) if thetas is None else np.asarray(thetas, float)
    if etas is None:
        eta_max = 0.9 * cfg.m / 12  # GD's map is stable at the target for eta < m/12
        etas = np.geomspace(eta_max / 100, eta_max, 9)
    etas = np.asarray(etas, float)
    if sim_points is None:
        sim_points = [(t_, e_) for t_ in (1.0, 3.0, 6.0) for e_ in (etas[1], etas[-3])]
    out: dict = {"theta": thetas, "eta": etas, "predicted": 2.0,
                 "start_threshold": _maybe(lambda: SP.start_threshold(cfg.init_scale, cfg.m, cfg.d)),
                 "level": SP.MISALIGNED_LEVEL, "sim": {}}
    for opt in ("gd", "specgd"):
        scan = SP.scan_amplification(opt, thetas, etas, cfg.m, cfg.d, cfg.init_scale)
        out[f"{opt}_amplification"] = scan["amplification"]
        out[f"{opt}_diverged"] = scan["diverged"]
        out[f"{opt}_boundary"] = SP.boundary_bisect(opt, etas, cfg.m, cfg.d, cfg.init_scale,
                                                    lo=float(thetas[0]), hi=float(thetas[-1]))
        pts = []
        for th_, e_ in sim_points:
            problem = spiked_problem(cfg.d, float(th_), seed=cfg.seed)
            steps = SP.default_steps(opt, cfg.m, float(e_), cfg.init_scale)
            try:
                tr = run_matrix(problem, opt, float(e_), steps, cfg.m, "identity" if cfg.m == cfg.d else "orthogonal",
                                cfg.init_scale, cfg.seeds, polar="svd", n_record=2, progress=progress)
                amp = float(tr.amplification.mean())
            except RuntimeError:  # divergence: reported as None, never plotted as a value
                amp = None
            pts.append({"theta": float(th_), "eta": float(e_), "amplification": amp,
                        "misaligned": None if amp is None else bool(amp > SP.MISALIGNED_LEVEL)})
        out["sim"][opt] = pts
    return out


def _maybe(fn: Callable[[], float]) -> float | None:
    try:
        return fn()
    except ValueError:
        return None


# ----------------------------------------------------------------------------- figures
def _norm_label(stat: str) -> str:
    return {"a": r"signal $|a|/\sqrt{m}$", "b": r"spike $|b|/\sqrt{m}$", "c": r"bulk $|c|/\sqrt{m}$",
            "ratio": r"misalignment $|b|/|a|$"}[stat]


def envelope(steps: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(k, max(x_k, x_{k-1}))`` at every recorded ``k >= 1`` whose predecessor is recorded too (along the
    last axis of ``x``)."""
    steps = np.asarray(steps)
    pos = np.searchsorted(steps, steps - 1)
    has = (steps >= 1) & (pos < steps.size) & (steps[np.minimum(pos, steps.size - 1)] == steps - 1)
    k = np.flatnonzero(has)
    return steps[k], np.maximum(x[..., k], x[..., pos[k]])


def plot_gd_vs_specgd(overlays: list[SpikedOverlay], out: Path, stem: str = "gd_vs_specgd") -> list[Path]:
    r"""2×2 figure: :math:`a`, :math:`b`, :math:`c` (over :math:`\sqrt m`) and :math:`|b|/|a|` against steps, one
    colour per optimizer, simulation bands (mean ± sd over seeds) under dashed theory lines. Returns PNG and PDF paths.

    Every curve is the envelope :math:`\max(x_k, x_{k-1})` (:func:`envelope`): once converged SpecGD moves each
    coefficient by :math:`\pm\eta` in a period-2 cycle, which a log-spaced grid would alias into a zigzag."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 4.8), layout="constrained")
        axes = fig.subplots(2, 2)
        for ov in overlays:
            col = COLORS[ov.optimizer]
            scale = np.sqrt(ov.params["m"])
            series = {x: (ov.sim[x] / scale, ov.theory[x] / scale) for x in ("a", "b", "c")}
            series["ratio"] = (ov.sim["b"] / ov.sim["a"], ov.theory["b"] / ov.theory["a"])
            for ax, name in zip(axes.flat, ("a", "b", "c", "ratio")):
                k, sim = envelope(ov.steps, series[name][0])
                _, th = envelope(ov.steps, series[name][1])
                mean, sd = sim.mean(0), sim.std(0)
                lo = np.maximum(mean - sd, 1e-300) if name != "a" else mean - sd
                ax.fill_between(k, lo, mean + sd, color=col, alpha=0.25, lw=0)
                ax.plot(k, mean, color=col, lw=1.6, alpha=0.6,
                        label=f"{NAMES[ov.optimizer]} simulation ({sim.shape[0]} seeds)")
                ax.plot(k, th.mean(0), color="k" if ov.optimizer == "gd" else "0.35", ls="--", lw=0.9,
                        label=f"{NAMES[ov.optimizer]} reduced map")
        tol = overlays[0].params["tol"]
        for ax, name in zip(axes.flat, ("a", "b", "c", "ratio")):
            ax.set_xscale("log")
            ax.set_xlabel("step $k$")
            ax.set_ylabel(_norm_label(name))
            if name in ("b", "c"):
                ax.set_yscale("log")
                ax.axhline(tol, color="0.5", lw=0.7, ls=":")
            if name == "ratio":
                ax.set_yscale("log")
                ax.axhline(1.0, color="0.5", lw=0.7, ls=":")
        axes[1, 1].legend(frameon=False, loc="lower left")
        p = overlays[0].params
        fig.suptitle(rf"spiked $\Sigma = I + \theta vv^\top$, $\theta = {p['theta']:g}$, $d = {p['d']}$, "
                     rf"$m = {p['m']}$, $\eta = {p['eta']:g}$, $W(0)$: {p['init']}, $c_0 = {p['init_scale']:g}$ "
                     "(envelope over 2 steps; dotted: tol, 1)", fontsize=9)
        paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
        fig.savefig(paths[0], dpi=300)
        fig.savefig(paths[1])
    return paths


def plot_phase_diagram(pd: dict, out: Path, stem: str = "phase_diagram") -> list[Path]:
    r"""Two panels (GD, SpecGD) over :math:`(\theta, \eta)`: colour :math:`\log_{10}` amplification (reduced map),
    grey where the map diverges, θ = 2 dashed, measured boundary solid, simulation points (filled: misaligned)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    th, et = pd["theta"], pd["eta"]
    finite = [np.log10(pd[f"{o}_amplification"][~pd[f"{o}_diverged"]]) for o in ("gd", "specgd")]
    vmax = max(0.05, *(float(v.max()) for v in finite if v.size))
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 3.2), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, opt in zip(axes, ("gd", "specgd")):
            amp, div = pd[f"{opt}_amplification"], pd[f"{opt}_diverged"]
            val = np.where(div, np.nan, np.log10(np.maximum(amp, 1.0)))
            mesh = ax.pcolormesh(th, et, val, cmap="Reds", vmin=0.0, vmax=vmax, shading="nearest")
            if div.any():
                ax.pcolormesh(th, et, np.where(div, 1.0, np.nan), cmap="Greys", vmin=0, vmax=2, shading="nearest")
            ax.axvline(pd["predicted"], color="k", ls="--", lw=1.0)
            bnd = pd[f"{opt}_boundary"]
            if np.any(np.isfinite(bnd)):
                ax.plot(bnd, et, color="C0", lw=1.6)
            for pt in pd["sim"][opt]:
                if pt["amplification"] is None:
                    ax.plot(pt["theta"], pt["eta"], "x", color="k", ms=5)
                    continue
                ax.plot(pt["theta"], pt["eta"], "o", ms=5, mec="k", mew=0.8,
                        mfc="k" if pt["misaligned"] else "white")
            ax.set_yscale("log")
            ax.set_xlabel(r"spike strength $\theta$")
            ax.set_title(f"{NAMES[opt]}: " + ("misaligned right of the boundary" if np.any(np.isfinite(bnd))
                                               else "never misaligned"))
        axes[0].set_ylabel(r"step size $\eta$")
        handles = [
            Line2D([], [], color="k", ls="--", lw=1.0, label=r"predicted $\theta = 2$"),
            Line2D([], [], color="C0", lw=1.6, label="boundary found (reduced map)"),
            Line2D([], [], ls="", marker="o", mfc="k", mec="k", ms=5, label="simulation: misaligned"),
            Line2D([], [], ls="", marker="o", mfc="white", mec="k", ms=5, label="simulation: aligned"),
            Patch(color="0.6", label="GD diverges"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=5, frameon=False, fontsize=6.5)
        fig.colorbar(mesh, ax=axes, label=r"$\log_{10}$ amplification of $|b|/|a|$", shrink=0.9)
        paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
        fig.savefig(paths[0], dpi=300)
        fig.savefig(paths[1])
    return paths


def plot_peak_ratio(table: dict, cfg: SpikedConfig, out: Path, stem: str = "peak_ratio") -> list[Path]:
    r"""Amplification of :math:`|b|/|a|` against θ: reduced-map curves (GD, SpecGD) and the table's simulation
    points."""
    cfg = cfg.resolved()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    grid = np.linspace(0.0, 9.0, 91)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.4, 2.6), layout="constrained")
        ax = fig.subplots()
        on_manifold = cfg.init == "identity" or (cfg.init == "orthogonal" and cfg.m >= cfg.d)
        for opt in ("gd", "specgd"):
            system = SP.two_layer_system(opt)
            if on_manifold:  # every seed starts at a = b = c = c0: one theory curve
                p = np.stack([grid, *(np.full_like(grid, x) for x in (cfg.m, cfg.d, cfg.eta))], -1)
                tr = SP.track(system, system.pack_state(SP.identity_start(cfg.init_scale)), p, int(cfg.steps))
                ax.plot(grid, tr.amplification, color=COLORS[opt], lw=1.2, label=f"{NAMES[opt]} reduced map")
            pts = table.get(opt, {})
            ths = np.array([float(k) for k in pts])
            ax.plot(ths, [pts[k]["simulation"] for k in pts], "s" if opt == "gd" else "o", color=COLORS[opt],
                    mec="k", mew=0.6, ms=6.5 if opt == "gd" else 4, label=f"{NAMES[opt]} simulation", zorder=3)
            if not on_manifold:  # per-seed theory from each seed's own start: points, not a curve
                ax.plot(ths, [pts[k]["theory"] for k in pts], "+", color="k", ms=7, mew=1.0, zorder=4,
                        label="reduced map (from the seeds' starts)" if opt == "gd" else None)
        ax.axvline(2.0, color="k", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel(r"spike strength $\theta$")
        ax.set_ylabel(r"amplification of $|b|/|a|$")
        ax.legend(frameon=False, loc="upper left")
        ax.set_title(rf"$d = m = {cfg.m}$, $c_0 = {cfg.init_scale:g}$, $\eta = {cfg.eta:g}$" if cfg.m == cfg.d else
                     rf"$d = {cfg.d}$, $m = {cfg.m}$, $c_0 = {cfg.init_scale:g}$, $\eta = {cfg.eta:g}$")
        paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
        fig.savefig(paths[0], dpi=300)
        fig.savefig(paths[1])
    return paths


# ----------------------------------------------------------------------------- the experiment
def run_spiked(config: SpikedConfig, out: Path, progress: bool | None = None) -> dict:
    """Run one spiked experiment into ``out``; returns ``{"summary": dict, "files": [paths]}`` (module docstring)."""
    cfg = config.resolved()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    (out / "config.json").write_text(json.dumps({"system": "spiked", **dataclasses.asdict(cfg),
                                                 "version": package_version()}, indent=2) + "\n")
    problem = spiked_problem(cfg.d, cfg.theta, seed=cfg.seed)
    args = dict(problem=problem, eta=cfg.eta, steps=cfg.steps, m=cfg.m, init=cfg.init, init_scale=cfg.init_scale,
                seeds=cfg.seeds, polar=cfg.polar, batch=cfg.batch, tol=cfg.tol, n_record=cfg.n_record,
                progress=progress)
    main = overlay_spiked(optimizer=cfg.optimizer, **args)
    other = "specgd" if cfg.optimizer in ("gd", "sgd") else "gd"
    companion = overlay_spiked(optimizer=other, **args)
    overlays = [main, companion] if cfg.optimizer != "specgd" else [companion, main]

    data = {"t": main.t, "steps": main.steps}
    for prefix, ov in [("", main)] + [(f"{o.optimizer}_", o) for o in overlays]:
        for k in STATS:
            data[f"{prefix}theory_{k}"] = ov.mean("theory", k)
        for k in SIM_STATS:
            data[f"{prefix}sim_{k}_mean"] = ov.mean("sim", k)
            data[f"{prefix}sim_{k}_std"] = ov.std("sim", k)
    files = [out / "config.json", out / "summary.json", out / "trajectories.npz"]
    np.savez(files[2], **data)
    figs = plot_gd_vs_specgd(overlays, out)

    summary = {
        "system": main.system,
        "params": main.params,
        "phases": main.phases(),
        "final": main.final(),
        "gap": main.gap(),
        "version": package_version(),
        "measured": main.measured(),
        "by_optimizer": {o.optimizer: o.measured() for o in overlays},
    }
    if cfg.phase_diagram:
        table = amplification_table(cfg, progress=False)
        pd = phase_diagram(cfg, progress=False)
        summary["amplification_table"] = table
        summary["phase_diagram"] = {
            "eta": pd["eta"].tolist(), "predicted": pd["predicted"], "start_threshold": pd["start_threshold"],
            "level": pd["level"],
            "boundary": {o: [None if not np.isfinite(x) else float(x) for x in pd[f"{o}_boundary"]]
                         for o in ("gd", "specgd")},
            "sim": pd["sim"],
        }
        np.savez(out / "phase_diagram.npz", theta=pd["theta"], eta=pd["eta"],
                 **{f"{o}_{k}": pd[f"{o}_{k}"] for o in ("gd", "specgd")
                    for k in ("amplification", "diverged", "boundary")})
        files.append(out / "phase_diagram.npz")
        figs += plot_phase_diagram(pd, out) + plot_peak_ratio(table, cfg, out)
    summary["params"]["wall_time_s"] = round(time.perf_counter() - start, 3)
    files[1].write_text(json.dumps(summary, indent=2, default=jsonable) + "\n")
    return {"summary": summary, "files": [*files, *figs]}


# ----------------------------------------------------------------------------- command line helpers
#: ``(folder, runner, config)`` entries in the format of :data:`phasedyn.compare.experiments.DEFAULTS`
DEFAULT_EXPERIMENTS = [(f"spiked-{cfg.optimizer}", run_spiked, cfg) for cfg in DEFAULT_SPIKED]


def add_parser(systems) -> None:
    """Register ``phasedyn run spiked`` on the ``run`` subparsers (``systems``) of :mod:`.cli`."""
    p = systems.add_parser("spiked", help="spiked covariance, GD vs SpecGD, full matrix vs reduced (a, b, c) map")
    d = SpikedConfig()
    p.add_argument("--theta", type=float, default=d.theta, help="spike strength (> -1)")
    p.add_argument("--d", type=int, default=d.d, help="dimension (>= 3)")
    p.add_argument("--m", type=int, default=None, help="width (>= 1; default d)")
    p.add_argument("--eta", type=float, default=d.eta, help="step size (> 0)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--polar", choices=POLARS, default=d.polar, help="SpecGD polar factor")
    p.add_argument("--init", choices=INITS, default=d.init)
    p.add_argument("--init-scale", type=float, default=d.init_scale, help="c0 of W(0) (> 0)")
    p.add_argument("--batch", type=int, default=d.batch, help="SGD mini-batch (>= 1)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (>= 1)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="number of seeds (>= 1)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the target w*")
    p.add_argument("--n-record", type=int, default=d.n_record, help="log-spaced record points")
    p.add_argument("--tol", type=float, default=d.tol, help="steps_to_tol threshold on |b|, |c| over sqrt(m)")
    p.add_argument("--no-phase-diagram", action="store_true",
                   help="skip the (theta, eta) phase diagram and the theta table")
    p.add_argument("--out", type=Path, default=None, help="output folder (default phasedyn-out/spiked-OPT)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args) -> SpikedConfig:
    """The :class:`SpikedConfig` of parsed ``phasedyn run spiked`` arguments (resolved: raises ``ValueError``)."""
    return SpikedConfig(theta=args.theta, d=args.d, m=args.m, eta=args.eta, optimizer=args.optimizer, polar=args.polar,
                        init=args.init, init_scale=args.init_scale, batch=args.batch, steps=args.steps,
                        seeds=args.seeds, seed=args.seed, n_record=args.n_record, tol=args.tol,
                        phase_diagram=not args.no_phase_diagram).resolved()


def report(name: str, result: dict) -> str:
    """One line of results plus the files, for the command line."""
    s = result["summary"]
    ms = s["measured"]
    f = lambda x: "n/a" if x is None else f"{x:.4g}"  # noqa: E731
    lines = [f"[{name}] amplification of |b|/|a|: theory {f(ms['amplification']['theory'])} / simulation "
             f"{f(ms['amplification']['simulation'])}; steps to tol: theory {f(ms['steps_to_tol']['theory'])} / "
             f"simulation {f(ms['steps_to_tol']['simulation'])}; max |a gap| {s['gap']['a']['max']:.3g}; "
             f"{s['params'].get('wall_time_s', 0):.1f} s"]
    lines += [f"    {p}" for p in result["files"]]
    return "\n".join(lines)
