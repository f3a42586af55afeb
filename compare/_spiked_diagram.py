r"""The spiked experiment's θ tables and (θ, η) phase diagram: reduced maps against full-matrix runs
(docs/theory.md §3C): :func:`amplification_table` (GD and SpecGD), :func:`polar_table` (SpecGD's polar factor: exact,
converged Newton–Schulz, Muon's quintic), :func:`phase_diagram`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from phasedyn.simulate.matrix import POLARS, run_matrix
from phasedyn.theory import spiked_problem
from phasedyn.theory import spiked as SP
from phasedyn.theory.validate import check_choice

from ._interrupt import check_complete, no_checkpoints
from ._spiked_config import SpikedConfig
from ._spiked_overlay import overlay_spiked, reduced_optimizer


def amplification_table(cfg: SpikedConfig, thetas=(1.0, 2.0, 4.0, 8.0), optimizers=("gd", "specgd"),
                        progress: bool | None = False, checkpoints: Callable[[str], dict] = no_checkpoints) -> dict:
    """Amplification of :math:`|b|/|a|` at each θ for each optimizer, theory and simulation (seed means).

    Uses ``cfg``'s d, m, η, init, seeds, steps. Returns ``{optimizer: {theta: {"theory", "simulation"}}}``
    (θ keys as strings, for JSON). ``checkpoints(name)``: each simulation's ``checkpoint``/``resume`` keywords
    (:class:`~._interrupt.Checkpoints`; names ``table-<optimizer>-theta<θ>``).
    """
    cfg = cfg.resolved()
    out: dict = {opt: {} for opt in optimizers}
    for theta in thetas:
        problem = spiked_problem(cfg.d, float(theta), seed=cfg.seed)
        for opt in optimizers:
            ov = overlay_spiked(problem, opt, cfg.eta, cfg.steps, cfg.m, cfg.init, cfg.init_scale, cfg.seeds,
                                cfg.polar, cfg.batch, cfg.tol, n_record=cfg.n_record, progress=progress,
                                model=cfg.model, **checkpoints(f"table-{opt}-theta{float(theta):g}"))
            out[opt][f"{float(theta):g}"] = ov.measured()["amplification"]
    return out


def polar_table(cfg: SpikedConfig, thetas=(1.0, 2.0, 4.0, 8.0), polars=POLARS, etas=None, scan_thetas=None,
                progress: bool | None = False, checkpoints: Callable[[str], dict] = no_checkpoints) -> dict:
    r"""Amplification of :math:`|b|/|a|` under SpecGD with each polar factor: the exact one (``"svd"``), Newton–Schulz
    run to convergence and Muon's 5-step quintic (``"muon"``).

    ``table``: at each θ of ``thetas`` and ``cfg``'s η, d, m, init, seeds, steps, the full-matrix run with that
    ``polar`` and its reduced map (:func:`~._spiked_overlay.reduced_optimizer`: the sign map for the exact and the
    converged factor, Muon's map for ``"muon"``), ``{polar: {theta: {"theory", "simulation", "t_peak"}}}`` (seed
    means; ``t_peak`` = η × step of the peak, theory's). ``scan``: the reduced maps alone from
    :math:`W(0) = c_0 I` over ``scan_thetas`` (default 0..8, 33 points) × ``etas`` (default the phase diagram's
    grid), :func:`~phasedyn.theory.spiked.scan_amplification`: ``{"theta", "eta", "exact", "muon"}`` (arrays
    ``(n_eta, n_theta)``; ``"exact"`` is also converged Newton–Schulz's), with Muon's largest amplification and
    where (``muon_max``). ``checkpoints(name)``: names ``polar-<polar>-theta<θ>``.
    """
    cfg = cfg.resolved()
    for pol in polars:
        check_choice("polars", pol, POLARS)
    table: dict = {pol: {} for pol in polars}
    for theta in thetas:
        problem = spiked_problem(cfg.d, float(theta), seed=cfg.seed)
        for pol in polars:
            ov = overlay_spiked(problem, "specgd", cfg.eta, cfg.steps, cfg.m, cfg.init, cfg.init_scale, cfg.seeds,
                                pol, cfg.batch, cfg.tol, n_record=cfg.n_record, progress=progress, model=cfg.model,
                                **checkpoints(f"polar-{pol}-theta{float(theta):g}"))
            ms = ov.measured()
            table[pol][f"{float(theta):g}"] = {**ms["amplification"], "t_peak": ms["t_peak"]["theory"],
                                               "reduced_map": reduced_optimizer("specgd", pol)}
    scan_thetas = np.linspace(0.0, 8.0, 33) if scan_thetas is None else np.asarray(scan_thetas, float)
    etas = default_etas(cfg) if etas is None else np.asarray(etas, float)
    scan = {"theta": scan_thetas, "eta": etas}
    for name, opt in (("exact", "specgd"), ("muon", "muon")):
        res = SP.scan_amplification(opt, scan_thetas, etas, cfg.m, cfg.d, cfg.init_scale)
        scan[name] = np.where(res["diverged"], np.nan, res["amplification"])
    i, j = np.unravel_index(np.nanargmax(scan["muon"]), scan["muon"].shape)
    scan["muon_max"] = {"amplification": float(scan["muon"][i, j]), "theta": float(scan_thetas[j]),
                        "eta": float(etas[i])}
    return {"eta": cfg.eta, "theta": [float(t) for t in thetas], "table": table, "scan": scan}


def default_etas(cfg: SpikedConfig) -> np.ndarray:
    """The phase diagram's η grid: 9 log-spaced values up to 0.9 of GD's stability limit :math:`m/12`."""
    eta_max = 0.9 * cfg.m / 12  # GD's map is stable at the target for eta < m/12
    return np.geomspace(eta_max / 100, eta_max, 9)


def phase_diagram(cfg: SpikedConfig, thetas=None, etas=None, sim_points=None, progress: bool | None = False,
                  checkpoints: Callable[[str], dict] = no_checkpoints) -> dict:
    r"""Misalignment over :math:`(\theta, \eta)` for GD and SpecGD from :math:`W(0) = c_0 I`.

    Theory: the reduced maps on the grid (:func:`phasedyn.theory.spiked.scan_amplification`) and, per η, the
    boundary by bisection (:func:`~phasedyn.theory.spiked.boundary_bisect`); the predicted boundary is
    θ = 2 (small-start limit) and :func:`~phasedyn.theory.spiked.start_threshold` at this :math:`c_0`.
    Simulation: the full-matrix run at each of ``sim_points`` (θ, η), ``cfg.seeds`` seeds (mean). "Misaligned" means
    amplification > :data:`~phasedyn.theory.spiked.MISALIGNED_LEVEL`. ``checkpoints(name)``: each simulation's
    ``checkpoint``/``resume`` keywords (names ``diagram-<optimizer>-<index>``); a SIGINT that stops one raises
    :class:`~._interrupt.Interrupted`.
    """
    cfg = cfg.resolved()
    thetas = np.linspace(0.25, 8.0, 32) if thetas is None else np.asarray(thetas, float)
    etas = default_etas(cfg) if etas is None else np.asarray(etas, float)
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
        for i, (th_, e_) in enumerate(sim_points):
            problem = spiked_problem(cfg.d, float(th_), seed=cfg.seed)
            steps = SP.default_steps(opt, cfg.m, float(e_), cfg.init_scale)
            try:
                tr = run_matrix(problem, opt, float(e_), steps, cfg.m, "identity" if cfg.m == cfg.d else "orthogonal",
                                cfg.init_scale, cfg.seeds, polar="svd", n_record=2, progress=progress,
                                **checkpoints(f"diagram-{opt}-{i}"))
                check_complete(tr)
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
