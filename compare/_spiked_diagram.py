r"""The spiked experiment's θ table and (θ, η) phase diagram: reduced maps against full-matrix runs
(docs/theory.md §3C)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from phasedyn.simulate.matrix import run_matrix
from phasedyn.theory import spiked_problem
from phasedyn.theory import spiked as SP

from ._interrupt import check_complete, no_checkpoints
from ._spiked_config import SpikedConfig
from ._spiked_overlay import overlay_spiked


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
