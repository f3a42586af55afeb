r"""Spiked covariance, GD against SpecGD: reduced theory over full-matrix simulation (issue 5, docs/theory.md §3C).

One namespace over private modules, one job each: the run's arguments (:class:`SpikedConfig`, one field per
command-line flag; ``add_parser`` / ``config_from_args`` wire them into any argparse ``run`` subparsers;
``_spiked_config``), the overlay (:func:`overlay_spiked`, returning the common :class:`~phasedyn.compare.Overlay`;
``_spiked_overlay``), the θ table and phase diagram (``_spiked_diagram``), the
figures (``_spiked_plots``), and here the experiment :func:`run_spiked` and its report line.

:func:`run_spiked` writes into ``out`` (summary schema 2; README "Output format"):

* ``config.json``: the resolved :class:`SpikedConfig`;
* ``summary.json``: the common keys of :func:`phasedyn.compare.summary` (``system``, ``params``, ``phases`` with
  ``T1``, ``T1p`` (``null``: no single saddle level), ``T2`` of :math:`u = |a|/\sqrt m` and
  :math:`s = \mathrm{tr}(W^\top W\Sigma)/m`, ``final`` and ``gap`` over ``u``, ``s``, ``loss``, ``mse`` and
  :math:`a, b, c`, ``version``, ``schema``), then ``measured`` (:func:`~._spiked_overlay.measurements`:
  ``peak_ratio``, ``amplification``, ``t_peak``, ``alignment_final``, ``steps_to_tol``, ``t_tol``, ``t_escape``,
  each ``{"theory", "simulation"}``), ``by_optimizer`` (``measured`` for both optimizers of the figure),
  ``amplification_table`` (θ = 1, 2, 4, 8, both optimizers), ``polar_table`` (θ = 1, 2, 4, 8 under SpecGD with
  the exact polar factor, converged Newton–Schulz and Muon's quintic, :func:`polar_table`: ``eta``, ``theta``,
  ``table``, and of its reduced-map scan over (θ, η) ``muon_max`` and ``muon_max_by_eta``) and ``phase_diagram``
  (boundary per η); ``params`` carries ``polar`` and ``theory`` (the reduced map compared: ``spiked-two-layer-muon``
  for ``--polar muon``);
* ``trajectories.npz``: the common ``t``, ``theory_<stat>``, ``sim_<stat>_mean``, ``sim_<stat>_std`` for ``u``, ``s``,
  ``loss``, ``mse``, plus ``steps``, ``theory_<x>`` for ``x`` in ``a, b, c`` (seed means of :math:`|\cdot|`),
  ``sim_<x>_mean``, ``sim_<x>_std`` for ``x`` in ``a, b, c, alignment, off``, and every curve prefixed ``gd_`` /
  ``specgd_`` for the figure's two runs;
* ``phase_diagram.npz``: ``theta``, ``eta``, ``<opt>_amplification``, ``<opt>_diverged``, ``<opt>_boundary``;
* ``polar_amplification.npz``: ``theta``, ``eta``, ``exact``, ``muon`` (reduced-map amplification, NaN: diverged);
* figures (PNG + PDF): ``gd_vs_specgd``, ``phase_diagram``, ``peak_ratio``, ``polar_amplification``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from phasedyn.theory import spiked_problem

from . import _cost
from ._folders import check_out, run_staged
from ._interrupt import check_resume
from ._spiked_config import DEFAULT_SPIKED, HELP, SpikedConfig, add_parser, config_from_args
from ._spiked_diagram import amplification_table, phase_diagram, polar_table
from ._spiked_overlay import COEFFICIENTS, ESCAPE_LEVEL, SIM_ONLY, measurements, overlay_spiked, reduced_optimizer
from ._spiked_plots import (
    COLORS, NAMES, POLAR_STYLE, envelope, plot_gd_vs_specgd, plot_peak_ratio, plot_phase_diagram,
    plot_polar_amplification,
)
from .output import config_json, to_json, write_json, write_outputs
from .overlay import STATS, Overlay

__all__ = [
    "COEFFICIENTS", "COLORS", "DEFAULT_EXPERIMENTS", "DEFAULT_SPIKED", "ESCAPE_LEVEL", "NAMES", "POLAR_STYLE",
    "SIM_ONLY", "HELP", "SpikedConfig", "add_parser", "amplification_table", "config_from_args", "envelope",
    "measurements", "overlay_spiked", "phase_diagram", "plot_gd_vs_specgd", "plot_peak_ratio", "plot_phase_diagram",
    "plot_polar_amplification", "polar_table", "reduced_optimizer", "report", "run_spiked",
]


def _curves(ov: Overlay, prefix: str, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """``trajectories.npz`` arrays of ``ov``: seed means of the theory, means and sds of the simulation."""
    data = {f"{prefix}theory_{k}": ov.mean("theory", k) for k in ov.theory if k not in skip}
    for k in (k for k in ov.sim if k not in skip):
        data[f"{prefix}sim_{k}_mean"], data[f"{prefix}sim_{k}_std"] = ov.mean("sim", k), ov.std("sim", k)
    return data


def run_spiked(config: SpikedConfig, out: Path, progress: bool | None = None, *, overwrite: bool = False,
               force: bool = False, resume: Path | None = None, figures: bool = True) -> dict:
    """Run one spiked experiment into ``out``; returns ``{"summary": dict, "files": [paths]}`` (module docstring).

    Checked before anything runs or is written, then written atomically, as :func:`~.experiments.run_isotropic`
    (``overwrite``, ``force``, ``resume``, ``figures``, a SIGINT: the same; checkpoints ``gd``, ``sgd``, ``specgd`` and those of
    :func:`amplification_table` and :func:`phase_diagram`)."""
    cfg = config.resolved()
    check_out(out, overwrite)
    resume = check_resume(resume, config_json("spiked", cfg))
    _cost.check(_cost.spiked(cfg), force)
    return run_staged(lambda tmp, ck: _run_spiked(cfg, tmp, progress, ck, figures), out, overwrite, "spiked", resume)


def _run_spiked(cfg: SpikedConfig, out: Path, progress: bool | None, ck: Callable[[str], dict],
                figures: bool = True) -> dict:
    start = time.perf_counter()
    write_json(out / "config.json", config_json("spiked", cfg))
    problem = spiked_problem(cfg.d, cfg.theta, seed=cfg.seed)
    args = dict(problem=problem, eta=cfg.eta, steps=cfg.steps, m=cfg.m, init=cfg.init, init_scale=cfg.init_scale,
                seeds=cfg.seeds, polar=cfg.polar, batch=cfg.batch, tol=cfg.tol, n_record=cfg.n_record,
                progress=progress, model=cfg.model)
    main = overlay_spiked(optimizer=cfg.optimizer, **args, **ck(cfg.optimizer))
    other = "specgd" if cfg.optimizer in ("gd", "sgd") else "gd"
    companion = overlay_spiked(optimizer=other, **args, **ck(other))
    overlays = [main, companion] if cfg.optimizer != "specgd" else [companion, main]

    extra = {"steps": main.steps, **_curves(main, "", skip=STATS)}
    for ov in overlays:
        extra |= _curves(ov, f"{ov.optimizer}_")
    written = write_outputs(main, out, extra_arrays=extra)
    files = [out / "config.json", written["summary"], written["trajectories"]]
    figs = plot_gd_vs_specgd(overlays, out) if figures else []

    summary = json.loads(written["summary"].read_text())
    summary["measured"] = main.measured()
    summary["by_optimizer"] = {o.optimizer: o.measured() for o in overlays}
    if cfg.phase_diagram:
        table = amplification_table(cfg, progress=False, checkpoints=ck)
        pd = phase_diagram(cfg, progress=False, checkpoints=ck)
        summary["amplification_table"] = table
        summary["phase_diagram"] = {
            "eta": pd["eta"].tolist(), "predicted": pd["predicted"], "start_threshold": pd["start_threshold"],
            "level": pd["level"],
            "boundary": {o: to_json(pd[f"{o}_boundary"]) for o in ("gd", "specgd")},
            "sim": pd["sim"],
        }
        np.savez(out / "phase_diagram.npz", theta=pd["theta"], eta=pd["eta"],
                 **{f"{o}_{k}": pd[f"{o}_{k}"] for o in ("gd", "specgd")
                    for k in ("amplification", "diverged", "boundary")})
        files.append(out / "phase_diagram.npz")
        pt = polar_table(cfg, progress=False, checkpoints=ck)
        scan = pt["scan"]
        summary["polar_table"] = {
            "eta": pt["eta"], "theta": pt["theta"], "table": pt["table"], "muon_max": scan["muon_max"],
            "muon_max_by_eta": [{"eta": float(e), "amplification": to_json(float(np.nanmax(row))),
                                 "theta": float(scan["theta"][int(np.nanargmax(row))])}
                                for e, row in zip(scan["eta"], scan["muon"])],
        }
        np.savez(out / "polar_amplification.npz", theta=scan["theta"], eta=scan["eta"], exact=scan["exact"],
                 muon=scan["muon"])
        files.append(out / "polar_amplification.npz")
        figs += (plot_phase_diagram(pd, out) + plot_peak_ratio(table, cfg, out)
                 + plot_polar_amplification(pt, cfg, out)) if figures else []
    summary["params"]["wall_time_s"] = round(time.perf_counter() - start, 3)
    write_json(written["summary"], summary)
    return {"summary": summary, "files": [*files, *figs]}


# ----------------------------------------------------------------------------- command line
#: ``(folder, runner, config)`` entries in the format of :data:`phasedyn.compare.experiments.DEFAULTS`
DEFAULT_EXPERIMENTS = [(f"spiked-{cfg.optimizer}", run_spiked, cfg) for cfg in DEFAULT_SPIKED]


def report(name: str, result: dict) -> str:
    """One line of results plus the files, for the command line."""
    s = result["summary"]
    ms = s["measured"]
    f = lambda x: "n/a" if x is None else f"{x:.4g}"  # noqa: E731
    g = lambda x: "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}"  # noqa: E731
    lines = [f"[{name}] amplification of |b|/|a|: theory {f(ms['amplification']['theory'])} / simulation "
             f"{f(ms['amplification']['simulation'])}; steps to tol: theory {f(ms['steps_to_tol']['theory'])} / "
             f"simulation {f(ms['steps_to_tol']['simulation'])}; max |a gap| {g(s['gap']['a']['max'])}; "
             f"{s['params'].get('wall_time_s', 0):.1f} s"]
    lines += [f"    {p}" for p in result["files"]]
    return "\n".join(lines)
