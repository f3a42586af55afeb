r"""Figures of the spiked experiment: GD against SpecGD over time, the phase diagram, the peak ratio against θ."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from phasedyn.theory import spiked as SP

from ._spiked_config import SpikedConfig
from .overlay import Overlay
from .plots import RC, _save, band, log_ticks, place_legend

COLORS = {"gd": "C0", "sgd": "C2", "specgd": "C1"}
NAMES = {"gd": "GD", "sgd": "SGD", "specgd": "SpecGD"}


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


def _gd_vs_specgd_figure(overlays: list[Overlay]) -> Figure:
    """The Figure of :func:`plot_gd_vs_specgd` (not saved)."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 5.0), layout="constrained")
        axes = fig.subplots(2, 2, sharex=True)
        for ov in overlays:
            col = COLORS[ov.optimizer]
            scale = np.sqrt(ov.params["m"])
            series = {x: (ov.sim[x] / scale, ov.theory[x] / scale) for x in ("a", "b", "c")}
            series["ratio"] = (ov.sim["b"] / ov.sim["a"], ov.theory["b"] / ov.theory["a"])
            for ax, name in zip(axes.flat, ("a", "b", "c", "ratio")):
                k, sim = envelope(ov.steps, series[name][0])
                _, th = envelope(ov.steps, series[name][1])
                lo, hi = band(sim.mean(0), sim.std(0), log=name != "a")
                ax.fill_between(k, lo, hi, color=col, alpha=0.25, lw=0)
                ax.plot(k, sim.mean(0), color=col, lw=1.6, alpha=0.6,
                        label=f"{NAMES[ov.optimizer]} simulation (mean ± sd, {sim.shape[0]} seeds)")
                ax.plot(k, th.mean(0), color="k" if ov.optimizer == "gd" else "0.35", ls="--", lw=0.9,
                        label=f"{NAMES[ov.optimizer]} reduced map")
        tol = overlays[0].params["tol"]
        for ax, name in zip(axes.flat, ("a", "b", "c", "ratio")):
            ax.set_xscale("log")
            ax.set_xlabel("step $k$")
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_ylabel(_norm_label(name))
            if name in ("b", "c"):
                ax.set_yscale("log")
                ax.axhline(tol, color="0.5", lw=0.7, ls=":", label=f"tol = {tol:g} (steps_to_tol)")
            if name == "ratio":
                ax.set_yscale("log")
                ax.axhline(1.0, color="0.5", lw=0.7, ls="-.", label=r"$|b|/|a| = 1$")
            log_ticks(ax)
        handles: dict = {}
        for ax in axes.flat:  # every labelled line once, below the panels: no legend over a curve
            handles.update({lab: h for h, lab in zip(*ax.get_legend_handles_labels()) if lab not in handles})
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=3, frameon=False)
        p = overlays[0].params
        fig.suptitle(rf"spiked $\Sigma = I + \theta vv^\top$, $\theta = {p['theta']:g}$, $d = {p['d']}$, "
                     rf"$m = {p['m']}$, $\eta = {p['eta']:g}$, $W(0)$: {p['init']}, $c_0 = {p['init_scale']:g}$ "
                     "(envelope over 2 steps)", fontsize=9)
    return fig


def plot_gd_vs_specgd(overlays: list[Overlay], out: Path, stem: str = "gd_vs_specgd") -> list[Path]:
    r"""2×2 figure: :math:`a`, :math:`b`, :math:`c` (over :math:`\sqrt m`) and :math:`|b|/|a|` against steps, one
    colour per optimizer, simulation bands under dashed theory lines, one legend below the panels. Returns PNG and
    PDF paths.

    Every curve is the envelope :math:`\max(x_k, x_{k-1})` (:func:`envelope`): once converged SpecGD moves each
    coefficient by :math:`\pm\eta` in a period-2 cycle, which a log-spaced grid would alias into a zigzag. The
    bands are mean ± sd over seeds on the linear :math:`a` panel and the geometric band
    :math:`\bar x e^{\pm\sigma/\bar x}` on the log panels (:func:`~.plots.band`)."""
    with matplotlib.rc_context(RC):
        return _save(_gd_vs_specgd_figure(overlays), out, stem)


def plot_phase_diagram(pd: dict, out: Path, stem: str = "phase_diagram") -> list[Path]:
    r"""Two panels (GD, SpecGD) over :math:`(\theta, \eta)`: colour :math:`\log_{10}` amplification (reduced map),
    grey where the map diverges, θ = 2 dashed, measured boundary solid, simulation points (filled: misaligned);
    one legend below the panels names each of them."""
    with matplotlib.rc_context(RC):
        return _save(_phase_diagram_figure(pd), out, stem)


def _phase_diagram_figure(pd: dict) -> Figure:
    """The Figure of :func:`plot_phase_diagram` (not saved)."""
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
            ax.axvline(pd["predicted"], color="k", ls="--", lw=1.0, label=rf"predicted $\theta = {pd['predicted']:g}$")
            bnd = pd[f"{opt}_boundary"]
            if np.any(np.isfinite(bnd)):
                ax.plot(bnd, et, color="C0", lw=1.6, label="boundary found (reduced map)")
            for pt in pd["sim"][opt]:
                if pt["amplification"] is None:
                    ax.plot(pt["theta"], pt["eta"], "x", color="k", ms=5)
                    continue
                ax.plot(pt["theta"], pt["eta"], "o", ms=5, mec="k", mew=0.8,
                        mfc="k" if pt["misaligned"] else "white")
            ax.set_yscale("log")
            log_ticks(ax)
            ax.set_xlabel(r"spike strength $\theta$")
            ax.set_title(f"{NAMES[opt]}: " + ("misaligned right of the boundary" if np.any(np.isfinite(bnd))
                                               else "never misaligned"))
        axes[0].set_ylabel(r"step size $\eta$")
        pts = [pt for opt in ("gd", "specgd") for pt in pd["sim"][opt]]
        handles = [  # what is drawn, each once
            axes[0].get_lines()[0],  # the predicted threshold, as drawn
            Line2D([], [], color="C0", lw=1.6, label="boundary found (reduced map)"),
            Line2D([], [], ls="", marker="o", mfc="k", mec="k", ms=5, label="simulation: misaligned"),
            Line2D([], [], ls="", marker="o", mfc="white", mec="k", ms=5, label="simulation: aligned"),
            Line2D([], [], ls="", marker="x", color="k", ms=5, label="simulation: no amplification (diverged)"),
            Patch(color="0.6", label="reduced map diverges"),
        ]
        drawn = [any(np.any(np.isfinite(pd[f"{o}_boundary"])) for o in ("gd", "specgd")),
                 any(p["amplification"] is not None and p["misaligned"] for p in pts),
                 any(p["amplification"] is not None and not p["misaligned"] for p in pts),
                 any(p["amplification"] is None for p in pts),
                 any(pd[f"{o}_diverged"].any() for o in ("gd", "specgd"))]
        handles = handles[:1] + [h for h, d in zip(handles[1:], drawn) if d]
        fig.legend(handles=handles, loc="outside lower center", ncol=5, frameon=False, fontsize=6.5)
        fig.colorbar(mesh, ax=axes, label=r"$\log_{10}$ amplification of $|b|/|a|$", shrink=0.9)
    return fig


def plot_peak_ratio(table: dict, cfg: SpikedConfig, out: Path, stem: str = "peak_ratio") -> list[Path]:
    r"""Amplification of :math:`|b|/|a|` against θ: reduced-map curves (GD, SpecGD) and the table's simulation
    points, the predicted threshold θ = 2 in the legend, placed clear of the data (:func:`~.plots.place_legend`)."""
    with matplotlib.rc_context(RC):
        return _save(_peak_ratio_figure(table, cfg), out, stem)


def _peak_ratio_figure(table: dict, cfg: SpikedConfig) -> Figure:
    """The Figure of :func:`plot_peak_ratio` (not saved)."""
    cfg = cfg.resolved()
    grid = np.linspace(0.0, 9.0, 91)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.4, 3.0), layout="constrained")
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
        ax.axvline(2.0, color="k", ls="--", lw=0.8, label=r"predicted threshold $\theta = 2$")
        ax.set_yscale("log")
        log_ticks(ax)
        ax.set_xlabel(r"spike strength $\theta$")
        ax.set_ylabel(r"amplification of $|b|/|a|$")
        ax.set_title(rf"$d = m = {cfg.m}$, $c_0 = {cfg.init_scale:g}$, $\eta = {cfg.eta:g}$" if cfg.m == cfg.d else
                     rf"$d = {cfg.d}$, $m = {cfg.m}$, $c_0 = {cfg.init_scale:g}$, $\eta = {cfg.eta:g}$")
        place_legend(ax, fontsize=6, outside_ncol=2)
    return fig


#: markers and colours of SpecGD's polar factors (:func:`plot_polar_amplification`)
POLAR_STYLE = {"svd": ("s", "C1", "exact polar (SVD)"), "newton-schulz": ("^", "C4", "Newton–Schulz, converged"),
               "muon": ("o", "C3", "Muon quintic (5 steps)")}


def plot_polar_amplification(pt: dict, cfg: SpikedConfig, out: Path, stem: str = "polar_amplification") -> list[Path]:
    r"""Amplification of :math:`|b|/|a|` under SpecGD by polar factor (:func:`~._spiked_diagram.polar_table`). Left:
    against θ at ``cfg``'s η, the reduced maps' curves (the exact polar's, shared by converged Newton–Schulz, and
    Muon's quintic) on the full-matrix runs' points; right: Muon's reduced map over :math:`(\theta, \eta)`
    (:math:`\log_{10}` amplification, the exact polar's is 0 everywhere), ``cfg``'s η dotted."""
    with matplotlib.rc_context(RC):
        return _save(_polar_amplification_figure(pt, cfg), out, stem)


def _polar_amplification_figure(pt: dict, cfg: SpikedConfig) -> Figure:
    """The Figure of :func:`plot_polar_amplification` (not saved)."""
    cfg = cfg.resolved()
    grid = np.linspace(0.0, 9.0, 91)
    scan = pt["scan"]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 3.0), layout="constrained")
        ax, ax2 = fig.subplots(1, 2)
        on_manifold = cfg.init == "identity" or (cfg.init == "orthogonal" and cfg.m >= cfg.d)
        if on_manifold:  # every seed starts at a = b = c = c0: one theory curve per map
            p = np.stack([grid, *(np.full_like(grid, x) for x in (cfg.m, cfg.d, cfg.eta))], -1)
            for opt, col, lab in (("specgd", "C1", "exact / converged NS reduced map"),
                                  ("muon", "C3", "Muon reduced map")):
                system = SP.two_layer_system(opt)
                tr = SP.track(system, system.pack_state(SP.identity_start(cfg.init_scale)), p, int(cfg.steps))
                ax.plot(grid, tr.amplification, color=col, lw=1.2, label=lab)
        for pol, pts in pt["table"].items():
            marker, col, lab = POLAR_STYLE[pol]
            ths = np.array([float(k) for k in pts])
            ax.plot(ths, [pts[k]["simulation"] for k in pts], marker, ls="", color=col, mec="k", mew=0.6,
                    ms={"s": 7.5, "^": 5.5, "o": 4.0}[marker], label=f"{lab}: simulation", zorder=3)
        ax.set_yscale("log")
        log_ticks(ax)
        ax.set_xlabel(r"spike strength $\theta$")
        ax.set_ylabel(r"amplification of $|b|/|a|$")
        ax.set_title(rf"SpecGD, $d = {cfg.d}$, $m = {cfg.m}$, $c_0 = {cfg.init_scale:g}$, $\eta = {cfg.eta:g}$",
                     fontsize=8)
        th, et, amp = scan["theta"], scan["eta"], scan["muon"]
        val = np.log10(np.maximum(np.where(np.isfinite(amp), amp, 1.0), 1.0))
        mesh = ax2.pcolormesh(th, et, val, cmap="Reds", vmin=0.0, vmax=max(0.05, float(val.max())), shading="nearest")
        ax2.axhline(cfg.eta, color="k", ls=":", lw=0.9)
        ax2.set_yscale("log")
        log_ticks(ax2)
        ax2.set_xlabel(r"spike strength $\theta$")
        ax2.set_ylabel(r"step size $\eta$")
        ax2.set_title(r"Muon quintic, reduced map (exact polar: 1 everywhere)", fontsize=8)
        fig.colorbar(mesh, ax=ax2, label=r"$\log_{10}$ amplification")
        handles: dict = {}
        handles.update({lab: h for h, lab in zip(*ax.get_legend_handles_labels())})
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=3, frameon=False,
                   fontsize=6.5)
    return fig
