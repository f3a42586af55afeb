"""Publication figures: simulation bands (mean ± std over seeds) under theory lines, phases marked.

Sized for print: the 2×2 overview is double-column width (6.8 in), the (u, s) figure single-column
(3.4 in); 8–9 pt fonts; saved as PNG (300 dpi) and PDF.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .overlay import Overlay

RC = {
    "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "lines.linewidth": 1.2, "axes.grid": True, "grid.alpha": 0.3, "savefig.bbox": "tight",
}
LABELS = {
    "u": r"overlap $u = w^\top\Sigma w^*$",
    "s": r"norm $s = w^\top\Sigma w$",
    "loss": r"population loss $L$",
    "mse": r"MSE $\min|w \mp w^*|^2/d$",
}
THEORY_COLOR, SIM_COLOR = "C3", "C0"
#: log panels stop at this fraction of the curve's scale (see _panel)
LOG_FLOOR = 1e-9


def _panel(ax, ov: Overlay, stat: str, phases: dict | None, logy: bool) -> None:
    t = ov.t
    pos = t > 0
    m, sd, th = ov.mean("sim", stat), ov.std("sim", stat), ov.mean("theory", stat)
    lo, hi = m - sd, m + sd
    floor = None
    if logy:
        # loss and MSE cancel at the minimum (L = 3s² + 3s*² − 4u² − 2ss*), so below ~1e-9 of their
        # scale they show round-off and solver tolerance, not dynamics: mask that rather than plot noise
        floor = LOG_FLOOR * max(np.max(np.abs(m)), np.max(np.abs(th)))
        m, th, hi = (np.where(v > floor, v, np.nan) for v in (m, th, hi))
        lo = np.maximum(lo, floor)
    ax.fill_between(t[pos], lo[pos], hi[pos], color=SIM_COLOR, alpha=0.25, lw=0)
    ax.plot(t[pos], m[pos], color=SIM_COLOR, lw=1.0, label=f"simulation (mean ± sd, {ov.sim[stat].shape[0]} seeds)")
    ax.plot(t[pos], th[pos], color=THEORY_COLOR, ls="--", label="theory")
    if floor is not None:  # clip at the floor only where the data reach it; otherwise frame the data
        data_min = np.nanmin(np.concatenate([m[pos], th[pos]]))
        ax.set_ylim(bottom=max(floor, 0.5 * data_min))
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if phases:
        off = float(ov.shift.mean())
        for name, style in (("T1", ":"), ("T2", "-.")):
            for who, color in (("theory", THEORY_COLOR), ("simulation", SIM_COLOR)):
                tt = phases[name][who]
                if tt is not None and tt - off > 0:
                    ax.axvline(tt - off, color=color, ls=style, lw=0.8, alpha=0.8)
    xlabel = r"time $t = \eta k$" if not ov.params.get("align") else rf"$\tau = t - T_1$ (aligned at $|u| \geq {ov.params['align']}$)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(LABELS[stat])


def plot_overview(ov: Overlay, out: Path, phases: dict | None = None, stem: str = "overview") -> list[Path]:
    """2×2 figure (u, s, loss, MSE vs t); returns the PNG and PDF paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.8, 4.8), layout="constrained")  # no pyplot state: any backend, no leaks
        axes = fig.subplots(2, 2)
        for ax, stat, logy in zip(axes.flat, ("u", "s", "loss", "mse"), (False, False, True, True)):
            _panel(ax, ov, stat, phases, logy)
        axes[0, 0].legend(loc="best", frameon=False)
        p = ov.params
        fig.suptitle(f"{ov.system}: d = {p['d']}, η = {p['eta']:g}, {len(p['seeds'])} seeds"
                     + ("  (dotted: $T_1$, dash-dot: $T_2$)" if phases else ""), fontsize=9)
        paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
        fig.savefig(paths[0], dpi=300)
        fig.savefig(paths[1])
    return paths


def plot_us(ov: Overlay, out: Path, stem: str = "u_s") -> list[Path]:
    """Single-column figure of u and s against t; returns the PNG and PDF paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.4, 2.5), layout="constrained")
        ax = fig.subplots()
        pos = ov.t > 0
        for stat, color in (("u", "C0"), ("s", "C2")):
            m, sd = ov.mean("sim", stat), ov.std("sim", stat)
            ax.fill_between(ov.t[pos], (m - sd)[pos], (m + sd)[pos], color=color, alpha=0.25, lw=0)
            ax.plot(ov.t[pos], m[pos], color=color, lw=1.0, label=f"${stat}$ simulation")
            ax.plot(ov.t[pos], ov.mean("theory", stat)[pos], color="k", ls="--", lw=0.9,
                    label="theory" if stat == "u" else None)
        ax.set_xscale("log")
        ax.set_xlabel(r"time $t = \eta k$" if not ov.params.get("align") else r"$\tau = t - T_1$")
        ax.set_ylabel("summary statistic")
        ax.legend(frameon=False, loc="best")
        paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
        fig.savefig(paths[0], dpi=300)
        fig.savefig(paths[1])
    return paths
